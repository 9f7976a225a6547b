from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.channels import Channel, Direction
from core.customers.identities import IdentityKind


class RefKind(StrEnum):
    ASTERISK_LINKEDID = "asterisk_linkedid"
    ASTERISK_UNIQUEID = "asterisk_uniqueid"
    TWILIO_SID = "twilio_sid"
    EMAIL_MESSAGE_ID = "email_message_id"
    CHAT_SESSION = "chat_session"
    CRM = "crm"
    DIAL_ATTEMPT = "dial_attempt"  # the dialer's attempt id: one interaction per call it placed


class Outcome(StrEnum):
    COMPLETED = "completed"
    CONTAINED = "contained"  # finished in the IVR, no agent needed
    TRANSFERRED = "transferred"
    ABANDONED = "abandoned"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    REJECTED = "rejected"
    VOICEMAIL = "voicemail"
    ANSWERING_MACHINE = "answering_machine"
    CALLBACK_REQUESTED = "callback_requested"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


class TouchpointKind(StrEnum):
    IVR_NODE = "ivr_node"
    MENU_CHOICE = "menu_choice"
    DTMF = "dtmf"
    SPEECH = "speech"
    LOOKUP = "lookup"
    LANGUAGE_SET = "language_set"
    QUEUE_ENTER = "queue_enter"
    QUEUE_LEAVE = "queue_leave"
    AGENT_CONNECT = "agent_connect"
    TRANSFER = "transfer"
    HOLD = "hold"
    RESUME = "resume"
    CALLBACK_OFFERED = "callback_offered"
    CALLBACK_ACCEPTED = "callback_accepted"
    LINK_SENT = "link_sent"
    RECORDING = "recording"
    MESSAGE = "message"
    NOTE = "note"


class ExternalRef(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    kind: RefKind
    value: str = Field(min_length=1, max_length=255)


class CustomerIdentityRef(BaseModel):
    """Names the customer by an identity instead of an id; a new customer is made if none has it."""

    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=320)


class InteractionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = None
    identity: CustomerIdentityRef | None = None
    case_id: int | None = None
    channel: Channel
    direction: Direction
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    queue: str | None = Field(default=None, max_length=64)
    agent: str | None = Field(default=None, max_length=64)
    campaign: str | None = Field(default=None, max_length=64)
    outcome: Outcome | None = None
    disposition: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=200)
    intent: str | None = Field(default=None, max_length=64)
    summary: str | None = Field(default=None, max_length=20_000)
    language: str | None = Field(default=None, max_length=16)
    csat: int | None = Field(default=None, ge=1, le=5)
    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=10)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.customer_id is not None and self.identity is not None:
            raise ValueError("give customer_id or identity, not both")
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self


class InteractionClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Outcome
    ended_at: AwareDatetime | None = Field(default=None, description="now if omitted")
    disposition: str | None = Field(default=None, max_length=64)
    csat: int | None = Field(default=None, ge=1, le=5)
    summary: str | None = Field(default=None, max_length=20_000)


class TouchpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: TouchpointKind
    occurred_at: AwareDatetime | None = Field(default=None, description="now if omitted")
    duration_ms: int | None = Field(default=None, ge=0)
    node: str | None = Field(default=None, max_length=64)
    input: str | None = Field(default=None, max_length=200)
    text: str | None = Field(default=None, max_length=20_000)
    confidence: float | None = Field(default=None, ge=0, le=1)
    attributes: dict[str, Any] = Field(default_factory=dict)


class TouchpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    interaction_id: int
    seq: int
    kind: str
    occurred_at: datetime
    duration_ms: int | None
    node: str | None
    input: str | None
    text: str | None
    confidence: float | None
    attributes: dict[str, Any]


class InteractionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int | None
    case_id: int | None
    channel: str
    direction: str
    started_at: datetime
    ended_at: datetime | None
    queue: str | None
    agent: str | None
    campaign: str | None
    outcome: str | None
    disposition: str | None
    subject: str | None
    intent: str | None
    summary: str | None
    language: str | None
    csat: int | None
    external_refs: list[ExternalRef]
    attributes: dict[str, Any]


class TimelineItem(InteractionRead):
    touchpoints: list[TouchpointRead] | None = None


class TimelinePage(BaseModel):
    items: list[TimelineItem]
    next_cursor: str | None
