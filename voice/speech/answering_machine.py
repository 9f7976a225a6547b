"""Answering-machine detection on a stream: did a person pick up, or a voicemail greeting?

The same algorithm and parameters as Asterisk's `AMD()` (app_amd, configured by `amd.conf`, which
Centralita renders with these defaults), so that a campaign behaves the same whether Asterisk or this
detector listens, and tunings carry over. A person answers with a short word or two and then waits
("¿Diga?" ... silence); a machine speaks a long greeting ("Hola, has llamado a ... deja tu mensaje").
Frame by frame, the detector measures:
- silence before anything is said: longer than `initial_silence` -> MACHINE (INITIALSILENCE);
- words: `min_word_length` of voice after `between_words_silence` of silence; reaching
  `maximum_number_of_words` -> MACHINE (MAXWORDS), one word longer than `maximum_word_length` -> MACHINE
  (MAXWORDLENGTH), more than `greeting` of voice in all -> MACHINE (LONGGREETING);
- silence after a greeting of `after_greeting_silence` -> HUMAN;
- no decision within `total_analysis_time` -> NOTSURE (TOOLONG); the stream ending first -> HANGUP.
The cause reads as Asterisk's `AMDCAUSE` ("MAXWORDS-3-3", "HUMAN-800-800", "LONGGREETING-1500-1500").

What counts as voice: by default, as Asterisk does, a frame whose average absolute sample is at least
`silence_threshold` (256 of 32767). That is free and exact on clean lines but takes steady line noise
for a never-ending word (LONGGREETING); give the detector a `VoiceActivityDetector` (Silero) and its
speech probabilities decide instead, which keeps a noisy line's silence silent. The core, `step`, takes
one frame's verdict (voice or not, and its length) and is pure; `feed` is the audio front.
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Literal

from voice.speech.recognition import SAMPLE_RATE
from voice.speech.voice_activity import VoiceActivityDetector


@dataclass(frozen=True, slots=True)
class AmdParameters:
    """amd.conf's [general] settings (in ms, except the word count and the threshold)."""

    initial_silence: int = 2500
    greeting: int = 1500
    after_greeting_silence: int = 800
    total_analysis_time: int = 5000
    min_word_length: int = 100
    between_words_silence: int = 50
    maximum_number_of_words: int = 3  # app_amd's built-in default, and Centralita's amd.conf
    silence_threshold: int = 256  # average absolute sample below which a frame is silence
    maximum_word_length: int = 5000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            if getattr(self, name) <= 0:
                raise ValueError(f"AMD parameter {name} must be positive, not {getattr(self, name)}")


class AmdStatus(StrEnum):
    """Asterisk's AMDSTATUS values."""

    HUMAN = "HUMAN"
    MACHINE = "MACHINE"
    NOTSURE = "NOTSURE"
    HANGUP = "HANGUP"  # the audio ended before a decision


# The dialer's vocabulary (`dialer.call_network.AmdVerdict` values), as its ARI network maps AMDSTATUS.
AmdVerdictName = Literal["human", "machine", "unsure"]
_VERDICTS: dict[AmdStatus, AmdVerdictName] = {
    AmdStatus.HUMAN: "human",
    AmdStatus.MACHINE: "machine",
    AmdStatus.NOTSURE: "unsure",
    AmdStatus.HANGUP: "unsure",
}


@dataclass(frozen=True, slots=True)
class AmdResult:
    status: AmdStatus
    cause: str  # as Asterisk's AMDCAUSE; empty for HANGUP
    decided_at_ms: int  # audio analysed when the decision fell

    @property
    def verdict(self) -> AmdVerdictName:
        """ "human", "machine" or "unsure": `AmdVerdict(result.verdict)` in the dialer."""
        return _VERDICTS[self.status]


class _State(Enum):
    IN_WORD = "in word"
    IN_SILENCE = "in silence"


