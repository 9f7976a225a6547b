"""Estimated wait time, worked by hand, and when the IVR should offer overflow."""

from datetime import UTC, datetime, timedelta

import pytest

from routing.wait_estimate import (
    HandledCall,
    HandleTimes,
    QueueLoad,
    WaitEstimate,
    estimate,
    expected_free_in,
    recent_handle_times,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
AHT_200 = HandleTimes(talk_s=170, wrap_up_s=30, samples=10)  # 200 s a call


def load(**fields: object) -> QueueLoad:
    base: dict[str, object] = {
        "waiting": 0,
        "position": None,
        "logged_in": 2,
        "ready": 0,
        "busy_free_in_s": (),
        "handle": AHT_200,
    }
    return QueueLoad(**(base | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("queue", "seconds"),
    [
        # 2 ready agents: callers 1 and 2 answered at once, caller 3 when the first is done (200 s).
        (load(ready=2, position=1, waiting=3), 0.0),
        (load(ready=2, position=2, waiting=3), 0.0),
        (load(ready=2, position=3, waiting=3), 200.0),
        # busy agents free at 50 s and 120 s: caller 1 at 50, 2 at 120, 3 at 50+200=250, 4 at 320.
        (load(busy_free_in_s=(120, 50), position=1, waiting=4), 50.0),
        (load(busy_free_in_s=(120, 50), position=2, waiting=4), 120.0),
        (load(busy_free_in_s=(120, 50), position=3, waiting=4), 250.0),
        (load(busy_free_in_s=(120, 50), position=4, waiting=4), 320.0),
        # a caller about to join behind 2 others with one ready agent: position 3 -> 0, 200, 400.
        (load(ready=1, logged_in=1, waiting=2), 400.0),
    ],
)
def test_wait_from_when_each_agent_frees_up(queue: QueueLoad, seconds: float) -> None:
    result = estimate(queue)
    assert result.seconds == seconds
    assert not result.overflow


def test_no_agent_logged_in_means_no_estimate_and_overflow() -> None:
    assert estimate(load(logged_in=0, waiting=1)) == WaitEstimate(2, None, True, "no_agents")


def test_every_logged_in_agent_paused_means_no_estimate_either() -> None:
    assert estimate(load(logged_in=3, ready=0, busy_free_in_s=())) == WaitEstimate(1, None, True, "no_agents")


def test_a_full_queue_offers_overflow_to_a_caller_about_to_join_only() -> None:
    full = load(ready=1, waiting=5, max_length=5)
    assert estimate(full).reason == "queue_full"
    # A caller already in it (position 5) keeps waiting: the queue being full is not their problem.
    assert estimate(load(ready=1, waiting=5, position=5, max_length=5)).overflow is False


@pytest.mark.parametrize(
    ("threshold", "max_wait", "overflow"),
    [(300, None, True), (400, None, False), (None, 399, True), (None, 400, False), (None, None, False)],
)
def test_overflow_above_the_queue_threshold_or_else_its_max_wait(
    threshold: float | None, max_wait: float | None, overflow: bool
) -> None:
    result = estimate(load(ready=1, waiting=2, overflow_wait_s=threshold, max_wait_s=max_wait))
    assert result.seconds == 400.0
    assert result.overflow is overflow
    assert result.reason == ("long_wait" if overflow else None)


def test_announced_minutes_round_up() -> None:
    assert WaitEstimate(1, 0.0, False, None).announce_minutes == 0
    assert WaitEstimate(1, 61.0, False, None).announce_minutes == 2
    assert WaitEstimate(1, 120.0, False, None).announce_minutes == 2
    assert WaitEstimate(1, None, True, "no_agents").announce_minutes is None


def test_recent_handle_times_average_the_window_only() -> None:
    handled = [
        HandledCall(NOW - timedelta(minutes=5), talk_s=100, wrap_up_s=20),
        HandledCall(NOW - timedelta(minutes=10), talk_s=200, wrap_up_s=40),
        HandledCall(NOW - timedelta(minutes=45), talk_s=900, wrap_up_s=90),  # outside 30 minutes
    ]
    times = recent_handle_times(handled, NOW)
    assert (times.talk_s, times.wrap_up_s, times.samples, times.handle_s) == (150, 30, 2, 180)
    assert recent_handle_times([], NOW, default_wrap_up_s=15) == HandleTimes(180, 15, 0)


@pytest.mark.parametrize(
    ("kwargs", "seconds"),
    [
        ({"talking_for_s": 70, "wrap_up_s": 30}, 130.0),  # 170 - 70 talk left, then 30 wrap-up
        ({"talking_for_s": 600, "wrap_up_s": 30}, 72.5),  # past the average: a quarter of it, 42.5
        ({"wrap_up_left_s": 12}, 12.0),
        ({"ringing": True, "wrap_up_s": 30}, 200.0),
    ],
)
def test_when_a_busy_agent_is_expected_to_be_free(kwargs: dict[str, float], seconds: float) -> None:
    assert expected_free_in(handle=AHT_200, **kwargs) == seconds  # type: ignore[arg-type]
