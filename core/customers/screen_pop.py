"""What an agent's screen or the IVR needs the moment a contact arrives, in three round trips."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from core.cases import service as cases
from core.cases.models import Case
from core.cases.schemas import OPEN_STATUSES
from core.customers import service as customers
from core.customers.identities import IdentityKind
from core.customers.models import Customer, Identity
from core.timeline import service as timeline
from core.timeline.models import Interaction


@dataclass(frozen=True, slots=True)
class ScreenPop:
    customer: Customer
    matched_identity: Identity
    open_cases: list[Case]
    recent_interactions: list[Interaction]


def lookup(*, db: Session, kind: IdentityKind, value: str, region: str, recent: int = 10) -> ScreenPop | None:
    found = customers.find_by_identity(db=db, kind=kind, value=value, region=region)
    if found is None:
        return None
    customer, identity = found
    return ScreenPop(
        customer=customer,
        matched_identity=identity,
        open_cases=cases.cases_of(db=db, customer_id=customer.id, statuses=OPEN_STATUSES, limit=20),
        recent_interactions=timeline.recent_interactions(db=db, customer_id=customer.id, limit=recent),
    )
