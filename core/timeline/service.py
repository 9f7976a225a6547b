"""The customer timeline. Every channel records its contacts through `record_interaction` and its
steps through `add_touchpoint`, so that one place makes them idempotent and publishes them."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, tuple_
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.cases.models import Case
from core.customers import service as customers
from core.customers.models import Customer
from core.db import columns_of, timestamp_fields, utc_timestamps, utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from core.timeline.models import Interaction, InteractionRef, Touchpoint
from core.timeline.schemas import (
    InteractionClose,
    InteractionCreate,
    InteractionRead,
    TouchpointCreate,
    TouchpointRead,
)

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
        )
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


_TOUCHPOINT_COLUMNS = columns_of(Touchpoint, TouchpointRead)
_INTERACTION_COLUMNS = columns_of(Interaction, InteractionRead)


def touchpoints_of(*, db: Session, interaction_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The steps of each interaction, in order, as dicts shaped like `TouchpointRead`."""
    grouped: dict[int, list[dict[str, Any]]] = {i: [] for i in interaction_ids}
    if interaction_ids:
        query = (
            select(*_TOUCHPOINT_COLUMNS)
            .where(Touchpoint.interaction_id.in_(interaction_ids))
            .order_by(Touchpoint.interaction_id, Touchpoint.seq)
        )
        for row in db.connection().execute(query).all():
            grouped[row.interaction_id].append(row._asdict())
    return grouped


def encode_cursor(started_at: datetime, interaction_id: int) -> str:
    raw = json.dumps([started_at.isoformat(), interaction_id]).encode()
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


@functools.cache
def _timeline_statement(channels: bool, since: bool, until: bool, cursor: bool) -> Select[Any]:
    """Built once per combination of filters: building a statement costs more than running it."""
    started_at_type = Interaction.started_at.type
    query = select(*_INTERACTION_COLUMNS).where(Interaction.customer_id == bindparam("customer_id"))
    if channels:
        query = query.where(Interaction.channel.in_(bindparam("channels", expanding=True)))
    if since:
        query = query.where(Interaction.started_at >= bindparam("since", type_=started_at_type))
    if until:
        query = query.where(Interaction.started_at < bindparam("until", type_=started_at_type))
    if cursor:
        after = tuple_(bindparam("cursor_at", type_=started_at_type), bindparam("cursor_id"))
        query = query.where(tuple_(Interaction.started_at, Interaction.id) < after)
    return query.order_by(Interaction.started_at.desc(), Interaction.id.desc()).limit(bindparam("limit"))


@functools.cache
def _timeline_document_statement(channels: bool, since: bool, until: bool, cursor: bool) -> Select[Any]:
    """PostgreSQL only: the customer's state and the page as one JSON array, in one round trip."""
    page = _timeline_statement(channels, since, until, cursor).subquery("page")
    items = select(
        func.json_agg(aggregate_order_by(page.table_valued(), page.c.started_at.desc(), page.c.id.desc()))
    ).scalar_subquery()
    return select(Customer.merged_into_id, Customer.erased_at, items.label("items")).where(
        Customer.id == bindparam("customer_id")
    )


_INTERACTION_TIMES = timestamp_fields(InteractionRead)


def timeline_page(
    *,
    db: Session,
    customer_id: int,
    limit: int = 50,
    cursor: str | None = None,
    channels: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a customer's interactions, newest first, as dicts shaped like `InteractionRead`,
    and the cursor of the next page. Read without the ORM, as the screen pop is: agents' screens
    page through it. PostgreSQL answers in one round trip, SQLite in two cheap ones."""
    params: dict[str, Any] = {"customer_id": customer_id, "limit": limit + 1}
    if channels:
        params["channels"] = list(channels)
    if since is not None:
        params["since"] = since
    if until is not None:
        params["until"] = until
    if cursor is not None:
        params["cursor_at"], params["cursor_id"] = decode_cursor(cursor)
    shape = (bool(channels), since is not None, until is not None, cursor is not None)
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        found = customers.usable(
            customer_id, connection.execute(_timeline_document_statement(*shape), params).first()
        )
        rows = [utc_timestamps(item, _INTERACTION_TIMES) for item in found.items or ()]
    else:
        customers.require_customer(db=db, customer_id=customer_id)
        rows = [row._asdict() for row in connection.execute(_timeline_statement(*shape), params).all()]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["started_at"], last["id"])
    return rows[:limit], next_cursor
