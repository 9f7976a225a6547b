"""The customer timeline. Every channel records its contacts through `record_interaction` and its
steps through `add_touchpoint`, so that one place makes them idempotent and publishes them."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.cases.models import Case
from core.customers import service as customers
from core.db import utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from core.timeline.schemas import InteractionClose, InteractionCreate, TouchpointCreate

_INTERACTION_FIELDS = (
    "channel",
    "direction",
    "started_at",
    "ended_at",
    "queue",
    "agent",
    "campaign",
    "outcome",
    "disposition",
    "subject",
    "intent",
    "summary",
    "language",
    "csat",
    "attributes",
)


def _event_payload(interaction: Interaction) -> dict[str, Any]:
    return {
        "interaction_id": interaction.id,
        "customer_id": interaction.customer_id,
        "case_id": interaction.case_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "started_at": interaction.started_at.isoformat(),
        "queue": interaction.queue,
        "agent": interaction.agent,
        "campaign": interaction.campaign,
        "outcome": interaction.outcome,
    }


def _existing_by_ref(db: Session, refs: Sequence[tuple[str, str]]) -> Interaction | None:
    if not refs:
        return None
    found = db.scalars(
        select(Interaction)
        .join(InteractionRef, InteractionRef.interaction_id == Interaction.id)
        .where(tuple_(InteractionRef.kind, InteractionRef.value).in_(refs))
        .limit(1)
    ).first()
    return found


def record_interaction(*, db: Session, data: InteractionCreate, region: str) -> tuple[Interaction, bool]:
    """Records a contact; returns it and whether it is new.

    Idempotent on external refs: a second delivery of the same Twilio SID, Asterisk linkedid or
    Message-ID returns the interaction recorded the first time and changes nothing.
    """
    refs = [(ref.kind.value, ref.value) for ref in data.external_refs]
    existing = _existing_by_ref(db, refs)
    if existing is not None:
        return existing, False

    customer_id = data.customer_id
    if customer_id is not None:
        customers.get_customer(db=db, customer_id=customer_id)
    elif data.identity is not None:
        customer_id = customers.find_or_create_by_identity(
            db=db, kind=data.identity.kind, value=data.identity.value, region=region
        ).id
    if data.case_id is not None:
        case = db.get(Case, data.case_id)
        if case is None:
            raise NotFound(f"case {data.case_id} not found")
        if case.customer_id != customer_id:
            raise InvalidInput(f"case {case.id} belongs to customer {case.customer_id}, not to {customer_id}")

    values = data.model_dump(include=set(_INTERACTION_FIELDS))
    interaction = Interaction(
        customer_id=customer_id,
        case_id=data.case_id,
        external_refs=[{"kind": kind, "value": value} for kind, value in refs],
        **values,
    )
    db.add(interaction)
    try:
        with db.begin_nested():
            db.flush()
            db.add_all(InteractionRef(interaction_id=interaction.id, kind=k, value=v) for k, v in refs)
            db.flush()
    except IntegrityError:
        # The same webhook arrived twice at once and the other delivery won: answer with its row.
        db.expunge(interaction)
        winner = _existing_by_ref(db, refs)
        if winner is None:
            raise
        return winner, False
    stage(db, "interaction.created", _event_payload(interaction))
    return interaction, True


def get_interaction(*, db: Session, interaction_id: int) -> Interaction:
    interaction = db.get(Interaction, interaction_id)
    if interaction is None:
        raise NotFound(f"interaction {interaction_id} not found")
    return interaction


def close_interaction(*, db: Session, interaction_id: int, data: InteractionClose) -> Interaction:
    interaction = get_interaction(db=db, interaction_id=interaction_id)
    if interaction.ended_at is not None and interaction.outcome is not None:
        raise Conflict(f"interaction {interaction_id} was already closed with outcome {interaction.outcome}")
    ended_at = data.ended_at or utcnow()
    if ended_at < interaction.started_at:
        raise InvalidInput("ended_at is before the interaction started")
    interaction.ended_at = ended_at
    interaction.outcome = data.outcome.value
    for field in ("disposition", "csat", "summary"):
        value = getattr(data, field)
        if value is not None:
            setattr(interaction, field, value)
    db.flush()
    stage(db, "interaction.closed", _event_payload(interaction) | {"ended_at": ended_at.isoformat()})
    return interaction


def add_touchpoint(*, db: Session, interaction_id: int, data: TouchpointCreate) -> Touchpoint:
    interaction = get_interaction(db=db, interaction_id=interaction_id)
    # Steps of one call arrive one after the other from the call's own task; the unique
    # (interaction_id, seq) constraint catches the rare writer that races anyway.
    last = db.scalar(select(func.max(Touchpoint.seq)).where(Touchpoint.interaction_id == interaction.id))
    touchpoint = Touchpoint(
        interaction_id=interaction.id,
        seq=(last or 0) + 1,
        occurred_at=data.occurred_at or utcnow(),
        **data.model_dump(exclude={"occurred_at"}),
    )
    db.add(touchpoint)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"another step was recorded on interaction {interaction_id} at the same moment; retry"
        ) from exc
    stage(
        db,
        "touchpoint.added",
        {
            "interaction_id": interaction.id,
            "customer_id": interaction.customer_id,
            "seq": touchpoint.seq,
            "kind": touchpoint.kind,
            "node": touchpoint.node,
        },
    )
    return touchpoint


def touchpoints_of(*, db: Session, interaction_ids: Sequence[int]) -> dict[int, list[Touchpoint]]:
    grouped: dict[int, list[Touchpoint]] = {i: [] for i in interaction_ids}
    if interaction_ids:
        query = (
            select(Touchpoint)
            .where(Touchpoint.interaction_id.in_(interaction_ids))
            .order_by(Touchpoint.interaction_id, Touchpoint.seq)
        )
        for touchpoint in db.scalars(query):
            grouped[touchpoint.interaction_id].append(touchpoint)
    return grouped


def encode_cursor(interaction: Interaction) -> str:
    raw = json.dumps([interaction.started_at.isoformat(), interaction.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started_at, interaction_id = json.loads(raw)
        when = datetime.fromisoformat(started_at)
        if when.tzinfo is None or not isinstance(interaction_id, int):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("cursor is not one this API returned") from None
    return when, interaction_id


def timeline_page(
    *,
    db: Session,
    customer_id: int,
    limit: int = 50,
    cursor: str | None = None,
    channels: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[Interaction], str | None]:
    """One page of a customer's interactions, newest first, and the cursor of the next page."""
    customers.get_customer(db=db, customer_id=customer_id)
    query = select(Interaction).where(Interaction.customer_id == customer_id)
    if channels:
        query = query.where(Interaction.channel.in_(channels))
    if since is not None:
        query = query.where(Interaction.started_at >= since)
    if until is not None:
        query = query.where(Interaction.started_at < until)
    if cursor is not None:
        query = query.where(tuple_(Interaction.started_at, Interaction.id) < tuple_(*decode_cursor(cursor)))
    query = query.order_by(Interaction.started_at.desc(), Interaction.id.desc()).limit(limit + 1)
    rows = list(db.scalars(query))
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def recent_interactions(*, db: Session, customer_id: int, limit: int) -> list[Interaction]:
    query = (
        select(Interaction)
        .where(Interaction.customer_id == customer_id)
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(limit)
    )
    return list(db.scalars(query))
