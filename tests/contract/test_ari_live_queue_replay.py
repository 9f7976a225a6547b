"""Replay scenario B of the real Asterisk 22 recording (../shared/fixtures/asterisk/ari_events.jsonl: an
agent's leg originated into the application with appArgs `agent,…`, a mixing bridge with a caller, the
caller hung up, then the agent's leg over REST) through a call waiting in Centralita's queue over ARI:
the port must take the agent's StasisStart as the answer (among the events of the Local channel's other
half, its Dial and its DTMF), bridge the two, and end the conversation on the caller's hang-up.

Only the ids change: the recording's agent leg, caller and bridge get the ids the port chose (it names
its agent legs and bridges after the caller's channel)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from routing.acd import SkillNeed
from routing.agent_state import AgentState, Login
from routing.ivr_queues import IvrQueues
from routing.live_queues import AgentProfile, FakeAgentConnector, FakeRoutingEvents, LiveQueues, QueueConfig
from routing.recording_asterisk import FakeBridgeRecorder
from routing.recording_calls import InMemoryRecordingNotes, QueueRecording
from voice.ari.fake import FakeAri
from voice.ari.ivr_port import AriPortOptions, AriVoicePort
from voice.ivr.voice_port import CallerGone, QueueContext, QueueProgress

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "asterisk"
CALLER = "1795537000.5"
AGENT_LEG = f"{CALLER}-agent-1"
BRIDGE = f"{CALLER}-bridge-1"
ARI_RECORDINGS = "/var/spool/asterisk/recording/centralita"  # ARI writes only under .../recording


def scenario_b() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Scenario B's events with our ids: the agent's leg up to its StasisStart (its answer), then the
    rest up to BridgeDestroyed, without the caller's own entry into the application (ours is already in)."""
    path = FIXTURES / "ari_events.jsonl"
    if not path.is_file():
        pytest.fail(f"Asterisk recording {path} is missing: restore ../shared/fixtures/asterisk")
    text = path.read_text()
    for recorded, ours in (("scenB-agent", AGENT_LEG), ("scenB-caller;2", CALLER), ("cc-bridge-1", BRIDGE)):
        text = text.replace(f'"{recorded}', f'"{ours}')  # ids only, "scenB-agent;2" stays the other half
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    first = next(i for i, e in enumerate(events) if AGENT_LEG in json.dumps(e))
    answer = next(i for i, e in enumerate(events) if e["type"] == "StasisStart" and e["args"][0] == "agent")
    last = next(i for i, e in enumerate(events) if e["type"] == "BridgeDestroyed")
    ringing = events[first : answer + 1]
    talking = [
        e
        for e in events[answer + 1 : last + 1]
        if not (
            e.get("channel", {}).get("id") == CALLER and e["type"] in ("StasisStart", "ChannelStateChange")
        )
    ]
    return ringing, talking


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the port never got there")


async def queued_call(
    context: QueueContext, recording: QueueRecording | None = None
) -> tuple[FakeAri, LiveQueues, AriVoicePort, asyncio.Task[None]]:
    """Agent 1 logged in on PJSIP/1001 for queue facturacion, and the caller entering it over ARI."""
    live = LiveQueues(FakeAgentConnector(), FakeRoutingEvents())
    queues = IvrQueues.install(live)
    queues.recording = recording
    live.set_queue(QueueConfig("facturacion", needs=(SkillNeed("facturacion"),)))
    live.set_agent(AgentProfile(1, "agent1", {"facturacion": 3}))
    await live.change(1, Login("PJSIP/1001"), actor="test")
    ari = FakeAri()
    await ari.start_call(CALLER, "ivr", "banco_es")
    port = AriVoicePort(ari, ari.router, CALLER, options=AriPortOptions(), queues=queues, application="ccapp")
    enqueue = port.enqueue(queue="facturacion", priority=0, skills=[], language="es", context=context)
    return ari, live, port, asyncio.create_task(enqueue)


def test_scenario_b_answers_bridges_and_ends_a_call_waiting_in_centralitas_queue() -> None:
    ringing, talking = scenario_b()
    assert [e["type"] for e in ringing][-1] == "StasisStart"
    assert any(e["type"] == "ChannelDtmfReceived" for e in talking)  # the agent's key: not the IVR's
    progress: list[QueueProgress] = []

    async def main() -> tuple[FakeAri, LiveQueues]:
        ari, live, port, task = await queued_call(QueueContext(progress=progress.append))
        await until(lambda: bool(ari.called("originate")))
        for event in ringing:
            await ari.push(event)
        await until(lambda: live.status_of(1).state is AgentState.ON_CALL)
        assert ari.called("add_channel")
        for event in talking:
            if event["type"] == "ChannelHangupRequest" and event["channel"]["id"] == AGENT_LEG:
                await until(lambda: bool(ari.called("hangup")))  # the recording's DELETE: now the port's
            await ari.push(event)
        with pytest.raises(CallerGone, match=r"agent1 answered it \(the caller hung up\)"):
            await asyncio.wait_for(task, timeout=5)
        await port.close()
        assert ari.router.watched_channels == frozenset()
        return ari, live

    ari, live = asyncio.run(main())
    assert ari.methods == [
        "set_variable", "start_moh", "originate", "create_bridge", "stop_moh", "add_channel", "hangup",
        "destroy_bridge",
    ]  # fmt: skip
    assert ari.called("add_channel")[0].args["channel_ids"] == (CALLER, AGENT_LEG)
    assert live.status_of(1).state is AgentState.WRAP_UP
    assert [(p.what, p.agent) for p in progress] == [("left", "agent1"), ("agent_connected", "agent1")]


def test_a_queue_that_always_records_tells_the_caller_then_records_the_bridge_and_notes_it() -> None:
    ringing, talking = scenario_b()
    notes = InMemoryRecordingNotes(queues={"facturacion": "always"})
    bridges = FakeBridgeRecorder()

    async def main() -> FakeAri:
        recording = QueueRecording(notes, asterisk_path=ARI_RECORDINGS, bridges=bridges)
        ari, live, port, task = await queued_call(QueueContext(interaction_id=7), recording)
        await until(lambda: bool(ari.called("play")))
        notice = ari.called("play")[0].args
        assert notice["media"].startswith("sound:centralita/es/")  # the consent notice, in Spanish
        assert not ari.called("originate")  # nobody is rung before the caller is told
        await ari.finish_playback(notice["playback_id"])
        await until(lambda: bool(ari.called("originate")))
        for event in ringing:
            await ari.push(event)
        await until(lambda: live.status_of(1).state is AgentState.ON_CALL)
        for event in talking:
            if event["type"] == "ChannelHangupRequest" and event["channel"]["id"] == AGENT_LEG:
                await until(lambda: bool(ari.called("hangup")))
            await ari.push(event)
        with pytest.raises(CallerGone):
            await asyncio.wait_for(task, timeout=5)
        await recording.drain(timeout=5)
        await port.close()
        return ari

    asyncio.run(main())
    ((bridge, name, file_format),) = bridges.records
    assert bridge == BRIDGE and file_format == "wav"
    assert name.startswith("centralita/") and name.endswith(f"/{CALLER}-1")
    ((start,),) = [notes.notes]
    assert (start.source, start.policy, start.queue, start.call_id) == (
        "ari_bridge",
        "always",
        "facturacion",
        CALLER,
    )
    assert (start.interaction_id, start.number) == (7, 1)
    assert f"{ARI_RECORDINGS}/{start.file}".endswith(f"{name}.wav")
