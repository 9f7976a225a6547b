"""ARI event parsing: every modelled type, what is kept, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from voice.ari.errors import AriProtocolError
from voice.ari.events import (
    MODELLED,
    BridgeCreated,
    BridgeDestroyed,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    ChannelStateChange,
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    ChannelVarset,
    Dial,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)

CHANNEL = {
    "id": "1795537883.10",
    "name": "PJSIP/100-00000001",
    "state": "Up",
    "caller": {"name": "Alice", "number": "5551234"},
    "connected": {"name": "", "number": ""},
    "dialplan": {
        "context": "default",
        "exten": "100",
        "priority": 1,
        "app_name": "Stasis",
        "app_data": "ccapp",
    },
    "creationtime": "2026-11-24T16:30:47.644+0000",
    "language": "en",
}
BRIDGE = {"id": "b-1", "technology": "simple_bridge", "bridge_type": "mixing", "channels": ["1795537883.10"]}
PLAYBACK = {
    "id": "pb-1",
    "media_uri": "sound:hello-world",
    "target_uri": "channel:1795537883.10",
    "state": "done",
}
RECORDING = {
    "name": "msg-1",
    "format": "wav",
    "state": "done",
    "target_uri": "channel:1795537883.10",
    "duration": 7,
}


def event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "timestamp": "2026-11-24T16:30:47.645+0000", "application": "ccapp", **fields}


CASES: list[tuple[dict[str, Any], type, Any]] = [
    (event("StasisStart", args=["inbound", "5551234"], channel=CHANNEL), StasisStart, ("inbound", "5551234")),
    (event("StasisEnd", channel=CHANNEL), StasisEnd, "Up"),
    (event("ChannelStateChange", channel=CHANNEL), ChannelStateChange, "Up"),
    (event("ChannelDtmfReceived", digit="#", duration_ms=100, channel=CHANNEL), ChannelDtmfReceived, "#"),
    (event("ChannelHangupRequest", cause=16, channel=CHANNEL), ChannelHangupRequest, (16, False)),
    (
        event("ChannelDestroyed", cause=17, cause_txt="User busy", channel=CHANNEL),
        ChannelDestroyed,
        "User busy",
    ),
    (event("ChannelVarset", variable="FOO", value="bar"), ChannelVarset, None),  # a global: no channel
    (event("ChannelTalkingStarted", channel=CHANNEL), ChannelTalkingStarted, "Up"),
    (event("ChannelTalkingFinished", duration=2300, channel=CHANNEL), ChannelTalkingFinished, 2300),
    (event("Dial", peer=CHANNEL, caller=CHANNEL, dialstatus="BUSY"), Dial, "BUSY"),
    (event("PlaybackStarted", playback=PLAYBACK), PlaybackStarted, "1795537883.10"),
    (event("PlaybackFinished", playback=PLAYBACK), PlaybackFinished, "1795537883.10"),
    (event("RecordingStarted", recording=RECORDING), RecordingStarted, "msg-1"),
    (event("RecordingFinished", recording=RECORDING), RecordingFinished, 7),
    (event("RecordingFailed", recording={**RECORDING, "cause": "disk full"}), RecordingFailed, "disk full"),
    (event("BridgeCreated", bridge=BRIDGE), BridgeCreated, "mixing"),
    (event("BridgeDestroyed", bridge=BRIDGE), BridgeDestroyed, "mixing"),
    (event("ChannelEnteredBridge", bridge=BRIDGE, channel=CHANNEL), ChannelEnteredBridge, ("1795537883.10",)),
    (event("ChannelLeftBridge", bridge={**BRIDGE, "channels": []}, channel=CHANNEL), ChannelLeftBridge, ()),
]


def key_field(parsed: Any) -> Any:
    match parsed:
        case StasisStart():
            return parsed.args
        case ChannelDtmfReceived():
            return parsed.digit
        case ChannelHangupRequest():
            return (parsed.cause, parsed.soft)
        case ChannelDestroyed():
            return parsed.cause_txt
        case ChannelVarset():
            return parsed.channel
        case ChannelTalkingFinished():
            return parsed.duration
        case Dial():
            return parsed.dialstatus
        case PlaybackStarted() | PlaybackFinished():
            return parsed.playback.channel_id
        case RecordingStarted():
            return parsed.recording.name
        case RecordingFinished():
            return parsed.recording.duration
        case RecordingFailed():
            return parsed.recording.cause
        case BridgeCreated() | BridgeDestroyed():
            return parsed.bridge.bridge_type
        case ChannelEnteredBridge() | ChannelLeftBridge():
            return parsed.bridge.channels
        case _:
            return parsed.channel.state


@pytest.mark.parametrize(("raw", "model", "expected"), CASES, ids=[case[0]["type"] for case in CASES])
def test_each_modelled_type_parses_to_its_model(raw: dict[str, Any], model: type, expected: Any) -> None:
    parsed = parse_event(raw)
    assert type(parsed) is model
    assert key_field(parsed) == expected
    assert parsed.application == "ccapp" and parsed.timestamp is not None
    assert parsed.timestamp.utcoffset() is not None and parsed.timestamp.utcoffset().total_seconds() == 0


def test_the_table_covers_every_modelled_type() -> None:
    assert {case[0]["type"] for case in CASES} == set(MODELLED)


def test_playback_finished_is_not_a_playback_started() -> None:
    finished = parse_event(event("PlaybackFinished", playback=PLAYBACK))
    assert not isinstance(finished, PlaybackStarted)


def test_fields_asterisk_adds_are_kept() -> None:
    raw = event(
        "ChannelDtmfReceived",
        digit="5",
        duration_ms=80,
        channel={**CHANNEL, "tenantid": "t-1", "caller_rdnis": "", "channelvars": {"X": "1"}},
        new_top_level="kept",
    )
    parsed = parse_event(raw)
    assert parsed.model_extra == {"new_top_level": "kept"}
    assert isinstance(parsed, ChannelDtmfReceived)
    assert parsed.channel.model_extra == {"tenantid": "t-1", "caller_rdnis": ""}
    assert parsed.channel.channelvars == {"X": "1"}
    assert parsed.model_dump(mode="json")["channel"]["tenantid"] == "t-1"


def test_an_unmodelled_type_comes_back_whole_with_its_channel() -> None:
    raw = event("ChannelHold", musicclass="default", channel=CHANNEL, asterisk_id="02:fc")
    parsed = parse_event(raw)
    assert isinstance(parsed, UnknownEvent)
    assert (parsed.type, parsed.raw, parsed.asterisk_id) == ("ChannelHold", raw, "02:fc")
    assert parsed.channel_ids() == ("1795537883.10",)
    assert parsed.bridge_ids() == ()


def test_routing_keys_of_playbacks_and_recordings_on_bridges() -> None:
    on_bridge = parse_event(event("PlaybackStarted", playback={**PLAYBACK, "target_uri": "bridge:b-1"}))
    assert (on_bridge.channel_ids(), on_bridge.bridge_ids()) == ((), ("b-1",))
    recording = parse_event(event("RecordingFinished", recording=RECORDING))
    assert (recording.channel_ids(), recording.bridge_ids()) == (("1795537883.10",), ())
    dial = parse_event(event("Dial", peer=CHANNEL, caller={**CHANNEL, "id": "caller-1"}))
    assert dial.channel_ids() == ("1795537883.10", "caller-1")


@pytest.mark.parametrize(
    "raw",
    [
        {"no": "type"},
        {"type": ""},
        {"type": 42},
        event("ChannelDtmfReceived", channel=CHANNEL),  # no digit
        event("StasisStart", channel={"name": "no id"}),
        event("ChannelDestroyed", cause="sixteen", channel=CHANNEL),
        event("PlaybackFinished", playback=PLAYBACK, timestamp="yesterday"),
    ],
)
def test_what_is_not_an_ari_event_is_refused_with_a_protocol_error(raw: dict[str, Any]) -> None:
    with pytest.raises(AriProtocolError):
        parse_event(raw)


def test_a_list_is_not_an_event() -> None:
    with pytest.raises(AriProtocolError):
        parse_event([1, 2])  # type: ignore[arg-type]
