"""What the dialer keeps: campaigns, their contacts and lists, every dial attempt, do-not-call entries.

The attempt rows are the record behind the compliance report: abandonment is computed from them, and one
row per (contact, attempt number) is what keeps an attempt from being counted twice when a result is
reported again (a retried event, a restart in the middle of a call).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("name", name="uq_campaigns_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(16))
    # draft -> running <-> paused -> stopped; `status_reason` says why (a person, or the dialer pausing
    # itself because the PBX is unreachable or the abandonment rate reached its target).
    status: Mapped[str] = mapped_column(String(16), default="draft")
    status_reason: Mapped[str | None] = mapped_column(String(300))
    # The validated campaign settings (dialer.campaign_rules), as one document: they are read and
    # written whole, and validated whole, so columns per field would only add migrations.
    settings: Mapped[dict[str, Any]] = mapped_column(JsonDoc)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContactList(Base):
    """One CSV import into a campaign, with its per-row report."""

    __tablename__ = "contact_lists"
    __table_args__ = (Index("ix_contact_lists_campaign_id", "campaign_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id", ondelete="CASCADE"))
    filename: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="importing")  # importing, done, failed
    error: Mapped[str | None] = mapped_column(Text)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_loaded: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    # Problem kind -> count, and the first problems in full (the rest are counted, not kept).
    summary: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ImportProblem(Base):
    """A row of a contact list that was not loaded, and why."""

    __tablename__ = "import_problems"
    __table_args__ = (Index("ix_import_problems_list_row", "list_id", "row_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_id: Mapped[int] = mapped_column(BigId, ForeignKey("contact_lists.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    problem: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500))


class CampaignContact(Base):
    """A customer to call in a campaign, and where their attempts stand."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_campaign_contacts_campaign_phone"),
        # The pacing loop asks: the next contacts of this campaign due for a call.
        Index("ix_campaign_contacts_due", "campaign_id", "status", "next_attempt_at"),
        Index("ix_campaign_contacts_customer_id", "customer_id"),
        Index("ix_campaign_contacts_list_id", "list_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("contact_lists.id", ondelete="SET NULL"))
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    time_zone: Mapped[str | None] = mapped_column(String(64))  # explicit; else from the number
    # The list's other columns; under "@dialer" the dialer's own notes (a preview reservation's agent).
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # pending (due at next_attempt_at), previewing (held for one agent until next_attempt_at), dialing,
    # done (reached; a final disposition), exhausted (max attempts), blocked (do-not-call or no consent
    # found at dial time, or the callee asked), failed (undialable, a wrong number), skipped (an agent
    # passed on it for good in preview).
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_disposition: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DialAttempt(Base):
    """One call placed to a contact: when it rang, was answered, reached an agent or was abandoned."""

    __tablename__ = "dial_attempts"
    __table_args__ = (
        UniqueConstraint("contact_id", "attempt", name="uq_dial_attempts_contact_attempt"),
        Index("ix_dial_attempts_campaign_dialed", "campaign_id", "dialed_at"),
        Index("ix_dial_attempts_campaign_answered", "campaign_id", "answered_at"),
        Index("ix_dial_attempts_interaction_id", "interaction_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(32))
    call_ref: Mapped[str | None] = mapped_column(String(128))  # the network's id (ARI channel id)
    dialed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    greeting_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_played_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the abandoned-call message
    disposition: Mapped[str | None] = mapped_column(String(32))
    amd: Mapped[str | None] = mapped_column(String(16))  # human, machine, unsure; empty: AMD off
    live_person: Mapped[bool | None] = mapped_column(Boolean)  # known for sure (an agent's review)
    # dialer.abandonment.CallClass once the call ended: connected, abandoned, machine, ... The rolling
    # abandonment rates count these; the compliance report reclassifies from the timestamps.
    call_class: Mapped[str | None] = mapped_column(String(24))
    # Who took the call; a preview dial names its agent from the moment the agent asks for it.
    agent: Mapped[str | None] = mapped_column(String(64))
    interaction_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("interactions.id"))


class DoNotCall(Base):
    """A number never to be dialed: by every campaign (campaign_id empty) or by one."""

    __tablename__ = "do_not_call"
    __table_args__ = (
        # NULLs are distinct in a unique constraint, so the global list needs an index of its own.
        Index(
            "uq_do_not_call_global_phone",
            "phone",
            unique=True,
            sqlite_where=text("campaign_id IS NULL"),
            postgresql_where=text("campaign_id IS NULL"),
        ),
        Index(
            "uq_do_not_call_campaign_phone",
            "campaign_id",
            "phone",
            unique=True,
            sqlite_where=text("campaign_id IS NOT NULL"),
            postgresql_where=text("campaign_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    campaign_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("campaigns.id", ondelete="CASCADE"))
    reason: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(64))  # who or what added it: an API key, an import, the IVR
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# APScheduler's job store (SQLAlchemyJobStore), as APScheduler 3 defines it: declared here so that the
# migrations create it like every other table. It holds the campaigns' schedule jobs (window openings,
# end dates), which must survive a restart.
scheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
