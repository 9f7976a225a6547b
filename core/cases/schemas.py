from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CaseStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer or a third party
    RESOLVED = "resolved"


OPEN_STATUSES = (CaseStatus.OPEN.value, CaseStatus.PENDING.value)


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int
    subject: str | None = Field(default=None, max_length=200)
    interaction_ids: list[int] = Field(default_factory=list, max_length=100)
    attributes: dict[str, Any] = Field(default_factory=dict)


class CaseUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str | None = Field(default=None, max_length=200)
    status: CaseStatus | None = Field(default=None, description="open or pending; use /resolve to resolve")
    attributes: dict[str, Any] | None = None


class CaseResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: str | None = Field(default=None, max_length=4000)


class CaseAddInteraction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interaction_id: int


class CaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    subject: str | None
    status: CaseStatus
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    reopened_count: int
    attributes: dict[str, Any]
    updated_at: datetime
