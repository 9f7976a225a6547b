from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cases.models import Case
from core.cases.schemas import CaseCreate, CaseStatus, CaseUpdate
from core.customers import service as customers
from core.db import utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from core.timeline.models import Interaction


def _payload(case: Case) -> dict[str, Any]:
    return {"case_id": case.id, "customer_id": case.customer_id, "status": case.status}


def get_case(*, db: Session, case_id: int) -> Case:
    case = db.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


def _attach(db: Session, case: Case, interaction_id: int) -> None:
    interaction = db.get(Interaction, interaction_id)
    if interaction is None:
        raise NotFound(f"interaction {interaction_id} not found")
    if interaction.customer_id != case.customer_id:
        raise InvalidInput(
            f"interaction {interaction_id} belongs to customer {interaction.customer_id}, "
            f"case {case.id} to customer {case.customer_id}"
        )
    if interaction.case_id not in (None, case.id):
        raise Conflict(f"interaction {interaction_id} already belongs to case {interaction.case_id}")
    interaction.case_id = case.id


def open_case(*, db: Session, data: CaseCreate) -> Case:
    customers.get_customer(db=db, customer_id=data.customer_id)
    case = Case(customer_id=data.customer_id, subject=data.subject, attributes=data.attributes)
    db.add(case)
    db.flush()
    for interaction_id in data.interaction_ids:
        _attach(db, case, interaction_id)
    db.flush()
    stage(db, "case.opened", _payload(case))
    return case


def update_case(*, db: Session, case_id: int, data: CaseUpdate) -> Case:
    case = get_case(db=db, case_id=case_id)
    if data.status is CaseStatus.RESOLVED:
        raise InvalidInput("resolve a case with POST /cases/{id}/resolve, which records the resolution")
    if data.status is not None and case.status == CaseStatus.RESOLVED:
        raise Conflict(f"case {case_id} is resolved; reopen it first")
    if data.subject is not None:
        case.subject = data.subject
    if data.status is not None:
        case.status = data.status.value
    if data.attributes is not None:
        case.attributes = data.attributes
    db.flush()
    stage(db, "case.updated", _payload(case))
    return case


def add_interaction(*, db: Session, case_id: int, interaction_id: int) -> Case:
    case = get_case(db=db, case_id=case_id)
    _attach(db, case, interaction_id)
    case.updated_at = utcnow()
    db.flush()
    stage(db, "case.interaction_added", _payload(case) | {"interaction_id": interaction_id})
    return case


def resolve_case(*, db: Session, case_id: int, resolution: str | None) -> Case:
    case = get_case(db=db, case_id=case_id)
    if case.status == CaseStatus.RESOLVED:
        raise Conflict(f"case {case_id} is already resolved")
    case.status = CaseStatus.RESOLVED.value
    case.resolved_at = utcnow()
    case.resolution = resolution
    db.flush()
    stage(db, "case.resolved", _payload(case))
    return case


def reopen_case(*, db: Session, case_id: int) -> Case:
    case = get_case(db=db, case_id=case_id)
    if case.status != CaseStatus.RESOLVED:
        raise Conflict(f"case {case_id} is {case.status}, not resolved")
    case.status = CaseStatus.OPEN.value
    case.resolved_at = None
    case.reopened_count += 1
    db.flush()
    stage(db, "case.reopened", _payload(case))
    return case


def cases_of(*, db: Session, customer_id: int, statuses: Sequence[str] = (), limit: int = 100) -> list[Case]:
    """A customer's cases, most recently active first; `statuses` narrows them."""
    query = select(Case).where(Case.customer_id == customer_id)
    if statuses:
        query = query.where(Case.status.in_(statuses))
    return list(db.scalars(query.order_by(Case.updated_at.desc(), Case.id.desc()).limit(limit)))
