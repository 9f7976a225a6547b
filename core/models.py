"""Imports every model of the service so that Base.metadata knows all tables (for Alembic and tests).

The dialer's tables are listed here too: one metadata, one migration history, one database.
"""

from core.audit.models import AuditEntry
from core.auth.models import ApiKey
from core.cases.models import Case
from core.customers.models import Customer, Identity
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from dialer.models import Campaign, CampaignContact, ContactList, DialAttempt, DoNotCall, ImportProblem
from routing.callback_models import Callback
from routing.models import Agent, AgentSkill, AgentStateChange, Queue

__all__ = [
    "Agent",
    "AgentSkill",
    "AgentStateChange",
    "ApiKey",
    "AuditEntry",
    "Callback",
    "Campaign",
    "CampaignContact",
    "Case",
    "ContactList",
    "Customer",
    "DialAttempt",
    "DoNotCall",
    "Identity",
    "ImportProblem",
    "Interaction",
    "InteractionRef",
    "Queue",
    "Touchpoint",
]
