"""Pacing: hand-worked decisions for each mode, the abandonment controller, the online estimates, bad
input, and properties over random floors."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.call_statistics import CallStatistics, StatisticsPrior, TalkTimes
from dialer.pacing import (
    AbandonmentWindow,
    FloorSnapshot,
    PacingMode,
    PacingSettings,
    abandonment_allowance,
    calls_to_place,
    lines_to_release,
)

NOW = 1000.0
NO_HISTORY: tuple[AbandonmentWindow, ...] = ()


def learned(answered: int, unanswered: int, ring_seconds: float = 10.0) -> CallStatistics:
    """Statistics after many calls, so that the prior no longer matters: every answer after
    `ring_seconds`, talk 180 s, wrap-up 15 s."""
    stats = CallStatistics.cold_start()
    for _ in range(answered):
        stats = stats.with_answered(ring_seconds)
    for _ in range(unanswered):
        stats = stats.with_unanswered()
    for _ in range(200):
        stats = stats.with_talk(180.0).with_wrap(15.0)
    return stats


CERTAIN = learned(answered=20_000, unanswered=0)  # every dial answers, 10 s after the dial
COIN = learned(answered=10_000, unanswered=10_000)  # half of the dials answer, 10 s after the dial
LATE_COIN = learned(answered=10_000, unanswered=10_000, ring_seconds=20.0)  # half answer, 20 s after


def decide(
    mode: PacingMode,
    floor: FloorSnapshot,
    stats: CallStatistics = COIN,
    windows: tuple[AbandonmentWindow, ...] = NO_HISTORY,
    **overrides: float | int | None,
) -> int:
    return calls_to_place(floor, stats, windows, PacingSettings(mode=mode, **overrides)).calls  # type: ignore[arg-type]


def floor(
    idle: int = 0,
    wrap_left: tuple[float, ...] = (),
    talk_lasted: tuple[float, ...] = (),
    rung: tuple[float, ...] = (),
    waiting: int = 0,
) -> FloorSnapshot:
    return FloorSnapshot(
        now=NOW,
        idle_agents=idle,
        wrap_up_ends=tuple(NOW + left for left in wrap_left),
        talk_starts=tuple(NOW - lasted for lasted in talk_lasted),
        ring_starts=tuple(NOW - lasted for lasted in rung),
        answered_waiting=waiting,
    )


# Preview, progressive and fixed ratio: counting.


def test_preview_never_dials_on_its_own() -> None:
    assert decide(PacingMode.PREVIEW, floor(idle=10)) == 0


@pytest.mark.parametrize(
    ("idle", "ringing", "waiting", "expected"),
    [
        (0, 0, 0, 0),  # no idle agents, no calls
        (3, 0, 0, 3),
        (3, 1, 0, 2),  # a ringing call already covers one idle agent
        (3, 5, 0, 0),
        (3, 0, 1, 2),  # an answered call waiting takes an idle agent
    ],
)
def test_progressive_places_one_call_per_uncovered_idle_agent(
    idle: int, ringing: int, waiting: int, expected: int
) -> None:
    snapshot = floor(idle=idle, talk_lasted=(30.0,) * 4, rung=(3.0,) * ringing, waiting=waiting)
    assert decide(PacingMode.PROGRESSIVE, snapshot) == expected


def test_progressive_respects_the_caps() -> None:
    assert decide(PacingMode.PROGRESSIVE, floor(idle=10), max_calls=4) == 4
    assert decide(PacingMode.PROGRESSIVE, floor(idle=10, rung=(1.0, 2.0)), max_lines=5) == 3


def test_fixed_ratio_keeps_its_lines_per_idle_agent() -> None:
    # 3 idle agents at 2.5 lines each: 7 lines, of which 2 are already ringing.
    assert decide(PacingMode.FIXED_RATIO, floor(idle=3, rung=(4.0, 9.0)), calls_per_idle_agent=2.5) == 5
    assert decide(PacingMode.FIXED_RATIO, floor(idle=0, talk_lasted=(10.0,)), calls_per_idle_agent=2.5) == 0


def test_no_agents_means_no_calls_in_every_mode() -> None:
    for mode in PacingMode:
        decision = calls_to_place(floor(), COIN, NO_HISTORY, PacingSettings(mode=mode))
        assert decision.calls == 0
    assert (
        "no agents" in calls_to_place(floor(), COIN, NO_HISTORY, PacingSettings(PacingMode.PREDICTIVE)).reason
    )


# Predictive: worked by hand with answers that are certain, then with a coin toss.


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (floor(idle=2), 2),  # every call answers ~10.5 s from now: one per free agent
        (floor(idle=2, wrap_left=(5.0,)), 3),  # free at 5 s, before any answer
        (floor(idle=2, wrap_left=(11.0,)), 3),  # free within 2 s of every answer (10-11 s)
        (floor(idle=2, wrap_left=(40.0,)), 2),  # free long after every answer
        (floor(idle=2, rung=(2.0,)), 1),  # a ringing call will take one of the two
        (floor(idle=2, rung=(2.0, 3.0, 4.0)), 0),  # ...three of them more than use both
        (floor(idle=2, rung=(2.0,), waiting=1), 0),
        (floor(idle=0, talk_lasted=(30.0, 60.0)), 0),  # talkers will not be through wrap-up in time
    ],
)
def test_predictive_with_certain_answers_matches_free_agents(snapshot: FloorSnapshot, expected: int) -> None:
    assert decide(PacingMode.PREDICTIVE, snapshot, stats=CERTAIN) == expected


def test_predictive_at_even_odds_accepts_the_risk_it_is_allowed() -> None:
    # One idle agent, half of the calls answer. The 2nd call is short of an agent if the 1st answers
    # (0.5); the 3rd if either of two answers (0.75; the approximation says 0.76).
    one_idle = floor(idle=1)
    assert decide(PacingMode.PREDICTIVE, one_idle, base_risk=0.3, max_risk=0.3) == 1
    assert decide(PacingMode.PREDICTIVE, one_idle, base_risk=0.55, max_risk=0.55) == 2
    assert decide(PacingMode.PREDICTIVE, one_idle, base_risk=0.8, max_risk=0.8) == 3


def test_predictive_counts_calls_ringing_by_their_chance_of_still_answering() -> None:
    # Answers come at 10 s: a call that has rung 12 s without one will not answer, one at 2 s may.
    fresh = decide(PacingMode.PREDICTIVE, floor(idle=4, rung=(2.0,) * 4))
    stale = decide(PacingMode.PREDICTIVE, floor(idle=4, rung=(12.0,) * 4))
    none = decide(PacingMode.PREDICTIVE, floor(idle=4))
    assert fresh < none
    assert stale == none


def test_predictive_dials_ahead_for_wrap_ups_and_long_calls() -> None:
    busy = floor(idle=0, wrap_left=(3.0, 4.0, 6.0))
    assert decide(PacingMode.PREDICTIVE, busy) > decide(PacingMode.PROGRESSIVE, busy) == 0


def test_predictive_never_places_fewer_calls_than_progressive() -> None:
    # Allowance spent, and answers unsure: still one call per uncovered idle agent.
    spent = (AbandonmentWindow("24h", answered=100, abandoned=20),)
    assert decide(PacingMode.PREDICTIVE, floor(idle=3), windows=spent) == 3


def test_predictive_reports_its_figures() -> None:
    decision = calls_to_place(
        floor(idle=2, talk_lasted=(100.0,), rung=(5.0,)),
        COIN,
        NO_HISTORY,
        PacingSettings(PacingMode.PREDICTIVE),
    )
    figures = decision.figures
    assert figures["answer_rate"] == pytest.approx(0.5, abs=0.01)
    assert figures["ring_time_median"] == pytest.approx(10.5, abs=0.1)
    assert figures["talk_time_mean"] == pytest.approx(180, rel=0.05)
    assert figures["ringing"] == 1 and figures["idle_agents"] == 2
    assert decision.reason.startswith("predictive")


# The abandonment controller.


def test_controller_spends_the_allowance_when_under_target_and_backs_off_when_over() -> None:
    config = PacingSettings(PacingMode.PREDICTIVE, abandonment_target=0.03, target_margin=0.001)
    at_aim, slack = abandonment_allowance([AbandonmentWindow("24h", 1000, 29)], config)
    assert slack == pytest.approx(0.0) and at_aim == pytest.approx(config.base_risk)
    under, _ = abandonment_allowance([AbandonmentWindow("24h", 1000, 20)], config)
    over, over_slack = abandonment_allowance([AbandonmentWindow("24h", 1000, 40)], config)
    assert over_slack == pytest.approx(-11.0)
    assert over == config.min_risk < at_aim < under <= config.max_risk


def test_a_campaign_that_may_abandon_nothing_dials_like_progressive() -> None:
    busy = floor(idle=2, wrap_left=(4.0, 8.0), talk_lasted=(50.0, 120.0))
    none_allowed = decide(PacingMode.PREDICTIVE, busy, abandonment_target=0.0, target_margin=0.0)
    assert none_allowed == decide(PacingMode.PROGRESSIVE, busy) == 2
    assert decide(PacingMode.PREDICTIVE, busy) > 2


def test_controller_on_a_large_floor_reacts_to_the_same_slack_more_gently() -> None:
    # 6 calls of slack: at 5 agents the scale is the 3-call floor (risk x e^2); at 50 agents it is
    # 0.2 x 50 = 10 calls (risk x e^0.6), the same few minutes of allowance as on a small floor.
    config = PacingSettings(PacingMode.PREDICTIVE, slack_scale=3.0, slack_scale_per_agent=0.2)
    under = [AbandonmentWindow("24h", 1000, 23)]  # slack 29 - 23 = 6 calls
    small, slack = abandonment_allowance(under, config, agents=5)
    large, _ = abandonment_allowance(under, config, agents=50)
    assert slack == pytest.approx(6.0)
    assert small == pytest.approx(config.base_risk * math.exp(2.0))
    assert large == pytest.approx(config.base_risk * math.exp(0.6))
    over = [AbandonmentWindow("24h", 1000, 35)]  # 6 calls over
    assert abandonment_allowance(over, config, agents=50)[0] == pytest.approx(
        config.base_risk * math.exp(-0.6)
    )
    # Without the agents, or with the per-agent scale off, the floor scale alone decides.
    assert abandonment_allowance(under, config)[0] == pytest.approx(small)
    plain = replace(config, slack_scale_per_agent=0.0)
    assert abandonment_allowance(under, plain, agents=50)[0] == pytest.approx(small)


def test_controller_obeys_the_tightest_window() -> None:
    config = PacingSettings(PacingMode.PREDICTIVE)
    month_fine_day_bad = [AbandonmentWindow("30d", 50_000, 100), AbandonmentWindow("24h", 500, 30)]
    risk, slack = abandonment_allowance(month_fine_day_bad, config)
    assert slack == pytest.approx(config.aim * 500 - 30)
    assert risk == config.min_risk


def test_predictive_dials_less_when_the_rolling_rate_is_above_target() -> None:
    busy = floor(idle=1, wrap_left=(4.0, 8.0, 12.0), talk_lasted=(50.0, 120.0, 300.0, 20.0))
    over = (AbandonmentWindow("24h", 400, 30),)
    on_aim = (AbandonmentWindow("24h", 1000, 29),)
    under = (AbandonmentWindow("24h", 400, 0),)
    calls = [decide(PacingMode.PREDICTIVE, busy, windows=w) for w in (over, on_aim, under)]
    assert calls[0] < calls[1] < calls[2]


# Releasing surplus ringing lines.


def release(snapshot: FloorSnapshot, stats: CallStatistics = LATE_COIN, **overrides: object) -> int:
    settings_ = PacingSettings(PacingMode.PREDICTIVE, release_surplus_lines=True, **overrides)  # type: ignore[arg-type]
    return calls_to_place(snapshot, stats, NO_HISTORY, settings_).release


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        # Two calls past the minimum ring, each answering at 20 s with even odds; no agent until long
        # after: each is an abandoned call if it answers, so both go.
        (floor(idle=0, talk_lasted=(30.0, 60.0), rung=(16.0, 17.0)), 2),
        # One agent free: whichever call answers takes it, the other one is short if both answer
        # (1 in 2): release one, keep one, which can no longer be short.
        (floor(idle=1, rung=(16.0, 17.0)), 1),
        (floor(idle=2, rung=(16.0, 17.0)), 0),  # an agent for each: nothing to release
        (floor(idle=0, wrap_left=(3.0, 3.0), rung=(16.0, 17.0)), 0),  # free before the answers at 20 s
        (floor(idle=0, talk_lasted=(30.0,), rung=(14.9, 10.0)), 0),  # not yet rung the legal minimum
        # Past the answer time it would likely have had, but abandoned for sure if it answered now.
        (floor(idle=0, talk_lasted=(30.0,), rung=(22.0,)), 1),
    ],
)
def test_predictive_releases_ringing_lines_that_would_find_no_agent(
    snapshot: FloorSnapshot, expected: int
) -> None:
    assert release(snapshot) == expected


def test_release_is_reported_and_the_calls_placed_count_on_it() -> None:
    snapshot = floor(idle=1, rung=(16.0, 17.0))
    decision = calls_to_place(
        snapshot, LATE_COIN, NO_HISTORY, PacingSettings(PacingMode.PREDICTIVE, release_surplus_lines=True)
    )
    assert decision.release == 1 and decision.figures["lines_released"] == 1
    assert "release 1 surplus" in decision.reason
    # Off by default: a caller that does not hang the lines up must not have calls placed on it.
    kept = calls_to_place(snapshot, LATE_COIN, NO_HISTORY, PacingSettings(PacingMode.PREDICTIVE))
    assert kept.release == 0 and kept.figures["lines_released"] == 0
    assert kept.calls <= decision.calls


def test_release_waits_for_a_longer_minimum_ring_when_configured() -> None:
    snapshot = floor(idle=0, talk_lasted=(30.0, 60.0), rung=(16.0, 17.0))
    assert release(snapshot, min_ring_seconds=17.0) == 1  # only the call at 17 s may go
    assert release(snapshot, min_ring_seconds=18.0) == 0


def test_a_release_threshold_above_any_risk_keeps_every_line() -> None:
    snapshot = floor(idle=1, rung=(16.0, 17.0))
    assert release(snapshot, release_risk_factor=1.0) == 1
    assert release(snapshot, release_risk_factor=1000.0) == 0


def test_other_modes_never_release() -> None:
    snapshot = floor(idle=0, talk_lasted=(30.0, 60.0), rung=(16.0, 17.0))
    for mode in (PacingMode.PREVIEW, PacingMode.PROGRESSIVE, PacingMode.FIXED_RATIO):
        config = PacingSettings(mode=mode, release_surplus_lines=True)
        assert calls_to_place(snapshot, LATE_COIN, NO_HISTORY, config).release == 0


def test_lines_to_release_names_the_youngest_calls_past_the_minimum_ring() -> None:
    snapshot = floor(idle=0, talk_lasted=(30.0,), rung=(16.0, 3.0, 18.0, 15.5, 14.0))
    config = PacingSettings(PacingMode.PREDICTIVE, release_surplus_lines=True)
    decision = calls_to_place(snapshot, LATE_COIN, NO_HISTORY, config)
    assert decision.release == 3
    assert lines_to_release(snapshot, decision, config) == [3, 0, 2]  # rung 15.5, 16 and 18 s
    two = replace(decision, release=2)
    assert lines_to_release(snapshot, two, config) == [3, 0]
    with pytest.raises(ValueError, match="only 3 have rung 15 s"):
        lines_to_release(snapshot, replace(decision, release=4), config)


def test_a_minimum_ring_under_the_legal_15_seconds_is_refused() -> None:
    with pytest.raises(ValueError, match="min_ring_seconds must be at least 15"):
        PacingSettings(PacingMode.PREDICTIVE, min_ring_seconds=14.0)
    with pytest.raises(ValueError, match="release_risk_factor"):
        PacingSettings(PacingMode.PREDICTIVE, release_risk_factor=0.0)


# Online estimates.


def test_answer_rate_is_learned_from_resolved_dials() -> None:
    stats = learned(answered=300, unanswered=700)
    assert stats.answer_rate().mean == pytest.approx((0.5 * 10 + 300) / 1010)
    assert stats.answer_rate().variance < CallStatistics.cold_start().answer_rate().variance


def test_cold_start_answer_rate_is_the_prior_and_learns_from_calls_still_ringing() -> None:
    cold = CallStatistics.cold_start()
    assert cold.answer_rate().mean == pytest.approx(0.5)
    # Twenty calls at 24 s without an answer: most dials do not answer, even before any is released.
    assert cold.answer_rate([24.0] * 20).mean < 0.25
    # Calls that have only just been dialed say nothing yet.
    assert cold.answer_rate([0.0] * 20).mean == pytest.approx(0.5)


def test_released_lines_count_by_the_answers_they_would_have_given() -> None:
    # 1000 dials, half answer: 250 at 8 s, 250 at 20 s. Of the 750 still ringing at 15 s, the dialer
    # hangs up on 375: it sees only 125 of the late answers, and must not conclude that p = 0.375.
    stats = CallStatistics.cold_start()
    for _ in range(250):
        stats = stats.with_answered(8.0)
    for _ in range(125):
        stats = stats.with_answered(20.0)
    for _ in range(375):
        stats = stats.with_released(15.0)
    for _ in range(250):
        stats = stats.with_unanswered()
    assert stats.answer_rate().mean == pytest.approx(0.5, abs=0.01)
    assert stats.ring_times().cdf(15.0) == pytest.approx(0.5, abs=0.02)
    # A line released only at the timeout was not cut short: a plain no-answer.
    assert CallStatistics.cold_start().with_released(25.0).released_counts == ()


def test_ring_times_are_learned() -> None:
    ring = CERTAIN.ring_times()
    assert ring.quantile(0.5) == pytest.approx(10.5, abs=0.05)
    assert ring.cdf(9.9) < 0.01 and ring.cdf(11.0) > 0.99
    assert ring.cdf(-1) == 0.0 and ring.cdf(25.0) == 1.0
    cold = CallStatistics.cold_start().ring_times()
    assert cold.quantile(0.5) == pytest.approx(12.5)  # the prior: even over 0-25 s


def test_talk_and_wrap_times_are_learned() -> None:
    stats = CallStatistics.cold_start()
    for seconds in (60.0, 120.0, 240.0, 480.0) * 250:
        stats = stats.with_talk(seconds).with_wrap(10.0)
    talk = stats.talk_times()
    assert math.exp(talk.log_mean) == pytest.approx(169.7, rel=0.02)  # geometric mean of the four
    assert stats.wrap_mean() == pytest.approx(10.0, abs=0.1)


def test_a_long_call_is_less_likely_to_end_soon_than_a_fresh_one_on_a_skewed_distribution() -> None:
    talk = TalkTimes(log_mean=math.log(180) - math.log(2) / 2, log_sd=math.sqrt(math.log(2)))
    assert talk.mean == pytest.approx(180)
    assert talk.ends_within(0.0, 60.0) == pytest.approx(1 - talk.survival(60.0))
    assert talk.ends_within(600.0, 12.0) < talk.ends_within(120.0, 12.0)
    assert talk.ends_within_each([120.0, 600.0], 12.0) == pytest.approx(
        [talk.ends_within(120.0, 12.0), talk.ends_within(600.0, 12.0)]
    )


# Bad input.


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: FloorSnapshot(now=NOW, idle_agents=-1), "idle_agents"),
        (lambda: FloorSnapshot(now=NOW, idle_agents=1, answered_waiting=-2), "answered_waiting"),
        (lambda: FloorSnapshot(now=NOW, idle_agents=True), "idle_agents"),
        (lambda: FloorSnapshot(now=math.nan, idle_agents=1), "now"),
        (lambda: FloorSnapshot(now=NOW, idle_agents=1, talk_starts=(NOW + 5,)), "after now"),
        (lambda: FloorSnapshot(now=NOW, idle_agents=1, ring_starts=(math.inf,)), "ring start"),
        (lambda: AbandonmentWindow("24h", answered=-1, abandoned=0), "answered"),
        (lambda: AbandonmentWindow("24h", answered=3, abandoned=4), "abandoned call is an answered"),
        (lambda: PacingSettings(PacingMode.PREDICTIVE, abandonment_target=1.5), "abandonment_target"),
        (lambda: PacingSettings(PacingMode.PREDICTIVE, target_margin=-0.01), "target_margin"),
        (lambda: PacingSettings(PacingMode.PREDICTIVE, max_calls=-1), "max_calls"),
        (lambda: PacingSettings(PacingMode.PREDICTIVE, min_risk=0.5, base_risk=0.1), "risks"),
        (lambda: PacingSettings(PacingMode.PREDICTIVE, slack_scale_per_agent=-0.1), "slack_scale_per_agent"),
        (lambda: StatisticsPrior(answer_rate=0.0), "answer_rate"),
        (lambda: CallStatistics.cold_start().with_answered(-3.0), "ring_seconds"),
        (lambda: CallStatistics.cold_start().with_talk(math.nan), "talk seconds"),
        (lambda: CallStatistics.cold_start().with_released(-1.0), "rung_seconds"),
        (lambda: CallStatistics(dials_resolved=1, dials_answered=2), "ring_counts"),
        (lambda: CallStatistics.cold_start().ring_times().quantile(1.5), "probability"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_inconsistent_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match="answered out of"):
        CallStatistics(dials_resolved=0, dials_answered=1, ring_counts=(1,) + (0,) * 24)


# Properties over random floors.

SECONDS = st.floats(min_value=0, max_value=25, allow_nan=False)


@st.composite
def floors(draw: st.DrawFn) -> FloorSnapshot:
    return floor(
        idle=draw(st.integers(0, 30)),
        wrap_left=tuple(draw(st.lists(st.floats(-2, 30), max_size=15))),
        talk_lasted=tuple(draw(st.lists(st.floats(0, 3000), max_size=40))),
        rung=tuple(draw(st.lists(SECONDS, max_size=40))),
        waiting=draw(st.integers(0, 3)),
    )


@st.composite
def statistics(draw: st.DrawFn) -> CallStatistics:
    stats = CallStatistics.cold_start()
    for answered in draw(st.lists(st.booleans(), max_size=60)):
        stats = stats.with_answered(draw(SECONDS)) if answered else stats.with_unanswered()
    for talk in draw(st.lists(st.floats(0, 2000), max_size=10)):
        stats = stats.with_talk(talk)
    return stats


windows = st.lists(
    st.tuples(st.integers(0, 5000), st.integers(0, 300)).map(
        lambda pair: AbandonmentWindow("w", answered=max(pair), abandoned=min(pair))
    ),
    max_size=2,
)


@settings(max_examples=150, deadline=None)
@given(
    snapshot=floors(),
    stats=statistics(),
    history=windows,
    mode=st.sampled_from(PacingMode),
    max_calls=st.integers(0, 40),
    max_lines=st.none() | st.integers(0, 60),
    release_lines=st.booleans(),
)
def test_decisions_stay_within_zero_and_the_caps(
    snapshot: FloorSnapshot,
    stats: CallStatistics,
    history: list[AbandonmentWindow],
    mode: PacingMode,
    max_calls: int,
    max_lines: int | None,
    release_lines: bool,
) -> None:
    config = PacingSettings(
        mode=mode,
        max_calls=max_calls,
        max_lines=max_lines,
        calls_per_idle_agent=3.0,
        release_surplus_lines=release_lines,
    )
    decision = calls_to_place(snapshot, stats, history, config)
    assert 0 <= decision.calls <= max_calls
    if max_lines is not None:
        assert decision.calls <= max(0, max_lines - len(snapshot.ring_starts))
    if mode is PacingMode.PREVIEW:
        assert decision.calls == 0
    if mode is PacingMode.PREDICTIVE:
        progressive = calls_to_place(
            snapshot,
            stats,
            history,
            PacingSettings(PacingMode.PROGRESSIVE, max_calls=max_calls, max_lines=max_lines),
        )
        assert decision.calls >= progressive.calls
    assert all(math.isfinite(value) for value in decision.figures.values())
    if mode is not PacingMode.PREDICTIVE or not release_lines:
        assert decision.release == 0
    released = lines_to_release(snapshot, decision, config)
    assert len(released) == decision.release == len(set(released))
    # Never a call that has not rung the legal minimum; never while an agent is free for every call.
    assert all(NOW - snapshot.ring_starts[index] >= 15.0 for index in released)
    if snapshot.idle_agents - snapshot.answered_waiting >= len(snapshot.ring_starts):
        assert decision.release == 0