class AnsweringMachineDetector:
    """One answered call's greeting. `feed(pcm)` (or `step(voiced, ms)` with frame verdicts of your
    own) returns the result once, on the frame that decides it; `result` keeps it."""

    def __init__(
        self,
        parameters: AmdParameters | None = None,
        *,
        voice_activity: VoiceActivityDetector | None = None,
        speech_threshold: float = 0.5,
        frame_ms: int = 20,
    ) -> None:
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, not {frame_ms}")
        self.parameters = parameters or AmdParameters()
        self.voice_activity = voice_activity
        self.speech_threshold = speech_threshold
        self.frame_ms = frame_ms  # the energy front's frame: Asterisk's 20 ms
        self._frame_bytes = SAMPLE_RATE * frame_ms // 1000 * 2
        self.reset()

    def reset(self) -> None:
        self._pending = b""
        if self.voice_activity is not None:
            self.voice_activity.reset()
        self.result: AmdResult | None = None
        self._total_time = 0
        self._in_initial_silence = True
        self._in_greeting = False
        self._voice_duration = 0
        self._silence = 0  # consecutive silence, as Asterisk's silence DSP counts it
        self._words = 0
        # As app_amd: a greeting that starts with no silence before it does not count its first word.
        self._state = _State.IN_WORD
        self._consecutive_voice = 0

    def feed(self, pcm: bytes) -> AmdResult | None:
        """8 kHz 16-bit audio, any length: the result if this audio decided it."""
        if self.result is not None:
            return None
        if self.voice_activity is not None:
            window_ms = self.voice_activity.window_ms
            for probability in self.voice_activity.feed(pcm):
                decided = self.step(probability >= self.speech_threshold, window_ms)
                if decided is not None:
                    return decided
            return None
        audio = self._pending + pcm if self._pending else pcm
        whole = len(audio) - len(audio) % self._frame_bytes
        self._pending = audio[whole:]
        for start in range(0, whole, self._frame_bytes):
            samples = array.array("h")
            samples.frombytes(audio[start : start + self._frame_bytes])
            if sys.byteorder == "big":
                samples.byteswap()
            loud = sum(abs(sample) for sample in samples) / len(samples) >= self.parameters.silence_threshold
            decided = self.step(loud, self.frame_ms)
            if decided is not None:
                return decided
        return None

    def hang_up(self) -> AmdResult:
        """The call ended: the result, HANGUP if none had been reached."""
        if self.result is None:
            self.result = AmdResult(AmdStatus.HANGUP, "", self._total_time)
        return self.result

    def step(self, voiced: bool, frame_ms: int) -> AmdResult | None:
        """One frame: voice or silence, `frame_ms` long. app_amd's loop body, decision for decision."""
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, not {frame_ms}")
        if self.result is not None:
            return None
        p = self.parameters
        self._total_time += frame_ms
        if self._total_time >= p.total_analysis_time:
            return self._decide(AmdStatus.NOTSURE, f"TOOLONG-{self._total_time}")
        if not voiced:
            self._silence += frame_ms
            if self._silence >= p.between_words_silence:
                self._state = _State.IN_SILENCE
                self._consecutive_voice = 0
            if self._in_initial_silence and self._silence >= p.initial_silence:
                return self._decide(AmdStatus.MACHINE, f"INITIALSILENCE-{self._silence}-{p.initial_silence}")
            if self._in_greeting and self._silence >= p.after_greeting_silence:
                return self._decide(AmdStatus.HUMAN, f"HUMAN-{self._silence}-{p.after_greeting_silence}")
            return None
        self._silence = 0
        self._consecutive_voice += frame_ms
        self._voice_duration += frame_ms
        if self._consecutive_voice >= p.min_word_length and self._state is _State.IN_SILENCE:
            self._words += 1
            self._state = _State.IN_WORD
        if self._consecutive_voice >= p.maximum_word_length:
            return self._decide(AmdStatus.MACHINE, f"MAXWORDLENGTH-{self._consecutive_voice}")
        if self._words >= p.maximum_number_of_words:
            return self._decide(AmdStatus.MACHINE, f"MAXWORDS-{self._words}-{p.maximum_number_of_words}")
        if self._in_greeting and self._voice_duration >= p.greeting:
            return self._decide(AmdStatus.MACHINE, f"LONGGREETING-{self._voice_duration}-{p.greeting}")
        if self._consecutive_voice >= p.min_word_length and not self._in_greeting:
            self._in_initial_silence = False
            self._in_greeting = True
        return None

    def _decide(self, status: AmdStatus, cause: str) -> AmdResult:
        self.result = AmdResult(status, cause, self._total_time)
        return self.result
