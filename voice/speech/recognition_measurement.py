"""How well and how fast a Recognizer does on generated speech: what `bench/asr.py` and the speech tests
measure. Pure of any engine: give it a recognizer, a grammar and labelled audio.

- accuracy: the share of utterances whose final text is the phrase said (a no-match counts as wrong);
- false accepts: the share of out-of-grammar utterances (other words, silence, noise) given any text;
- real-time factor: decoding CPU time over audio time, the audio fed in 20 ms frames as a call does;
  one core sustains about 1 / rtf streams in real time;
- latency: from the last audio frame to the final result, `finish()` alone (the audio before it was
  decoded as it came, as on a live call).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from voice.speech.generated_audio import ENGLISH_VOICES, SPEEDS, GeneratedAudio, noise, silence
from voice.speech.recognition import FRAME_BYTES, SAMPLE_RATE, Grammar, Recognition, Recognizer

# An English main menu and a yes/no question: the phrases callers of the shipped flows say.
ENGLISH_MENU: Mapping[str, Sequence[str]] = {
    "1": ["technical support", "technical"],
    "2": ["billing", "payments"],
    "3": ["track an order", "order"],
    "4": ["sales"],
    "0": ["speak to an agent", "agent", "operator"],
    "yes": ["yes"],
    "no": ["no"],
}
# Said to the menu above, none of them in it.
ENGLISH_OUT_OF_GRAMMAR = (
    "what is the weather like today",
    "I would like a pizza",
    "thank you goodbye",
    "my name is john",
    "tomorrow morning",
    "restaurant",
)
LEAD_MS = 300  # silence around each utterance, as the end-of-utterance detector leaves it


@dataclass(frozen=True, slots=True)
class Utterance:
    pcm: bytes
    expected: str  # the phrase said, "" for audio that must give a no-match
    description: str  # e.g. "en-gb 130 wpm: billing"


@dataclass(frozen=True, slots=True)
class Outcome:
    utterance: Utterance
    result: Recognition
    decode_seconds: float  # CPU time feeding the audio and finishing
    finish_seconds: float  # finish() alone

    @property
    def correct(self) -> bool:
        return self.result.text == self.utterance.expected


@dataclass(frozen=True, slots=True)
class Measurement:
    outcomes: tuple[Outcome, ...]

    @property
    def in_grammar(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.utterance.expected]

    @property
    def accuracy(self) -> float:
        said = self.in_grammar
        return sum(outcome.correct for outcome in said) / len(said) if said else 0.0

    @property
    def false_accept_rate(self) -> float:
        other = [outcome for outcome in self.outcomes if not outcome.utterance.expected]
        return sum(bool(outcome.result.text) for outcome in other) / len(other) if other else 0.0

    @property
    def real_time_factor(self) -> float:
        audio = sum(len(outcome.utterance.pcm) for outcome in self.outcomes) / 2 / SAMPLE_RATE
        return sum(outcome.decode_seconds for outcome in self.outcomes) / audio if audio else 0.0

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(outcome.finish_seconds for outcome in self.outcomes)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]

    @property
    def misses(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not outcome.correct]


def english_corpus(
    audio: GeneratedAudio,
    *,
    voices: Sequence[str] = ENGLISH_VOICES,
    speeds: Sequence[int] = SPEEDS,
    menu: Mapping[str, Sequence[str]] = ENGLISH_MENU,
    out_of_grammar: Sequence[str] = ENGLISH_OUT_OF_GRAMMAR,
) -> list[Utterance]:
    """Every phrase of `menu` in every voice and speed, the out-of-grammar sentences in every voice, and
    a silence and three noises; each utterance framed by `LEAD_MS` of silence."""
    pad = silence(LEAD_MS)
    corpus = [
        Utterance(
            pad + audio.speech(phrase, voice=voice, speed=speed) + pad, phrase, f"{voice} {speed}: {phrase}"
        )
        for voice in voices
        for speed in speeds
        for phrases in menu.values()
        for phrase in phrases
    ]
    corpus += [
        Utterance(pad + audio.speech(sentence, voice=voice) + pad, "", f"{voice}: {sentence} (other words)")
        for voice in voices
        for sentence in out_of_grammar
    ]
    corpus.append(Utterance(silence(2000), "", "silence"))
    corpus += [
        Utterance(noise(2000, amplitude=amplitude, seed=amplitude), "", f"noise ±{amplitude}")
        for amplitude in (300, 1000, 3000)
    ]
    return corpus


def recognise(recognizer: Recognizer, grammar: Grammar, utterance: Utterance) -> Outcome:
    """One utterance fed in 20 ms frames, timed."""
    started = time.process_time()
    stream = recognizer.start(grammar)
    pcm = utterance.pcm
    for offset in range(0, len(pcm), FRAME_BYTES):
        stream.accept(pcm[offset : offset + FRAME_BYTES])
    finishing = time.perf_counter()
    result = stream.finish()
    finished = time.perf_counter()
    return Outcome(utterance, result, time.process_time() - started, finished - finishing)


def measure(recognizer: Recognizer, grammar: Grammar, corpus: Iterable[Utterance]) -> Measurement:
    return Measurement(tuple(recognise(recognizer, grammar, utterance) for utterance in corpus))
