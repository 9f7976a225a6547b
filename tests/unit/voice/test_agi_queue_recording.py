"""Recording on the FastAGI queue path: the notice before joining where the queue may record, MixMonitor
before the first Dial only where it always records, and the recording on the call's timeline once an
agent answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from routing.acd import SkillNeed
from routing.agent_state import AgentState, Login
from routing.ivr_queues import IvrQueues
from routing.live_queues import AgentProfile, FakeAgentConnector, FakeRoutingEvents, LiveQueues, QueueConfig
from routing.recording_calls import InMemoryRecordingNotes, QueueRecording
from routing.recording_policy import Policy
from voice.agi.fake_asterisk import Exchange, FakeAsterisk, environment_lines, exchange
from voice.agi.ivr_port import AgiVoicePort
from voice.agi.session import AgiTimeouts
from voice.ivr.recording_consent import consent_text
from voice.ivr.voice_port import CallerGone, QueueContext, QueueProgress
from voice.prompts import prompt_name

FAST = AgiTimeouts(environment=0.5, command=0.3, media=0.3, application=0.3)
GONE = "511 Command Not Permitted on a dead channel or intercept routine"
CALL = "1795537810.0"  # the fake environment's uniqueid
NOW = datetime(2026, 5, 4, 10, 30, tzinfo=UTC)
SETUP = exchange("SET VARIABLE CHANNEL(language) es", "200 result=1")
NOTICE = exchange(f'STREAM FILE {prompt_name("es", consent_text("es"))} ""', "200 result=0 endpos=32000")
MUSIC_ON = exchange("SET MUSIC on", "200 result=0")
MUSIC_OFF = exchange("SET MUSIC off", "200 result=0")
MIXMONITOR = exchange(f"EXEC MixMonitor /rec/2026/05/04/{CALL}-1.wav,b", "200 result=0")
DIAL = [
    exchange(f"EXEC Dial PJSIP/1002,15,mU(centralita-agent-answered^{CALL})", "200 result=0"),
    exchange("GET VARIABLE DIALSTATUS", "200 result=1 (ANSWER)"),
]


class Centre:
    def __init__(self, policy: Policy) -> None:
        self.live = LiveQueues(FakeAgentConnector(), FakeRoutingEvents())
        self.queues = IvrQueues.install(self.live)
        self.live.set_queue(QueueConfig("facturacion", needs=(SkillNeed("facturacion"),)))
        self.notes = InMemoryRecordingNotes(queues={"facturacion": policy})
        self.recording = QueueRecording(self.notes, asterisk_path="/rec/", clock=lambda: NOW)
        self.queues.recording = self.recording
        self.progress: list[QueueProgress] = []

    def run(self, script: list[Exchange], *, staffed: bool = True) -> None:
        async def main() -> None:
            if staffed:
                self.live.set_agent(AgentProfile(2, "agent2", {"facturacion": 4}))
                await self.live.change(2, Login("PJSIP/1002"), actor="test")
            fake = FakeAsterisk(script, environment=environment_lines("banco_es"))
            port = AgiVoicePort(await fake.session(FAST), queues=self.queues, caller="+34600111222")
            try:
                await port.enqueue(
                    queue="facturacion",
                    priority=0,
                    skills=[],
                    language="es",
                    context=QueueContext(interaction_id=70, progress=self.progress.append),
                )
            finally:
                await self.recording.drain(1)
                fake.assert_finished()

        asyncio.run(main())


def test_a_queue_that_always_records_plays_the_notice_then_mixmonitors_before_dialling_the_agent() -> None:
    centre = Centre("always")
    centre.run([SETUP, NOTICE, MUSIC_ON, MUSIC_OFF, MIXMONITOR, *DIAL])

    (note,) = centre.notes.notes
    assert note.file == f"2026/05/04/{CALL}-1.wav" and note.number == 1
    assert note.interaction_id == 70 and note.call_id == CALL
    assert (note.policy, note.requested_by, note.source, note.queue) == (
        "always",
        "policy",
        "mixmonitor",
        "facturacion",
    )
    assert centre.live.status_of(2).state is AgentState.WRAP_UP


def test_an_on_demand_queue_plays_the_notice_but_records_nothing_by_itself() -> None:
    centre = Centre("on_demand")
    centre.run([SETUP, NOTICE, MUSIC_ON, MUSIC_OFF, *DIAL])
    assert centre.notes.notes == []


def test_a_queue_that_never_records_neither_announces_nor_records() -> None:
    centre = Centre("never")
    centre.run([SETUP, MUSIC_ON, MUSIC_OFF, *DIAL])
    assert centre.notes.notes == []


def test_a_notice_that_cannot_be_played_leaves_the_call_unrecorded_but_still_queued() -> None:
    centre = Centre("always")
    missing = [
        exchange(f'STREAM FILE {prompt_name("es", consent_text("es"))} ""', "200 result=-1"),
        exchange("CHANNEL STATUS", "200 result=6"),  # still up: the file is what is missing
    ]
    centre.run([SETUP, *missing, MUSIC_ON, MUSIC_OFF, *DIAL])
    assert centre.notes.notes == []
    assert ("agent_connected", "agent2") in [(p.what, p.agent) for p in centre.progress]


def test_a_mixmonitor_asterisk_refuses_does_not_keep_the_caller_from_the_agent() -> None:
    centre = Centre("always")
    refused = exchange(f"EXEC MixMonitor /rec/2026/05/04/{CALL}-1.wav,b", "200 result=-2")
    centre.run([SETUP, NOTICE, MUSIC_ON, MUSIC_OFF, refused, *DIAL])
    assert centre.notes.notes == []
    assert centre.live.status_of(2).state is AgentState.WRAP_UP


def test_a_caller_who_hangs_up_during_the_notice_abandoned_in_the_queue() -> None:
    centre = Centre("always")
    hung_up = [
        exchange(f'STREAM FILE {prompt_name("es", consent_text("es"))} ""', "200 result=-1"),
        exchange("CHANNEL STATUS", "HANGUP", GONE),
    ]
    with pytest.raises(CallerGone):
        centre.run([SETUP, *hung_up])
    assert [(p.what, p.result) for p in centre.progress] == [("left", "caller hung up")]
    assert centre.queues.lines() == []


def test_a_recording_the_timeline_refuses_is_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    centre = Centre("always")
    centre.notes.failure = RuntimeError("database down")
    centre.run([SETUP, NOTICE, MUSIC_ON, MUSIC_OFF, MIXMONITOR, *DIAL])
    assert "not put on the timeline" in caplog.text
    assert centre.live.status_of(2).state is AgentState.WRAP_UP
