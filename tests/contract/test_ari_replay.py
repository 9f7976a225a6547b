"""Replay the real Asterisk 22 ARI recordings through the real adapter.

- Events (ari_events.jsonl, the same as the `WS<<` lines of ari_trace.txt): every one through
  `parse_event` and a real `AriRouter`, with the per-app / per-channel / per-bridge handlers an
  application would register; the typed fields must be what Asterisk said.
- REST (the `HTTP>>` / `HTTP<<` pairs of ari_trace.txt): the real `AriClient` over `httpx.MockTransport`
  answering with the recorded status, reason and body. The client must send the recorded method, path,
  query and body, and decode every reply, errors included, to the right type.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice.ari.client import AriClient
from voice.ari.errors import (
    AriBadRequest,
    AriHttpError,
    AriNotFound,
    AriServerError,
    AriUnauthorized,
    AriVariableNotFound,
)
from voice.ari.events import (
    AriEvent,
    Bridge,
    BridgeDestroyed,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    ChannelLeftBridge,
    Dial,
    Playback,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
    UnknownEvent,
    parse_event,
)
from voice.ari.router import AriRouter

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "asterisk"
_LINE = re.compile(r"\[\s*[\d.]+ ms\] (HTTP>>|HTTP<<|WS<<|##) (.*)")
_REQUEST = re.compile(r"(GET|POST|PUT|DELETE) (\S+)(?: body=(.*))?")
_REPLY = re.compile(r"(\d{3}) (.*?) content-type=(\S+) body=(.*)")
BASE = "http://127.0.0.1:8088"


def fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(
            f"Asterisk recording {path} is missing. The contract tests replay the recordings kept in "
            f"../shared/fixtures/asterisk next to the repository; restore that directory."
        )
    return path


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    body: Any  # decoded JSON, or None
    status: int
    reason: str
    content_type: str | None
    reply: str


def load_trace() -> tuple[list[Exchange], list[dict[str, Any]]]:
    exchanges: list[Exchange] = []
    events: list[dict[str, Any]] = []
    request: tuple[str, str, Any] | None = None
    for number, text in enumerate(fixture("ari_trace.txt").read_text().splitlines(), start=1):
        match = _LINE.fullmatch(text)
        assert match, f"ari_trace.txt:{number}: not a trace line: {text!r}"
        kind, payload = match.groups()
        if kind == "WS<<":
            events.append(json.loads(payload))
        elif kind == "HTTP>>":
            found = _REQUEST.fullmatch(payload)
            assert found and request is None, f"ari_trace.txt:{number}: bad request line"
            body = json.loads(found.group(3)) if found.group(3) else None
            request = (found.group(1), found.group(2), body)
        elif kind == "HTTP<<":
            found = _REPLY.fullmatch(payload)
            assert found and request is not None, f"ari_trace.txt:{number}: bad reply line"
            status, reason, content_type, reply = found.groups()
            method, url, body = request
            exchanges.append(
                Exchange(
                    method,
                    url,
                    body,
                    int(status),
                    reason,
                    None if content_type == "None" else content_type,
                    reply,
                )
            )
            request = None
    return exchanges, events


def load_events() -> list[dict[str, Any]]:
    with fixture("ari_events.jsonl").open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


# --- events ------------------------------------------------------------------------------------------


def test_the_jsonl_events_are_the_websocket_events_of_the_trace() -> None:
    _, traced = load_trace()
    assert load_events() == traced
    assert len(traced) == 47


def test_every_recorded_event_parses_and_unmodelled_types_stay_whole() -> None:
    raw = load_events()
    events = [parse_event(item) for item in raw]
    unknown = [event for event in events if isinstance(event, UnknownEvent)]
    assert {event.type for event in unknown} == {"ChannelCallerId", "ChannelConnectedLine", "ChannelDialplan"}
    assert all(
        event.raw == item for event, item in zip(events, raw, strict=True) if isinstance(event, UnknownEvent)
    )
    assert all(event.application == "ccapp" and event.asterisk_id == "02:fc:00:00:00:01" for event in events)
    # Modelled events lose nothing: dumped back, they hold every field Asterisk sent.
    for event, item in zip(events, raw, strict=True):
        if not isinstance(event, UnknownEvent):
            dumped = event.model_dump(mode="json", exclude_none=True)
            assert set(item) <= set(dumped), event.type


@dataclass
class Call:
    """What an application's per-call handler receives."""

    start: StasisStart
    events: list[AriEvent]


