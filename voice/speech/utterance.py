"""End of utterance: when did the caller start speaking, and when have they finished?

A pure state machine over the voice-activity probabilities (`voice.speech.voice_activity`): it is fed
one (probability, window length) at a time and answers with events, never touching audio or clocks.
Offsets are milliseconds of audio since the detector started (or was reset).

    waiting --(min_speech_ms of speech)--> speaking --(end_silence_ms of silence)--> done
       |  SpeechStarted (barge-in: stop the prompt)         UtteranceEnded(start, end)
       +--(no_input_ms without speech)--> done: NoInput
    speaking --(max_utterance_ms)--> done: TooLong(start, end): a monologue is cut, and says so

A click or a cough shorter than `min_speech_ms` is not a start. Once speaking, a window counts as silence
only below `silence_threshold` (lower than the speech threshold, as Silero's authors advise), so a
soft syllable does not end the turn. After the final event the detector ignores further audio until
`reset()`.

The no-input timer can wait: while a prompt plays, the caller may barge in but is not yet late; create
the detector with `timer_started=False` and call `start_timer()` when the prompt ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class UtteranceRules:
    speech_threshold: float = 0.5  # a window at or above this probability is speech
    silence_threshold: float | None = None  # once speaking, below this is silence (default: speech - 0.15)
    min_speech_ms: int = 100  # speech this long (without a gap) starts an utterance
    end_silence_ms: int = 600  # silence this long after speech ends it
    no_input_ms: int | None = 5000  # nothing said for this long: no input (None: wait for ever)
    max_utterance_ms: int = 30_000  # an utterance this long is cut

    def __post_init__(self) -> None:
        if not 0 < self.speech_threshold <= 1:
            raise ValueError(f"speech_threshold must be in (0, 1], not {self.speech_threshold}")
        if self.silence_threshold is not None and not 0 <= self.silence_threshold <= self.speech_threshold:
            raise ValueError(
                f"silence_threshold must be in [0, speech_threshold], not {self.silence_threshold}"
            )
        if self.min_speech_ms < 0 or self.end_silence_ms <= 0:
            raise ValueError("min_speech_ms must be >= 0 and end_silence_ms > 0")
        if self.no_input_ms is not None and self.no_input_ms <= 0:
            raise ValueError(f"no_input_ms must be positive, not {self.no_input_ms}")
        if self.max_utterance_ms <= self.min_speech_ms:
            raise ValueError("max_utterance_ms must be longer than min_speech_ms")

    @property
    def silence_below(self) -> float:
        if self.silence_threshold is not None:
            return self.silence_threshold
        return max(0.0, self.speech_threshold - 0.15)


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller is speaking (barge-in): `start_ms` is where the speech began."""

    start_ms: int


@dataclass(frozen=True, slots=True)
class UtteranceEnded:
    """The caller said something from `start_ms` to `end_ms` and then fell silent."""

    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class NoInput:
    """Nothing was said within the no-input time (`at_ms`: when the detector gave up)."""

    at_ms: int


@dataclass(frozen=True, slots=True)
class TooLong:
    """The caller spoke from `start_ms` past the maximum: the utterance was cut at `end_ms`."""

    start_ms: int
    end_ms: int


UtteranceEvent = SpeechStarted | UtteranceEnded | NoInput | TooLong


class _Phase(Enum):
    WAITING = "waiting"
    SPEAKING = "speaking"
    DONE = "done"


class UtteranceDetector:
    """One caller turn: feed it probabilities with `step`, act on the events it returns."""

    def __init__(self, rules: UtteranceRules | None = None, *, timer_started: bool = True) -> None:
        self.rules = rules or UtteranceRules()
        self._timer_started = timer_started
        self.reset()

    def reset(self) -> None:
        """A new turn: offsets start again from 0."""
        self._phase = _Phase.WAITING
        self._clock = 0  # ms of audio seen
        self._timer_from: int | None = 0 if self._timer_started else None
        self._run_start: int | None = None  # where the current run of speech began, while waiting
        self._speech_start = 0
        self._last_speech_end = 0

    @property
    def finished(self) -> bool:
        return self._phase is _Phase.DONE

    @property
    def speaking(self) -> bool:
        return self._phase is _Phase.SPEAKING

    def start_timer(self) -> None:
        """Count the no-input time from now (e.g. the prompt has finished playing)."""
        if self._timer_from is None:
            self._timer_from = self._clock

    def steps(self, probabilities: Iterable[float], window_ms: int) -> list[UtteranceEvent]:
        events: list[UtteranceEvent] = []
        for probability in probabilities:
            events.extend(self.step(probability, window_ms))
        return events

    def step(self, probability: float, window_ms: int) -> list[UtteranceEvent]:
        if math.isnan(probability) or not 0 <= probability <= 1:
            raise ValueError(f"a speech probability is in [0, 1], not {probability}")
        if window_ms <= 0:
            raise ValueError(f"window_ms must be positive, not {window_ms}")
        start, end = self._clock, self._clock + window_ms
        self._clock = end
        if self._phase is _Phase.DONE:
            return []
        rules = self.rules
        events: list[UtteranceEvent] = []
        if self._phase is _Phase.WAITING:
            if probability >= rules.speech_threshold:
                if self._run_start is None:
                    self._run_start = start
                if end - self._run_start >= rules.min_speech_ms:
                    self._phase = _Phase.SPEAKING
                    self._speech_start = self._run_start
                    events.append(SpeechStarted(self._run_start))
            else:
                self._run_start = None
            # A run of speech in progress may still become a start: no-input waits for it.
            if (
                self._phase is _Phase.WAITING
                and self._run_start is None
                and rules.no_input_ms is not None
                and self._timer_from is not None
                and end - self._timer_from >= rules.no_input_ms
            ):
                self._phase = _Phase.DONE
                return [NoInput(end)]
        if self._phase is _Phase.SPEAKING:
            if probability >= rules.silence_below:
                self._last_speech_end = end
            elif end - self._last_speech_end >= rules.end_silence_ms:
                self._phase = _Phase.DONE
                events.append(UtteranceEnded(self._speech_start, self._last_speech_end))
                return events
            if end - self._speech_start >= rules.max_utterance_ms:
                self._phase = _Phase.DONE
                events.append(TooLong(self._speech_start, end))
        return events
