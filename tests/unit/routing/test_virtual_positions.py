"""Callbacks keep the caller's place: virtual positions in the live ACD, with a scripted dialer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from routing.acd import SkillNeed
from routing.agent_state import AgentState, Login
from routing.live_queues import (
    AgentProfile,
    CallOffer,
    FakeAgentConnector,
    FakeRoutingEvents,
    InboundCall,
    Joined,
    LiveQueues,
    Place,
    QueueConfig,
    Refused,
    VirtualResult,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @wraps(test)
    def sync() -> None:
        asyncio.run(test())

    return sync


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ScriptedCallback:
    """A `VirtualCaller` that answers as told, at once or when the test releases it."""

    ring_timeout_s = 40.0

    def __init__(self, result: VirtualResult = "connected", *, hold: bool = False) -> None:
        self.result = result
        self.offers: list[CallOffer] = []
        self.release: asyncio.Event | None = asyncio.Event() if hold else None
        self.cancelled = False

    async def dial(self, offer: CallOffer) -> VirtualResult:
        self.offers.append(offer)
        if self.release is not None:
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return self.result


class Centre:
    def __init__(self, **queue: Any) -> None:
        self.clock = Clock()
        self.phones = FakeAgentConnector(hold=True)
        self.events = FakeRoutingEvents()
        self.live = LiveQueues(self.phones, self.events, clock=self.clock)
        self.live.set_queue(QueueConfig("billing", needs=(SkillNeed("billing"),), wrap_up_s=0, **queue))

    async def agent(self, agent_id: int, *, log_in: bool = True) -> str:
        endpoint = f"PJSIP/10{agent_id:02d}"
        self.live.set_agent(AgentProfile(agent_id, f"agent{agent_id}", {"billing": 5}))
        if log_in:
            await self.live.change(agent_id, Login(endpoint), actor="test")
        return endpoint

    def call(self, call_id: str) -> Joined:
        joined = self.live.join(InboundCall(call_id, "billing", caller="+34600111222"))
        assert isinstance(joined, Joined), joined
        return joined

    def callback(
        self, call_id: str, caller: ScriptedCallback, *, at: datetime, replaces: str | None = None
    ) -> Joined | Refused:
        return self.live.join_virtual(
            InboundCall(call_id, "billing", caller="+34600999888"),
            entered_at=at,
            caller=caller,
            replaces=replaces,
        )

    def waiting(self) -> list[str]:
        return [c for c in ("c1", "c2", "c3", "cb") if self.live.position_of(c) is not None]


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@run
async def test_a_callback_waits_behind_earlier_callers_and_ahead_of_later_ones() -> None:
    centre = Centre()
    endpoint = await centre.agent(1)
    centre.call("c0")  # takes the only agent (its phone rings until the test answers)
    await settle()
    centre.clock.advance(10)
    centre.call("c1")
    centre.clock.advance(10)
    centre.call("c2")  # this caller will choose a callback
    centre.clock.advance(10)
    centre.call("c3")
    place = centre.live.place_of("c2")
    assert place == Place("billing", T0 + timedelta(seconds=20), 0)
    centre.live.leave("c2")
    assert centre.live.place_of("c2") == place  # remembered after the caller hung up
    callback = ScriptedCallback()
    joined = centre.callback("cb", callback, at=place.entered_at)
    assert isinstance(joined, Joined) and joined.position == 2
    assert [centre.live.position_of(c) for c in ("c1", "cb", "c3")] == [1, 2, 3]
    assert centre.live.queue_status("billing").callbacks_waiting == 1

    served: list[str] = []
    for _ in range(4):
        if endpoint in centre.phones.ringing():  # a callback is dialed, not rung on the agent's phone
            centre.phones.answer(endpoint)
        await settle()
        current = centre.live.status_of(1).call_id
        assert current is not None
        served.append(current)
        centre.live.call_ended(current)
        await settle()
    assert served == ["c0", "c1", "cb", "c3"]
    assert [o.call.call_id for o in callback.offers] == ["cb"]
    # The callback went through its dialer, never through the agent's phone connector.
    assert [o.call.call_id for o in centre.phones.offers] == ["c0", "c1", "c3"]


@run
async def test_a_connected_callback_puts_the_agent_on_the_call_and_wraps_up_at_its_end() -> None:
    centre = Centre()
    await centre.agent(1)
    callback = ScriptedCallback("connected", hold=True)
    centre.callback("cb", callback, at=T0)
    await settle()
    assert centre.live.status_of(1).state is AgentState.OFFERED  # reserved while the customer rings
    assert callback.release is not None
    callback.release.set()
    await settle()
    assert centre.live.status_of(1).state is AgentState.ON_CALL
    assert centre.events.offers[0].call.call_id == "cb"  # the screen pop shows the callback's customer
    centre.live.call_ended("cb")
    assert centre.live.status_of(1).state is AgentState.READY  # wrap-up 0
    assert centre.live.virtual_ids() == set()


@run
async def test_a_customer_who_does_not_answer_releases_the_agent_in_their_idle_place() -> None:
    centre = Centre()
    await centre.agent(1)
    centre.clock.advance(5)
    await centre.agent(2)
    callback = ScriptedCallback("not_reached")
    centre.callback("cb", callback, at=T0)
    await settle()
    assert [o.agent_id for o in callback.offers] == [1]  # the longest idle agent
    first = centre.live.status_of(1)
    assert first.state is AgentState.READY and first.idle_since == T0  # not paused, not sent back
    assert centre.live.virtual_ids() == set()  # the desk joins it again when the retry is due
    centre.call("c1")
    await settle()
    assert centre.phones.offers[-1].agent_id == 1


@run
async def test_an_agent_who_does_not_answer_the_callback_is_paused_like_for_a_missed_call() -> None:
    centre = Centre()
    await centre.agent(1)
    centre.callback("cb", ScriptedCallback("agent_missed"), at=T0)
    await settle()
    status = centre.live.status_of(1)
    assert (status.state, status.reason) == (AgentState.PAUSED, "missed call")


@run
async def test_a_callback_waits_with_nobody_logged_in_and_never_times_out() -> None:
    centre = Centre(max_wait_s=60, max_length=1)
    await centre.agent(1, log_in=False)
    assert isinstance(centre.callback("cb", ScriptedCallback(), at=T0), Joined)
    assert isinstance(centre.live.join(InboundCall("c1", "billing")), Refused)  # callers are refused
    centre.clock.advance(3600)
    centre.live.tick()
    await settle()
    assert centre.live.position_of("cb") == 1
    await centre.live.change(1, Login("PJSIP/1001"), actor="test")
    await settle()
    assert centre.live.status_of(1).call_id == "cb"


@run
async def test_a_callback_replacing_the_callers_own_waiting_call_keeps_its_place_and_no_abandon() -> None:
    centre = Centre()
    endpoint = await centre.agent(1)
    centre.call("c0")
    await settle()
    centre.call("c1")
    centre.clock.advance(30)
    centre.call("c2")
    centre.clock.advance(30)
    joined = centre.callback("cb", ScriptedCallback(), at=centre.clock.now, replaces="c1")
    assert isinstance(joined, Joined) and joined.position == 1
    assert centre.live.position_of("c1") is None
    assert centre.live.queue_status("billing").service_level.abandoned == 0
    centre.phones.answer(endpoint)
    await settle()
    centre.live.call_ended("c0")
    await settle()
    assert centre.live.status_of(1).call_id == "cb"


@run
async def test_leaving_while_the_customer_rings_hangs_up_and_frees_the_agent() -> None:
    centre = Centre()
    await centre.agent(1)
    callback = ScriptedCallback(hold=True)
    centre.callback("cb", callback, at=T0)
    await settle()
    centre.live.leave("cb")
    await settle()
    assert callback.cancelled
    assert centre.live.status_of(1).state is AgentState.READY
    assert centre.live.queue_status("billing").service_level.abandoned == 0


@run
async def test_virtual_refusals_say_why() -> None:
    centre = Centre()
    unknown = centre.live.join_virtual(InboundCall("cb", "sales"), entered_at=T0, caller=ScriptedCallback())
    assert isinstance(unknown, Refused) and unknown.reason == "unknown_queue"
    centre.callback("cb", ScriptedCallback(), at=T0)
    again = centre.callback("cb", ScriptedCallback(), at=T0)
    assert isinstance(again, Refused) and again.reason == "duplicate"
