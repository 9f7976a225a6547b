"""ARI events as typed models, and the objects inside them (Channel, Bridge, Playback, LiveRecording).

`parse_event(data)` turns one decoded WebSocket message into a model. Types we do not model come back as
`UnknownEvent` (the type and the raw dict), never as a failure: Asterisk sends many (ChannelVarset of
every dialplan variable, ChannelDialplan, ChannelCallerId, ...) and adds new ones between versions.
Fields Asterisk adds to a modelled type are kept (`extra="allow"`: `model_extra`, `model_dump()`).

What the recordings of Asterisk 22.10 show (../shared/fixtures/asterisk/ari_trace.txt):
- A channel that entered Stasis from the dialplan and is hung up over REST gets ChannelHangupRequest and
  StasisEnd, but no ChannelDestroyed: StasisEnd is the end of the call for the application.
- A Local channel originated with `app=` puts its `;1` half in Stasis (StasisStart, `args` = appArgs);
  events of its `;2` half (ChannelStateChange, ChannelHangupRequest, ChannelDestroyed) reach the app too.
- Dial from an ARI originate has no `caller`, only `peer`; the first one has `dialstatus` "".
- ChannelHangupRequest after DELETE has `cause` 32 and `soft` true; a far-end hang-up has no `soft`.
- A missing sound file: PlaybackStarted, then PlaybackFinished with state "failed" at once.
- Timestamps look like "2026-11-24T16:30:47.645+0000".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from voice.ari.errors import AriProtocolError


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class CallerID(_Model):
    name: str = ""
    number: str = ""


class DialplanCEP(_Model):
    """Where a channel is in the dialplan; `app_name` is "Stasis" while it is in an ARI application."""

    context: str = ""
    exten: str = ""
    priority: int = 0
    app_name: str = ""
    app_data: str = ""


class Channel(_Model):
    id: str  # the uniqueid, or the channelId given to originate ("scenA-caller;2" for a Local ;2 half)
    name: str = ""  # "Local/s@stasis-test-00000002;2", "PJSIP/100-00000001"
    state: str = ""  # Down, Rsrvd, OffHook, Dialing, Ring, Ringing, Up, Busy, Dialing Offhook, Pre-ring
    protocol_id: str = ""
    caller: CallerID = CallerID()
    connected: CallerID = CallerID()
    accountcode: str = ""
    dialplan: DialplanCEP | None = None
    creationtime: datetime | None = None
    language: str = ""
    channelvars: dict[str, str] | None = None  # only when ari.conf / the originate asked for them


class Bridge(_Model):
    id: str
    technology: str = ""
    bridge_type: str = ""  # mixing, holding
    bridge_class: str = ""
    creator: str = ""
    name: str = ""
    channels: tuple[str, ...] = ()
    creationtime: datetime | None = None
    video_mode: str = ""


def _target(uri: str, kind: str) -> str | None:
    prefix = f"{kind}:"
    return uri[len(prefix) :] if uri.startswith(prefix) else None


class Playback(_Model):
    id: str
    media_uri: str = ""  # "sound:hello-world"
    target_uri: str = ""  # "channel:<id>" or "bridge:<id>"
    language: str = ""
    state: str = ""  # queued, playing, paused, continuing, done, failed
    next_media_uri: str | None = None

    @property
    def channel_id(self) -> str | None:
        return _target(self.target_uri, "channel")

    @property
    def bridge_id(self) -> str | None:
        return _target(self.target_uri, "bridge")

    @property
    def failed(self) -> bool:
        """The media could not be played (e.g. a sound file Asterisk does not have)."""
        return self.state == "failed"


class LiveRecording(_Model):
    name: str
    format: str = ""
    state: str = ""  # queued, recording, paused, done, failed, canceled
    target_uri: str = ""
    duration: int | None = None  # seconds
    talking_duration: int | None = None
    silence_duration: int | None = None
    cause: str | None = None  # why it failed

    @property
    def channel_id(self) -> str | None:
        return _target(self.target_uri, "channel")

    @property
    def bridge_id(self) -> str | None:
        return _target(self.target_uri, "bridge")


# --- events ------------------------------------------------------------------------------------------


class _Event(_Model):
    type: str
    timestamp: datetime | None = None
    application: str = ""
    asterisk_id: str | None = None

    def channel_ids(self) -> tuple[str, ...]:
        """The channels this event is about, for routing to per-channel handlers."""
        channel = getattr(self, "channel", None)
        return (channel.id,) if isinstance(channel, Channel) else ()

    def bridge_ids(self) -> tuple[str, ...]:
        """The bridges this event is about, for routing to per-bridge handlers."""
        bridge = getattr(self, "bridge", None)
        return (bridge.id,) if isinstance(bridge, Bridge) else ()


class StasisStart(_Event):
    """A channel entered the application. `args` are Stasis(app,arg1,...) / originate's appArgs."""

    type: Literal["StasisStart"] = "StasisStart"
    args: tuple[str, ...] = ()
    channel: Channel
    replace_channel: Channel | None = None


