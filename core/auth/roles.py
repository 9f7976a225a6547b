"""Who may do what. The API checks a permission on every route; roles map to sets of them."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"  # campaigns, reports, data quality (merges)
    AGENT = "agent"  # the people on the phones
    INTEGRATION = "integration"  # channel adapters: IVR, Twilio, email, CRM connectors


class Permission(StrEnum):
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    CUSTOMERS_MERGE = "customers:merge"
    TIMELINE_READ = "timeline:read"
    INTERACTIONS_WRITE = "interactions:write"
    CASES_WRITE = "cases:write"
    PRIVACY = "privacy"  # export and erase: the data-protection officer's work
    AUDIT_READ = "audit:read"
    KEYS_MANAGE = "keys:manage"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_MANAGE = "campaigns:manage"  # create, change, start, stop, import lists
    DO_NOT_CALL_WRITE = "dnc:write"  # list a number: agents and the IVR take "do not call me" requests
    CAMPAIGNS_WORK = "campaigns:work"  # agents on a campaign: preview, dial, skip, set dispositions
    REPORTS_READ = "reports:read"  # live figures, interval reports, /metrics: supervisors and managers
    AGENTS_STATE = "agents:state"  # log in, out, pause, ready: agents their own; supervisors anyone's
    ROUTING_READ = "routing:read"  # agents, queues and their live status
    ROUTING_MANAGE = "routing:manage"  # create and change agents and queues: supervisors
    # Book a callback: web pages and chats (through their server, with an integration key), agents, the IVR.
    CALLBACKS_REQUEST = "callbacks:request"
    CALLBACKS_MANAGE = "callbacks:manage"  # list, read and cancel callbacks
    RECORDINGS_LISTEN = "recordings:listen"  # list and play any call's recordings: supervisors
    RECORDINGS_OWN = "recordings:own"  # start (on demand), list and play one's own calls' recordings


_EVERYDAY = frozenset(
    {
        Permission.CUSTOMERS_READ,
        Permission.CUSTOMERS_WRITE,
        Permission.TIMELINE_READ,
        Permission.INTERACTIONS_WRITE,
        Permission.CASES_WRITE,
        Permission.DO_NOT_CALL_WRITE,
        Permission.ROUTING_READ,
        Permission.CALLBACKS_REQUEST,
        Permission.CALLBACKS_MANAGE,
    }
)

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.MANAGER: _EVERYDAY
    | {
        Permission.CUSTOMERS_MERGE,
        Permission.AUDIT_READ,
        Permission.CAMPAIGNS_READ,
        Permission.CAMPAIGNS_MANAGE,
        Permission.CAMPAIGNS_WORK,
        Permission.REPORTS_READ,
        Permission.AGENTS_STATE,
        Permission.ROUTING_MANAGE,
        Permission.RECORDINGS_LISTEN,
        Permission.RECORDINGS_OWN,
    },
    Role.AGENT: _EVERYDAY | {Permission.AGENTS_STATE, Permission.CAMPAIGNS_WORK, Permission.RECORDINGS_OWN},
    Role.INTEGRATION: _EVERYDAY,
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
