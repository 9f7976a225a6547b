"""The simulated call network: every call ends exactly once, in the documented order, replayably."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from dialer.call_network import AmdVerdict, CallEnd, CallRequest, NetworkUnavailable, PlacedCall
from dialer.clock import ScaledClock
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork

FAST = 5000.0  # simulated seconds per real second


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def runner() -> None:
        asyncio.run(test())

    return runner


@dataclass
class Recorder:
    events: list[tuple[str, int, object]] = field(default_factory=list)
    on_answer: str | None = None  # "connect" | "hang_up": what the runner does when a call is answered
    network: SimulatedCallNetwork | None = None
    done: dict[int, asyncio.Event] = field(default_factory=dict)

    async def answered(self, call: PlacedCall, at: datetime) -> None:
        self.events.append(("answered", call.attempt_id, at))
        assert self.network is not None
        if self.on_answer == "connect":
            await self.network.connect(call, "PJSIP/1001")
        elif self.on_answer == "hang_up":
            await self.network.hang_up(call)

    async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None:
        self.events.append(("greeting_ended", call.attempt_id, verdict))

    async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None:
        self.events.append(("ended", call.attempt_id, how))
        self.done.setdefault(call.attempt_id, asyncio.Event()).set()

    def of(self, attempt: int) -> list[str]:
        return [name for name, number, _ in self.events if number == attempt]


def request(attempt: int, *, amd: bool = True, ring_timeout_s: int = 25) -> CallRequest:
    return CallRequest(attempt, "+34600111222", "+34910000000", ring_timeout_s, amd, campaign_id=1)


async def place_all(recorder: Recorder, network: SimulatedCallNetwork, attempts: range) -> None:
    recorder.network = network
    for attempt in attempts:
        recorder.done[attempt] = asyncio.Event()
        await network.place(request(attempt), recorder)
    await asyncio.wait_for(asyncio.gather(*(recorder.done[a].wait() for a in attempts)), timeout=10)


@run
async def test_every_call_ends_once_and_in_order() -> None:
    recorder = Recorder()
    network = SimulatedCallNetwork(ScaledClock(FAST), seed=7)
    await place_all(recorder, network, range(1, 201))
    kinds = set()
    for attempt in range(1, 201):
        steps = recorder.of(attempt)
        assert steps.count("ended") == 1 and steps[-1] == "ended"
        assert steps in (["ended"], ["answered", "greeting_ended", "ended"])
        kinds.add(next(how for name, number, how in recorder.events if number == attempt and name == "ended"))
    assert {CallEnd.COMPLETED, CallEnd.NO_ANSWER, CallEnd.BUSY} <= kinds
    assert network.active_calls == 0


@run
async def test_answer_rate_follows_the_behaviour() -> None:
    recorder = Recorder()
    network = SimulatedCallNetwork(
        ScaledClock(FAST), CalleeBehaviour(live_answer=0.5, machine=0.0, busy=0.0, failed=0.0), seed=1
    )
    await place_all(recorder, network, range(1, 401))
    answered = sum(1 for name, _, _ in recorder.events if name == "answered")
    assert 160 <= answered <= 240  # 0.5 of 400, give or take 4 standard deviations (10 each)


@run
async def test_the_same_seed_replays_the_same_calls() -> None:
    runs = []
    for _ in range(2):
        recorder = Recorder()
        await place_all(recorder, SimulatedCallNetwork(ScaledClock(FAST), seed=3), range(1, 61))
        runs.append(
            sorted(
                (number, name, str(value)) for name, number, value in recorder.events if name != "answered"
            )
        )
    assert runs[0] == runs[1]


@run
async def test_a_connected_call_talks_then_ends_without_a_greeting_event() -> None:
    recorder = Recorder(on_answer="connect")
    behaviour = CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0, talk_mean_s=30)
    await place_all(recorder, SimulatedCallNetwork(ScaledClock(FAST), behaviour), range(1, 11))
    for attempt in range(1, 11):
        assert recorder.of(attempt) == ["answered", "ended"]


@run
async def test_a_call_hung_up_from_the_observer_ends_at_once() -> None:
    recorder = Recorder(on_answer="hang_up")
    behaviour = CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0)
    await place_all(recorder, SimulatedCallNetwork(ScaledClock(FAST), behaviour), range(1, 6))
    for attempt in range(1, 6):
        assert recorder.of(attempt) == ["answered", "ended"]


@run
async def test_amd_off_says_unsure_and_a_short_ring_timeout_is_no_answer() -> None:
    recorder = Recorder()
    network = SimulatedCallNetwork(
        ScaledClock(FAST), CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0, ring_min_s=20)
    )
    recorder.network = network
    recorder.done = {1: asyncio.Event(), 2: asyncio.Event()}
    await network.place(request(1, amd=False), recorder)
    await network.place(request(2, ring_timeout_s=15), recorder)
    await asyncio.wait_for(asyncio.gather(recorder.done[1].wait(), recorder.done[2].wait()), timeout=5)
    assert ("greeting_ended", 1, AmdVerdict.UNSURE) in recorder.events
    assert recorder.events[-1][0] == "ended" and ("ended", 2, CallEnd.NO_ANSWER) in recorder.events


@run
async def test_an_unavailable_network_refuses_and_a_bad_behaviour_is_refused() -> None:
    network = SimulatedCallNetwork(ScaledClock(FAST), available=False)
    with pytest.raises(NetworkUnavailable):
        await network.place(request(1), Recorder())
    with pytest.raises(ValueError, match="add up"):
        CalleeBehaviour(live_answer=0.9, machine=0.2)


@run
async def test_a_failing_observer_still_ends_the_call() -> None:
    class Failing(Recorder):
        async def answered(self, call: PlacedCall, at: datetime) -> None:
            raise RuntimeError("boom")

    recorder = Failing()
    behaviour = CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0)
    await place_all(recorder, SimulatedCallNetwork(ScaledClock(FAST), behaviour), range(1, 3))
    assert [how for name, _, how in recorder.events if name == "ended"] == [CallEnd.FAILED, CallEnd.FAILED]


@run
async def test_an_observer_that_hangs_up_from_its_own_callback_still_finishes_its_bookkeeping() -> None:
    finished: list[int] = []

    class Careful(Recorder):
        async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None:
            assert self.network is not None
            await self.network.hang_up(call)  # a machine: the runner hangs up at once

        async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None:
            await asyncio.sleep(0.01)  # the runner writes the end to the database here
            finished.append(call.attempt_id)
            await super().ended(call, at, how, cause)

    recorder = Careful()
    behaviour = CalleeBehaviour(live_answer=0.0, machine=1.0, busy=0.0, failed=0.0)
    await place_all(recorder, SimulatedCallNetwork(ScaledClock(FAST), behaviour), range(1, 4))
    assert finished == [1, 2, 3] or sorted(finished) == [1, 2, 3]
