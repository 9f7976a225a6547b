"""Silero voice activity on generated speech, silence and noise: speech is found where it is, noise is
not speech, the stream may arrive in pieces of any length, and it keeps up with many calls per core."""

from __future__ import annotations

import array
import time
from pathlib import Path

import pytest

from voice.speech.generated_audio import GeneratedAudio, mix, noise, silence
from voice.speech.recognition import FRAME_BYTES
from voice.speech.silero_vad import SileroDetector
from voice.speech.utterance import SpeechStarted, UtteranceDetector, UtteranceEnded


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> GeneratedAudio:
    return GeneratedAudio(tmp_path_factory.mktemp("silero-audio"))


@pytest.fixture(scope="module")
def spoken(audio: GeneratedAudio) -> bytes:
    return audio.speech("I would like to speak to an agent about my bill, please.", voice="en-us", speed=150)


def ms(pcm: bytes) -> int:
    return len(pcm) // 16


def last_loud_ms(pcm: bytes, level: int = 500) -> int:
    """Where the words end: espeak-ng pads its audio with silence."""
    samples = array.array("h")
    samples.frombytes(pcm)
    last = max(index for index, sample in enumerate(samples) if abs(sample) >= level)
    return last // 8


def in_frames(detector: SileroDetector, pcm: bytes, piece: int = FRAME_BYTES) -> list[float]:
    return [p for start in range(0, len(pcm), piece) for p in detector.feed(pcm[start : start + piece])]


def voiced_share(probabilities: list[float]) -> float:
    return sum(p >= 0.5 for p in probabilities) / len(probabilities)


def test_windows_are_the_models_32_ms() -> None:
    detector = SileroDetector()
    assert detector.window_ms == 32
    assert detector.feed(bytes(511)) == []
    assert len(detector.feed(bytes(1))) == 1


def test_speech_is_found_where_it_is(spoken: bytes) -> None:
    pcm = silence(1000) + spoken + silence(1000)
    probabilities = in_frames(SileroDetector(), pcm)
    windows = 1000 // 32
    assert voiced_share(probabilities[:windows]) == 0
    assert voiced_share(probabilities[windows : windows + ms(spoken) // 32]) > 0.6
    assert voiced_share(probabilities[-windows + 8 :]) == 0  # the tail, after the model's hangover


@pytest.mark.parametrize(("amplitude", "seed"), [(300, 1), (1500, 2), (3000, 3)])
def test_noise_is_not_speech(amplitude: int, seed: int) -> None:
    probabilities = in_frames(SileroDetector(), noise(4000, amplitude=amplitude, seed=seed))
    assert voiced_share(probabilities) < 0.05


def test_speech_through_noise_is_still_speech(spoken: bytes) -> None:
    pcm = mix(silence(500) + spoken, noise(500 + ms(spoken), amplitude=1500, seed=4))
    probabilities = in_frames(SileroDetector(), pcm)
    assert voiced_share(probabilities[500 // 32 :]) > 0.5


@pytest.mark.parametrize("piece", [1, 77, 320, 4096])
def test_pieces_of_any_length_give_the_same_probabilities(spoken: bytes, piece: int) -> None:
    whole = SileroDetector().feed(spoken)
    assert in_frames(SileroDetector(), spoken, piece) == pytest.approx(whole, abs=1e-6)


def test_state_carries_across_calls_and_reset_starts_afresh(spoken: bytes) -> None:
    detector = SileroDetector()
    first = in_frames(detector, spoken)
    detector.feed(bytes(100))  # a leftover that reset must drop too
    detector.reset()
    assert in_frames(detector, spoken) == pytest.approx(first, abs=1e-6)
    # Without a reset the recurrent state differs: the model remembers the end of the first pass.
    assert in_frames(detector, spoken) != pytest.approx(first, abs=1e-6)


def test_end_of_utterance_on_real_probabilities(spoken: bytes) -> None:
    detector = SileroDetector()
    turn = UtteranceDetector()
    events = turn.steps(in_frames(detector, silence(700) + spoken + silence(1500)), detector.window_ms)
    assert [type(event) for event in events] == [SpeechStarted, UtteranceEnded]
    ended = events[1]
    assert isinstance(ended, UtteranceEnded)
    assert abs(ended.start_ms - 700) <= 150
    assert abs(ended.end_ms - (700 + last_loud_ms(spoken))) <= 250


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Silero VAD model"):
        SileroDetector(model_path=tmp_path / "missing.onnx")


def test_one_core_keeps_up_with_many_calls(spoken: bytes) -> None:
    detector = SileroDetector()
    pcm = spoken * 3
    started = time.process_time()
    in_frames(detector, pcm)
    cpu_per_audio_second = (time.process_time() - started) / (ms(pcm) / 1000)
    assert cpu_per_audio_second < 0.05  # measured ~0.003: 20 calls per core with a wide margin
