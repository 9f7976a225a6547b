"""A call network with no PBX: callees answer, are busy, do not answer, or are answering machines.

Its timings are those of the pacing benchmark (bench/dialer_pacing.py): ring time until answer
Uniform(5, 25) s; a call nobody answers rings until the request's ring time-out; talk time lognormal with
mean 180 s and coefficient of variation 1.0. A live person's greeting ("¿Diga?") lasts about a second, an
answering machine's 8 to 15 s. A person left waiting in silence hangs up after a few seconds, which is what
makes an abandoned call end on its own when nobody connects it.

Each call's fate is drawn from `random.Random(seed, attempt id)`, so the same campaign replays the same
way. Every delay goes through the `Clock`, so a `ScaledClock` runs a shift in minutes.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from dialer.call_network import AmdVerdict, CallEnd, CallObserver, CallRequest, NetworkUnavailable, PlacedCall
from dialer.clock import Clock

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CalleeBehaviour:
    """Probabilities of what happens to a dialed call (the rest ring out unanswered)."""

    live_answer: float = 0.30
    machine: float = 0.10
    busy: float = 0.05
    failed: float = 0.02
    ring_min_s: float = 5.0
    ring_max_s: float = 25.0
    talk_mean_s: float = 180.0
    talk_cv: float = 1.0
    human_greeting_s: tuple[float, float] = (0.6, 1.6)
    machine_greeting_s: tuple[float, float] = (8.0, 15.0)
    patience_s: float = 6.0  # a person hears silence this long after their greeting, then hangs up
    amd_accuracy: float = 0.92  # how often the network's AMD verdict is right (the rest: wrong or unsure)

    def __post_init__(self) -> None:
        shares = (self.live_answer, self.machine, self.busy, self.failed)
        if any(share < 0 for share in shares) or sum(shares) > 1:
            raise ValueError("probabilities must be non-negative and add up to at most 1")
        if not 0 < self.ring_min_s <= self.ring_max_s:
            raise ValueError("ring times must satisfy 0 < ring_min_s <= ring_max_s")
        if self.talk_mean_s <= 0 or self.talk_cv <= 0:
            raise ValueError("talk_mean_s and talk_cv must be positive")


@dataclass
class _Call:
    placed: PlacedCall
    request: CallRequest
    observer: CallObserver
    rng: random.Random
    human: bool
    ended: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class SimulatedCallNetwork:
    clock: Clock
    behaviour: CalleeBehaviour = field(default_factory=CalleeBehaviour)
    seed: int = 0
    available: bool = True  # False: place() raises NetworkUnavailable, as an unreachable PBX would
    _calls: dict[str, _Call] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    async def place(self, request: CallRequest, observer: CallObserver) -> PlacedCall:
        if not self.available:
            raise NetworkUnavailable("the simulated network is switched off")
        rng = random.Random(f"{self.seed}:{request.attempt_id}")
        placed = PlacedCall(request.attempt_id, f"sim-{request.attempt_id}")
        draw = rng.random()
        b = self.behaviour
        call = _Call(placed, request, observer, rng, human=draw < b.live_answer)
        self._calls[placed.call_ref] = call
        if draw < b.live_answer + b.machine:
            self._spawn(call, self._answer(call))
        elif draw < b.live_answer + b.machine + b.busy:
            self._spawn(call, self._end_after(call, rng.uniform(1, 4), CallEnd.BUSY, "17 user busy"))
        elif draw < b.live_answer + b.machine + b.busy + b.failed:
            self._spawn(call, self._end_after(call, rng.uniform(0.5, 2), CallEnd.FAILED, "34 congestion"))
        else:
            cause = "19 no answer"
            self._spawn(call, self._end_after(call, request.ring_timeout_s, CallEnd.NO_ANSWER, cause))
        return placed

    async def connect(self, call: PlacedCall, agent: str) -> None:
        sim = self._live(call)
        self._replace(sim, self._talk(sim))

    async def play_and_hang_up(self, call: PlacedCall, message: str) -> None:
        sim = self._live(call)
        # About two words a second of a prompt; a name of a file says nothing of its length.
        self._replace(sim, self._end_after(sim, 8.0, CallEnd.COMPLETED, "16 normal clearing"))

    async def hang_up(self, call: PlacedCall) -> None:
        sim = self._live(call)
        # Not the running task: hang_up may be called from the observer, inside that very task, and
        # cancelling it would cut the observer's own bookkeeping of the end short.
        if sim.task is not None and sim.task is not asyncio.current_task():
            sim.task.cancel()
        await self._end(sim, CallEnd.COMPLETED, "16 normal clearing")

    async def close(self) -> None:
        """Stop every call in progress (ending each one), e.g. when the service stops."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- a call's life ------------------------------------------------------------------------------

    async def _answer(self, call: _Call) -> None:
        b, rng = self.behaviour, call.rng
        ring = rng.uniform(b.ring_min_s, b.ring_max_s)
        if ring >= call.request.ring_timeout_s:
            await self._end_after(call, call.request.ring_timeout_s, CallEnd.NO_ANSWER, "19 no answer")
            return
        await self.clock.sleep(ring)
        await call.observer.answered(call.placed, self.clock.now())
        if not _still_mine(call):  # the runner connected or hung up the call from its observer
            return
        greeting = rng.uniform(*(b.human_greeting_s if call.human else b.machine_greeting_s))
        await self.clock.sleep(greeting)
        await call.observer.greeting_ended(call.placed, self.clock.now(), self._verdict(call))
        if not _still_mine(call):
            return
        # Nobody connected the call: a person hangs up after a while; a machine records the silence.
        wait = b.patience_s if call.human else 30.0
        await self._end_after(call, wait, CallEnd.COMPLETED, "16 normal clearing")

    def _verdict(self, call: _Call) -> AmdVerdict:
        if not call.request.amd:
            return AmdVerdict.UNSURE
        truth = AmdVerdict.HUMAN if call.human else AmdVerdict.MACHINE
        if call.rng.random() < self.behaviour.amd_accuracy:
            return truth
        return AmdVerdict.UNSURE if call.rng.random() < 0.5 else _other(truth)

    async def _talk(self, call: _Call) -> None:
        b = self.behaviour
        sigma = math.sqrt(math.log(1 + b.talk_cv**2))
        talk = call.rng.lognormvariate(math.log(b.talk_mean_s) - sigma**2 / 2, sigma)
        await self._end_after(call, talk, CallEnd.COMPLETED, "16 normal clearing")

    async def _end_after(self, call: _Call, seconds: float, how: CallEnd, cause: str) -> None:
        await self.clock.sleep(seconds)
        await self._end(call, how, cause)

    async def _end(self, call: _Call, how: CallEnd, cause: str) -> None:
        if call.ended:
            return
        call.ended = True
        self._calls.pop(call.placed.call_ref, None)
        await call.observer.ended(call.placed, self.clock.now(), how, cause)

    # --- tasks --------------------------------------------------------------------------------------

    def _live(self, call: PlacedCall) -> _Call:
        sim = self._calls.get(call.call_ref)
        if sim is None:
            raise LookupError(f"call {call.call_ref} has ended")
        return sim

    def _spawn(self, call: _Call, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(self._guard(call, work))
        call.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _replace(self, call: _Call, work: Coroutine[Any, Any, None]) -> None:
        """What the call does next replaces what it was doing (waiting for an agent, a greeting)."""
        current = call.task
        self._spawn(call, work)
        if current is not None and current is not asyncio.current_task():
            current.cancel()

    async def _guard(self, call: _Call, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            # An observer that fails must not leave the call up for ever: end it and say why.
            logger.exception("simulated call %s: the observer failed", call.placed.call_ref)
            await self._end(call, CallEnd.FAILED, "observer failed")


def _still_mine(call: _Call) -> bool:
    """Whether the running task still owns the call: nothing replaced it and it has not ended."""
    return not call.ended and call.task is asyncio.current_task()


def _other(verdict: AmdVerdict) -> AmdVerdict:
    return AmdVerdict.MACHINE if verdict is AmdVerdict.HUMAN else AmdVerdict.HUMAN