def replay_events(router: AriRouter, raw: list[dict[str, Any]]) -> None:
    async def main() -> None:
        for item in raw:
            assert await router.dispatch_raw(item) is not None

    asyncio.run(main())


def application(router: AriRouter) -> tuple[dict[str, Call], list[AriEvent]]:
    """An app that opens a call per StasisStart and follows the bridge it builds."""
    calls: dict[str, Call] = {}
    bridge_events: list[AriEvent] = []

    def on_start(event: AriEvent) -> None:
        assert isinstance(event, StasisStart)
        call = Call(event, [])
        calls[event.channel.id] = call
        router.on_channel(event.channel.id, call.events.append)

    router.subscribe(on_start, application="ccapp", types=[StasisStart])
    router.on_bridge("cc-bridge-1", bridge_events.append)
    return calls, bridge_events


def test_scenario_a_inbound_call_digits_in_order_and_the_missing_sound_fails() -> None:
    router = AriRouter()
    calls, _ = application(router)
    replay_events(router, load_events())

    call = calls["scenA-caller;2"]
    assert call.start.args == ("inbound", "5551234")
    assert (call.start.channel.caller.name, call.start.channel.caller.number) == ("Alice", "5551234")
    assert call.start.channel.state == "Ring" and call.start.channel.dialplan is not None
    assert call.start.channel.dialplan.app_data == "ccapp,inbound,5551234"

    digits = "".join(e.digit for e in call.events if isinstance(e, ChannelDtmfReceived))
    assert digits == "12#"
    finished = {e.playback.id: e.playback for e in call.events if isinstance(e, PlaybackFinished)}
    assert finished["pb-A-1"].state == "done" and not finished["pb-A-1"].failed
    assert finished["pb-A-2"].failed and finished["pb-A-2"].media_uri == "sound:no-such-sound-file"
    assert [e.playback.channel_id for e in call.events if isinstance(e, PlaybackStarted)] == [
        "scenA-caller;2"
    ] * 2

    hangup = next(e for e in call.events if isinstance(e, ChannelHangupRequest))
    assert (hangup.cause, hangup.soft) == (32, True)  # DELETE over REST
    assert isinstance(call.events[-1], StasisEnd)
    # The README's warning, kept true: hung up over REST, a dialplan call gets no ChannelDestroyed.
    assert not any(isinstance(e, ChannelDestroyed) for e in call.events)


def test_scenario_b_the_agent_leg_and_the_bridge_events() -> None:
    router = AriRouter()
    calls, bridge_events = application(router)
    replay_events(router, load_events())

    assert set(calls) == {"scenA-caller;2", "scenB-agent", "scenB-caller;2"}
    agent = calls["scenB-agent"]
    assert agent.start.args == ("agent", "1001") and agent.start.channel.state == "Up"
    kinds = [
        type(e).__name__
        for e in agent.events
        if not isinstance(e, UnknownEvent) and e.type != "ChannelVarset"
    ]
    assert kinds == [
        "StasisStart",  # registered while it was delivered: the call's handler sees it too
        "ChannelEnteredBridge",
        "ChannelDtmfReceived",
        "ChannelHangupRequest",
        "ChannelLeftBridge",
        "StasisEnd",
        "ChannelDestroyed",  # originated with app=: this one does arrive
    ]
    entered = next(e for e in agent.events if isinstance(e, ChannelEnteredBridge))
    assert entered.bridge.channels == ("scenB-agent", "scenB-caller;2")
    assert entered.bridge.bridge_type == "mixing"
    assert [e.digit for e in agent.events if isinstance(e, ChannelDtmfReceived)] == ["5"]
    destroyed = next(e for e in agent.events if isinstance(e, ChannelDestroyed))
    assert (destroyed.cause, destroyed.cause_txt) == (16, "Normal Clearing")

    assert [type(e).__name__ for e in bridge_events] == [
        "ChannelEnteredBridge",
        "ChannelEnteredBridge",
        "ChannelLeftBridge",
        "ChannelLeftBridge",
        "BridgeDestroyed",
    ]
    left = [e for e in bridge_events if isinstance(e, ChannelLeftBridge)]
    assert [(e.channel.id, e.bridge.channels) for e in left] == [
        ("scenB-caller;2", ("scenB-agent",)),
        ("scenB-agent", ()),
    ]
    assert isinstance(bridge_events[-1], BridgeDestroyed)


