"""Abandoned calls: what counts, the rolling 30-day and 24-hour rates, and the compliance report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.abandonment import (
    WINDOW_24_HOURS,
    WINDOW_30_DAYS,
    CallClass,
    CallOutcome,
    abandonment_rate,
    classify,
    compliance_report,
)
from dialer.call_network import AmdVerdict, CallEnd

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
_ids = iter(range(1, 1_000_000))


def answered(
    at: datetime,
    *,
    greeting: float | None = 1.5,
    connected: float | None = 2.0,
    ended: float | None = 60.0,
    amd: AmdVerdict | None = None,
    live: bool | None = None,
    message: float | None = None,
    attempt_id: int | None = None,
) -> CallOutcome:
    """A call answered at `at`; the other times are seconds after the answer (None: never)."""

    def later(seconds: float | None) -> datetime | None:
        return None if seconds is None else at + timedelta(seconds=seconds)

    return CallOutcome(
        attempt_id=attempt_id if attempt_id is not None else next(_ids),
        dialed_at=at - timedelta(seconds=12),
        ringing_at=at - timedelta(seconds=11),
        answered_at=at,
        greeting_ended_at=later(greeting),
        connected_at=later(connected),
        ended_at=later(ended),
        end=CallEnd.COMPLETED if ended is not None else None,
        amd=amd,
        live_person=live,
        message_played_at=later(message),
    )


def unanswered(at: datetime, *, rang: float, end: CallEnd = CallEnd.NO_ANSWER) -> CallOutcome:
    return CallOutcome(
        attempt_id=next(_ids),
        dialed_at=at - timedelta(seconds=rang + 1),
        ringing_at=at - timedelta(seconds=rang),
        ended_at=at,
        end=end,
    )


# --- one call --------------------------------------------------------------------------------------


def test_the_two_seconds_start_at_the_end_of_the_greeting() -> None:
    # Greeting ends 1.5 s after the answer: an agent at 3.5 s is in time, at 3.6 s is not.
    assert classify(answered(NOW, connected=3.5), now=NOW) is CallClass.CONNECTED
    assert classify(answered(NOW, connected=3.6), now=NOW) is CallClass.ABANDONED
    # No greeting end detected: the 2 seconds start at the answer.
    assert classify(answered(NOW, greeting=None, connected=2.0), now=NOW) is CallClass.CONNECTED
    assert classify(answered(NOW, greeting=None, connected=2.1), now=NOW) is CallClass.ABANDONED


def test_a_call_nobody_took_is_abandoned_even_if_the_callee_hung_up_first() -> None:
    assert classify(answered(NOW, connected=None, ended=10, message=3.5), now=NOW) is CallClass.ABANDONED
    assert classify(answered(NOW, connected=None, ended=1.0), now=NOW) is CallClass.ABANDONED


def test_a_call_still_inside_its_two_seconds_is_not_judged_yet() -> None:
    call = answered(NOW, connected=None, ended=None)
    assert classify(call, now=NOW + timedelta(seconds=3)) is CallClass.IN_PROGRESS
    assert classify(call, now=NOW + timedelta(seconds=3.6)) is CallClass.ABANDONED
    # Greeting not over yet: the clock has not started.
    talking = answered(NOW, greeting=None, connected=None, ended=None)
    assert classify(talking, now=NOW + timedelta(seconds=30)) is CallClass.IN_PROGRESS


def test_answering_machine_detection_that_hangs_up_on_a_person_abandons_them() -> None:
    fooled = answered(NOW, amd=AmdVerdict.MACHINE, connected=None, live=True)
    assert classify(fooled, now=NOW) is CallClass.ABANDONED
    unknown = answered(NOW, amd=AmdVerdict.MACHINE, connected=None)
    assert classify(unknown, now=NOW) is CallClass.AMD_MACHINE_UNVERIFIED
    machine = answered(NOW, amd=AmdVerdict.MACHINE, connected=None, live=False)
    assert classify(machine, now=NOW) is CallClass.MACHINE
    # A machine an agent took (live_person=False from the agent's disposition) is not a live call.
    assert classify(answered(NOW, connected=9, live=False), now=NOW) is CallClass.MACHINE


def test_unanswered_calls_are_not_live_calls() -> None:
    assert classify(unanswered(NOW, rang=20), now=NOW) is CallClass.NOT_ANSWERED


# --- the rates -------------------------------------------------------------------------------------


def test_rates_over_thirty_days_and_twenty_four_hours_by_answer_time() -> None:
    old = NOW - timedelta(days=10)
    records = [
        *(answered(old) for _ in range(96)),
        *(answered(old, connected=None) for _ in range(4)),  # 4 abandoned 10 days ago
        *(answered(NOW - timedelta(hours=1)) for _ in range(19)),
        answered(NOW - timedelta(hours=1), connected=5.0),  # 1 abandoned an hour ago
        answered(NOW - timedelta(days=31), connected=None),  # outside both windows
        unanswered(NOW - timedelta(hours=2), rang=25),
    ]
    month = abandonment_rate(records, now=NOW, window=WINDOW_30_DAYS)
    assert (month.abandoned, month.live_calls) == (5, 120)
    assert month.rate == pytest.approx(5 / 120)
    day = abandonment_rate(records, now=NOW, window=WINDOW_24_HOURS)
    assert (day.abandoned, day.live_calls, day.rate) == (1, 20, 0.05)
    assert day.start == NOW - WINDOW_24_HOURS and day.end == NOW
    assert len(day.abandoned_ids) == 1 and len(day.connected_ids) == 19


def test_the_window_includes_now_and_excludes_its_start() -> None:
    edge = answered(NOW - WINDOW_24_HOURS, connected=None)
    latest = answered(NOW, connected=None)
    rate = abandonment_rate([edge, latest], now=NOW, window=WINDOW_24_HOURS)
    assert rate.abandoned_ids == (latest.attempt_id,)


def test_amd_hang_ups_of_unknown_truth_are_estimated_and_reported_apart() -> None:
    records = [
        *(answered(NOW - timedelta(hours=1)) for _ in range(90)),
        *(answered(NOW - timedelta(hours=1), amd=AmdVerdict.MACHINE, connected=None) for _ in range(50)),
    ]
    exact = abandonment_rate(records, now=NOW, window=WINDOW_24_HOURS)
    assert exact.rate == 0 and len(exact.amd_unverified_ids) == 50
    estimated = abandonment_rate(records, now=NOW, window=WINDOW_24_HOURS, amd_false_positive_rate=0.2)
    # 10 of the 50 machine verdicts are taken for people: 10 abandoned out of 100 live calls.
    assert estimated.estimated_amd_abandoned == pytest.approx(10)
    assert estimated.rate == pytest.approx(10 / 100)
    with pytest.raises(ValueError, match="fraction"):
        abandonment_rate(records, now=NOW, window=WINDOW_24_HOURS, amd_false_positive_rate=1.5)


def test_headroom_says_how_many_more_abandons_keep_the_rate_at_target() -> None:
    records = [*(answered(NOW - timedelta(hours=1)) for _ in range(99)), answered(NOW, connected=None)]
    rate = abandonment_rate(records, now=NOW, window=WINDOW_24_HOURS)
    room = rate.headroom(0.03)
    assert room == pytest.approx((0.03 * 100 - 1) / 0.97)
    # Spending exactly that room lands on the target.
    assert (rate.abandoned + room) / (rate.live_calls + room) == pytest.approx(0.03)
    assert abandonment_rate([], now=NOW, window=WINDOW_24_HOURS).rate == 0.0
    with pytest.raises(ValueError):
        rate.headroom(1.0)


@given(
    outcomes=st.lists(
        st.tuples(
            st.floats(0, 40 * 24 * 3600),  # seconds before NOW
            st.one_of(st.none(), st.floats(0, 10)),  # connected after the answer
            st.sampled_from([None, AmdVerdict.HUMAN, AmdVerdict.MACHINE, AmdVerdict.UNSURE]),
            st.sampled_from([None, True, False]),
        ),
        max_size=60,
    )
)
def test_the_rate_is_a_fraction_and_the_day_never_holds_more_than_the_month(
    outcomes: list[tuple[float, float | None, AmdVerdict | None, bool | None]],
) -> None:
    records = [
        answered(NOW - timedelta(seconds=ago), connected=connected, amd=amd, live=live)
        for ago, connected, amd, live in outcomes
    ]
    month = abandonment_rate(records, now=NOW, window=WINDOW_30_DAYS, amd_false_positive_rate=0.1)
    day = abandonment_rate(records, now=NOW, window=WINDOW_24_HOURS, amd_false_positive_rate=0.1)
    assert 0 <= day.rate <= 1 and 0 <= month.rate <= 1
    assert set(day.abandoned_ids) <= set(month.abandoned_ids)
    assert day.live_calls <= month.live_calls
    assert not set(month.abandoned_ids) & set(month.connected_ids)


# --- the report ------------------------------------------------------------------------------------


def test_the_compliance_report_names_each_rule_its_value_window_and_rows() -> None:
    short_ring = unanswered(NOW - timedelta(hours=3), rang=12)
    long_ring = unanswered(NOW - timedelta(hours=3), rang=15)
    busy = unanswered(NOW - timedelta(hours=3), rang=2, end=CallEnd.BUSY)
    silent = answered(NOW - timedelta(hours=2), connected=None, ended=8)  # no message played
    told = answered(NOW - timedelta(hours=2), connected=None, ended=8, message=3.5)
    hung_up_at_once = answered(NOW - timedelta(hours=2), connected=None, ended=1.0)  # before the 2 s
    amd = answered(NOW - timedelta(hours=2), amd=AmdVerdict.MACHINE, connected=None)
    fine = [answered(NOW - timedelta(days=5)) for _ in range(97)]
    records = [short_ring, long_ring, busy, silent, told, hung_up_at_once, amd, *fine]

    report = compliance_report(records, now=NOW)
    rules = {rule.rule: rule for rule in report.rules}
    assert list(rules) == [
        "abandonment_rate_30_days",
        "abandonment_rate_24_hours",
        "minimum_ring_before_no_answer",
        "abandoned_calls_hear_message",
    ]
    month = rules["abandonment_rate_30_days"]
    assert (month.counted, month.out_of, month.limit) == (3, 100, 0.03)
    assert month.measured == pytest.approx(0.03) and month.passed
    assert sorted(month.records) == sorted([silent.attempt_id, told.attempt_id, hung_up_at_once.attempt_id])
    assert month.window_start == NOW - timedelta(days=30) and month.window_end == NOW
    day = rules["abandonment_rate_24_hours"]
    assert (day.counted, day.out_of, day.passed) == (3, 3, False)
    ring = rules["minimum_ring_before_no_answer"]
    assert (ring.records, ring.out_of, ring.passed) == ([short_ring.attempt_id], 2, False)
    message = rules["abandoned_calls_hear_message"]
    assert (message.records, message.out_of, message.passed) == ([silent.attempt_id], 2, False)
    assert not report.passed
    # The API returns it as is.
    assert report.model_dump(mode="json")["rules"][0]["rule"] == "abandonment_rate_30_days"


def test_the_report_uses_the_campaigns_target_and_the_amd_estimate() -> None:
    records = [
        *(answered(NOW - timedelta(hours=1)) for _ in range(98)),
        answered(NOW - timedelta(hours=1), connected=None, message=3.0),
        answered(NOW - timedelta(hours=1), amd=AmdVerdict.MACHINE, connected=None),
    ]
    strict = compliance_report(records, now=NOW, target=0.005, amd_false_positive_rate=0.5)
    day = next(rule for rule in strict.rules if rule.rule == "abandonment_rate_24_hours")
    assert day.estimated == pytest.approx(0.5) and day.counted == pytest.approx(1.5)
    assert day.out_of == pytest.approx(99.5) and not day.passed and day.limit == 0.005
    assert len(day.estimate_records) == 1
    assert compliance_report(records, now=NOW).passed
