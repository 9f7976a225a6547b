"""AMI events as typed models. `parse_event(message)` gives the model for the events we use, and an
`UnknownAmiEvent` (name + message) for the hundreds of others; the raw message stays on every event.

Field names are snake_case; Asterisk's names (`CallerIDNum`, `Cause-txt`, `Uniqueid`) are the aliases.
Fields Asterisk adds are kept under their wire names (`model_extra`). Caller ids that Asterisk writes as
`<unknown>` become None.

What the recording of Asterisk 22.10 shows (../shared/fixtures/asterisk/ami_trace.txt):
- Originate with `Async: true` answers `Response: Success` ("Originate successfully queued") at once;
  the outcome comes later as `Event: OriginateResponse` with the same ActionID, `Response: Success` or
  `Failure`, and `Reason` (4 answered; 0 for an unknown context, with `Uniqueid: <unknown>`).
- An unknown channel technology fails the action itself: `Response: Error`, "Originate failed".
- A Local channel has two halves (`;1`, `;2`); each gets its own Newchannel ... Hangup.
- The events of a call carry its `Uniqueid`; OriginateResponse's `Uniqueid` is the `;1` half's, which is
  how a dialer ties the originate to the later Hangup.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from voice.ami.errors import AmiProtocolError
from voice.ami.protocol import AmiMessage


def _known(value: Any) -> Any:
    return None if value in ("<unknown>", "") else value


Known = Annotated[str | None, BeforeValidator(_known)]


class OriginateReason(IntEnum):
    """`Reason:` of OriginateResponse (Asterisk's control frame numbers)."""

    FAILED = 0  # no such context/extension, the channel could not be created, ...
    HANGUP = 1  # hung up before answering
    RING = 2
    NO_ANSWER = 3  # rang until the timeout
    ANSWERED = 4
    BUSY = 5
    CONGESTION = 8


class AmiEvent(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True, arbitrary_types_allowed=True)

    event: str = Field(alias="Event")
    privilege: str = Field("", alias="Privilege")
    action_id: str | None = Field(None, alias="ActionID")
    raw: AmiMessage | None = Field(None, exclude=True, repr=False)


class _ChannelEvent(AmiEvent):
    channel: str = Field("", alias="Channel")
    channel_state: int | None = Field(None, alias="ChannelState")
    channel_state_desc: str = Field("", alias="ChannelStateDesc")
    caller_id_num: Known = Field(None, alias="CallerIDNum")
    caller_id_name: Known = Field(None, alias="CallerIDName")
    connected_line_num: Known = Field(None, alias="ConnectedLineNum")
    connected_line_name: Known = Field(None, alias="ConnectedLineName")
    language: str = Field("", alias="Language")
    account_code: str = Field("", alias="AccountCode")
    context: str = Field("", alias="Context")
    exten: str = Field("", alias="Exten")
    priority: int | None = Field(None, alias="Priority")
    uniqueid: str = Field("", alias="Uniqueid")
    linkedid: str = Field("", alias="Linkedid")


class FullyBooted(AmiEvent):
    status: str = Field("", alias="Status")


class Newchannel(_ChannelEvent):
    pass


class Newstate(_ChannelEvent):
    pass


class Newexten(_ChannelEvent):
    extension: str = Field("", alias="Extension")
    application: str = Field("", alias="Application")
    app_data: str = Field("", alias="AppData")


class VarSet(_ChannelEvent):
    variable: str = Field("", alias="Variable")
    value: str = Field("", alias="Value")


class Hangup(_ChannelEvent):
    cause: int = Field(0, alias="Cause")
    cause_txt: str = Field("", alias="Cause-txt")


class HangupRequest(_ChannelEvent):
    cause: int = Field(0, alias="Cause")


class SoftHangupRequest(_ChannelEvent):
    cause: int = Field(0, alias="Cause")


class DialBegin(_ChannelEvent):
    """`channel` and friends are the caller (absent for an originate); `dest_*` the called channel."""

    dest_channel: str = Field("", alias="DestChannel")
    dest_uniqueid: str = Field("", alias="DestUniqueid")
    dial_string: str = Field("", alias="DialString")


class DialEnd(_ChannelEvent):
    dest_channel: str = Field("", alias="DestChannel")
    dest_uniqueid: str = Field("", alias="DestUniqueid")
    dial_status: str = Field("", alias="DialStatus")  # ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, ...


class AGIExecStart(_ChannelEvent):
    command_id: str = Field("", alias="CommandId")
    command: str = Field("", alias="Command")


class AGIExecEnd(AGIExecStart):
    result_code: int | None = Field(None, alias="ResultCode")
    result: str = Field("", alias="Result")


class OriginateResponse(AmiEvent):
    """The outcome of an `Async: true` Originate; `action_id` is the Originate's."""

    response: str = Field(alias="Response")  # Success / Failure
    channel: str = Field("", alias="Channel")
    context: str = Field("", alias="Context")
    exten: str = Field("", alias="Exten")
    application: str = Field("", alias="Application")
    data: str = Field("", alias="Data")
    reason: int = Field(0, alias="Reason")
    uniqueid: Known = Field(None, alias="Uniqueid")
    caller_id_num: Known = Field(None, alias="CallerIDNum")
    caller_id_name: Known = Field(None, alias="CallerIDName")

    @property
    def success(self) -> bool:
        return self.response.lower() == "success"

    @property
    def outcome(self) -> OriginateReason | None:
        try:
            return OriginateReason(self.reason)
        except ValueError:
            return None


class CoreShowChannel(_ChannelEvent):
    """One item of the CoreShowChannels list."""

    application: str = Field("", alias="Application")
    application_data: str = Field("", alias="ApplicationData")
    duration: str = Field("", alias="Duration")  # "00:01:23"
    bridge_id: str = Field("", alias="BridgeId")


class CoreShowChannelsComplete(AmiEvent):
    list_items: int = Field(0, alias="ListItems")


class UnknownAmiEvent(AmiEvent):
    """An event we do not model: read it from `raw` (or `model_extra`)."""


MODELLED: dict[str, type[AmiEvent]] = {
    model.__name__.lower(): model
    for model in (
        FullyBooted,
        Newchannel,
        Newstate,
        Newexten,
        VarSet,
        Hangup,
        HangupRequest,
        SoftHangupRequest,
        DialBegin,
        DialEnd,
        AGIExecStart,
        AGIExecEnd,
        OriginateResponse,
        CoreShowChannel,
        CoreShowChannelsComplete,
    )
}


def parse_event(message: AmiMessage) -> AmiEvent:
    """The typed event for an `Event:` message. Raises `AmiProtocolError` for a message that is not an
    event or a modelled event with a malformed field (e.g. `Cause: x`)."""
    name = message.event
    if not name:
        raise AmiProtocolError(f"not an event: {message.fields[:3]!r}")
    model = MODELLED.get(name.lower(), UnknownAmiEvent)
    data: dict[str, Any] = dict(message.as_dict())
    data["raw"] = message
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AmiProtocolError(f"malformed {name} event: {exc}") from None
