"""Replay the real Asterisk 22 ARI events (../shared/fixtures/asterisk/ari_events.jsonl) through the IVR
over ARI: the voice port must read scenario A exactly as it happened (a prompt played to the end, the
keys 1 2 # collected, a missing sound reported as not done, the hang-up after our DELETE), and the
Stasis application must take the two inbound calls and leave the agent leg of scenario B alone.

Only the playback ids are changed: the port chooses its own (`playbackId=`), where the recording used
pb-A-1 and pb-A-2; the n-th recorded playback is given the id of the port's n-th playback."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voice.ari.fake import FakeAri
from voice.ari.ivr_port import AriVoicePort
from voice.ari.stasis_app import StasisIvr
from voice.ivr.loader import load_flows
from voice.ivr.schema import Flow
from voice.ivr.voice_port import ActionNotDone, CallerGone, CallInfo, VoicePort
from voice.prompts import PromptAudio

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "asterisk"
FLOWS = load_flows(Path(__file__).resolve().parents[2] / "ivr_flows")
CALLER_A = "scenA-caller;2"


def recorded_events() -> list[dict[str, Any]]:
    path = FIXTURES / "ari_events.jsonl"
    if not path.is_file():
        pytest.fail(
            f"Asterisk recording {path} is missing. The contract tests replay the recordings kept in "
            f"../shared/fixtures/asterisk next to the repository; restore that directory."
        )
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


def scenario_a() -> list[dict[str, Any]]:
    """The events of the inbound call of scenario A, up to its StasisEnd."""
    events = []
    for event in recorded_events():
        events.append(event)
        if event["type"] == "StasisEnd" and event["channel"]["id"] == CALLER_A:
            return events
    raise AssertionError("ari_events.jsonl: scenario A has no StasisEnd")


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the port never got there")


async def replay(ari: FakeAri, events: list[dict[str, Any]]) -> None:
    """Each recorded event once what caused it has happened: a playback's events after the port's
    playback of the same rank, the hang-up of a DELETE (cause 32) after the port's hang-up."""
    ranks: dict[str, int] = {}
    for recorded in events:
        event = copy.deepcopy(recorded)
        playback = event.get("playback")
        if playback is not None:
            rank = ranks.setdefault(playback["id"], len(ranks) + 1)
            await until(lambda rank=rank: len(ari.called("play")) >= rank)  # type: ignore[misc]
            playback["id"] = ari.called("play")[rank - 1].args["playback_id"]
        if event["type"] == "ChannelHangupRequest" and event.get("cause") == 32:
            await until(lambda: bool(ari.called("hangup")))
        await ari.push(event)


def test_scenario_a_reads_through_the_voice_port_as_it_happened() -> None:
    events = scenario_a()
    assert [e["type"] for e in events if e["type"].startswith(("Playback", "ChannelDtmf"))] == [
        "PlaybackStarted", "PlaybackFinished",
        "ChannelDtmfReceived", "ChannelDtmfReceived", "ChannelDtmfReceived",
        "PlaybackStarted", "PlaybackFinished",
    ]  # fmt: skip

    async def the_ivr(port: AriVoicePort) -> list[object]:
        seen: list[object] = []
        await port.answer()
        seen.append(await port.play(PromptAudio("hello-world", "Hello world.", "en")))
        seen.append(await port.collect_digits(max_digits=5, timeout_ms=10_000, terminator="#"))
        try:
            await port.play(PromptAudio("no-such-sound-file", None, "en"))
        except ActionNotDone as exc:
            seen.append(str(exc))
        await port.hangup()
        return seen

    async def main() -> tuple[FakeAri, list[object]]:
        ari = FakeAri()
        port = AriVoicePort(ari, ari.router, CALLER_A)
        ivr = asyncio.create_task(the_ivr(port))
        await replay(ari, events)
        seen = await asyncio.wait_for(ivr, timeout=5)
        assert port.gone
        with pytest.raises(CallerGone):
            await port.answer()
        await port.close()
        assert ari.router.watched_channels == frozenset()
        return ari, seen

    ari, seen = asyncio.run(main())
    assert seen == [
        None,
        "12",
        "prompt no-such-sound-file: Asterisk could not play it (missing sound file?)",
    ]
    assert ari.methods == ["answer", "play", "play", "hangup"]  # as in ari_trace.txt, minus the test's own
    assert [call.args["media"] for call in ari.called("play")] == [
        "sound:hello-world",
        "sound:no-such-sound-file",
    ]


def test_the_application_takes_the_inbound_calls_and_leaves_the_agent_leg_alone() -> None:
    """Scenarios A and B: `Stasis(ccapp,inbound,<number>)` twice, and an agent leg originated with
    appArgs `agent,1001`. Each call waits for keys until the recording hangs it up."""
    runs: list[tuple[CallInfo, str | Exception]] = []

    class WaitForKeys:
        async def run(self, flow: Flow, port: VoicePort, call: CallInfo) -> None:
            try:
                runs.append(
                    (call, await port.collect_digits(max_digits=5, timeout_ms=10_000, terminator="#"))
                )
            except CallerGone as exc:
                runs.append((call, exc))

    async def main() -> FakeAri:
        ari = FakeAri()
        flows = {"inbound": FLOWS["banco_es"]}
        async with StasisIvr(ari, ari.router, WaitForKeys(), flows.get, application="ccapp") as ivr:
            for event in recorded_events():
                await ari.push(event)
                await asyncio.sleep(0)
            await until(lambda: ivr.active_calls == 0)
        assert ari.router.watched_channels == frozenset()
        return ari

    ari = asyncio.run(main())
    assert [(call.channel, call.caller, call.call_id, call.ref_kind, call.flow) for call, _ in runs] == [
        ("Local/s@stasis-test-00000002;2", "5551234", "scenA-caller;2", "asterisk_uniqueid", "inbound"),
        ("Local/s@stasis-test-00000004;2", "5559876", "scenB-caller;2", "asterisk_uniqueid", "inbound"),
    ]
    assert runs[0][1] == "12"  # the keys of scenario A
    assert isinstance(runs[1][1], CallerGone)  # B's caller pressed nothing; the agent's 5 is not theirs
    touched = {call.args.get("channel_id") for call in ari.calls}
    assert touched == {"scenA-caller;2", "scenB-caller;2"}  # nothing was sent about the agent leg
