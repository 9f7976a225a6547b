"""What the callbacks API takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from core.customers.schemas import Language, Name


class CallbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(min_length=1, max_length=64, examples=["+34600111222"])
    at: AwareDatetime | None = Field(
        default=None, description="when to call (ISO 8601 with its offset); now if omitted"
    )
    queue: str | None = Field(default=None, max_length=64, description="the default queue if omitted")
    name: Name | None = Field(
        default=None, description="given to a new customer; an existing one keeps theirs"
    )
    language: Language | None = None
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="what the page knows: URL, chat transcript id, form fields; kept on the case",
    )
    interaction_id: int | None = Field(
        default=None, description="the contact the request comes from (an agent's call, a recorded chat)"
    )


class CallbackAccepted(BaseModel):
    """The answer a web page gets: enough to tell the customer when, nothing about them."""

    id: int
    status: str
    queue: str
    due_at: datetime
    note: str | None = None


class CallbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    case_id: int
    phone: str
    queue: str
    source: str
    language: str | None
    requested_at: datetime
    due_at: datetime
    place_at: datetime
    status: str
    status_reason: str | None
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_result: str | None
    agent: str | None
    context: dict[str, Any]
    interaction_id: int | None
    callback_interaction_id: int | None
    updated_at: datetime


class CallbackList(BaseModel):
    items: list[CallbackRead]
    next_after_id: int | None = Field(description="pass as after_id for the next page; null on the last")


class CallbackCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=300)
