"""What a runner (AGI, ARI, a test) tells the IVR engine. Each has a `type`, so a runner can also
read them from JSON with `TypeAdapter(Event)`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CallStarted(_Event):
    type: Literal["call_started"] = "call_started"
    caller_number: str = Field(default="", max_length=64, description="empty or 'anonymous' if withheld")
    called_number: str = Field(default="", max_length=64)
    now: AwareDatetime = Field(description="when the call reached the IVR; business hours are judged by it")


class PromptFinished(_Event):
    """The awaited Play ended (or a Record: the caller stopped speaking, or max_seconds passed)."""

    type: Literal["prompt_finished"] = "prompt_finished"


class DigitsReceived(_Event):
    type: Literal["digits_received"] = "digits_received"
    digits: str = Field(pattern=r"^[0-9*#]*$", max_length=64)


class SpeechRecognised(_Event):
    type: Literal["speech_recognised"] = "speech_recognised"
    text: str = Field(max_length=1000)
    confidence: float = Field(ge=0, le=1)


class NoInput(_Event):
    """The caller said and keyed nothing before the timeout."""

    type: Literal["no_input"] = "no_input"


class NoMatch(_Event):
    """The recogniser heard something it could not make out."""

    type: Literal["no_match"] = "no_match"


class CustomerInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: int
    name: str | None = None
    language: str | None = None
    vip: bool = False
    open_case_count: int = Field(default=0, ge=0)


class LookupResult(_Event):
    type: Literal["lookup_result"] = "lookup_result"
    customer: CustomerInfo | None = Field(description="None: nobody has that number")


class QueueWaitEstimated(_Event):
    """The ACD's answer to EstimateWait."""

    type: Literal["queue_wait_estimated"] = "queue_wait_estimated"
    routed: bool = Field(description="the ACD routes this queue; False: no estimate (e.g. Asterisk's queue)")
    minutes: int | None = Field(default=None, ge=0, description="rounded up; None: unknown (nobody serving)")
    overflow: bool = Field(default=False, description="the ACD advises not joining: offer the alternatives")
    reason: str | None = Field(default=None, max_length=32, description="no_agents, queue_full, long_wait")


class ActionFailed(_Event):
    type: Literal["action_failed"] = "action_failed"
    reason: str = Field(max_length=500)
    action: str = Field(default="", max_length=32, description="the failed action's type, e.g. 'send_link'")


class CallerHungUp(_Event):
    type: Literal["caller_hung_up"] = "caller_hung_up"


Event = Annotated[
    CallStarted
    | PromptFinished
    | DigitsReceived
    | SpeechRecognised
    | NoInput
    | NoMatch
    | LookupResult
    | QueueWaitEstimated
    | ActionFailed
    | CallerHungUp,
    Field(discriminator="type"),
]
