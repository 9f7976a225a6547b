"""Speech turns over AGI without AudioSocket: the exact command lines the port sends (STREAM FILE with every
key, RECORD FILE into the shared recordings directory), Asterisk's replies read the right way, and where
voicemail goes when Centralita reads the recordings."""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from voice.agi.fake_asterisk import Exchange, FakeAsterisk, environment_lines, exchange
from voice.agi.ivr_port import DEFAULT_RECORDINGS, AgiVoicePort, voicemail_recordings
from voice.agi.session import AgiTimeouts
from voice.ivr.voice_port import ActionNotDone, CallerGone, Heard, Question
from voice.prompts import PromptAudio
from voice.speech.generated_audio import silence
from voice.speech.listener import SpeechListener
from voice.speech.recognition import FakeRecognizer
from voice.speech.recognition_pool import InProcessRecognition
from voice.speech.recorded_turn import RecordedTurnRules, RecordedTurns, RecordingsMount
from voice.speech.voice_activity import EnergyDetector

FAST = AgiTimeouts(environment=0.5, command=0.3, media=0.3, application=0.3)
GONE = "511 Command Not Permitted on a dead channel or intercept routine"
MENU = PromptAudio("centralita/en/menu", "Say billing, or technical support.", "en")
QUESTION = Question((MENU,), {"1": ["technical support"], "2": ["billing"]}, "en", 1, None, 4000)
PLAY = exchange('STREAM FILE centralita/en/menu "0123456789*#"', "200 result=0 endpos=24000")
RECORD = 'RECORD FILE /rec/speech/1795537810.0-1 sln "0123456789*#" 14000 s=3'
T = TypeVar("T")


class NoSounds:
    async def pcm(self, prompt: PromptAudio) -> bytes:
        raise AssertionError("a recorded turn plays prompts through Asterisk")


def spoken() -> bytes:
    count = 8000 * 700 // 1000
    tone = struct.pack(
        f"<{count}h", *(round(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(count))
    )
    return silence(300) + tone + silence(1000)


def listener(tmp_path: Path, *, recorded: bool = True) -> tuple[SpeechListener, FakeRecognizer]:
    recognizer = FakeRecognizer(script=[("billing", 0.8)])
    recognition = InProcessRecognition(recognizer)
    turns = RecordedTurns(
        recognition,
        RecordingsMount(tmp_path, "/rec"),
        EnergyDetector,
        RecordedTurnRules(file_wait_seconds=0.05),
    )
    return SpeechListener(
        links=None,
        address="",
        sounds=NoSounds(),
        recognition=recognition,
        languages=frozenset({"en"}),
        new_vad=EnergyDetector,
        recorded=turns if recorded else None,
    ), recognizer


def with_port(
    script: list[Exchange], listening: SpeechListener, body: Callable[[AgiVoicePort], Awaitable[T]]
) -> T:
    async def main() -> T:
        fake = FakeAsterisk(script, environment=environment_lines("support_en"))
        port = AgiVoicePort(await fake.session(FAST), listener=listening)
        result = await body(port)
        fake.assert_finished()
        return result

    return asyncio.run(main())


def test_without_audiosocket_the_answer_is_recorded_into_the_shared_directory_and_recognised(
    tmp_path: Path,
) -> None:
    listening, recognizer = listener(tmp_path)
    (tmp_path / "speech").mkdir()
    recording = tmp_path / "speech" / "1795537810.0-1.sln"
    recording.write_bytes(spoken())  # what Asterisk writes while it records
    script = [PLAY, exchange(RECORD, "200 result=0 (timeout) endpos=16000")]
    heard = with_port(script, listening, lambda port: port.ask(QUESTION))
    assert (heard.spoke, heard.text, heard.engine) == (True, "billing", "fake")
    assert recognizer.audio_bytes == [len(spoken())] and not recording.exists()


def test_a_key_that_ends_the_recording_answers_the_question(tmp_path: Path) -> None:
    listening, recognizer = listener(tmp_path)
    script = [PLAY, exchange(RECORD, "200 result=50 (dtmf) endpos=0")]
    assert with_port(script, listening, lambda port: port.ask(QUESTION)) == Heard(digits="2")
    assert recognizer.grammars == []


def test_a_hang_up_while_recording_is_the_caller_gone_and_a_write_failure_is_not_done(tmp_path: Path) -> None:
    listening, _ = listener(tmp_path)
    hung_up = [PLAY, exchange(RECORD, "200 result=-1 (hangup) endpos=0")]
    with pytest.raises(CallerGone, match="recorded"):
        with_port(hung_up, listening, lambda port: port.ask(QUESTION))
    cannot_write = [
        PLAY,
        exchange(RECORD, "200 result=-1 (writefile)"),
        exchange("CHANNEL STATUS", "200 result=6"),
    ]
    with pytest.raises(ActionNotDone, match="could not do it"):
        with_port(cannot_write, listening, lambda port: port.ask(QUESTION))
    gone = [PLAY, exchange(RECORD, "200 result=-1 (writefile)"), exchange("CHANNEL STATUS", "HANGUP", GONE)]
    with pytest.raises(CallerGone):
        with_port(gone, listening, lambda port: port.ask(QUESTION))


def test_no_audiosocket_and_no_shared_directory_is_keys_only(tmp_path: Path) -> None:
    listening, _ = listener(tmp_path, recorded=False)
    assert not with_port([], listening, lambda port: _hears(port))
    with pytest.raises(ActionNotDone, match="keys only"):
        with_port([], listening, lambda port: port.ask(QUESTION))


async def _hears(port: AgiVoicePort) -> bool:
    return port.hears_speech("en")


def test_voicemail_goes_to_the_shared_directory_when_centralita_reads_it(tmp_path: Path) -> None:
    assert voicemail_recordings(None) == DEFAULT_RECORDINGS
    mount = RecordingsMount(tmp_path, "/var/spool/asterisk/centralita")
    assert voicemail_recordings(mount) == "/var/spool/asterisk/centralita/voicemail"
    assert (tmp_path / "voicemail").is_dir()  # RECORD FILE does not make directories
    script = [
        exchange(
            "RECORD FILE /var/spool/asterisk/centralita/voicemail/support-1795537810.0"
            ' wav "#" 60000 BEEP s=4',
            "200 result=0 (timeout) endpos=96000",
        )
    ]

    async def record(port: AgiVoicePort) -> str:
        return await port.record(mailbox="support", max_seconds=60, beep=True)

    async def main() -> str:
        fake = FakeAsterisk(script, environment=environment_lines("support_en"))
        port = AgiVoicePort(await fake.session(FAST), recordings=voicemail_recordings(mount))
        name = await record(port)
        fake.assert_finished()
        return name

    assert asyncio.run(main()) == "/var/spool/asterisk/centralita/voicemail/support-1795537810.0"
