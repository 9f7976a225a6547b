"""What a dialer learns from its own calls: the answer rate, how long an answered line rang, how long
agents talk and wrap up. Pure and immutable: each observation returns a new `CallStatistics`.

    stats = CallStatistics.cold_start()
    stats = stats.with_answered(ring_seconds=11.2).with_unanswered().with_talk(95.0).with_wrap(15.0)

Every estimate starts from a prior worth a handful of calls, so a campaign's first decisions are sane
and a few hundred real calls outweigh it. The answer-rate prior is deliberately high: guessing that more
calls answer than really do makes the dialer place fewer calls, which costs idle time, never an
abandoned call. Nothing is forgotten: the counts are cumulative, and a runner starts each run cold.
Seeding it from the campaign's latest dials was measured and left out: it gained at most 0.8 points of
occupancy when those dials matched today's callees, and lost 3.7 when they did not
(docs/dialer_pacing.md, "Starting from the campaign's history").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

# Enough fixed-point rounds for the censored answer rate: each round moves it by a factor of roughly
# (1 - F) of the previous change, and the first one does nearly all the work.
_ANSWER_RATE_ROUNDS = 3


def _finite_non_negative(name: str, value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class StatisticsPrior:
    """What to believe before the first call. The defaults are generic outbound figures, not tuned to
    any one campaign."""

    answer_rate: float = 0.5
    answer_rate_weight: float = 10.0  # worth this many resolved dials
    ring_timeout: float = 25.0  # seconds an unanswered line rings before the dialer releases it
    ring_weight: float = 10.0  # worth this many answers, spread evenly over 0..ring_timeout
    talk_mean: float = 150.0  # seconds
    talk_cv: float = 1.0  # standard deviation / mean; call lengths are strongly right-skewed
    talk_weight: float = 5.0
    wrap_mean: float = 20.0  # seconds
    wrap_weight: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.answer_rate < 1:
            raise ValueError(f"answer_rate must be between 0 and 1 exclusive, got {self.answer_rate!r}")
        if not self.ring_timeout >= 1 or not math.isfinite(self.ring_timeout):
            raise ValueError(f"ring_timeout must be at least 1 second, got {self.ring_timeout!r}")
        for name in ("answer_rate_weight", "ring_weight", "talk_mean", "talk_cv", "talk_weight"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        _finite_non_negative("wrap_mean", self.wrap_mean)
        if not math.isfinite(self.wrap_weight) or self.wrap_weight <= 0:
            raise ValueError(f"wrap_weight must be a finite number > 0, got {self.wrap_weight!r}")


@dataclass(frozen=True, slots=True)
class Estimate:
    mean: float
    variance: float  # of the estimate itself (how unsure we are), not of the quantity


@dataclass(frozen=True, slots=True)
class RingTimes:
    """Ring time until answer, for calls that are answered: a piecewise-linear CDF on whole seconds."""

    cdf_points: tuple[float, ...]  # CDF at 0, 1, 2, ... len-1 seconds; the last is 1.0
    timeout: float = field(init=False)

    def __post_init__(self) -> None:
        if len(self.cdf_points) < 2 or self.cdf_points[0] != 0.0 or self.cdf_points[-1] != 1.0:
            raise ValueError("cdf_points must run from 0.0 to 1.0 over at least one second")
        object.__setattr__(self, "timeout", float(len(self.cdf_points) - 1))

    def cdf(self, seconds: float) -> float:
        """P(an answered call is answered within `seconds` of the dial)."""
        if seconds <= 0:
            return 0.0
        if seconds >= self.timeout:
            return 1.0
        whole = int(seconds)
        points = self.cdf_points
        low = points[whole]
        return low + (points[whole + 1] - low) * (seconds - whole)

    def quantile(self, probability: float) -> float:
        """The ring time that `probability` of answered calls are answered within."""
        if not 0 <= probability <= 1:
            raise ValueError(f"probability must be within [0, 1], got {probability!r}")
        points = self.cdf_points
        for second in range(1, len(points)):
            if points[second] >= probability:
                low = points[second - 1]
                step = points[second] - low
                return second - 1 + ((probability - low) / step if step > 0 else 0.0)
        return self.timeout


@dataclass(frozen=True, slots=True)
class TalkTimes:
    """Talk time as a lognormal: the log of the duration is normal with these parameters."""

    log_mean: float
    log_sd: float

    @property
    def mean(self) -> float:
        return math.exp(self.log_mean + self.log_sd**2 / 2)

    def survival(self, seconds: float) -> float:
        """P(a call lasts longer than `seconds`)."""
        if seconds <= 0:
            return 1.0
        return 0.5 * math.erfc((math.log(seconds) - self.log_mean) / (self.log_sd * math.sqrt(2)))

    def ends_within_each(self, elapsed: Sequence[float], seconds: float) -> list[float]:
        """`ends_within` for many calls at once (the pacing loop asks for every talker, every second)."""
        if seconds <= 0:
            return [0.0] * len(elapsed)
        erfc, log = math.erfc, math.log
        mean, scale = self.log_mean, 1 / (self.log_sd * math.sqrt(2))
        chances = []
        for lasted in elapsed:
            alive = 0.5 * erfc((log(lasted) - mean) * scale) if lasted > 0 else 1.0
            if alive <= 0.0:
                chances.append(self.ends_within(lasted, seconds))
                continue
            later = 0.5 * erfc((log(lasted + seconds) - mean) * scale)
            chances.append(max(0.0, 1.0 - later / alive))
        return chances

    def ends_within(self, elapsed: float, seconds: float) -> float:
        """P(a call that has lasted `elapsed` ends within the next `seconds`): the hazard that knowing
        the elapsed time buys over a plain average."""
        if seconds <= 0:
            return 0.0
        alive = self.survival(elapsed)
        if alive <= 0.0:
            # Far out in the tail the ratio is 0/0; a call that long is as likely to end as any.
            return 1.0 - math.exp(-seconds / self.mean)
        return max(0.0, 1.0 - self.survival(elapsed + seconds) / alive)


@dataclass(frozen=True, slots=True)
class CallStatistics:
    prior: StatisticsPrior = field(default_factory=StatisticsPrior)
    dials_resolved: int = 0  # answered, or released unanswered
    dials_answered: int = 0
    ring_counts: tuple[int, ...] = ()  # answers per whole second of ringing, 0..ring_timeout
    # Dials the dialer hung up on, unanswered, before the timeout, by the whole second they had rung
    # (empty: none). They are censored: they would still have answered with some chance.
    released_counts: tuple[int, ...] = ()
    talks: int = 0
    talk_log_sum: float = 0.0
    talk_log_square_sum: float = 0.0
    wraps: int = 0
    wrap_seconds: float = 0.0

    @classmethod
    def cold_start(cls, prior: StatisticsPrior | None = None) -> CallStatistics:
        prior = prior or StatisticsPrior()
        return cls(prior=prior, ring_counts=(0,) * math.ceil(prior.ring_timeout))

    def __post_init__(self) -> None:
        if len(self.ring_counts) != math.ceil(self.prior.ring_timeout):
            raise ValueError("ring_counts must have one bin per second of ring_timeout; use cold_start()")
        if min((self.dials_answered, self.talks, self.wraps, *self.ring_counts), default=0) < 0:
            raise ValueError("counts must be >= 0")
        if self.dials_answered > self.dials_resolved:
            raise ValueError(f"{self.dials_answered} answered out of {self.dials_resolved} resolved dials")
        if sum(self.ring_counts) != self.dials_answered:
            raise ValueError("ring_counts must hold one ring time per answered dial")
        if self.released_counts:
            if len(self.released_counts) != len(self.ring_counts) or min(self.released_counts) < 0:
                raise ValueError("released_counts must hold a count >= 0 per second of ring_timeout")
            if self.dials_answered + sum(self.released_counts) > self.dials_resolved:
                raise ValueError("released dials are resolved dials that were not answered")
        for name in ("talk_log_sum", "talk_log_square_sum", "wrap_seconds"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")

    # Observations.

    def with_answered(self, ring_seconds: float) -> CallStatistics:
        _finite_non_negative("ring_seconds", ring_seconds)
        second = min(int(ring_seconds), len(self.ring_counts) - 1)
        counts = list(self.ring_counts)
        counts[second] += 1
        return replace(
            self,
            dials_resolved=self.dials_resolved + 1,
            dials_answered=self.dials_answered + 1,
            ring_counts=tuple(counts),
        )

    def with_unanswered(self) -> CallStatistics:
        """A dial that ended without a live answer (released at the timeout, busy, failed)."""
        return replace(self, dials_resolved=self.dials_resolved + 1)

    def with_released(self, rung_seconds: float) -> CallStatistics:
        """A dial the dialer hung up on itself, unanswered, after `rung_seconds` (a surplus line).
        Not the same as `with_unanswered`: had it rung on, it might have answered."""
        _finite_non_negative("rung_seconds", rung_seconds)
        if rung_seconds >= self.prior.ring_timeout:
            return self.with_unanswered()  # it rang the whole time: nothing was cut short
        counts = list(self.released_counts or (0,) * len(self.ring_counts))
        counts[int(rung_seconds)] += 1
        return replace(self, dials_resolved=self.dials_resolved + 1, released_counts=tuple(counts))

    def with_talk(self, seconds: float) -> CallStatistics:
        _finite_non_negative("talk seconds", seconds)
        log = math.log(max(seconds, 1.0))  # a sub-second call is a glitch, not a 0-length talk
        return replace(
            self,
            talks=self.talks + 1,
            talk_log_sum=self.talk_log_sum + log,
            talk_log_square_sum=self.talk_log_square_sum + log * log,
        )

    def with_wrap(self, seconds: float) -> CallStatistics:
        _finite_non_negative("wrap-up seconds", seconds)
        return replace(self, wraps=self.wraps + 1, wrap_seconds=self.wrap_seconds + seconds)

    # Estimates.

    def _answers_by_second(self) -> list[float]:
        """Answers per second of ringing, as if no line had been released: each answer in second s
        also stands for those that released lines would have given, i.e. it is divided by the share
        of dials not yet released by s (inverse probability of censoring weighting, which equals the
        Kaplan-Meier estimate here). Without releases, the plain counts."""
        if not self.released_counts:
            return [float(count) for count in self.ring_counts]
        at_risk = float(self.dials_resolved)
        kept = 1.0  # share of dials not released before this second
        answers = []
        for answered, released in zip(self.ring_counts, self.released_counts, strict=True):
            answers.append(answered / kept if kept > 0 else 0.0)
            if at_risk > 0:
                kept *= 1 - released / at_risk
            at_risk -= answered + released
        return answers

    def ring_times(self) -> RingTimes:
        prior = self.prior
        bins = len(self.ring_counts)
        per_bin_prior = prior.ring_weight / bins
        answers = self._answers_by_second()
        total = prior.ring_weight + sum(answers)
        points = [0.0]
        running = 0.0
        for count in answers:
            running += count + per_bin_prior
            points.append(running / total)
        points[-1] = 1.0
        return RingTimes(tuple(points))

    def talk_times(self) -> TalkTimes:
        prior = self.prior
        prior_log_var = math.log1p(prior.talk_cv**2)
        prior_log_mean = math.log(prior.talk_mean) - prior_log_var / 2
        weight = prior.talk_weight + self.talks
        log_mean = (prior.talk_weight * prior_log_mean + self.talk_log_sum) / weight
        second_moment = (
            prior.talk_weight * (prior_log_var + prior_log_mean**2) + self.talk_log_square_sum
        ) / weight
        log_var = max(second_moment - log_mean**2, 1e-6)
        return TalkTimes(log_mean=log_mean, log_sd=math.sqrt(log_var))

    def wrap_mean(self) -> float:
        prior = self.prior
        return (prior.wrap_weight * prior.wrap_mean + self.wrap_seconds) / (prior.wrap_weight + self.wraps)

    def answer_rate(
        self, ringing_elapsed: Sequence[float] = (), ring_times: RingTimes | None = None
    ) -> Estimate:
        """The live-answer rate, as a Beta posterior.

        Calls still ringing count too: one that has rung for `r` seconds without an answer will be
        answered with probability p(1 - F(r)) / (1 - p F(r)). Without them a young campaign only
        learns from resolved dials, and answered ones resolve sooner than unanswered ones (which
        wait for the timeout), so the early rate would be too high for the first half minute."""
        prior = self.prior
        # Released lines count by the answers they would have given (see _answers_by_second).
        answered = sum(self._answers_by_second()) if self.released_counts else float(self.dials_answered)
        answered = min(answered, float(self.dials_resolved))
        alpha = prior.answer_rate * prior.answer_rate_weight + answered
        beta = (1 - prior.answer_rate) * prior.answer_rate_weight + self.dials_resolved - answered
        if not ringing_elapsed:
            return _beta_estimate(alpha, beta)
        ring = ring_times or self.ring_times()
        answered_so_far = [ring.cdf(elapsed) for elapsed in ringing_elapsed]
        rate = alpha / (alpha + beta)
        expected = 0.0
        for _ in range(_ANSWER_RATE_ROUNDS):
            expected = sum(rate * (1 - f) / (1 - rate * f) for f in answered_so_far)
            rate = (alpha + expected) / (alpha + beta + len(answered_so_far))
        return _beta_estimate(alpha + expected, beta + len(answered_so_far) - expected)


def _beta_estimate(alpha: float, beta: float) -> Estimate:
    total = alpha + beta
    return Estimate(mean=alpha / total, variance=alpha * beta / (total * total * (total + 1)))
