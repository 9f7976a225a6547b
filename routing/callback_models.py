"""The callbacks table: every call a customer asked us to make back, from the IVR, the web or an agent.

A row is the whole life of one callback, and the durable schedule the callback desk reads: it is joined
to its queue's live ACD as a *virtual position* when `next_attempt_at` comes, at `place_at` (the moment
the caller's place in the queue was taken: the IVR call's entry time, or the time asked for), so that
every attempt, a retry after a restart included, keeps the place the caller had.

    requested --due--> waiting --agent reserved--> dialing --answered, bridged--> connected --> completed
    dialing --busy / no answer / failed--> requested (retry at next_attempt_at) or failed (no attempts left)
    requested | waiting --cancel--> cancelled;   requested | waiting --DNC at dial time--> failed

`interaction_id` is the contact that asked (the IVR call, or a `web` interaction made for the request);
`callback_interaction_id` the latest outbound call made for it (one interaction per attempt, each with
`attributes["callback_id"]`). All of them, and the callback, are in `case_id`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class CallbackStatus(StrEnum):
    REQUESTED = "requested"  # due later (a time asked for, or a retry's back-off)
    WAITING = "waiting"  # due: a virtual position in its queue's live ACD
    DIALING = "dialing"  # an agent is reserved and the customer's phone rings
    CONNECTED = "connected"  # the customer answered and is with the agent
    COMPLETED = "completed"
    FAILED = "failed"  # no attempts left, or a number that may no longer be called
    CANCELLED = "cancelled"


class CallbackSource(StrEnum):
    IVR = "ivr"
    WEB = "web"  # a web page or a chat (POST /callbacks with an integration key)
    AGENT = "agent"  # an agent booked it for the customer


# Still to be made: what "one pending callback per number and queue" and the desk's reads look at.
ACTIVE = (
    CallbackStatus.REQUESTED.value,
    CallbackStatus.WAITING.value,
    CallbackStatus.DIALING.value,
    CallbackStatus.CONNECTED.value,
)
FINISHED = (CallbackStatus.COMPLETED.value, CallbackStatus.FAILED.value, CallbackStatus.CANCELLED.value)


class Callback(Base):
    __tablename__ = "callbacks"
    __table_args__ = (
        # The desk's read: what is due, and what it should have in the live ACD.
        Index("ix_callbacks_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_callbacks_phone_status", "phone", "status"),
        Index("ix_callbacks_customer_id", "customer_id"),
        CheckConstraint(
            "status IN ('requested', 'waiting', 'dialing', 'connected', 'completed', 'failed', 'cancelled')",
            name="status_known",
        ),
        CheckConstraint("source IN ('ivr', 'web', 'agent')", name="source_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("cases.id"))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    queue: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(8))
    language: Mapped[str | None] = mapped_column(String(16))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when the customer wants the call
    # The place in the queue: the ACD orders virtual positions with live calls by this and `priority`.
    place_at: Mapped[datetime] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # the call's own, on top of the queue's
    status: Mapped[str] = mapped_column(String(16), default=CallbackStatus.REQUESTED.value)
    status_reason: Mapped[str | None] = mapped_column(String(300))  # why failed or cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None once finished
    last_result: Mapped[str | None] = mapped_column(String(32))  # connected, busy, no_answer, failed, ...
    agent: Mapped[str | None] = mapped_column(String(64))  # who took (or was reserved for) it
    # What the IVR collected (variables, flow, node) or the page sent (URL, chat transcript id).
    context: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    interaction_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("interactions.id"))
    callback_interaction_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("interactions.id"))
    created_by: Mapped[str] = mapped_column(String(100))  # the API key's name, or "ivr"
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
