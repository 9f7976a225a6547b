"""What the campaigns API reads and writes (the settings themselves are `dialer.campaign_rules`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialer.campaign_rules import CampaignSettings


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
        description="contacts by status: pending, dialing, done, exhausted, blocked"
    )
    contacts_remaining: int = Field(description="pending and dialing")
    running_here: bool = Field(description="whether this process dials the campaign (live figures below)")
    calls_in_progress: int | None = None
    agents: AgentCounts | None = None
    occupancy: float | None = Field(default=None, description="talking / staffed agents, now")
    last_pacing: dict[str, Any] | None = None
