from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base, BigId, JsonDoc, UTCDateTime, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # fold(name): lets a search ignore case and accents without a database extension.
    name_search: Mapped[str | None] = mapped_column(String(200), index=True)
    preferred_language: Mapped[str | None] = mapped_column(String(16))
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    # {"sms": {"granted": true, "recorded_at": "...", "legal_basis": "consent", "source": "web"}, ...}
    consents: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # Free data the IVR and routing branch on, e.g. {"vip": true, "segment": "gold"}.
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDoc, default=dict)
    # Indexed: deleting or merging a customer checks this foreign key, a scan of every customer without it.
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(
        back_populates="customer", order_by="Identity.id", cascade="all, delete-orphan"
    )


class Identity(Base):
    """A way to recognise a customer: a phone number (E.164), an email, a WhatsApp number, a CRM id."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("kind", "value", name="uq_identities_kind_value"),
        Index("ix_identities_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="identities")
