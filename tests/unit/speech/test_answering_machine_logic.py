"""Answering-machine detection: app_amd's decisions on scripted frames (voice or silence, 20 ms each),
the energy front on synthetic audio, the voice-activity front with a scripted detector, and the
dialer's vocabulary."""

from __future__ import annotations

import math
import struct

import pytest

from dialer.call_network import AmdVerdict
from voice.speech.answering_machine import AmdParameters, AmdStatus, AnsweringMachineDetector
from voice.speech.generated_audio import noise, silence
from voice.speech.recognition import SAMPLE_RATE

Script = list[tuple[bool, int]]  # (voiced, milliseconds) segments


def words(count: int, *, word_ms: int = 200, gap_ms: int = 100) -> Script:
    return [segment for _ in range(count) for segment in ((True, word_ms), (False, gap_ms))]


def decide(script: Script, parameters: AmdParameters | None = None) -> tuple[AmdStatus, str, int] | None:
    detector = AnsweringMachineDetector(parameters)
    for voiced, milliseconds in script:
        for _ in range(milliseconds // 20):
            result = detector.step(voiced, 20)
            if result is not None:
                return result.status, result.cause, result.decided_at_ms
    return None


@pytest.mark.parametrize(
    ("name", "script", "parameters", "expected"),
    [
        (
            "a short answer, then waiting",
            [(False, 500), (True, 400), (False, 1000)],
            None,
            (AmdStatus.HUMAN, "HUMAN-800-800", 1700),
        ),
        ("nobody speaks", [(False, 3000)], None, (AmdStatus.MACHINE, "INITIALSILENCE-2500-2500", 2500)),
        (
            "one long stretch of voice",
            [(False, 300), (True, 2000)],
            None,
            (AmdStatus.MACHINE, "LONGGREETING-1500-1500", 1800),
        ),
        ("three words", [(False, 300), *words(4)], None, (AmdStatus.MACHINE, "MAXWORDS-3-3", 1000)),
        (
            "two words are a person",
            [(False, 300), *words(2), (False, 1000)],
            None,
            (AmdStatus.HUMAN, "HUMAN-800-800", 300 + 600 + 700),
        ),
        (
            "gaps shorter than between_words_silence do not split words",
            [(False, 300), *words(5, gap_ms=40), (False, 1000)],
            None,
            (AmdStatus.HUMAN, "HUMAN-800-800", 300 + 5 * 240 + 760),
        ),
        (
            "the maximum number of words is a parameter",
            [(False, 300), *words(2), (False, 1000)],
            AmdParameters(maximum_number_of_words=2),
            (AmdStatus.MACHINE, "MAXWORDS-2-2", 300 + 300 + 100),
        ),
        (
            "one word longer than the maximum",
            [(False, 300), (True, 1500)],
            AmdParameters(maximum_word_length=1000, greeting=5000),
            (AmdStatus.MACHINE, "MAXWORDLENGTH-1000", 1300),
        ),
        (
            "blips shorter than a word never start the greeting",
            [segment for _ in range(20) for segment in ((True, 60), (False, 600))],
            None,
            (AmdStatus.NOTSURE, "TOOLONG-5000", 5000),
        ),
        (
            # app_amd starts "in a word": without silence first, the first word is not counted.
            "speech from the first frame counts one word less",
            [*words(3), (False, 1000)],
            None,
            (AmdStatus.HUMAN, "HUMAN-800-800", 900 + 700),
        ),
        (
            "a shorter initial silence",
            [(False, 1500)],
            AmdParameters(initial_silence=1000),
            (AmdStatus.MACHINE, "INITIALSILENCE-1000-1000", 1000),
        ),
    ],
)
def test_decisions(
    name: str, script: Script, parameters: AmdParameters | None, expected: tuple[AmdStatus, str, int]
) -> None:
    assert decide(script, parameters) == expected, name


def test_the_verdict_is_the_dialers_vocabulary() -> None:
    expected = {
        AmdStatus.HUMAN: AmdVerdict.HUMAN,
        AmdStatus.MACHINE: AmdVerdict.MACHINE,
        AmdStatus.NOTSURE: AmdVerdict.UNSURE,
        AmdStatus.HANGUP: AmdVerdict.UNSURE,
    }
    scripts = {
        AmdStatus.HUMAN: [(False, 500), (True, 400), (False, 1000)],
        AmdStatus.MACHINE: [(False, 3000)],
        AmdStatus.NOTSURE: [(False, 100), (True, 60), (False, 2000), (True, 60), (False, 2000), (True, 60)]
        * 2,
    }
    for status, script in scripts.items():
        detector = AnsweringMachineDetector()
        results = [detector.step(voiced, 20) for voiced, ms in script for _ in range(ms // 20)]
        result = next(found for found in results if found is not None)
        assert result.status is status
        assert AmdVerdict(result.verdict) is expected[status]
    assert AmdVerdict(AnsweringMachineDetector().hang_up().verdict) is expected[AmdStatus.HANGUP]


def test_the_result_is_reported_once_and_kept() -> None:
    detector = AnsweringMachineDetector()
    found = [detector.step(False, 20) for _ in range(200)]
    decided = [result for result in found if result is not None]
    assert len(decided) == 1
    assert detector.result == decided[0]
    assert detector.feed(silence(1000)) is None
    assert detector.hang_up() == decided[0]


def test_hanging_up_before_a_decision() -> None:
    detector = AnsweringMachineDetector()
    assert detector.feed(silence(1000)) is None
    result = detector.hang_up()
    assert (result.status, result.cause, result.decided_at_ms) == (AmdStatus.HANGUP, "", 1000)


def voice_like(milliseconds: int, amplitude: int = 4000) -> bytes:
    """A loud 300 Hz buzz: voice to an energy detector."""
    count = SAMPLE_RATE * milliseconds // 1000
    step = 2 * math.pi * 300 / SAMPLE_RATE
    return struct.pack(f"<{count}h", *(round(amplitude * math.sin(step * n)) for n in range(count)))


@pytest.mark.parametrize("piece_bytes", [320, 1, 333, 8000])
def test_energy_front_hears_a_short_answer_as_a_person(piece_bytes: int) -> None:
    pcm = silence(500) + voice_like(400) + silence(1000)
    detector = AnsweringMachineDetector()
    results = [detector.feed(pcm[start : start + piece_bytes]) for start in range(0, len(pcm), piece_bytes)]
    decided = [result for result in results if result is not None]
    assert [(result.status, result.cause) for result in decided] == [(AmdStatus.HUMAN, "HUMAN-800-800")]


def test_energy_front_hears_a_long_greeting_as_a_machine() -> None:
    result = AnsweringMachineDetector().feed(silence(400) + voice_like(2500))
    assert result is not None
    assert (result.status, result.cause) == (AmdStatus.MACHINE, "LONGGREETING-1500-1500")


def test_energy_front_takes_a_quiet_line_for_silence() -> None:
    result = AnsweringMachineDetector().feed(noise(3000, amplitude=300, seed=1))  # mean |sample| ~150 < 256
    assert result is not None
    assert result.cause == "INITIALSILENCE-2500-2500"


def test_energy_front_takes_a_loud_line_for_one_long_word() -> None:
    # Why a noisy line wants a voice-activity detector instead of the energy threshold.
    result = AnsweringMachineDetector().feed(noise(3000, amplitude=1500, seed=1))
    assert result is not None
    assert result.status is AmdStatus.MACHINE
    assert result.cause.startswith("LONGGREETING")


class ScriptedVoiceActivity:
    """A voice-activity detector that answers each 32 ms window with the next scripted probability."""

    window_ms = 32

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = probabilities
        self.resets = 0
        self._pending = b""
        self._next = 0

    def feed(self, pcm: bytes) -> list[float]:
        audio = self._pending + pcm
        count = len(audio) // 512
        self._pending = audio[count * 512 :]
        found = self.probabilities[self._next : self._next + count]
        self._next += count
        return found

    def reset(self) -> None:
        self.resets += 1
        self._pending = b""
        self._next = 0


def test_voice_activity_front_decides_on_probabilities_not_loudness() -> None:
    # 10 windows of silence, 50 of speech (1600 ms): the greeting passes 1500 ms on its 47th window.
    vad = ScriptedVoiceActivity([0.1] * 10 + [0.9] * 50)
    detector = AnsweringMachineDetector(voice_activity=vad)
    assert vad.resets == 1
    result = detector.feed(noise(60 * 32, amplitude=3000, seed=2))
    assert result is not None
    assert (result.status, result.cause, result.decided_at_ms) == (
        AmdStatus.MACHINE,
        "LONGGREETING-1504-1500",
        (10 + 47) * 32,
    )


def test_voice_activity_front_uses_the_threshold() -> None:
    vad = ScriptedVoiceActivity([0.1] * 10 + [0.6] * 50 + [0.1] * 30)
    result = AnsweringMachineDetector(voice_activity=vad, speech_threshold=0.7).feed(silence(90 * 32))
    assert result is not None
    assert result.cause.startswith("INITIALSILENCE")


@pytest.mark.parametrize(
    "field", ["initial_silence", "greeting", "maximum_number_of_words", "silence_threshold"]
)
def test_parameters_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AmdParameters(**{field: 0})


def test_frames_must_have_a_length() -> None:
    with pytest.raises(ValueError, match="frame_ms"):
        AnsweringMachineDetector().step(True, 0)
