"""What the IVR engine asks a runner to do, in order. Each has a `type` (its name in ActionFailed)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from voice.ivr.schema import LinkChannel, LookupBy, NodeKind


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Play(_Action):
    """Say `text` (TTS) or play `audio` (preferred when the runner has the file), in `language`."""

    type: Literal["play"] = "play"
    text: str | None
    audio: str | None
    language: str
    barge_in: bool = Field(description="a key press (or speech) stops the prompt")


class CollectDigits(_Action):
    type: Literal["collect_digits"] = "collect_digits"
    max_digits: int
    min_digits: int
    timeout_ms: int
    terminator: str | None = Field(description="'#' or '*': ends the input early; None: no terminator")


class Listen(_Action):
    """Recognise speech at the same time as the digits: the phrases each answer may be said with."""

    type: Literal["listen"] = "listen"
    phrases: dict[str, list[str]] = Field(description="option key (or 'yes'/'no') -> phrases")
    language: str
    timeout_ms: int


class LookupCustomer(_Action):
    type: Literal["lookup_customer"] = "lookup_customer"
    by: LookupBy
    value: str


class EstimateWait(_Action):
    """Ask the ACD for the estimated wait in `queue` before joining it; answered with QueueWaitEstimated
    (a runner without an ACD, or a queue the ACD does not route, answers `routed=False`)."""

    type: Literal["estimate_wait"] = "estimate_wait"
    queue: str


class EnqueueCall(_Action):
    """Hand the call to an agent queue; the IVR is done unless the queue refuses it."""

    type: Literal["enqueue_call"] = "enqueue_call"
    queue: str
    priority: int
    skills: list[str]
    language: str


class OfferCallback(_Action):
    """The caller accepted a callback: book it. Its failure is logged by the runner, not reported."""

    type: Literal["offer_callback"] = "offer_callback"
    queue: str
    number: str
    language: str


class SendLink(_Action):
    type: Literal["send_link"] = "send_link"
    channel: LinkChannel
    to: str
    link: str = Field(description="which continuation; the runner makes its URL")
    text: str = Field(description="the message, with {link} where the URL goes")
    language: str


class Record(_Action):
    """Voicemail: record the caller into `mailbox` until silence, '#', or max_seconds."""

    type: Literal["record"] = "record"
    mailbox: str
    max_seconds: int
    beep: bool


class Transfer(_Action):
    type: Literal["transfer"] = "transfer"
    target: str


class Hangup(_Action):
    type: Literal["hangup"] = "hangup"


class RecordStep(_Action):
    """A step for the customer timeline (a touchpoint): a node entered or an input taken there.
    Its failure is logged by the runner, not reported."""

    type: Literal["record_step"] = "record_step"
    node: str
    kind: NodeKind
    input: str | None = Field(default=None, description="keys pressed, 'speech', 'no-input', 'hangup', …")
    text: str | None = Field(default=None, description="what the recogniser heard")
    confidence: float | None = None
    result: str | None = Field(default=None, description="what came of it: 'option 2', 'found', …")


Action = Annotated[
    Play
    | CollectDigits
    | Listen
    | LookupCustomer
    | EstimateWait
    | EnqueueCall
    | OfferCallback
    | SendLink
    | Record
    | Transfer
    | Hangup
    | RecordStep,
    Field(discriminator="type"),
]