def test_dial_events_carry_the_peer_and_no_caller_for_an_ari_originate() -> None:
    dials = [e for e in map(parse_event, load_events()) if isinstance(e, Dial)]
    assert [(d.peer.id, d.dialstatus, d.dialstring, d.caller) for d in dials] == [
        ("scenB-agent", "", "s@ari-callee", None),
        ("scenB-agent", "ANSWER", "s@ari-callee", None),
    ]


def test_a_failing_handler_is_logged_and_the_others_still_get_every_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = AriRouter()
    seen: list[str] = []

    def broken(event: AriEvent) -> None:
        raise RuntimeError("boom")

    async def careful(event: AriEvent) -> None:
        seen.append(event.type)

    router.subscribe(broken)
    router.subscribe(careful)
    raw = load_events()
    replay_events(router, raw)
    assert seen == [item["type"] for item in raw]
    assert router.failures == len(raw)
    assert "ARI handler" in caplog.text and "boom" in caplog.text


# --- REST --------------------------------------------------------------------------------------------


@dataclass
class Replay:
    requests: list[httpx.Request]
    outcomes: list[object]


Step = tuple[Callable[[AriClient], Awaitable[object]], object]


@dataclass(frozen=True)
class Raises:
    error: type[AriHttpError]
    status: int
    message: str

    def matches(self, outcome: object) -> bool:
        return (
            type(outcome) is self.error
            and isinstance(outcome, AriHttpError)
            and (outcome.status, outcome.message) == (self.status, self.message)
        )


def channel_ids(channels: object) -> list[str]:
    assert isinstance(channels, list)
    return [c.id for c in channels if isinstance(c, Channel)]


STEPS: list[Step] = [
    (lambda a: a.asterisk_info(["build", "system"]), lambda r: r["system"]["version"] == "22.10.1"),
    (lambda a: a.get_application("ccapp"), lambda r: r["name"] == "ccapp"),
    (lambda a: a.list_channels(), Raises(AriUnauthorized, 401, "Authentication required")),
    (
        lambda a: a.originate(
            "Local/s@stasis-test",
            context="ari-dtmf-sender",
            extension="s",
            priority=1,
            caller_id="Alice <5551234>",
            timeout=30,
            channel_id="scenA-caller",
            variables={"APP_CALLID": "A-1"},
        ),
        lambda r: (
            isinstance(r, Channel) and (r.id, r.state, r.caller.number) == ("scenA-caller", "Down", "5551234")
        ),
    ),
    (lambda a: a.get_channel("scenA-caller;2"), lambda r: isinstance(r, Channel) and r.state == "Ring"),
    (lambda a: a.get_variable("scenA-caller;2", "CALLERID(num)"), "5551234"),
    (
        lambda a: a.get_variable("scenA-caller;2", "NOPE_UNSET"),
        Raises(AriVariableNotFound, 404, "Provided variable was not found"),
    ),
    (lambda a: a.ring("scenA-caller;2"), None),
    (lambda a: a.answer("scenA-caller;2"), None),
    (lambda a: a.set_variable("scenA-caller;2", "CCAPP_STATE", "ivr"), None),
    (
        lambda a: a.play("scenA-caller;2", "sound:hello-world", playback_id="pb-A-1"),
        lambda r: (
            isinstance(r, Playback)
            and (r.id, r.state, r.channel_id) == ("pb-A-1", "queued", "scenA-caller;2")
        ),
    ),
    (lambda a: a.send_dtmf("scenA-caller;2", "5", duration=100), None),
    (
        # Accepted (201) although Asterisk has no such sound: the failure comes as PlaybackFinished.
        lambda a: a.play("scenA-caller;2", "sound:no-such-sound-file", playback_id="pb-A-2"),
        lambda r: isinstance(r, Playback) and r.state == "queued",
    ),
    (lambda a: a.list_channels(), lambda r: channel_ids(r) == ["scenA-caller;2", "scenA-caller"]),
    (lambda a: a.hangup("scenA-caller;2", reason="normal"), None),
    (lambda a: a.answer("scenA-caller;2"), Raises(AriNotFound, 404, "Channel not found")),
    (lambda a: a.get_channel("does-not-exist"), Raises(AriNotFound, 404, "Channel not found")),
    (
        # What the recording sent on purpose, through the generic call: no endpoint at all.
        lambda a: a.request("POST", "/channels", params={"app": "ccapp"}),
        Raises(AriBadRequest, 400, "Endpoint must be specified"),
    ),
    (lambda a: a.originate("Bogus/xyz", app="ccapp"), Raises(AriServerError, 500, "Allocation failed")),
    (
        lambda a: a.originate(
            "Local/s@ari-callee",
            app="ccapp",
            app_args=["agent", "1001"],
            caller_id="CC <7000>",
            timeout=30,
            channel_id="scenB-agent",
        ),
        lambda r: isinstance(r, Channel) and r.id == "scenB-agent",
    ),
    (
        lambda a: a.originate(
            "Local/s@stasis-test",
            context="caller",
            extension="s",
            priority=1,
            caller_id="Bob <5559876>",
            timeout=30,
            channel_id="scenB-caller",
        ),
        lambda r: isinstance(r, Channel) and r.caller.name == "Bob",
    ),
    (lambda a: a.answer("scenB-caller;2"), None),
    (
        lambda a: a.create_bridge("mixing", bridge_id="cc-bridge-1", name="cc-bridge-1"),
        lambda r: (
            isinstance(r, Bridge) and (r.id, r.bridge_type, r.channels) == ("cc-bridge-1", "mixing", ())
        ),
    ),
    (lambda a: a.add_channel("cc-bridge-1", ["scenB-caller;2", "scenB-agent"]), None),
    (
        lambda a: a.get_bridge("cc-bridge-1"),
        lambda r: isinstance(r, Bridge) and r.channels == ("scenB-agent", "scenB-caller;2"),
    ),
    (lambda a: a.hangup("scenB-caller;2"), None),
    (lambda a: a.hangup("scenB-agent"), None),
    (lambda a: a.destroy_bridge("cc-bridge-1"), None),
    (lambda a: a.list_channels(), []),
]


