"""Dialer pacing over a simulated shift: the real `dialer.pacing` code against pre-drawn calls.

A discrete-event simulation (a heap of timed events). N agents work an 8-hour shift. Each dial is
answered live with probability p after Uniform(5, 25) s of ringing, or released unanswered at 25 s;
an answered call talks for a lognormal time (mean 180 s, CV 1.0), then its agent wraps up for 15 s. An
answered call that finds no free agent within 2 s of the answer is abandoned. The pacing decision runs
every second and whenever an agent comes out of wrap-up, as a real dialer's loop would, and learns the
answer rate, ring times, talk and wrap-up times online from the calls it has completed. When the
decision releases surplus ringing lines (predictive, only lines that have rung at least 15 s), the
simulation hangs them up: the dial ends unanswered and its pre-drawn answer, if any, is lost.

Every dial's outcome is drawn in dial order from a stream seeded by the seed alone, so every mode meets
the same calls: the k-th dial of every mode has the same answer, ring time and talk time.

    .venv/bin/python bench/dialer_pacing.py                         # the whole grid, seeds 101-110, a table
    .venv/bin/python bench/dialer_pacing.py --agents 20 --answer-rate 0.3 --seeds 101-110 --json
    .venv/bin/python bench/dialer_pacing.py --agents 5 --answer-rate 0.3 --hours 0.5 --seeds 1 --json

Occupancy is talk time / agent time (the ceiling is 180 / (180 + 15) = 92.3%); abandonment is
abandoned / answered, per seed, then averaged (and the worst seed shown); contacts per agent-hour count
answered calls that reached an agent. Exits 0 whether or not the targets are met; the table says which.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import os
import random
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from dialer.call_statistics import CallStatistics
from dialer.pacing import (
    AbandonmentWindow,
    FloorSnapshot,
    PacingMode,
    PacingSettings,
    calls_to_place,
    lines_to_release,
)

AGENTS_GRID = (5, 20, 50)
ANSWER_RATE_GRID = (0.15, 0.30, 0.60)
MODES = (PacingMode.PROGRESSIVE, PacingMode.PREDICTIVE, PacingMode.FIXED_RATIO)
RING_MIN, RING_MAX = 5.0, 25.0  # seconds until a live answer
RING_TIMEOUT = 25.0  # an unanswered line is released here
TALK_MEAN, TALK_CV = 180.0, 1.0
WRAP = 15.0
ANSWER_WINDOW = 2.0
TICK = 1.0  # seconds between pacing decisions (plus one whenever an agent frees up)

# The targets: (agents, answer rate or None for every rate) -> minimum predictive occupancy.
OCCUPANCY_TARGETS: dict[tuple[int, float | None], float] = {
    (20, 0.30): 0.84,
    (50, None): 0.885,
    (5, 0.30): 0.76,
}
MEAN_ABANDONMENT_LIMIT = 0.03
SEED_ABANDONMENT_LIMIT = 0.04

# Event kinds; at one instant they are handled in this order.
_ANSWER, _RELEASE, _TALK_END, _WRAP_END, _GIVE_UP, _TICK = range(6)


@dataclass(frozen=True, slots=True)
class Dial:
    answered: bool
    ring: float  # seconds until the answer (or the release, if unanswered)
    talk: float  # seconds of talk, if answered and served


def dial_outcomes(seed: int, answer_rate: float) -> Iterator[Dial]:
    """The seed's dials, in order. Each takes the same draws whatever the answer rate, so the cells of
    one seed differ only in which dials answer."""
    rng = random.Random(seed)
    log_var = math.log1p(TALK_CV**2)
    log_mean = math.log(TALK_MEAN) - log_var / 2
    log_sd = math.sqrt(log_var)
    while True:
        answered = rng.random() < answer_rate
        ring = rng.uniform(RING_MIN, RING_MAX)
        talk = math.exp(rng.gauss(log_mean, log_sd))
        yield Dial(answered, ring if answered else RING_TIMEOUT, talk)


@dataclass(frozen=True, slots=True)
class ShiftResult:
    agents: int
    answer_rate: float
    seed: int
    mode: str
    hours: float
    dials: int
    answered: int
    abandoned: int
    talk_seconds: float
    decisions: int
    released: int = 0  # ringing lines the dialer hung up on, unanswered, after the minimum ring

    @property
    def occupancy(self) -> float:
        return self.talk_seconds / (self.agents * self.hours * 3600)

    @property
    def abandonment(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def contacts_per_agent_hour(self) -> float:
        return (self.answered - self.abandoned) / (self.agents * self.hours)


def pacing_settings(mode: PacingMode, answer_rate: float) -> PacingSettings:
    # The fixed-ratio baseline is set the way a supervisor would: enough lines per idle agent for one
    # answer on average, from a known answer rate (the best case for that baseline).
    # Predictive releases surplus ringing lines (after the 15 s minimum ring); the others never do.
    return PacingSettings(mode=mode, calls_per_idle_agent=1 / answer_rate, release_surplus_lines=True)


def simulate_shift(
    agents: int,
    answer_rate: float,
    seed: int,
    mode: PacingMode,
    hours: float = 8.0,
    settings: PacingSettings | None = None,
) -> ShiftResult:
    settings = settings or pacing_settings(mode, answer_rate)
    end = hours * 3600
    outcomes = dial_outcomes(seed, answer_rate)
    statistics = CallStatistics.cold_start()
    events: list[tuple[float, int, int, int]] = []  # (time, kind, sequence, subject)
    sequence = itertools.count()

    def schedule(time: float, kind: int, subject: int) -> None:
        heapq.heappush(events, (time, kind, next(sequence), subject))

    idle: deque[int] = deque(range(agents))
    talk_start: dict[int, float] = {}
    talk_length: dict[int, float] = {}
    wrap_end: dict[int, float] = {}
    ringing: dict[int, float] = {}  # call -> dial time (released calls leave it; their events are void)
    call_dial: dict[int, Dial] = {}
    waiting: dict[int, float] = {}  # answered call -> when, oldest first
    dials = answered = abandoned = decisions = released = 0
    talk_seconds = 0.0

    def connect(agent: int, call: int, now: float) -> None:
        dial = call_dial.pop(call)
        talk_start[agent] = now
        talk_length[agent] = dial.talk
        schedule(now + dial.talk, _TALK_END, agent)

    schedule(0.0, _TICK, 0)
    while events and events[0][0] <= end:
        now = events[0][0]
        decide = False
        while events and events[0][0] == now:
            _, kind, _, subject = heapq.heappop(events)
            if kind in (_ANSWER, _RELEASE) and subject not in ringing:
                continue  # the dialer released this line earlier: its pre-drawn answer is lost
            if kind == _ANSWER:
                dialed = ringing.pop(subject)
                statistics = statistics.with_answered(now - dialed)
                if idle:
                    answered += 1
                    connect(idle.popleft(), subject, now)
                else:
                    waiting[subject] = now
                    schedule(now + ANSWER_WINDOW, _GIVE_UP, subject)
            elif kind == _RELEASE:
                del ringing[subject]
                del call_dial[subject]
                statistics = statistics.with_unanswered()
            elif kind == _TALK_END:
                talk_seconds += talk_length.pop(subject)
                statistics = statistics.with_talk(now - talk_start.pop(subject))
                wrap_end[subject] = now + WRAP
                schedule(now + WRAP, _WRAP_END, subject)
            elif kind == _WRAP_END:
                del wrap_end[subject]
                statistics = statistics.with_wrap(WRAP)
                if waiting:
                    call = next(iter(waiting))  # the longest waiting; its give-up event is now void
                    del waiting[call]
                    answered += 1
                    connect(subject, call, now)
                else:
                    idle.append(subject)
                decide = True
            elif kind == _GIVE_UP:
                if subject not in waiting:
                    continue  # an agent took it in time
                # Still waiting after the answer window: nobody came.
                del waiting[subject]
                del call_dial[subject]
                answered += 1
                abandoned += 1
            else:  # _TICK
                decide = True
                schedule(now + TICK, _TICK, 0)
        if not decide:
            continue
        decisions += 1
        floor = FloorSnapshot(
            now=now,
            idle_agents=len(idle),
            wrap_up_ends=tuple(wrap_end.values()),
            talk_starts=tuple(talk_start.values()),
            ring_starts=tuple(ringing.values()),
            answered_waiting=len(waiting),
        )
        windows = (
            AbandonmentWindow("24h", answered, abandoned),
            AbandonmentWindow("30d", answered, abandoned),
        )
        decision = calls_to_place(floor, statistics, windows, settings)
        if decision.release:
            calls_ringing = list(ringing)  # in the order of floor.ring_starts
            for index in lines_to_release(floor, decision, settings):
                call = calls_ringing[index]
                statistics = statistics.with_released(now - ringing.pop(call))
                del call_dial[call]
                released += 1
        for _ in range(decision.calls):
            call = dials
            dials += 1
            dial = next(outcomes)
            ringing[call] = now
            call_dial[call] = dial
            schedule(now + dial.ring, _ANSWER if dial.answered else _RELEASE, call)

    # Talk still going at the end of the shift counts up to the end.
    talk_seconds += sum(end - start for start in talk_start.values())
    return ShiftResult(
        agents,
        answer_rate,
        seed,
        mode.value,
        hours,
        dials,
        answered,
        abandoned,
        talk_seconds,
        decisions,
        released,
    )


def _run(task: tuple[int, float, int, str, float]) -> ShiftResult:
    agents, rate, seed, mode, hours = task
    return simulate_shift(agents, rate, seed, PacingMode(mode), hours)


def summarise(results: Sequence[ShiftResult]) -> dict[str, float]:
    count = len(results)
    return {
        "occupancy": sum(r.occupancy for r in results) / count,
        "abandonment": sum(r.abandonment for r in results) / count,
        "worst_seed_abandonment": max(r.abandonment for r in results),
        "contacts_per_agent_hour": sum(r.contacts_per_agent_hour for r in results) / count,
    }


def run_grid(
    cells: Sequence[tuple[int, float]], seeds: Sequence[int], hours: float, workers: int
) -> dict[tuple[int, float], dict[str, dict[str, float]]]:
    tasks = [(n, p, seed, mode.value, hours) for n, p in cells for mode in MODES for seed in seeds]
    # The slowest tasks (many agents, low answer rate, predictive) first, so the pool ends together.
    tasks.sort(key=lambda t: (t[0] / t[1]) * (3 if t[3] == PacingMode.PREDICTIVE else 1), reverse=True)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run, tasks, chunksize=1))
    else:
        results = [_run(task) for task in tasks]
    grid: dict[tuple[int, float], dict[str, dict[str, float]]] = {}
    for n, p in cells:
        grid[(n, p)] = {
            mode.value: summarise(
                [r for r in results if r.agents == n and r.answer_rate == p and r.mode == mode.value]
            )
            for mode in MODES
        }
    return grid


def occupancy_target(agents: int, answer_rate: float) -> float | None:
    for (n, p), minimum in OCCUPANCY_TARGETS.items():
        if n == agents and (p is None or math.isclose(p, answer_rate)):
            return minimum
    return None


def verdict(agents: int, answer_rate: float, predictive: dict[str, float]) -> str:
    problems = []
    if predictive["abandonment"] > MEAN_ABANDONMENT_LIMIT:
        problems.append("mean abandonment")
    if predictive["worst_seed_abandonment"] > SEED_ABANDONMENT_LIMIT:
        problems.append("worst seed")
    minimum = occupancy_target(agents, answer_rate)
    if minimum is not None and predictive["occupancy"] < minimum:
        problems.append(f"occupancy < {minimum:.1%}")
    target = f"occupancy >= {minimum:.1%}" if minimum is not None else "abandonment only"
    return f"{target}: " + ("met" if not problems else "MISSED (" + ", ".join(problems) + ")")


def print_table(
    grid: dict[tuple[int, float], dict[str, dict[str, float]]], seeds: Sequence[int], hours: float
) -> None:
    seed_label = _seed_label(seeds)
    print(f"Dialer pacing, {hours:g} h shift, seeds {seed_label}; predictive targets: mean abandonment")
    mean_limit, seed_limit = MEAN_ABANDONMENT_LIMIT, SEED_ABANDONMENT_LIMIT
    print(f"<= {mean_limit:.1%}, every seed <= {seed_limit:.1%}, and the occupancy shown.")
    print()
    columns = ("occupancy", "abandon", "worst", "contacts/agent-h")
    header = (
        f"{'N':>3} {'p':>5}  {'mode':<12} {columns[0]:>9} {columns[1]:>8} {columns[2]:>7} {columns[3]:>16}"
    )
    print(header)
    print("-" * len(header))
    for (n, p), modes in grid.items():
        for mode, figures in modes.items():
            print(
                f"{n:>3} {p:>5.2f}  {mode:<12} {figures['occupancy']:>9.1%} {figures['abandonment']:>8.2%} "
                f"{figures['worst_seed_abandonment']:>7.2%} {figures['contacts_per_agent_hour']:>16.2f}"
            )
        print(f"{'':>11}{verdict(n, p, modes['predictive'])}")


def _seed_label(seeds: Sequence[int]) -> str:
    if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 1:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(str(s) for s in seeds)


def parse_seeds(text: str) -> list[int]:
    """'101-110', '7', or '1,2,5-9'."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            first = int(low)
            last = int(high) if high else first
            if last < first:
                raise ValueError
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a seed list: {text!r} (try 101-110 or 1,2,5-9)") from None
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, help="one cell's agents (default: the grid 5, 20, 50)")
    parser.add_argument(
        "--answer-rate", type=float, help="one cell's live-answer rate (default: 0.15, 0.30, 0.60)"
    )
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("101-110"), help="default 101-110")
    parser.add_argument("--hours", type=float, default=8.0, help="shift length (default 8)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.agents is not None and args.agents < 1:
        parser.error("--agents must be at least 1")
    if args.answer_rate is not None and not 0 < args.answer_rate <= 1:
        parser.error("--answer-rate must be within (0, 1]")
    if not args.hours > 0:
        parser.error("--hours must be positive")
    agents = [args.agents] if args.agents is not None else list(AGENTS_GRID)
    rates = [args.answer_rate] if args.answer_rate is not None else list(ANSWER_RATE_GRID)
    cells = [(n, p) for n in agents for p in rates]
    grid = run_grid(cells, args.seeds, args.hours, max(1, args.workers))
    if args.json:
        if len(cells) == 1:
            print(json.dumps(grid[cells[0]]))
        else:
            print(json.dumps([{"agents": n, "answer_rate": p, **grid[(n, p)]} for n, p in cells]))
    else:
        print_table(grid, args.seeds, args.hours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
