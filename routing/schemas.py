"""What the agents and queues API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$", description="lower case, digits, . _ -")]
SkillName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
# A dial string Asterisk can ring: PJSIP/1001, SIP/agent7, Local/100@agents.
Endpoint = Annotated[str, Field(pattern=r"^[A-Za-z]+/[A-Za-z0-9_.@+-]{1,100}$", examples=["PJSIP/1001"])]
Recording = Literal["always", "on_demand", "never"]


class SkillLevel(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    skill: SkillName
    level: int = Field(ge=1, le=10, description="1 (learning) to 10 (expert)")


def _one_each(skills: list[Any] | None) -> list[Any] | None:
    """Refuses a list naming a skill twice (which level would count?)."""
    if skills is not None:
        names = [s.skill for s in skills]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"each skill once: {', '.join(twice)} given more than once")
    return skills


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    display_name: str = Field(min_length=1, max_length=200)
    home_endpoint: Endpoint | None = Field(
        default=None, description="the phone the agent usually sits at; log-in uses it when none is given"
    )
    skills: list[SkillLevel] = Field(default_factory=list, max_length=100)
    api_key_id: int | None = Field(
        default=None, description="the agent-role API key this agent signs in with (reads its own stream)"
    )

    _skills_once = field_validator("skills")(_one_each)


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    home_endpoint: Endpoint | None = None
    skills: list[SkillLevel] | None = Field(default=None, max_length=100, description="replaces the set")
    api_key_id: int | None = None

    _skills_once = field_validator("skills")(_one_each)


class AgentStatusRead(BaseModel):
    """The agent's live state, as the ACD sees it."""

    state: str
    since: datetime | None
    endpoint: str | None
    reason: str | None
    until: datetime | None
    call_id: str | None
    queue: str | None


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_name: str
    home_endpoint: str | None
    skills: list[SkillLevel]
    api_key_id: int | None
    created_at: datetime
    updated_at: datetime
    status: AgentStatusRead


class AgentList(BaseModel):
    items: list[AgentRead]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: Endpoint | None = Field(default=None, description="default: the agent's home endpoint")


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200, examples=["lunch"])


class QueueSkill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skill: SkillName
    min_level: int = Field(default=1, ge=1, le=10)
    optional: bool = Field(
        default=False, description="preferred, not required: dropped after two widen-after waits"
    )


class _QueueFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    skills: list[QueueSkill] | None = Field(default=None, max_length=50)
    priority: int | None = Field(default=None, ge=-100, le=100)
    schedule: str | None = Field(default=None, min_length=1, max_length=64, description="business hours")
    service_level_seconds: int | None = Field(default=None, ge=1, le=3600)
    service_level_percent: int | None = Field(default=None, ge=1, le=100)
    max_wait_seconds: int | None = Field(default=None, ge=1, le=86_400)
    max_length: int | None = Field(default=None, ge=1, le=100_000)
    wrap_up_seconds: int | None = Field(default=None, ge=0, le=3600)
    overflow_wait_seconds: int | None = Field(
        default=None, ge=0, le=86_400, description="offer overflow when the estimated wait is above this"
    )
    widen_after_seconds: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="drop minimum levels after this wait, optional skills after twice it",
    )
    recording: Recording | None = None
    open_case_priority_boost: int | None = Field(
        default=None,
        ge=0,
        le=10,
        description="added to the priority of a caller with an open or pending case, up to the IVR's "
        "highest (10); 0: off. Default 1",
    )

    _skills_once = field_validator("skills")(_one_each)


class QueueCreate(_QueueFields):
    name: Name


class QueueUpdate(_QueueFields):
    """Only the fields given change; `null` clears an optional limit (max wait, max length...)."""


class QueueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    display_name: str
    skills: list[QueueSkill]
    priority: int
    schedule: str | None
    service_level_seconds: int
    service_level_percent: int
    max_wait_seconds: int | None
    max_length: int | None
    wrap_up_seconds: int
    overflow_wait_seconds: int | None
    widen_after_seconds: int | None
    recording: Recording
    open_case_priority_boost: int
    created_at: datetime
    updated_at: datetime


class QueueList(BaseModel):
    items: list[QueueRead]


class ServiceLevel(BaseModel):
    target_seconds: int
    target_percent: int
    answered: int
    answered_within_target: int
    abandoned: int
    percent: float | None = Field(
        description="answered within target / (answered + abandoned); none yet: null"
    )


class QueueStatus(BaseModel):
    queue: str
    waiting: int
    longest_wait_seconds: float
    estimated_wait_seconds: float | None = Field(
        description="for a caller joining now; null: no agent serving"
    )
    overflow: bool
    overflow_reason: str | None
    agents: dict[str, int] = Field(description="agents who can take the queue's calls, by state")
    service_level: ServiceLevel