def replay_rest(exchanges: list[Exchange], steps: list[Step]) -> Replay:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        index = len(requests)
        requests.append(request)
        if index >= len(exchanges):
            return httpx.Response(599, json={"message": "the recording has no more replies"})
        recorded = exchanges[index]
        headers = {"content-type": recorded.content_type} if recorded.content_type else {}
        return httpx.Response(
            recorded.status,
            headers=headers,
            content=recorded.reply.encode(),
            extensions={"reason_phrase": recorded.reason.encode()},
        )

    async def main() -> list[object]:
        outcomes: list[object] = []
        async with AriClient(BASE, "centralita", "secret", transport=httpx.MockTransport(answer)) as ari:
            for step, _ in steps:
                try:
                    outcomes.append(await step(ari))
                except Exception as exc:  # compared below, so the test shows every difference at once
                    outcomes.append(exc)
        return outcomes

    return Replay(requests, asyncio.run(main()))


def test_every_rest_call_sends_the_recorded_request_and_decodes_the_recorded_reply() -> None:
    exchanges, _ = load_trace()
    assert len(exchanges) == len(STEPS) == 29
    result = replay_rest(exchanges, STEPS)

    sent = [(r.method, str(r.url), json.loads(r.content) if r.content else None) for r in result.requests]
    assert sent == [(e.method, e.url, e.body) for e in exchanges]
    assert {r.headers["authorization"] for r in result.requests} == {"Basic Y2VudHJhbGl0YTpzZWNyZXQ="}

    wrong = []
    for index, (outcome, (_, expected)) in enumerate(zip(result.outcomes, STEPS, strict=True)):
        if isinstance(expected, Raises):
            ok = expected.matches(outcome)
        elif callable(expected):
            ok = not isinstance(outcome, Exception) and bool(expected(outcome))
        else:
            ok = outcome == expected
        if not ok:
            wrong.append((index, exchanges[index].method, exchanges[index].url, outcome))
    assert not wrong, f"replies decoded wrongly (index, method, url, got): {wrong}"


def test_a_client_that_strays_from_the_recording_is_caught() -> None:
    """The comparison is a real check: one different parameter and the requests differ."""
    exchanges, _ = load_trace()
    steps = list(STEPS)
    steps[10] = (lambda a: a.play("scenA-caller;2", "sound:hello-world"), None)  # no playbackId
    result = replay_rest(exchanges, steps)
    assert str(result.requests[10].url) != exchanges[10].url
