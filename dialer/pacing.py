"""How many calls to place now: a pure function of what the dialer can see.

    decision = calls_to_place(floor, statistics, abandonment, settings)
    decision.calls    # how many to dial now
    decision.reason   # one line for the log
    decision.figures  # the numbers behind it, for the log and the stats API
    decision.release  # predictive: surplus ringing lines to hang up now; lines_to_release() names them

`floor` is the moment's snapshot (agents idle, in wrap-up with their end time, talking since when; calls
ringing since when; answered calls waiting for an agent), `statistics` what past calls taught
(dialer.call_statistics), `abandonment` the rolling windows the law measures. Time is `floor.now`, on
whatever clock the caller keeps in seconds; nothing here reads a clock, a socket or a random source.
Call it every second or so and whenever an agent frees up; calls placed by earlier decisions come back
as ringing calls, so repeated decisions do not pile up.

The modes:
- preview: none; the agent places each call.
- progressive: one call per idle agent that no ringing call already covers. It cannot abandon a call:
  there is always an agent for every call that can answer.
- fixed_ratio: `calls_per_idle_agent` lines in progress per idle agent: the classic baseline.
- predictive: dial for agents that are not free yet. For a new call answered `tau` seconds from now
  (tau drawn from the measured ring times), the agents free by then (+ the 2 s answer window) are the
  idle ones, the wrap-ups ending by then (their end is known) and the talkers whose call ends early
  enough given how long it has lasted; the answered calls competing for them come from the calls
  already ringing (each by its chance of answering given that it has not yet) and the other new calls.
  With these as sums of independent chances, a normal approximation (with a skewness correction: sums
  of small chances have a long upper tail) gives the chance that agents run short, at tau or at any
  later point (an early answer takes the agent a later one needed). Calls are added while that
  chance, averaged over tau, stays under a threshold that the abandonment controller sets; and never
  fewer than progressive would place, which is safe. There is no separate safety margin in agents:
  the threshold is the margin, in the unit the law counts.

Predictive also releases surplus lines: a call that has rung the legal minimum (15 s) unanswered may be
hung up on, which is not an abandonment. Before placing calls it releases, youngest first, the calls
past that minimum whose chance of finding no agent if they answer (the same forecast, at their own
answer time or later) is above `release_risk_factor` times the risk accepted for a new call, and places
calls counting on them being gone.

The controller is a budget: over each rolling window, `aim * answered - abandoned` is how many more
calls the dialer may still abandon and stay at its aim (the target minus a margin). The threshold is
`base * exp(slack / slack_scale)`, clipped: it spends an unused allowance and backs off to the
progressive floor when the allowance is spent. The scale grows with the agents logged in, so that a
large floor's many calls do not swing the threshold faster than a small floor's. The slack is the
integral of the rate's error, so this is an integral controller that needs no state between decisions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from dialer.call_statistics import CallStatistics

# Where a new call's answer is likely to land: these quantiles of the measured ring times, equally
# weighted. Five points resolve a 5-25 s spread well enough; more cost time on every decision.
_ANSWER_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)
# Seconds from now at which a ringing call's answer is weighed when deciding to release it: fine
# where its answer can land soon, coarse beyond.
_RELEASE_GRID = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 13.0, 17.0, 21.0, 25.0)
# An unanswered call must ring at least this long before the dialer gives up on it.
LEGAL_MIN_RING_SECONDS = 15.0


class PacingMode(StrEnum):
    PREVIEW = "preview"
    PROGRESSIVE = "progressive"
    PREDICTIVE = "predictive"
    FIXED_RATIO = "fixed_ratio"


def _check_time(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite time in seconds, got {value!r}")


@dataclass(frozen=True, slots=True)
class FloorSnapshot:
    """What the dialer sees at `now`. Times are seconds on the caller's clock."""

    now: float
    idle_agents: int
    wrap_up_ends: tuple[float, ...] = ()  # one per agent in wrap-up: when it ends
    talk_starts: tuple[float, ...] = ()  # one per agent talking: when the talk began
    ring_starts: tuple[float, ...] = ()  # one per call ringing: when it was dialed
    answered_waiting: int = 0  # answered calls not yet with an agent (inside their answer window)

    def __post_init__(self) -> None:
        _check_time("now", self.now)
        for name in ("idle_agents", "answered_waiting"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        for end in self.wrap_up_ends:
            # A wrap-up that ended a moment ago is an agent about to show as idle: counted as free now.
            _check_time("a wrap-up end", end)
        for name, starts in (("a talk start", self.talk_starts), ("a ring start", self.ring_starts)):
            for start in starts:
                _check_time(name, start)
                if start > self.now:
                    raise ValueError(f"{name} ({start!r}) is after now ({self.now!r})")

    @property
    def agents(self) -> int:
        return self.idle_agents + len(self.wrap_up_ends) + len(self.talk_starts)


@dataclass(frozen=True, slots=True)
class AbandonmentWindow:
    """Answered and abandoned calls over one rolling window the law measures (24 h, 30 days)."""

    label: str
    answered: int
    abandoned: int

    def __post_init__(self) -> None:
        for name in ("answered", "abandoned"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{self.label}: {name} must be a whole number >= 0, got {value!r}")
        if self.abandoned > self.answered:
            raise ValueError(
                f"{self.label}: {self.abandoned} abandoned out of {self.answered} answered: an abandoned "
                "call is an answered call"
            )

    @property
    def rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True)
class PacingSettings:
    mode: PacingMode
    abandonment_target: float = 0.03  # the legal ceiling, abandoned / answered
    target_margin: float = 0.001  # aim this far under the target, so that what is in flight stays under
    answer_window: float = 2.0  # seconds an answered call may wait for an agent
    max_calls: int = 100  # per decision
    max_lines: int | None = None  # lines ringing at once (trunk capacity); None: no limit
    calls_per_idle_agent: float = 2.0  # fixed_ratio only
    # The controller: the chance of abandoning the marginal call that it accepts at zero slack, its
    # bounds, and how many calls of slack multiply it by e.
    base_risk: float = 0.03
    min_risk: float = 0.002
    max_risk: float = 0.5
    slack_scale: float = 3.0
    # On a large floor the slack scale is at least this many calls per agent logged in: 50 agents
    # answer ten times the calls of 5 in the same minutes, so a fixed 3-call scale would swing the
    # accepted risk ten times faster there, on abandonments that are mostly chance. A steadier risk
    # spends the same allowance for more occupancy (benchmark, N=50, p=0.15, seeds 1-8: 87.96% at
    # 2.85% with 3 calls, 88.12% at 2.87% with 10 and base_risk 0.07; docs/dialer_pacing.md).
    slack_scale_per_agent: float = 0.2
    # Releasing surplus lines (predictive only): hang up on a call still ringing, unanswered, once it
    # has rung the legal minimum, when it would likely be answered with no agent for it. Off unless the
    # caller says it hangs up the lines named by `lines_to_release`: the calls placed count on it.
    release_surplus_lines: bool = False
    min_ring_seconds: float = 15.0  # the law's minimum ring before a no-answer; lower is refused
    # Release a line whose risk exceeds this times the risk accepted for a new call: a released line
    # is a contact attempt lost (to be retried), so it takes more risk to drop one than to not dial.
    # Tuned on the benchmark (seeds 1-6, N=20, p=0.30: 2 -> 84.3%, 3 -> 84.6%, 4 -> 84.5%, 15 -> 83.9%).
    release_risk_factor: float = 3.0

    def __post_init__(self) -> None:
        if not 0 <= self.abandonment_target <= 1:
            raise ValueError(f"abandonment_target must be within [0, 1], got {self.abandonment_target!r}")
        if not (math.isfinite(self.target_margin) and self.target_margin >= 0):
            raise ValueError(f"target_margin must be >= 0, got {self.target_margin!r}")
        if not (math.isfinite(self.answer_window) and self.answer_window >= 0):
            raise ValueError(f"answer_window must be >= 0 seconds, got {self.answer_window!r}")
        if self.max_calls < 0 or (self.max_lines is not None and self.max_lines < 0):
            raise ValueError("max_calls and max_lines must be >= 0")
        if not (math.isfinite(self.calls_per_idle_agent) and self.calls_per_idle_agent >= 0):
            raise ValueError(f"calls_per_idle_agent must be >= 0, got {self.calls_per_idle_agent!r}")
        if not 0 < self.min_risk <= self.base_risk <= self.max_risk < 1:
            raise ValueError("the risks must satisfy 0 < min_risk <= base_risk <= max_risk < 1")
        if not (math.isfinite(self.slack_scale) and self.slack_scale > 0):
            raise ValueError(f"slack_scale must be > 0, got {self.slack_scale!r}")
        if not (math.isfinite(self.slack_scale_per_agent) and self.slack_scale_per_agent >= 0):
            raise ValueError(f"slack_scale_per_agent must be >= 0, got {self.slack_scale_per_agent!r}")
        if not (math.isfinite(self.min_ring_seconds) and self.min_ring_seconds >= LEGAL_MIN_RING_SECONDS):
            raise ValueError(
                f"min_ring_seconds must be at least {LEGAL_MIN_RING_SECONDS:g} (the legal minimum ring "
                f"before a no-answer), got {self.min_ring_seconds!r}"
            )
        if not (math.isfinite(self.release_risk_factor) and self.release_risk_factor > 0):
            raise ValueError(f"release_risk_factor must be > 0, got {self.release_risk_factor!r}")

    @property
    def aim(self) -> float:
        return max(0.0, self.abandonment_target - self.target_margin)


@dataclass(frozen=True, slots=True)
class PacingDecision:
    calls: int
    mode: PacingMode
    reason: str
    figures: dict[str, float] = field(default_factory=dict)
    # Ringing calls to hang up now, unanswered: the youngest `release` of those that have rung at
    # least `min_ring_seconds` (`lines_to_release` says which). Hanging up on a call that has not
    # been answered is not an abandonment; `calls` already counts on them being gone.
    release: int = 0


@dataclass(frozen=True, slots=True)
class _AnswerPoint:
    """Supply of agents and demand from ringing calls, for a new call answered at one tau."""

    supply: float
    supply_variance: float
    supply_skew: float  # third cumulant: sums of rare chances are lopsided, and the tail is what counts
    ringing_demand: float
    ringing_variance: float
    ringing_skew: float
    new_call_answers: float  # P(a new call is answered by tau)


def _probability_below(value: float, mean: float, variance: float, third_cumulant: float) -> float:
    """P(X < value) for a sum of independent chances with these cumulants: the normal approximation
    with its first skewness correction (accurate for sums of Bernoulli variables even when small)."""
    if variance <= 1e-12:
        return 0.0 if mean > value else 1.0
    sd = math.sqrt(variance)
    x = (value - mean) / sd
    normal = 0.5 * math.erfc(-x / math.sqrt(2))
    density = math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    corrected = normal + third_cumulant / sd**3 * (1 - x * x) * density / 6
    return min(1.0, max(0.0, corrected))


def abandonment_allowance(
    windows: Sequence[AbandonmentWindow], settings: PacingSettings, agents: int = 0
) -> tuple[float, float]:
    """(risk accepted for the marginal call, slack in calls): the tightest window decides. `agents`
    (logged in) widens the slack scale on a large floor, see `PacingSettings.slack_scale_per_agent`."""
    slack = min((settings.aim * w.answered - w.abandoned for w in windows), default=0.0)
    if settings.aim == 0:
        return 0.0, slack  # may abandon nothing: only calls that cannot be abandoned
    scale = max(settings.slack_scale, settings.slack_scale_per_agent * agents)
    risk = settings.base_risk * math.exp(max(-50.0, min(50.0, slack / scale)))
    return min(settings.max_risk, max(settings.min_risk, risk)), slack


def calls_to_place(
    floor: FloorSnapshot,
    statistics: CallStatistics,
    abandonment: Sequence[AbandonmentWindow],
    settings: PacingSettings,
) -> PacingDecision:
    mode = settings.mode
    ringing = len(floor.ring_starts)
    line_room = settings.max_calls if settings.max_lines is None else max(0, settings.max_lines - ringing)
    cap = min(settings.max_calls, line_room)
    uncovered = max(0, floor.idle_agents - floor.answered_waiting - ringing)
    figures: dict[str, float] = {
        "idle_agents": floor.idle_agents,
        "agents": floor.agents,
        "ringing": ringing,
        "answered_waiting": floor.answered_waiting,
        "uncovered_idle_agents": uncovered,
        "cap": cap,
    }
    if mode is PacingMode.PREVIEW:
        return PacingDecision(0, mode, "preview: each agent places their own calls", figures)
    if floor.agents == 0:
        return PacingDecision(0, mode, "no agents logged in", figures)
    if mode is PacingMode.PROGRESSIVE:
        calls = min(cap, uncovered)
        return PacingDecision(
            calls, mode, f"progressive: {uncovered} idle agents without a ringing call", figures
        )
    if mode is PacingMode.FIXED_RATIO:
        wanted = math.floor(
            settings.calls_per_idle_agent * max(0, floor.idle_agents - floor.answered_waiting)
        )
        calls = min(cap, max(0, wanted - ringing))
        figures["lines_wanted"] = wanted
        return PacingDecision(
            calls, mode, f"fixed ratio {settings.calls_per_idle_agent:g}: {wanted} lines wanted", figures
        )
    return _predictive(floor, statistics, abandonment, settings, cap, figures)


def _predictive(
    floor: FloorSnapshot,
    statistics: CallStatistics,
    abandonment: Sequence[AbandonmentWindow],
    settings: PacingSettings,
    cap: int,
    figures: dict[str, float],
) -> PacingDecision:
    risk_accepted, slack = abandonment_allowance(abandonment, settings, floor.agents)
    ring = statistics.ring_times()
    now = floor.now
    ringing_elapsed = [now - start for start in floor.ring_starts]
    answer_rate = statistics.answer_rate(ringing_elapsed, ring)
    p = answer_rate.mean
    talk = statistics.talk_times()
    wrap = statistics.wrap_mean()
    talking_elapsed = [now - start for start in floor.talk_starts]
    wrap_left = [end - now for end in floor.wrap_up_ends]
    already_free = floor.idle_agents - floor.answered_waiting
    supplies: dict[float, tuple[float, float, float]] = {}

    def supply_by(horizon: float) -> tuple[float, float, float]:
        """Agents free by `horizon` seconds from now: mean, variance, third cumulant."""
        if horizon not in supplies:
            mean = float(already_free + sum(1 for left in wrap_left if left <= horizon))
            variance = skew = 0.0
            talk_window = horizon - wrap  # a talker must hang up this soon to be through wrap-up in time
            if talk_window > 0:
                for chance in talk.ends_within_each(talking_elapsed, talk_window):
                    mean += chance
                    variance += chance * (1 - chance)
                    skew += chance * (1 - chance) * (1 - 2 * chance)
            supplies[horizon] = (mean, variance, skew)
        return supplies[horizon]

    def answers_by(elapsed: float, tau: float) -> float:
        """P(a call that has rung `elapsed` s unanswered is answered within `tau` s): its hazard."""
        by_now = ring.cdf(elapsed)
        still_possible = 1 - p * by_now
        if still_possible <= 0:
            return 0.0
        return p * (ring.cdf(elapsed + tau) - by_now) / still_possible

    released: list[int] = []
    if settings.release_surplus_lines:
        threshold = settings.release_risk_factor * max(risk_accepted, settings.min_risk)
        released = _surplus_lines(
            ringing_elapsed, settings, threshold, supply_by, answers_by, ring.timeout, answer_rate.variance, p
        )
    gone = set(released)
    kept_elapsed = [e for index, e in enumerate(ringing_elapsed) if index not in gone]

    points: list[_AnswerPoint] = []
    # A new call's answer lands at one of the quantiles; the last point, the ring timeout, is where
    # every call ringing now has been answered or released.
    for quantile in (*_ANSWER_QUANTILES, 1.0):
        tau = ring.quantile(quantile)
        supply, supply_variance, supply_skew = supply_by(tau + settings.answer_window)
        demand = demand_variance = demand_skew = 0.0
        for elapsed in kept_elapsed:
            chance = answers_by(elapsed, tau)
            demand += chance
            demand_variance += chance * (1 - chance)
            demand_skew += chance * (1 - chance) * (1 - 2 * chance)
        points.append(
            _AnswerPoint(
                supply,
                supply_variance,
                supply_skew,
                demand,
                demand_variance,
                demand_skew,
                p * ring.cdf(tau),
            )
        )

    def risk_for_next_call(placed: int) -> float:
        """P(one more new call, if answered, costs an abandoned call), with `placed` new calls before it.

        Answered at tau_k, it takes an agent from every call answered after it too: it costs an
        abandonment if agents run short at tau_k or at any later point, of which the likeliest counts."""
        shortage = []
        for point in points:
            new = point.new_call_answers
            others = point.ringing_demand + placed * new
            # How unsure the answer rate is widens the demand: all calls share the same p.
            rate_spread = answer_rate.variance * (others / p) ** 2 if p > 0 else 0.0
            variance = point.supply_variance + point.ringing_variance + placed * new * (1 - new) + rate_spread
            skew = point.supply_skew - point.ringing_skew - placed * new * (1 - new) * (1 - 2 * new)
            # The call is served if supply - others >= 1: short when supply - others < 0.5.
            shortage.append(_probability_below(0.5, point.supply - others, variance, skew))
        total = 0.0
        worst_later = 0.0
        for index in range(len(points) - 1, -1, -1):
            worst_later = max(worst_later, shortage[index])
            if index < len(_ANSWER_QUANTILES):
                total += worst_later
        return total / len(_ANSWER_QUANTILES)

    calls = 0
    next_risk = risk_for_next_call(0)
    while calls < cap and next_risk <= risk_accepted:
        calls += 1
        next_risk = risk_for_next_call(calls)
    # Released lines no longer cover idle agents.
    floor_calls = min(cap, max(0, already_free - len(kept_elapsed)))
    reason = (
        f"predictive: {calls} calls keep the marginal abandonment risk under {risk_accepted:.3f}"
        f" (slack {slack:.1f} calls)"
        if calls >= floor_calls
        else f"predictive: {calls} within risk {risk_accepted:.3f}; the progressive floor is {floor_calls}"
    )
    middle = points[_ANSWER_QUANTILES.index(0.5)]
    figures.update(
        {
            "answer_rate": p,
            "ring_time_median": ring.quantile(0.5),
            "talk_time_mean": talk.mean,
            "wrap_time_mean": wrap,
            "agents_free_by_median_answer": middle.supply,
            "answers_expected_from_ringing": middle.ringing_demand,
            "abandonment_slack": slack,
            "risk_accepted": risk_accepted,
            "next_call_risk": next_risk,  # of the first call not placed
            "lines_released": len(released),
        }
    )
    if released:
        reason += f"; release {len(released)} surplus ringing lines"
    return PacingDecision(
        max(calls, floor_calls), PacingMode.PREDICTIVE, reason, figures, release=len(released)
    )


def _surplus_lines(
    ringing_elapsed: Sequence[float],
    settings: PacingSettings,
    threshold: float,
    supply_by: Callable[[float], tuple[float, float, float]],
    answers_by: Callable[[float, float], float],
    timeout: float,
    rate_variance: float,
    p: float,
) -> list[int]:
    """Indexes of the ringing calls to release: youngest first among those that have rung the legal
    minimum, while the youngest left would, if answered, find no agent with a chance above `threshold`.

    A ringing call's risk is its chance of being short of an agent when it answers, or at any later
    point of the ring (a call answered early takes the agent that a later one counted on), weighted by
    when it may answer. The youngest eligible call has the most answer left in it, so releasing it
    removes the most demand; once the youngest is worth keeping, the older ones (less likely to answer
    at all) are kept too."""
    eligible = sorted(
        (e, index) for index, e in enumerate(ringing_elapsed) if settings.min_ring_seconds <= e < timeout
    )
    if not eligible or p <= 0 or supply_by(0.0)[0] >= len(ringing_elapsed):
        return []  # nothing may be released, or an agent is already free for every ringing call
    grid = [t for t in _RELEASE_GRID if t < timeout] + [timeout]
    supply = [supply_by(t + settings.answer_window) for t in grid]
    chances = [[answers_by(e, t) for t in grid] for e in ringing_elapsed]
    demand = [sum(c[j] for c in chances) for j in range(len(grid))]
    demand_variance = [sum(c[j] * (1 - c[j]) for c in chances) for j in range(len(grid))]
    demand_skew = [sum(c[j] * (1 - c[j]) * (1 - 2 * c[j]) for c in chances) for j in range(len(grid))]
    released: list[int] = []
    for _, index in eligible:
        own = chances[index]
        if own[-1] <= 0:
            break  # it cannot answer any more: nothing to gain
        shortage = []
        for j, (mean, variance, skew) in enumerate(supply):
            others = demand[j] - own[j]
            spread = rate_variance * (others / p) ** 2
            total_variance = variance + demand_variance[j] - own[j] * (1 - own[j]) + spread
            total_skew = skew - demand_skew[j] + own[j] * (1 - own[j]) * (1 - 2 * own[j])
            shortage.append(_probability_below(0.5, mean - others, max(0.0, total_variance), total_skew))
        risk = 0.0
        worst_later = 0.0
        for j in range(len(grid) - 1, -1, -1):
            worst_later = max(worst_later, shortage[j])
            answered_here = own[j] - (own[j - 1] if j else 0.0)
            risk += answered_here / own[-1] * worst_later
        if risk <= threshold:
            break
        released.append(index)
        for j, chance in enumerate(own):
            demand[j] -= chance
            demand_variance[j] -= chance * (1 - chance)
            demand_skew[j] -= chance * (1 - chance) * (1 - 2 * chance)
    return released


def lines_to_release(floor: FloorSnapshot, decision: PacingDecision, settings: PacingSettings) -> list[int]:
    """Which of `floor.ring_starts` (indexes) to hang up on for `decision.release`: the youngest of
    the calls that have rung at least `settings.min_ring_seconds`. `floor` must be the snapshot the
    decision was made on."""
    eligible = sorted(
        (
            index
            for index, start in enumerate(floor.ring_starts)
            if floor.now - start >= settings.min_ring_seconds
        ),
        key=lambda index: (-floor.ring_starts[index], index),
    )
    if decision.release > len(eligible):
        raise ValueError(
            f"the decision releases {decision.release} lines but only {len(eligible)} have rung "
            f"{settings.min_ring_seconds:g} s: was it made on this floor?"
        )
    return eligible[: decision.release]