class StasisEnd(_Event):
    """The channel left the application: for a call from the dialplan, the last event the app sees."""

    type: Literal["StasisEnd"] = "StasisEnd"
    channel: Channel


class ChannelStateChange(_Event):
    type: Literal["ChannelStateChange"] = "ChannelStateChange"
    channel: Channel


class ChannelDtmfReceived(_Event):
    type: Literal["ChannelDtmfReceived"] = "ChannelDtmfReceived"
    digit: str  # one of 0-9 * # A-D
    duration_ms: int = 0
    channel: Channel


class ChannelHangupRequest(_Event):
    type: Literal["ChannelHangupRequest"] = "ChannelHangupRequest"
    cause: int | None = None  # Q.850 cause: 16 normal clearing, 32 after a REST DELETE
    soft: bool = False
    channel: Channel


class ChannelDestroyed(_Event):
    type: Literal["ChannelDestroyed"] = "ChannelDestroyed"
    cause: int = 0
    cause_txt: str = ""
    channel: Channel


class ChannelVarset(_Event):
    """A variable was set; `channel` is None for a global variable."""

    type: Literal["ChannelVarset"] = "ChannelVarset"
    variable: str
    value: str = ""
    channel: Channel | None = None


class ChannelTalkingStarted(_Event):
    """TALK_DETECT(set) on the channel: the caller started speaking."""

    type: Literal["ChannelTalkingStarted"] = "ChannelTalkingStarted"
    channel: Channel


class ChannelTalkingFinished(_Event):
    type: Literal["ChannelTalkingFinished"] = "ChannelTalkingFinished"
    duration: int = 0  # milliseconds of talking
    channel: Channel


class Dial(_Event):
    """Progress of a dial: `dialstatus` "" when it starts, then ANSWER, BUSY, NOANSWER, CANCEL, ..."""

    type: Literal["Dial"] = "Dial"
    peer: Channel
    caller: Channel | None = None  # absent when ARI originated the call
    forwarded: Channel | None = None
    dialstatus: str = ""
    dialstring: str = ""
    forward: str = ""

    def channel_ids(self) -> tuple[str, ...]:
        return tuple(channel.id for channel in (self.peer, self.caller, self.forwarded) if channel)


class _PlaybackEvent(_Event):
    playback: Playback

    def channel_ids(self) -> tuple[str, ...]:
        return (self.playback.channel_id,) if self.playback.channel_id else ()

    def bridge_ids(self) -> tuple[str, ...]:
        return (self.playback.bridge_id,) if self.playback.bridge_id else ()


class PlaybackStarted(_PlaybackEvent):
    type: Literal["PlaybackStarted"] = "PlaybackStarted"


class PlaybackFinished(_PlaybackEvent):
    """`playback.state` is "done", or "failed" when the media could not be played."""

    type: Literal["PlaybackFinished"] = "PlaybackFinished"


