"""Speech turns recorded by Asterisk (the AGI-only fallback), on a fake line that writes the recording as
Asterisk would, into a directory of the test: speech, keys during the prompt or the recording, silence,
a recording that never appears; the pure parts (the command, the mount, voicemail pieces) on their own."""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import struct
import wave
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from voice.ivr.voice_port import ActionNotDone, Heard, Question
from voice.prompts import PromptAudio
from voice.speech.generated_audio import silence
from voice.speech.recognition import FakeRecognizer
from voice.speech.recognition_pool import InProcessRecognition
from voice.speech.recorded_turn import (
    KEYS,
    RecordedTurnRules,
    RecordedTurns,
    RecordingsMount,
    RecordingUnusable,
    TakeCommand,
    take_command,
)
from voice.speech.voice_activity import EnergyDetector
from voice.speech.voicemail_transcripts import pieces, wav_pcm

ASTERISK_PATH = "/var/spool/asterisk/centralita"
WELCOME = PromptAudio("centralita/en/welcome", "Welcome.", "en")
MENU = PromptAudio("centralita/en/menu", "Say billing, or technical support.", "en")
QUESTION = Question(
    prompts=(WELCOME, MENU),
    phrases={"1": ["technical support"], "2": ["billing"]},
    language="en",
    max_digits=1,
    terminator=None,
    timeout_ms=4000,
)


def tone(milliseconds: int, *, hz: float = 440.0, amplitude: int = 8000) -> bytes:
    count = 8000 * milliseconds // 1000
    return struct.pack(
        f"<{count}h", *(round(amplitude * math.sin(2 * math.pi * hz * i / 8000)) for i in range(count))
    )


SPOKEN = silence(300) + tone(700) + silence(1000)  # "speech", then the second Asterisk leaves


@dataclass
class FakeLine:
    """The voice port's side of a turn: prompts answer with `prompt_keys` (prompt file -> key); a
    recording writes `recorded` where the mount puts Asterisk's file (None: writes nothing) and ends with
    `record_key`; GET DATA answers with `more_keys`."""

    mount: RecordingsMount
    recorded: bytes | None = None
    record_key: str | None = None
    prompt_keys: dict[str, str] = field(default_factory=dict)
    more_keys: str = ""
    commands: list[tuple[object, ...]] = field(default_factory=list)
    seen_files: list[Path] = field(default_factory=list)

    async def play(self, prompt: PromptAudio, *, escape_digits: str) -> str | None:
        self.commands.append(("play", prompt.file, escape_digits))
        return self.prompt_keys.get(prompt.file)

    async def record(self, take: TakeCommand) -> str | None:
        self.commands.append(("record", take))
        path = self.mount.local_path(take.name, take.file_format)
        assert path is not None
        if self.recorded is not None:
            path.write_bytes(self.recorded)
            self.seen_files.append(path)
        return self.record_key

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        self.commands.append(("collect_digits", max_digits, timeout_ms, terminator))
        return self.more_keys[:max_digits]


def turns(
    tmp_path: Path, script: list[tuple[str, float]] | None = None
) -> tuple[RecordedTurns, FakeRecognizer]:
    recognizer = FakeRecognizer(script=list(script or []))
    mount = RecordingsMount(tmp_path, ASTERISK_PATH)
    rules = RecordedTurnRules(file_wait_seconds=0.05)
    return RecordedTurns(InProcessRecognition(recognizer), mount, EnergyDetector, rules), recognizer


def ask(turns: RecordedTurns, line: FakeLine, question: Question = QUESTION) -> Heard:
    return asyncio.run(turns.ask(line, question, call_id="1795537810.0", turn=2))


def test_speech_in_the_recording_is_recognised_with_the_questions_grammar_and_the_file_deleted(
    tmp_path: Path,
) -> None:
    recorded, recognizer = turns(tmp_path, [("billing", 0.87)])
    line = FakeLine(recorded.mount, recorded=SPOKEN)
    heard = ask(recorded, line)
    assert (heard.spoke, heard.text, heard.confidence, heard.engine) == (True, "billing", 0.87, "fake")
    assert heard.digits == "" and heard.latency_ms is not None and 0 <= heard.latency_ms < 1000
    assert line.commands[:2] == [("play", WELCOME.file, KEYS), ("play", MENU.file, KEYS)]
    (_, take) = line.commands[2]
    assert take == TakeCommand(
        name=f"{ASTERISK_PATH}/speech/1795537810.0-2",
        file_format="sln",
        escape_digits="0123456789*#",
        max_ms=14_000,
        silence_seconds=3,
    )
    assert recognizer.grammars[0].phrases == QUESTION.phrases and recognizer.audio_bytes == [len(SPOKEN)]
    (written,) = line.seen_files
    assert written == tmp_path / "speech" / "1795537810.0-2.sln" and not written.exists()


def test_a_key_during_the_prompt_answers_and_nothing_is_recorded(tmp_path: Path) -> None:
    recorded, recognizer = turns(tmp_path)
    line = FakeLine(recorded.mount, prompt_keys={WELCOME.file: "2"})
    assert ask(recorded, line) == Heard(digits="2")
    assert [command[0] for command in line.commands] == ["play"]  # the menu prompt is not played either
    account = Question((MENU,), {}, "en", max_digits=4, terminator="#", timeout_ms=5000)
    line = FakeLine(recorded.mount, prompt_keys={MENU.file: "1"}, more_keys="234")
    assert ask(recorded, line, account) == Heard(digits="1234")
    assert line.commands[-1] == ("collect_digits", 3, 3000, "#")
    assert recognizer.grammars == []


