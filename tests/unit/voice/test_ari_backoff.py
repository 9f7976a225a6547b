"""The reconnect schedule (shared by the ARI event stream and the AMI client), without sleeping."""

from __future__ import annotations

import itertools

import pytest

from voice.backoff import Backoff


def first(n: int, backoff: Backoff, draw: float) -> list[float]:
    return list(itertools.islice(backoff.delays(lambda: draw), n))


def test_without_jitter_the_delays_double_up_to_the_cap() -> None:
    assert first(9, Backoff(jitter=0), 0.99) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        (0.0, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]),  # the longest possible
        (0.5, [0.375, 0.75, 1.5, 3.0, 6.0, 12.0, 22.5]),
        (1.0, [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0]),  # the shortest: half
    ],
)
def test_jitter_only_ever_shortens_a_delay_by_up_to_half(draw: float, expected: list[float]) -> None:
    assert first(7, Backoff(), draw) == expected


def test_the_cap_holds_for_any_attempt_and_any_draw() -> None:
    backoff = Backoff(initial=0.1, factor=3, maximum=5)
    assert all(
        0.05 <= backoff.delay(attempt, draw) <= 5 for attempt in range(0, 2000, 7) for draw in (0, 0.3, 0.99)
    )
    assert backoff.delay(10**6, 0) == 5


@pytest.mark.parametrize(
    "options",
    [{"initial": 0}, {"initial": 40, "maximum": 30}, {"factor": 0.5}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_a_schedule_that_makes_no_sense_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**options)


def test_a_negative_attempt_is_refused() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1, 0)