class _RecordingEvent(_Event):
    recording: LiveRecording

    def channel_ids(self) -> tuple[str, ...]:
        return (self.recording.channel_id,) if self.recording.channel_id else ()

    def bridge_ids(self) -> tuple[str, ...]:
        return (self.recording.bridge_id,) if self.recording.bridge_id else ()


class RecordingStarted(_RecordingEvent):
    type: Literal["RecordingStarted"] = "RecordingStarted"


class RecordingFinished(_RecordingEvent):
    type: Literal["RecordingFinished"] = "RecordingFinished"


class RecordingFailed(_RecordingEvent):
    """`recording.cause` says why."""

    type: Literal["RecordingFailed"] = "RecordingFailed"


class BridgeCreated(_Event):
    type: Literal["BridgeCreated"] = "BridgeCreated"
    bridge: Bridge


class BridgeDestroyed(_Event):
    type: Literal["BridgeDestroyed"] = "BridgeDestroyed"
    bridge: Bridge


class ChannelEnteredBridge(_Event):
    type: Literal["ChannelEnteredBridge"] = "ChannelEnteredBridge"
    bridge: Bridge  # `bridge.channels` already includes the channel
    channel: Channel | None = None


class ChannelLeftBridge(_Event):
    type: Literal["ChannelLeftBridge"] = "ChannelLeftBridge"
    bridge: Bridge  # `bridge.channels` no longer includes the channel
    channel: Channel


class UnknownEvent(_Event):
    """An event type we do not model; `raw` is the message as Asterisk sent it."""

    raw: dict[str, Any]

    def channel_ids(self) -> tuple[str, ...]:
        ids: list[str] = []
        for key in ("channel", "peer", "caller"):
            value = self.raw.get(key)
            if isinstance(value, dict) and isinstance(value.get("id"), str):
                ids.append(value["id"])
        return tuple(ids)

    def bridge_ids(self) -> tuple[str, ...]:
        value = self.raw.get("bridge")
        return (value["id"],) if isinstance(value, dict) and isinstance(value.get("id"), str) else ()


AriEvent = (
    StasisStart
    | StasisEnd
    | ChannelStateChange
    | ChannelDtmfReceived
    | ChannelHangupRequest
    | ChannelDestroyed
    | ChannelVarset
    | ChannelTalkingStarted
    | ChannelTalkingFinished
    | Dial
    | PlaybackStarted
    | PlaybackFinished
    | RecordingStarted
    | RecordingFinished
    | RecordingFailed
    | BridgeCreated
    | BridgeDestroyed
    | ChannelEnteredBridge
    | ChannelLeftBridge
    | UnknownEvent
)

MODELLED: dict[str, type[_Event]] = {
    model.model_fields["type"].default: model
    for model in (
        StasisStart,
        StasisEnd,
        ChannelStateChange,
        ChannelDtmfReceived,
        ChannelHangupRequest,
        ChannelDestroyed,
        ChannelVarset,
        ChannelTalkingStarted,
        ChannelTalkingFinished,
        Dial,
        PlaybackStarted,
        PlaybackFinished,
        RecordingStarted,
        RecordingFinished,
        RecordingFailed,
        BridgeCreated,
        BridgeDestroyed,
        ChannelEnteredBridge,
        ChannelLeftBridge,
    )
}


def parse_event(data: Mapping[str, Any]) -> AriEvent:
    """One decoded ARI event. Raises `AriProtocolError` only for a message that is not an ARI event
    (no `type`) or a modelled type with the wrong shape; an unmodelled type is an `UnknownEvent`."""
    if not isinstance(data, Mapping):
        raise AriProtocolError(f"an ARI event is a JSON object, not {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise AriProtocolError(f"ARI message without a type: {str(dict(data))[:200]}")
    model = MODELLED.get(kind)
    try:
        if model is None:
            application = data.get("application")
            return UnknownEvent(
                type=kind,
                timestamp=data.get("timestamp"),
                application=application if isinstance(application, str) else "",
                asterisk_id=data.get("asterisk_id"),
                raw=dict(data),
            )
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        raise AriProtocolError(f"malformed {kind} event: {exc}") from None
