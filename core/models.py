"""Imports every model of the service so that Base.metadata knows all tables (for Alembic and tests).

The dialer's tables are listed here too: one metadata, one migration history, one database.
"""

from core.audit.models import AuditEntry
from core.auth.models import ApiKey
from core.cases.models import Case
from core.customers.models import Customer, Identity
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from dialer.models import Campaign, CampaignContact, ContactList, DialAttempt, DoNotCall, ImportProblem

__all__ = [
    "ApiKey",
    "AuditEntry",
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
    "Touchpoint",
]
