"""End of utterance: the state machine over voice-activity probabilities, table by table. Each script is a
string of windows, one character per window: '#' speech (0.9), '.' silence (0.05), '~' soft (0.4: below
the speech threshold, above the silence one)."""

from __future__ import annotations

import pytest

from voice.speech.utterance import (
    NoInput,
    SpeechStarted,
    TooLong,
    UtteranceDetector,
    UtteranceEnded,
    UtteranceEvent,
    UtteranceRules,
)

PROBABILITY = {"#": 0.9, ".": 0.05, "~": 0.4}
RULES = UtteranceRules(min_speech_ms=100, end_silence_ms=600, no_input_ms=1000, max_utterance_ms=2000)


def run(script: str, rules: UtteranceRules = RULES, window_ms: int = 20) -> list[tuple[int, UtteranceEvent]]:
    """Feed the script; each event with the index of the window that produced it."""
    detector = UtteranceDetector(rules)
    found = []
    for index, mark in enumerate(script):
        found += [(index, event) for event in detector.step(PROBABILITY[mark], window_ms)]
    return found


@pytest.mark.parametrize(
    ("name", "script", "expected"),
    [
        (
            "a word then silence",
            "." * 10 + "#" * 20 + "." * 30,
            # speech from 200 ms; started once 100 ms of it (window 14); ended 600 ms after 600 ms
            [(14, SpeechStarted(200)), (59, UtteranceEnded(200, 600))],
        ),
        ("clicks are not a start", "." * 5 + "##" + "." * 20 + "####" + "." * 40, [(49, NoInput(1000))]),
        ("nothing at all", "." * 60, [(49, NoInput(1000))]),
        (
            "a pause shorter than the end silence keeps the turn",
            "#" * 10 + "." * 25 + "#" * 10 + "." * 30,
            [(4, SpeechStarted(0)), (74, UtteranceEnded(0, 900))],
        ),
        (
            "soft windows while speaking count as speech",
            "#" * 10 + "~" * 40 + "." * 30,
            [(4, SpeechStarted(0)), (79, UtteranceEnded(0, 1000))],
        ),
        (
            "soft windows do not start an utterance",
            "~" * 60,
            [(49, NoInput(1000))],
        ),
        (
            "a monologue is cut at the maximum and says so",
            "." * 5 + "#" * 200,
            [(9, SpeechStarted(100)), (104, TooLong(100, 2100))],
        ),
        (
            "speech still growing at the no-input time is waited for",
            "." * 48 + "#" * 10 + "." * 30,
            [(52, SpeechStarted(960)), (87, UtteranceEnded(960, 1160))],
        ),
    ],
)
def test_scripts(name: str, script: str, expected: list[tuple[int, UtteranceEvent]]) -> None:
    assert run(script) == expected, name


@pytest.mark.parametrize(
    ("window_ms", "starts_at_window", "ends_at_window"),
    [(20, 14, 59), (32, 9, 36), (10, 29, 119)],
)
def test_timing_follows_the_window_length(window_ms: int, starts_at_window: int, ends_at_window: int) -> None:
    # About 200 ms of silence, 400 ms of speech, then silence: the start needs 100 ms of speech and the
    # end 600 ms of silence, rounded up to whole windows.
    silence, speech = 200 // window_ms, 400 // window_ms
    script = "." * silence + "#" * speech + "." * (2000 // window_ms)
    events = run(script, window_ms=window_ms)
    speech_start, speech_end = silence * window_ms, (silence + speech) * window_ms
    assert events == [
        (starts_at_window, SpeechStarted(speech_start)),
        (ends_at_window, UtteranceEnded(speech_start, speech_end)),
    ]


def test_no_events_after_the_turn_is_over_until_reset() -> None:
    detector = UtteranceDetector(RULES)
    assert detector.steps([0.05] * 50, 20) == [NoInput(1000)]
    assert detector.finished
    assert detector.steps([0.9] * 50, 20) == []
    detector.reset()
    assert detector.steps([0.9] * 5, 20) == [SpeechStarted(0)]
    assert detector.speaking


def test_no_input_timer_waits_for_the_prompt_to_end() -> None:
    detector = UtteranceDetector(RULES, timer_started=False)
    assert detector.steps([0.05] * 200, 20) == []  # the prompt plays for 4 s: not late yet
    detector.start_timer()
    assert detector.steps([0.05] * 49, 20) == []
    assert detector.step(0.05, 20) == [NoInput(5000)]


def test_barge_in_during_the_prompt_is_reported_before_the_timer_starts() -> None:
    detector = UtteranceDetector(RULES, timer_started=False)
    events = detector.steps([0.05] * 100 + [0.9] * 5, 20)
    assert events == [SpeechStarted(2000)]


def test_without_a_no_input_time_it_waits_for_ever() -> None:
    detector = UtteranceDetector(UtteranceRules(no_input_ms=None))
    assert detector.steps([0.0] * 10_000, 20) == []


def test_a_ten_minute_monologue_ends_at_the_default_maximum() -> None:
    detector = UtteranceDetector()
    events = detector.steps([0.95] * (10 * 60 * 50), 20)
    assert events == [SpeechStarted(0), TooLong(0, 30_000)]


@pytest.mark.parametrize("probability", [-0.1, 1.5, float("nan")])
def test_a_probability_out_of_range_is_refused(probability: float) -> None:
    with pytest.raises(ValueError, match="probability"):
        UtteranceDetector().step(probability, 20)


def test_a_window_without_length_is_refused() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        UtteranceDetector().step(0.5, 0)


@pytest.mark.parametrize(
    "rules",
    [
        {"speech_threshold": 0.0},
        {"speech_threshold": 0.5, "silence_threshold": 0.6},
        {"end_silence_ms": 0},
        {"no_input_ms": 0},
        {"min_speech_ms": 500, "max_utterance_ms": 400},
    ],
)
def test_inconsistent_rules_are_refused(rules: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        UtteranceRules(**rules)  # type: ignore[arg-type]
