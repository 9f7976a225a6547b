"""In-band DTMF against speech: no keys from generated speech in several voices, languages and speeds,
and keys pressed while the caller talks are still heard."""

from __future__ import annotations

import array

import pytest

from voice.speech.dtmf_tones import DtmfDetector, dtmf_tone
from voice.speech.generated_audio import ENGLISH_VOICES, SPANISH_VOICES, GeneratedAudio, mix, silence
from voice.speech.recognition import FRAME_BYTES

PHRASES = {
    "en": (
        "Hello, I would like to speak to an agent about my bill, please.",
        "One two three four five six seven eight nine zero, star, hash.",
        "My phone number is six one two, four four nine, eight seven three.",
    ),
    "es": (
        "Quisiera hablar con facturación, por favor, es muy urgente.",
        "Buenos días, llamo por una avería en mi línea de teléfono.",
    ),
}


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> GeneratedAudio:
    return GeneratedAudio(tmp_path_factory.mktemp("dtmf-audio"))


def quieter(pcm: bytes, divisor: int) -> bytes:
    samples = array.array("h")
    samples.frombytes(pcm)
    return array.array("h", [sample // divisor for sample in samples]).tobytes()


def in_frames(detector: DtmfDetector, pcm: bytes) -> list[str]:
    return [
        key
        for start in range(0, len(pcm), FRAME_BYTES)
        for key in detector.feed(pcm[start : start + FRAME_BYTES])
    ]


@pytest.mark.parametrize(
    ("language", "voice"),
    [("en", voice) for voice in ENGLISH_VOICES] + [("es", voice) for voice in SPANISH_VOICES],
)
def test_speech_presses_no_keys(audio: GeneratedAudio, language: str, voice: str) -> None:
    for text in PHRASES[language]:
        for speed in (130, 175):
            assert in_frames(DtmfDetector(), audio.speech(text, voice=voice, speed=speed)) == [], (
                text,
                speed,
            )


def test_a_key_pressed_over_quiet_speech_is_heard(audio: GeneratedAudio) -> None:
    spoken = audio.speech(PHRASES["en"][0], voice="en-gb", speed=150)
    quiet = quieter(spoken, 8)  # about -18 dB: the caller talks on while pressing
    tones = silence(1000) + dtmf_tone("5", 150) + silence(500) + dtmf_tone("#", 150)
    assert in_frames(DtmfDetector(), mix(quiet, tones)) == ["5", "#"]
