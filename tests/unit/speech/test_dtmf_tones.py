"""In-band DTMF: every key from generated tones, once per press, in pieces of any length, through noise
and twist; short blips, off-frequency tones and single sines press nothing."""

from __future__ import annotations

import math
import struct

import pytest

from voice.speech.dtmf_tones import KEYS, DtmfDetector, DtmfRules, dtmf_tone
from voice.speech.generated_audio import mix, noise, silence
from voice.speech.recognition import FRAME_BYTES, SAMPLE_RATE

ALL_KEYS = "".join(KEYS)


def dialled(keys: str, *, tone_ms: int = 80, gap_ms: int = 60, amplitude: int = 8000) -> bytes:
    return b"".join(silence(gap_ms) + dtmf_tone(key, tone_ms, amplitude=amplitude) for key in keys) + silence(
        gap_ms
    )


def in_frames(detector: DtmfDetector, pcm: bytes, frame_bytes: int = FRAME_BYTES) -> str:
    return "".join(
        key
        for start in range(0, len(pcm), frame_bytes)
        for key in detector.feed(pcm[start : start + frame_bytes])
    )


def sine(hz: float, milliseconds: int, amplitude: int = 8000) -> bytes:
    count = SAMPLE_RATE * milliseconds // 1000
    step = 2 * math.pi * hz / SAMPLE_RATE
    return struct.pack(f"<{count}h", *(round(amplitude * math.sin(step * n)) for n in range(count)))


@pytest.mark.parametrize("key", list(ALL_KEYS))
def test_each_key_is_heard_once(key: str) -> None:
    assert in_frames(DtmfDetector(), dialled(key, tone_ms=200)) == key


def test_all_sixteen_keys_in_a_row_in_20_ms_frames() -> None:
    assert in_frames(DtmfDetector(), dialled(ALL_KEYS)) == ALL_KEYS


@pytest.mark.parametrize("frame_bytes", [1, 7, 101, 320, 4096])
def test_pieces_of_any_length_give_the_same_keys(frame_bytes: int) -> None:
    assert in_frames(DtmfDetector(), dialled("159#*0D"), frame_bytes) == "159#*0D"


def test_the_same_key_pressed_twice_counts_twice() -> None:
    assert in_frames(DtmfDetector(), dialled("5555")) == "5555"


def test_minimum_duration_tones_at_minimum_gaps_are_all_heard() -> None:
    assert in_frames(DtmfDetector(), dialled(ALL_KEYS, tone_ms=40, gap_ms=40)) == ALL_KEYS


def test_blips_shorter_than_a_press_are_ignored() -> None:
    assert in_frames(DtmfDetector(), dialled(ALL_KEYS, tone_ms=20)) == ""


def test_a_long_press_is_one_key() -> None:
    assert in_frames(DtmfDetector(), dialled("8", tone_ms=3000)) == "8"


def test_a_dropped_block_inside_a_tone_does_not_press_twice() -> None:
    dropout = bytes(2 * 60)  # 60 samples (7.5 ms) of silence inside the tone: one block spoilt
    pcm = silence(60) + dtmf_tone("3", 120) + dropout + dtmf_tone("3", 120) + silence(60)
    assert in_frames(DtmfDetector(), pcm) == "3"


@pytest.mark.parametrize(("amplitude", "noise_amplitude"), [(8000, 3000), (3000, 1500), (2000, 600)])
def test_keys_are_heard_through_line_noise(amplitude: int, noise_amplitude: int) -> None:
    keys = dialled(ALL_KEYS, amplitude=amplitude)
    pcm = mix(keys, noise(len(keys) * 1000 // (SAMPLE_RATE * 2), amplitude=noise_amplitude, seed=7))
    assert in_frames(DtmfDetector(), pcm) == ALL_KEYS


@pytest.mark.parametrize("amplitude", [1000, 3000])
def test_noise_alone_presses_nothing(amplitude: int) -> None:
    assert in_frames(DtmfDetector(), noise(5000, amplitude=amplitude, seed=3)) == ""


@pytest.mark.parametrize(("twist_db", "heard"), [(-7.0, True), (3.5, True), (-10.0, False), (6.0, False)])
def test_twist_limits(twist_db: float, heard: bool) -> None:
    pcm = silence(60) + dtmf_tone("6", 100, amplitude=6000, twist_db=twist_db) + silence(60)
    assert in_frames(DtmfDetector(), pcm) == ("6" if heard else "")


def test_a_single_sine_presses_nothing() -> None:
    pcm = sine(697, 500) + sine(1209, 500) + sine(1000, 500)
    assert in_frames(DtmfDetector(), pcm) == ""


def test_tones_off_the_dtmf_frequencies_press_nothing() -> None:
    # Halfway between rows and columns: 733 Hz and 1272 Hz.
    pcm = mix(sine(733, 500, 6000), sine(1272, 500, 6000))
    assert in_frames(DtmfDetector(), pcm) == ""


def test_tones_below_the_minimum_level_press_nothing() -> None:
    assert in_frames(DtmfDetector(), dialled("1", amplitude=300)) == ""  # about -43 dBFS each
    assert in_frames(DtmfDetector(), dialled("1", amplitude=1500)) == "1"


def test_reset_forgets_a_half_heard_tone() -> None:
    detector = DtmfDetector()
    tone = dtmf_tone("9", 200)
    assert detector.feed(tone[:150]) == []
    detector.reset()
    assert detector.feed(silence(100)) == []
    assert in_frames(detector, dialled("9")) == "9"


def test_longer_minimum_duration_ignores_shorter_tones() -> None:
    detector = DtmfDetector(DtmfRules(min_tone_ms=100))
    assert in_frames(detector, dialled("12", tone_ms=60)) == ""
    assert in_frames(detector, dialled("12", tone_ms=140)) == "12"


@pytest.mark.parametrize("key", ["E", "11", "", "x"])
def test_the_tone_generator_refuses_non_keys(key: str) -> None:
    with pytest.raises(ValueError, match="DTMF key"):
        dtmf_tone(key, 100)


def test_the_tone_generator_refuses_to_clip() -> None:
    with pytest.raises(ValueError, match="clip"):
        dtmf_tone("1", 100, amplitude=20000)


def test_lower_case_letters_are_keys() -> None:
    assert dtmf_tone("a", 40) == dtmf_tone("A", 40)