def test_a_key_during_the_recording_answers_with_keys_and_the_recording_is_dropped(tmp_path: Path) -> None:
    recorded, recognizer = turns(tmp_path, [("billing", 0.9)])
    line = FakeLine(recorded.mount, recorded=silence(200), record_key="1")
    assert ask(recorded, line) == Heard(digits="1")
    assert recognizer.grammars == [] and not line.seen_files[0].exists()
    line = FakeLine(recorded.mount, recorded=silence(200), record_key="#")
    terminated = Question((MENU,), {"1": ["billing"]}, "en", max_digits=4, terminator="#", timeout_ms=4000)
    assert ask(recorded, line, terminated) == Heard(digits="")  # the terminator alone: nothing keyed


def test_a_silent_recording_is_no_input(tmp_path: Path) -> None:
    recorded, recognizer = turns(tmp_path, [("billing", 0.9)])
    line = FakeLine(recorded.mount, recorded=silence(1000))
    assert ask(recorded, line) == Heard()
    assert recognizer.grammars == [] and not line.seen_files[0].exists()


def test_a_recording_that_never_appears_or_is_empty_is_not_done_and_says_where_it_looked(
    tmp_path: Path,
) -> None:
    recorded, _ = turns(tmp_path)
    with pytest.raises(RecordingUnusable, match=r"speech/1795537810\.0-2\.sln is not there") as missing:
        ask(recorded, FakeLine(recorded.mount, recorded=None))
    assert isinstance(missing.value, ActionNotDone)  # the runner asks again with keys
    with pytest.raises(RecordingUnusable, match="is empty"):
        ask(recorded, FakeLine(recorded.mount, recorded=b""))
    assert list((tmp_path / "speech").iterdir()) == []


def test_the_silence_asterisk_waits_for_is_never_longer_than_the_questions_no_input_time() -> None:
    rules = RecordedTurnRules()
    quick = Question((), {}, "en", 1, None, timeout_ms=1500)
    take = take_command(quick, rules, directory="/rec/speech/", call_id="a b/c;1", turn=7)
    assert (take.name, take.silence_seconds, take.max_ms) == ("/rec/speech/a_b_c_1-7", 2, 11_500)
    slow = Question((), {}, "en", 1, None, timeout_ms=10_000)
    assert take_command(slow, rules, directory="/rec", call_id="x", turn=1).silence_seconds == 3
    with pytest.raises(ValueError, match="whole seconds"):
        RecordedTurnRules(silence_seconds=0)


def test_the_mount_maps_asterisks_names_to_local_files_and_refuses_the_rest(tmp_path: Path) -> None:
    mount = RecordingsMount(tmp_path, "/var/spool/asterisk/centralita/")
    assert mount.asterisk_name("speech", "a-1") == "/var/spool/asterisk/centralita/speech/a-1"
    assert mount.local_path("/var/spool/asterisk/centralita/voicemail/sales-1.2", "wav") == (
        tmp_path / "voicemail" / "sales-1.2.wav"
    )
    assert mount.local_path("centralita/recordings/sales-1", "wav") is None  # Asterisk's sounds directory
    assert mount.local_path("/var/spool/asterisk/centralita/../../etc/passwd", "wav") is None
    assert mount.local_path("/var/spool/asterisk/centralitaX/a", "wav") is None
    mount.prepare("speech")
    assert (tmp_path / "speech").is_dir()


def test_voicemail_is_cut_into_pieces_at_its_quietest_moments() -> None:
    assert pieces(silence(3000)) == [(0, 48_000)]
    # 20 s of "speech" with a pause from 12.0 to 12.4 s: the 15 s limit cuts inside the pause.
    audio = tone(12_000) + silence(400) + tone(7_600)
    (first, second) = pieces(audio, max_piece_ms=15_000, search_ms=5_000)
    assert first[0] == 0 and 12_000 * 16 <= first[1] <= 12_400 * 16 and second == (first[1], len(audio))
    # No pause at all: still cut, never longer than the limit.
    cuts = pieces(tone(31_000), max_piece_ms=10_000, search_ms=2_000)
    assert len(cuts) == 4 and all(end - start <= 10_000 * 16 for start, end in cuts)
    assert cuts[-1][1] == 31_000 * 16 and all(a[1] == b[0] for a, b in itertools.pairwise(cuts))


def test_a_voicemail_file_must_be_asterisks_8_khz_mono_wav() -> None:
    def wav(rate: int, channels: int = 1) -> bytes:
        out = io.BytesIO()
        with wave.open(out, "wb") as writer:
            writer.setnchannels(channels)
            writer.setsampwidth(2)
            writer.setframerate(rate)
            writer.writeframes(silence(100) * channels)
        return out.getvalue()

    assert wav_pcm(wav(8000), name="v.wav") == silence(100)
    with pytest.raises(RecordingUnusable, match="16000 Hz"):
        wav_pcm(wav(16000), name="v.wav")
    with pytest.raises(RecordingUnusable, match="not a WAV file"):
        wav_pcm(b"RIFF nonsense", name="v.wav")
