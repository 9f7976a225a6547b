"""A labelled set of generated greetings, and how well answering-machine detection does on it.

People answer with a word or two and wait ("¿Diga?", "Hello?", "Hi, this is Anna."); voicemail plays a
long greeting ("Hola, has llamado a Marta ... deja tu mensaje después de la señal"). Each item is what
the detector would hear after the answer: a short silence while the callee lifts the phone, the words
(espeak-ng, several voices and speeds), then silence — or, for a machine, its beep and silence — with
or without line noise. `measure_amd` runs a fresh detector over each item, 20 ms frame by frame as a
call delivers them, and returns one result per item; `bench/asr.py` and the tests read its accuracy.
A NOTSURE counts as wrong: the dialer can neither drop nor connect with confidence.

Measured (144 items, amd.conf's parameters): with Silero's voice activity 93.8 % (clean 95.8 %, quiet
line 95.8 %, noisy line 89.6 %; no machine ever taken for a person: the misses are three-word answers
such as "Hello, Mark speaking." heard as a long greeting); with Asterisk's energy threshold 75.7 %
(clean 91.7 %, quiet 97.9 %, noisy 37.5 %: line noise above the threshold is one endless word).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from voice.speech.answering_machine import AmdParameters, AmdResult, AnsweringMachineDetector
from voice.speech.generated_audio import ENGLISH_VOICES, SPANISH_VOICES, GeneratedAudio, mix, noise, silence
from voice.speech.recognition import FRAME_BYTES, SAMPLE_RATE
from voice.speech.silero_vad import SileroDetector

Label = Literal["human", "machine"]

HUMAN_ANSWERS = {
    "es": ("¿Diga?", "¿Sí?", "¿Dígame?", "¿Hola?", "Sí, dígame."),
    "en": ("Hello?", "Yes?", "Hi, this is Anna.", "Hello, Mark speaking.", "Hiya."),
}
MACHINE_GREETINGS = {
    "es": (
        "Hola, has llamado a Marta. Ahora no puedo atenderte, deja tu mensaje después de la señal.",
        "El número al que llama no está disponible en este momento. Deje su mensaje después de la señal.",
        "Hola, soy Javier. Estoy fuera, deja tu nombre y tu teléfono y te llamo.",
    ),
    "en": (
        "Hi, you've reached John Smith. I can't take your call right now, "
        "please leave a message after the tone.",
        "Thank you for calling. Nobody is available to take your call. "
        "Please leave your name and number after the beep.",
        "Hello, this is Sarah. Leave a message and I'll call you back.",
    ),
}
NOISE_LEVELS = (0, 300, 1500)  # clean, a quiet line, a noisy one (uniform noise, of 32767)
_SPEEDS = (140, 175)


@dataclass(frozen=True, slots=True)
class LabelledGreeting:
    label: Label
    language: str
    text: str
    voice: str
    speed: int
    noise: int  # noise amplitude, 0: clean
    pcm: bytes


@dataclass(frozen=True, slots=True)
class AmdItemResult:
    greeting: LabelledGreeting
    result: AmdResult

    @property
    def correct(self) -> bool:
        return self.result.verdict == self.greeting.label


@dataclass(frozen=True, slots=True)
class AmdMeasurement:
    items: tuple[AmdItemResult, ...]

    @property
    def accuracy(self) -> float:
        return sum(item.correct for item in self.items) / len(self.items) if self.items else 0.0

    def mistakes(self) -> list[AmdItemResult]:
        return [item for item in self.items if not item.correct]


def build_amd_corpus(
    audio: GeneratedAudio, *, noise_levels: Sequence[int] = NOISE_LEVELS
) -> list[LabelledGreeting]:
    """Every answer and greeting in every voice of its language, at each noise level; speeds alternate."""
    corpus = []
    voices = {"es": SPANISH_VOICES, "en": ENGLISH_VOICES}
    for language, language_voices in voices.items():
        phrases: list[tuple[Label, str]] = [("human", text) for text in HUMAN_ANSWERS[language]]
        phrases += [("machine", text) for text in MACHINE_GREETINGS[language]]
        for index, (label, text) in enumerate(phrases):
            for voice_index, voice in enumerate(language_voices):
                speed = _SPEEDS[(index + voice_index) % len(_SPEEDS)]
                spoken = audio.speech(text, voice=voice, speed=speed)
                clean = _answered_call(label, spoken, lift_ms=300 + 100 * ((index + voice_index) % 4))
                for level in noise_levels:
                    seed = index * 31 + voice_index
                    pcm = clean if level == 0 else mix(clean, noise(_ms(clean), amplitude=level, seed=seed))
                    corpus.append(LabelledGreeting(label, language, text, voice, speed, level, pcm))
    return corpus


def silero_detectors(parameters: AmdParameters | None = None) -> Callable[[], AnsweringMachineDetector]:
    """Detectors that hear voice with Silero, sharing one model (loading it costs ~40 ms; each new
    detector resets it): for measuring one item after another, not for concurrent calls."""
    vad = SileroDetector()
    return lambda: AnsweringMachineDetector(parameters, voice_activity=vad)


def measure_amd(
    corpus: Sequence[LabelledGreeting],
    detector: Callable[[], AnsweringMachineDetector] | None = None,
) -> AmdMeasurement:
    """A new detector per item (`detector()`; default: Silero's voice activity with amd.conf's
    parameters), fed 20 ms frames until it decides or the audio ends."""
    detector = detector or silero_detectors()
    results = []
    for greeting in corpus:
        amd = detector()
        result = None
        for start in range(0, len(greeting.pcm), FRAME_BYTES):
            result = amd.feed(greeting.pcm[start : start + FRAME_BYTES])
            if result is not None:
                break
        results.append(AmdItemResult(greeting, result or amd.hang_up()))
    return AmdMeasurement(tuple(results))


def _answered_call(label: Label, spoken: bytes, *, lift_ms: int) -> bytes:
    """What the line carries after the answer: a person waits for a reply after speaking; a machine
    beeps after its greeting. Long enough (6 s) for any decision within AMD's 5 s."""
    after = silence(3000) if label == "human" else silence(300) + _beep(500) + silence(3000)
    pcm = silence(lift_ms) + spoken + after
    return pcm[: 6 * SAMPLE_RATE * 2] if len(pcm) > 6 * SAMPLE_RATE * 2 else pcm + silence(6000 - _ms(pcm))


def _beep(milliseconds: int, hz: float = 1000.0, amplitude: int = 8000) -> bytes:
    count = SAMPLE_RATE * milliseconds // 1000
    step = 2 * math.pi * hz / SAMPLE_RATE
    return struct.pack(f"<{count}h", *(round(amplitude * math.sin(step * n)) for n in range(count)))


def _ms(pcm: bytes) -> int:
    return len(pcm) * 1000 // (SAMPLE_RATE * 2)
