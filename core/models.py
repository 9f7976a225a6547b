"""Imports every model so that Base.metadata knows all tables (for Alembic and tests)."""

from core.audit.models import AuditEntry
from core.auth.models import ApiKey
from core.cases.models import Case
from core.customers.models import Customer, Identity
from core.timeline.models import Interaction, InteractionRef, Touchpoint

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Case",
    "Customer",
    "Identity",
    "Interaction",
    "InteractionRef",
    "Touchpoint",
]
