from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class Interaction(Base):
    """One contact on one channel: a call, an IVR session, an SMS thread, an email, a chat, a visit."""

    __tablename__ = "interactions"
    __table_args__ = (
        # The timeline and the screen pop read a customer's interactions newest first.
        Index("ix_interactions_customer_started", "customer_id", "started_at", "id"),
        Index("ix_interactions_case_id", "case_id"),
        Index("ix_interactions_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Empty for contacts nobody could identify (withheld caller id); they still count in reports.
    customer_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"))
    case_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("cases.id"))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    queue: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(64))
    campaign: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(32))
    disposition: Mapped[str | None] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(200))
    intent: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    csat: Mapped[int | None] = mapped_column(SmallInteger)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # A copy of this interaction's interaction_refs rows ([{"kind", "value"}]), so that a timeline
    # page or a screen pop reads each interaction in the same round trip. The table is what
    # enforces uniqueness; both are written together by the timeline service only.
    external_refs: Mapped[list[dict[str, str]]] = mapped_column(JsonDoc, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class InteractionRef(Base):
    """An id the source system gave the contact (Asterisk linkedid, Twilio SID, email Message-ID).

    Unique per kind, which is what makes a retried webhook or a re-sent AGI event idempotent.
    """

    __tablename__ = "interaction_refs"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_interaction_refs_kind_value"),
        Index("ix_interaction_refs_interaction_id", "interaction_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(BigId, ForeignKey("interactions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(255))


class Touchpoint(Base):
    """A step inside an interaction: an IVR node, a menu choice, recognised speech, a transfer, a hold."""

    __tablename__ = "touchpoints"
    __table_args__ = (UniqueConstraint("interaction_id", "seq", name="uq_touchpoints_interaction_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    interaction_id: Mapped[int] = mapped_column(BigId, ForeignKey("interactions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    node: Mapped[str | None] = mapped_column(String(64))
    input: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
