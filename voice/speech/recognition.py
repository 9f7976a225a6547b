"""The speech recognition port: what the IVR asks of a recogniser, whatever engine is behind it.

A call's listening turn opens a `RecognitionStream` with the grammar of the question being asked (the
phrases each answer may be said with), feeds it the caller's audio as it arrives — 8 kHz signed 16-bit
little-endian mono, any number of whole samples at a time — and asks for the final result when the caller
stops speaking. Engines: `voice.speech.pocketsphinx_engine` (English, works out of the box),
`voice.speech.vosk_engine` (models the operator installs); `FakeRecognizer` below for the code above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

SAMPLE_RATE = 8000  # what telephone audio arrives at: AudioSocket, RECORD FILE's .sln, ARI externalMedia
FRAME_BYTES = 320  # 20 ms of it


class RecognitionError(Exception):
    """The engine could not be started for a grammar or language (no model, a broken grammar)."""


@dataclass(frozen=True, slots=True)
class Grammar:
    """What the caller may say: option key -> the phrases that mean it. Anything else is a no-match."""

    language: str  # BCP 47, e.g. "es", "en-GB": engines pick their model by the primary subtag
    phrases: Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Recognition:
    """A final result. `text` is "" when nothing in the grammar was heard (a no-match)."""

    text: str
    confidence: float  # 0..1
    engine: str  # e.g. "pocketsphinx-en", "vosk-es": lands on the timeline with the result


@dataclass(frozen=True, slots=True)
class Partial:
    text: str


class RecognitionStream(Protocol):
    def accept(self, pcm: bytes) -> Partial | None:
        """Feed audio; a partial hypothesis when the engine has a new one."""
        ...

    def finish(self) -> Recognition:
        """The caller stopped speaking: the final result. The stream is spent afterwards."""
        ...


class Recognizer(Protocol):
    def supports(self, language: str) -> bool: ...

    def start(self, grammar: Grammar) -> RecognitionStream:
        """A stream for one utterance; raises RecognitionError when the language has no model."""
        ...


@dataclass
class FakeRecognizer:
    """Hears what it is told: `script` holds the final results in order (text, confidence); a stream
    with nothing left to say gives a no-match. Records the grammars and the audio bytes each stream got."""

    script: list[tuple[str, float]] = field(default_factory=list)
    languages: frozenset[str] = frozenset({"es", "en"})
    grammars: list[Grammar] = field(default_factory=list)
    audio_bytes: list[int] = field(default_factory=list)

    def supports(self, language: str) -> bool:
        return language.split("-")[0] in self.languages

    def start(self, grammar: Grammar) -> RecognitionStream:
        if not self.supports(grammar.language):
            raise RecognitionError(f"no speech model for language {grammar.language!r}")
        self.grammars.append(grammar)
        self.audio_bytes.append(0)
        return _FakeStream(self, len(self.audio_bytes) - 1)


@dataclass
class _FakeStream:
    recognizer: FakeRecognizer
    index: int
    done: bool = False

    def accept(self, pcm: bytes) -> Partial | None:
        self.recognizer.audio_bytes[self.index] += len(pcm)
        return None

    def finish(self) -> Recognition:
        if self.done:
            raise RecognitionError("this stream has already given its result")
        self.done = True
        if not self.recognizer.script:
            return Recognition("", 0.0, "fake")
        text, confidence = self.recognizer.script.pop(0)
        return Recognition(text, confidence, "fake")
