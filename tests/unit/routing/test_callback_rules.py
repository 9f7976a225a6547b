"""When a callback may be made, and when it is tried again: pure, with fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from dialer.calling_window import WeeklyHours, callee_location
from routing.callback_rules import (
    CallbackRefused,
    CallbackRules,
    due_time,
    hours_from_text,
    next_attempt,
    retry_delay,
)

MADRID_NUMBER = callee_location("+34915550123")  # a Madrid landline: one zone
RULES = CallbackRules(hours=WeeklyHours.every_day(time(9), time(21)), retry_base_s=300, retry_cap_s=3600)
# Wednesday 25 November 2026, 11:00 in Madrid (UTC+1).
MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
NIGHT = datetime(2026, 11, 25, 22, 30, tzinfo=UTC)  # 23:30 in Madrid


def refusal(call: object) -> CallbackRefused:
    assert isinstance(call, CallbackRefused)
    return call


def test_now_within_hours_is_due_at_once() -> None:
    assert due_time(MORNING, None, callee=MADRID_NUMBER, rules=RULES) == (MORNING, None)


def test_a_time_within_hours_is_due_then() -> None:
    at = MORNING + timedelta(hours=6)  # 17:00 in Madrid
    assert due_time(MORNING, at, callee=MADRID_NUMBER, rules=RULES) == (at, None)


def test_now_outside_hours_is_moved_to_the_next_allowed_moment_and_says_so() -> None:
    due, note = due_time(NIGHT, None, callee=MADRID_NUMBER, rules=RULES)
    assert due == datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 09:00 in Madrid the next day
    assert note is not None and "outside calling hours" in note


def test_a_time_in_the_past_is_refused_naming_it() -> None:
    with pytest.raises(CallbackRefused) as refused:
        due_time(MORNING, MORNING - timedelta(hours=1), callee=MADRID_NUMBER, rules=RULES)
    assert refused.value.rule == "in_the_past"
    assert refused.value.violations[0].field == "at"
    assert "in the past" in str(refused.value)


def test_a_few_seconds_of_clock_skew_is_not_the_past() -> None:
    assert due_time(MORNING, MORNING - timedelta(seconds=20), callee=MADRID_NUMBER, rules=RULES)[0] == MORNING


def test_a_time_outside_the_callees_local_hours_is_refused_with_the_next_allowed_time() -> None:
    at = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 03:00 in Madrid
    with pytest.raises(CallbackRefused) as refused:
        due_time(MORNING, at, callee=MADRID_NUMBER, rules=RULES)
    assert refused.value.rule == "outside_hours"
    assert "Europe/Madrid" in str(refused.value)
    assert "2026-11-26T08:00:00+00:00" in str(refused.value)


def test_hours_are_the_callees_local_ones_not_ours() -> None:
    new_york = callee_location("+12125550123")
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # 13:00 in Madrid, 07:00 in New York
    with pytest.raises(CallbackRefused):
        due_time(MORNING, at, callee=new_york, rules=RULES)
    assert due_time(MORNING, at + timedelta(hours=3), callee=new_york, rules=RULES)[0] == at + timedelta(
        hours=3
    )


def test_weekends_are_allowed_unlike_unsolicited_calls_in_spain() -> None:
    saturday = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    assert due_time(MORNING, saturday, callee=MADRID_NUMBER, rules=RULES) == (saturday, None)


def test_too_far_ahead_is_refused() -> None:
    with pytest.raises(CallbackRefused) as refused:
        due_time(MORNING, MORNING + timedelta(days=40), callee=MADRID_NUMBER, rules=RULES)
    assert refused.value.rule == "too_far_ahead"


def test_a_number_without_a_known_time_zone_is_refused() -> None:
    nowhere = callee_location("+80012345678")  # international freephone: no zone
    with pytest.raises(CallbackRefused) as refused:
        due_time(MORNING, None, callee=nowhere, rules=RULES)
    assert refused.value.rule == "no_calling_hours"


@pytest.mark.parametrize(
    ("attempts", "seconds"), [(1, 300), (2, 600), (3, 1200), (4, 2400), (5, 3600), (9, 3600)]
)
def test_retries_wait_twice_as_long_each_time_up_to_the_cap(attempts: int, seconds: float) -> None:
    assert retry_delay(attempts, RULES) == seconds


def test_no_retry_after_the_last_attempt() -> None:
    assert next_attempt(MORNING, 3, callee=MADRID_NUMBER, rules=RULES) is None
    assert next_attempt(MORNING, 2, callee=MADRID_NUMBER, rules=RULES) == MORNING + timedelta(seconds=600)


def test_a_retry_that_would_fall_outside_hours_waits_for_them() -> None:
    late = datetime(2026, 11, 25, 19, 58, tzinfo=UTC)  # 20:58 in Madrid: +5 minutes is past 21:00
    assert next_attempt(late, 1, callee=MADRID_NUMBER, rules=RULES) == datetime(
        2026, 11, 26, 8, 0, tzinfo=UTC
    )


def test_hours_are_read_from_the_setting() -> None:
    hours = hours_from_text("09:00-14:00,16:00-20:00")
    assert [str(window) for window in hours.on(0)] == ["09:00-14:00", "16:00-20:00"]
    assert hours.on(6) == hours.on(0)
    with pytest.raises(ValueError):
        hours_from_text("9-14")


def test_a_spanish_mobile_is_called_only_when_it_is_allowed_in_madrid_and_the_canaries() -> None:
    mobile = callee_location("+34600111222")
    at = datetime(2026, 11, 25, 8, 30, tzinfo=UTC)  # 09:30 in Madrid, 08:30 in Las Palmas
    with pytest.raises(CallbackRefused) as refused:
        due_time(datetime(2026, 11, 25, 7, 0, tzinfo=UTC), at, callee=mobile, rules=RULES)
    assert "Atlantic/Canary" in str(refused.value)
