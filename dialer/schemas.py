"""What the campaigns API reads and writes (the settings themselves are `dialer.campaign_rules`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.customers.schemas import Lookup
from dialer.campaign_rules import AgentEndpoint, CampaignSettings
from dialer.dispositions import AgentDisposition


class CampaignRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    mode: str
    status: str
    status_reason: str | None
    settings: CampaignSettings
    created_at: datetime
    updated_at: datetime


class CampaignList(BaseModel):
    items: list[CampaignRead]


class CampaignAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=300, description="kept in the audit log")


class DoNotCallAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    numbers: list[str] = Field(min_length=1, max_length=10_000, description="any format; stored in E.164")
    reason: str | None = Field(default=None, max_length=200)


class DoNotCallAdded(BaseModel):
    added: list[str] = Field(
        description="the numbers newly listed; numbers already listed are left as they were"
    )


class DoNotCallRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    phone: str
    campaign_id: int | None
    reason: str | None
    source: str
    added_at: datetime


class DoNotCallPage(BaseModel):
    items: list[DoNotCallRead]
    next_after: int | None = Field(description="pass as `after` for the next page; null on the last one")


class ContactListRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    filename: str | None
    status: str
    error: str | None
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    summary: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


class ImportProblemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row_number: int
    problem: str
    detail: str


class AgentCounts(BaseModel):
    idle: int
    reserved: int
    talking: int
    wrap_up: int
    paused: int


class CampaignStats(BaseModel):
    campaign_id: int
    status: str
    at: datetime
    dialed: int = Field(description="attempts placed, all time")
    answered: int = Field(description="answered by a live person (connected or abandoned)")
    connected: int
    abandoned: int
    machines: int
    abandonment_rate_24h: float = Field(description="abandoned / live calls over the last 24 hours")
    abandonment_rate_30d: float
    attempts_last_hour: int
    contacts: dict[str, int] = Field(
        description="contacts by status: pending, previewing, dialing, done, exhausted, blocked, failed, "
        "skipped"
    )
    contacts_remaining: int = Field(description="pending, previewing and dialing")
    dispositions: dict[str, int] = Field(
        default_factory=dict, description="the agents' dispositions of calls, by kind (sale, call_back, ...)"
    )
    running_here: bool = Field(description="whether this process dials the campaign (live figures below)")
    calls_in_progress: int | None = None
    agents: AgentCounts | None = None
    occupancy: float | None = Field(default=None, description="talking / staffed agents, now")
    last_pacing: dict[str, Any] | None = None


# --- agents: preview and dispositions -------------------------------------------------------------------


class AgentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: AgentEndpoint = Field(description="the agent's phone, as the campaign's `agents` lists it")


class PreviewSkip(AgentRequest):
    reason: str = Field(min_length=1, max_length=200, description="why: kept in the audit log")
    final: bool = Field(default=False, description="true: never call this contact in this campaign")
    retry_at: AwareDatetime | None = Field(
        default=None, description="not final: when to offer it again (default: retry_delays.skipped from now)"
    )


class PreviewContact(BaseModel):
    id: int
    phone: str
    customer_id: int
    time_zone: str | None
    attributes: dict[str, Any] = Field(description="the list's other columns for this contact")
    attempts: int
    last_disposition: str | None
    status: str
    next_attempt_at: datetime | None


class PreviewRead(BaseModel):
    campaign_id: int
    agent: str
    contact: PreviewContact
    reserved_at: datetime
    expires_at: datetime = Field(description="then the contact returns to the list unless dialed or skipped")
    passed_over: int = Field(
        description="contacts found on a do-not-call list or outside their hours on the way"
    )
    customer: Lookup | None = Field(
        description="the screen pop of the number: who, open cases, recent contacts"
    )


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    campaign_id: int
    contact_id: int
    attempt: int
    phone: str
    agent: str | None
    state: Literal["requested", "in_progress", "ended"] = Field(
        description="requested: waiting for the dialer to place it (preview); ended: see disposition"
    )
    dialed_at: datetime
    answered_at: datetime | None
    connected_at: datetime | None
    ended_at: datetime | None
    disposition: str | None = Field(description="what the network saw: connected, no_answer, busy, ...")
    call_class: str | None
    interaction_id: int | None
    agent_disposition: dict[str, Any] | None = Field(description="the agent's disposition, once set")


class PreviewDialRead(BaseModel):
    contact: PreviewContact
    attempt: AttemptRead


class DispositionSet(AgentRequest):
    disposition: AgentDisposition
    at: AwareDatetime | None = Field(
        default=None, description="call_back: when the callee asked to be called (in the future)"
    )
    note: str | None = Field(default=None, max_length=500)
    do_not_call_scope: Literal["global", "campaign"] | None = Field(
        default=None, description="do_not_call: which list (default: the campaign's do_not_call_disposition)"
    )

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.disposition is AgentDisposition.CALL_BACK and self.at is None:
            raise ValueError("a call_back needs `at`: when the callee asked to be called (ISO 8601)")
        if self.disposition is not AgentDisposition.CALL_BACK and self.at is not None:
            raise ValueError(f"`at` goes with call_back only, not with {self.disposition.value}")
        if self.do_not_call_scope is not None and self.disposition is not AgentDisposition.DO_NOT_CALL:
            raise ValueError("do_not_call_scope goes with a do_not_call disposition only")
        return self


class ContactState(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_disposition: str | None


class DispositionRead(BaseModel):
    attempt_id: int
    disposition: AgentDisposition
    recorded: bool = Field(description="false: the same disposition was already set; nothing changed")
    rescheduled: bool = Field(description="whether it set the contact's next attempt")
    contact: ContactState
    details: dict[str, Any] = Field(description="as recorded on the customer's timeline")
    do_not_call_listed: list[str] = Field(description="numbers newly listed by this disposition")
