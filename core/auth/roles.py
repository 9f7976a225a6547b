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


_EVERYDAY = frozenset(
    {
        Permission.CUSTOMERS_READ,
        Permission.CUSTOMERS_WRITE,
        Permission.TIMELINE_READ,
        Permission.INTERACTIONS_WRITE,
        Permission.CASES_WRITE,
        Permission.DO_NOT_CALL_WRITE,
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
    },
    Role.AGENT: _EVERYDAY,
    Role.INTEGRATION: _EVERYDAY,
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]
