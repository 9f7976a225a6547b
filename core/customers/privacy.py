"""GDPR / LOPDGDD rights: access (export everything held) and erasure (anonymise, keep the counts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from core.audit import service as audit
from core.audit.models import AuditEntry
from core.cases.models import Case
from core.cases.schemas import CaseRead
from core.customers import service as customers
from core.customers.models import Customer, Identity
from core.customers.schemas import CustomerRead
from core.db import affected_rows, utcnow
from core.events import stage
from core.timeline import service as timeline
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from core.timeline.schemas import InteractionRead, TouchpointRead


def export_customer(*, db: Session, customer_id: int, actor: str) -> dict[str, Any]:
    """Everything held about a customer, as one JSON-ready document."""
    customer = customers.get_customer(db=db, customer_id=customer_id)
    interactions = list(
        db.scalars(
            select(Interaction).where(Interaction.customer_id == customer.id).order_by(Interaction.started_at)
        )
    )
    steps = timeline.touchpoints_of(db=db, interaction_ids=[i.id for i in interactions])
    case_rows = db.scalars(select(Case).where(Case.customer_id == customer.id).order_by(Case.id))
    merged_from = db.scalars(select(Customer.id).where(Customer.merged_into_id == customer.id)).all()
    history = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_type == "customer", AuditEntry.subject_id.in_([customer.id, *merged_from]))
        .order_by(AuditEntry.id)
    )
    document = {
        "exported_at": utcnow().isoformat(),
        "customer": CustomerRead.model_validate(customer).model_dump(mode="json"),
        "merged_from_customer_ids": list(merged_from),
        "cases": [CaseRead.model_validate(case).model_dump(mode="json") for case in case_rows],
        "interactions": [
            InteractionRead.model_validate(i).model_dump(mode="json")
            | {"touchpoints": [TouchpointRead.model_validate(t).model_dump(mode="json") for t in steps[i.id]]}
            for i in interactions
        ],
        "audit": [
            {"at": e.at.isoformat(), "actor": e.actor, "action": e.action, "details": e.details}
            for e in history
        ],
    }
    audit.record(
        db=db,
        actor=actor,
        action="customer.exported",
        subject_type="customer",
        subject_id=customer.id,
        details={"interactions": len(interactions), "cases": len(document["cases"])},
    )
    return document


def erase_customer(*, db: Session, customer_id: int, actor: str) -> dict[str, int]:
    """Removes what identifies the customer and what they said; keeps what reports count.

    Channel, direction, times, queue, agent, outcome and CSAT of each contact stay (so service
    levels and volumes do not change retroactively); names, numbers, addresses, subjects,
    summaries, recognised speech and free attributes go.
    """
    customer = customers.get_customer(db=db, customer_id=customer_id)
    mine = select(Interaction.id).where(Interaction.customer_id == customer.id).scalar_subquery()
    counts = {
        "identities": affected_rows(db, delete(Identity).where(Identity.customer_id == customer.id)),
        "interactions": affected_rows(
            db,
            update(Interaction)
            .where(Interaction.customer_id == customer.id)
            .values(subject=None, summary=None, attributes={}, external_refs=[]),
        ),
        "external_refs": affected_rows(
            db, delete(InteractionRef).where(InteractionRef.interaction_id.in_(mine))
        ),
        "touchpoints": affected_rows(
            db,
            update(Touchpoint)
            .where(Touchpoint.interaction_id.in_(mine))
            .values(input=None, text=None, attributes={}),
        ),
        "cases": affected_rows(
            db,
            update(Case)
            .where(Case.customer_id == customer.id)
            .values(subject=None, resolution=None, attributes={}),
        ),
    }
    customer.name = None
    customer.name_search = None
    customer.consents = {}
    customer.attributes = {}
    customer.erased_at = utcnow()
    db.flush()
    db.expire(customer, ["identities"])
    audit.record(
        db=db,
        actor=actor,
        action="customer.erased",
        subject_type="customer",
        subject_id=customer.id,
        details=counts,
    )
    stage(db, "customer.erased", {"customer_id": customer.id})
    return counts
