"""Voicemail transcripts in the IVR runner: a transcriber that can hear the call's language gets the
recording after the caller left it, and its transcript becomes a step of the call, in order while the call
goes on, after the close when it comes later; one that cannot, or fails, changes nothing for the call."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.timeline.schemas import Outcome
from voice.call_journal import InMemoryCallJournal
from voice.ivr.call_runner import CallRunner, VoicemailTranscript
from voice.ivr.loader import load_flows
from voice.ivr.voice_port import CallInfo, FakeVoicePort

SUPPORT = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")["support_en"]
SUNDAY = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)  # out of hours: the caller is offered voicemail
CALL = CallInfo(call_id="1795537883.10", ref_kind="asterisk_linkedid", caller=None, called="900100200")


@dataclass
class FakeTranscriber:
    languages: frozenset[str] = frozenset({"en"})
    failure: Exception | None = None
    gate: asyncio.Event | None = None  # the transcript waits for it
    asked: list[tuple[str, str, str]] = field(default_factory=list)

    def transcribes(self, recording: str, language: str) -> bool:
        return language in self.languages

    async def transcribe(self, recording: str, language: str, *, call_id: str) -> VoicemailTranscript:
        self.asked.append((recording, language, call_id))
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return VoicemailTranscript("my router is down", 0.82, "vosk-en", audio_ms=4200, latency_ms=310)


def leave_voicemail(transcriber: FakeTranscriber, *, after_the_call: bool = False) -> InMemoryCallJournal:
    journal = InMemoryCallJournal()

    async def main() -> Outcome:
        gate = asyncio.Event() if after_the_call else None
        transcriber.gate = gate
        runner = CallRunner(journal, clock=lambda: SUNDAY, transcriber=transcriber)
        report = await runner.run(SUPPORT, FakeVoicePort(moves=["1"]), CALL)
        if gate is not None:
            assert journal.only().outcome is not None  # closed before the transcript
            gate.set()
        await runner.drain(timeout=5)
        return report.outcome

    assert asyncio.run(main()) is Outcome.CONTAINED
    return journal


@pytest.mark.parametrize("after_the_call", [False, True])
def test_the_transcript_is_a_step_of_the_call(after_the_call: bool) -> None:
    transcriber = FakeTranscriber()
    journal = leave_voicemail(transcriber, after_the_call=after_the_call)
    assert transcriber.asked == [("recordings/support-1", "en", CALL.call_id)]
    steps = journal.only().steps
    (transcript,) = [step for step in steps if step.input == "transcript"]
    assert (transcript.kind.value, transcript.node, transcript.text) == (
        "recording",
        "voicemail",
        "my router is down",
    )
    assert transcript.confidence == 0.82
    assert transcript.attributes == {
        "recording": "recordings/support-1",
        "transcript": "my router is down",
        "engine": "vosk-en",
        "confidence": 0.82,
        "audio_ms": 4200,
        "latency_ms": 310,
    }
    if after_the_call:
        assert steps[-1] is transcript


def test_a_language_the_transcriber_cannot_hear_is_not_transcribed() -> None:
    transcriber = FakeTranscriber(languages=frozenset({"es"}))
    journal = leave_voicemail(transcriber)
    assert transcriber.asked == [] and not any(step.input == "transcript" for step in journal.only().steps)


def test_a_failed_transcription_is_logged_and_the_call_is_untouched(caplog: pytest.LogCaptureFixture) -> None:
    transcriber = FakeTranscriber(failure=RuntimeError("the model fell over"))
    with caplog.at_level(logging.ERROR):
        journal = leave_voicemail(transcriber)
    assert not any(step.input == "transcript" for step in journal.only().steps)
    assert "recording" in journal.only().kinds() and journal.only().outcome is Outcome.CONTAINED
    assert "voicemail recordings/support-1: no transcript" in caplog.text and "model fell over" in caplog.text
