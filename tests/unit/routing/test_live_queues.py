"""The live ACD on a real event loop with a fake phone system and a hand-moved clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

import pytest

from routing.acd import SkillNeed
from routing.agent_state import AgentState, IllegalTransition, Login, Logout, Pause, Ready
from routing.live_queues import (
    AgentProfile,
    EndpointHeld,
    FakeAgentConnector,
    FakeRoutingEvents,
    InboundCall,
    Joined,
    LiveQueues,
    Outcome,
    QueueConfig,
    Refused,
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


class Centre:
    """A live ACD with queue "billing" (skill billing >= 3), and helpers to staff it."""

    def __init__(self, *, hold: bool = False, **queue: Any) -> None:
        self.clock = Clock()
        self.phones = FakeAgentConnector(hold=hold)
        self.events = FakeRoutingEvents()
        self.live = LiveQueues(self.phones, self.events, clock=self.clock)
        defaults: dict[str, Any] = {"needs": (SkillNeed("billing", 3),), "wrap_up_s": 30}
        self.live.set_queue(QueueConfig("billing", **(defaults | queue)))

    async def agent(self, agent_id: int, *, level: int = 5, log_in: bool = True) -> str:
        endpoint = f"PJSIP/10{agent_id:02d}"
        self.live.set_agent(AgentProfile(agent_id, f"agent{agent_id}", {"billing": level}))
        if log_in:
            await self.live.change(agent_id, Login(endpoint), actor="test")
        return endpoint

    def call(self, call_id: str, **fields: Any) -> Joined:
        joined = self.live.join(InboundCall(call_id, "billing", caller="+34600111222", **fields))
        assert isinstance(joined, Joined), joined
        return joined


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@run
async def test_a_call_reaches_the_ready_agent_with_the_skill_and_pops_its_context() -> None:
    centre = Centre()
    await centre.agent(1, level=2)  # below the minimum level 3
    endpoint = await centre.agent(2)
    centre.clock.advance(4)
    centre.call("c1", context={"intent": "billing", "account": "ES12"})
    outcome = await asyncio.wait_for(centre.live.wait("c1"), 1)
    assert outcome == Outcome("answered", 0.0, 2)
    (offer,) = centre.events.offers
    assert (offer.agent_id, offer.endpoint, offer.call.context["intent"]) == (2, endpoint, "billing")
    assert centre.live.status_of(2).state is AgentState.ON_CALL
    assert centre.events.states(2) == ["ready", "offered", "on_call"]


@run
async def test_after_the_call_the_agent_wraps_up_for_the_queue_time_then_is_ready() -> None:
    centre = Centre()
    await centre.agent(1)
    centre.call("c1")
    await centre.live.wait("c1")
    centre.clock.advance(120)
    centre.live.call_ended("c1")
    status = centre.live.status_of(1)
    assert status.state is AgentState.WRAP_UP and status.until == centre.clock.now + timedelta(seconds=30)
    centre.clock.advance(30)
    centre.live.tick()
    await settle()
    assert centre.live.status_of(1).state is AgentState.READY
    # The handled call (120 s talk, 30 s wrap-up) is now the queue's handle time: with the agent on
    # a new call, the next caller waits 120 s of talk and 30 s of wrap-up (the default talk is 180 s).
    centre.call("c2")
    await centre.live.wait("c2")
    assert centre.live.estimate("billing").seconds == 150.0


@run
async def test_an_unanswered_offer_pauses_the_agent_and_goes_to_the_next_one() -> None:
    centre = Centre()
    first = await centre.agent(1)
    centre.clock.advance(1)
    second = await centre.agent(2)
    centre.phones.script(first, "no_answer")
    centre.call("c1")
    outcome = await asyncio.wait_for(centre.live.wait("c1"), 1)
    assert outcome.agent_id == 2
    assert [o.endpoint for o in centre.phones.offers] == [first, second]
    status = centre.live.status_of(1)
    assert (status.state, status.reason) == (AgentState.PAUSED, "missed call")


@run
async def test_a_caller_who_hangs_up_while_the_agent_rings_leaves_the_agent_ready_in_their_place() -> None:
    centre = Centre(hold=True)
    await centre.agent(1)
    centre.clock.advance(1)
    await centre.agent(2)
    centre.call("c1")
    await settle()
    assert centre.phones.ringing() == ["PJSIP/1001"]
    centre.live.leave("c1")
    await settle()
    assert centre.live.status_of(1).state is AgentState.READY
    centre.call("c2")
    await settle()
    assert centre.phones.ringing() == ["PJSIP/1001"]  # still the longest idle
    centre.phones.answer("PJSIP/1001")
    assert (await centre.live.wait("c2")).agent_id == 1
    assert centre.live.queue_status("billing").service_level.abandoned == 1


@run
async def test_calls_wait_in_order_of_priority_then_arrival_and_know_their_position() -> None:
    centre = Centre()
    await centre.agent(1, log_in=False)
    await centre.live.change(1, Login("PJSIP/1001"), actor="test")
    await centre.live.change(1, Pause("lunch"), actor="test")
    assert centre.call("a").position == 1
    centre.clock.advance(1)
    assert centre.call("b").position == 2
    assert centre.call("vip", priority=5).position == 1
    assert centre.live.position_of("a") == 2
    await centre.live.change(1, Ready(), actor="test")
    await settle()
    assert [o.call.call_id for o in centre.phones.offers] == ["vip"]


@pytest.mark.parametrize(
    ("queue", "staffed", "call", "reason"),
    [
        ("sales", True, {}, "unknown_queue"),
        ("billing", False, {}, "no_agents"),
        ("billing", True, {"skills": ("german",)}, "no_agents"),
    ],
)
def test_join_refusals_say_why(queue: str, staffed: bool, call: dict[str, Any], reason: str) -> None:
    async def scenario() -> None:
        centre = Centre()
        await centre.agent(1, log_in=staffed)
        result = centre.live.join(InboundCall("c1", queue, **call))
        assert isinstance(result, Refused) and result.reason == reason

    asyncio.run(scenario())


@run
async def test_a_full_queue_refuses_the_next_caller_and_keeps_the_others() -> None:
    centre = Centre(max_length=2)
    await centre.agent(1)
    await centre.live.change(1, Pause("meeting"), actor="test")
    centre.call("a")
    centre.call("b")
    refused = centre.live.join(InboundCall("c", "billing"))
    assert isinstance(refused, Refused) and refused.reason == "queue_full"
    assert centre.live.queue_status("billing").waiting == 2


@run
async def test_max_wait_ends_the_wait_with_a_result_the_ivr_can_act_on() -> None:
    centre = Centre(max_wait_s=60)
    await centre.agent(1)
    await centre.live.change(1, Pause("meeting"), actor="test")
    centre.call("a")
    waiting = asyncio.ensure_future(centre.live.wait("a"))
    centre.clock.advance(59)
    centre.live.tick()
    assert centre.live.position_of("a") == 1
    centre.clock.advance(1)
    centre.live.tick()
    assert await asyncio.wait_for(waiting, 1) == Outcome("max_wait", 60.0)
    status = centre.live.queue_status("billing")
    assert status.waiting == 0 and status.service_level.abandoned == 1


@run
async def test_an_endpoint_held_by_another_agent_cannot_be_logged_in_on() -> None:
    centre = Centre()
    await centre.agent(1)
    await centre.agent(2, log_in=False)
    with pytest.raises(EndpointHeld, match="PJSIP/1001 is held by agent 'agent1'"):
        await centre.live.change(2, Login("PJSIP/1001"), actor="test")
    await centre.live.change(1, Logout(), actor="test")
    await centre.live.change(2, Login("PJSIP/1001"), actor="test")
    assert centre.live.agent_for_endpoint("PJSIP/1001") == 2


@run
async def test_an_agent_on_a_call_cannot_log_out_and_nothing_is_recorded() -> None:
    centre = Centre()
    await centre.agent(1)
    centre.call("c1")
    await centre.live.wait("c1")
    recorded = len(centre.events.changes)
    with pytest.raises(IllegalTransition, match="log out after the call"):
        await centre.live.change(1, Logout(), actor="test")
    assert len(centre.events.changes) == recorded


@run
async def test_the_match_widens_after_the_queue_wait() -> None:
    centre = Centre(widen_after_s=30)
    await centre.agent(1, level=1)
    centre.call("c1")
    await settle()
    assert centre.phones.offers == []
    centre.clock.advance(30)
    centre.live.tick()
    assert (await asyncio.wait_for(centre.live.wait("c1"), 1)).agent_id == 1


@run
async def test_queue_status_counts_agents_by_state_and_the_service_level() -> None:
    centre = Centre(service_level_s=20)
    await centre.agent(1)
    await centre.agent(2)
    await centre.live.change(1, Pause("coffee"), actor="test")
    await centre.live.change(2, Pause("lunch"), actor="test")
    centre.call("a")
    centre.call("b")
    centre.clock.advance(25)
    waiting = centre.live.queue_status("billing")
    assert (waiting.waiting, waiting.longest_wait_s, waiting.agents["paused"]) == (2, 25.0, 2)
    assert waiting.estimate.seconds is None and waiting.estimate.reason == "no_agents"
    await centre.live.change(1, Ready(), actor="test")
    assert (await centre.live.wait("a")).waited_s == 25.0  # outside the 20 s target
    centre.live.leave("b")
    status = centre.live.queue_status("billing")
    assert status.agents["on_call"] == 1 and status.agents["paused"] == 1
    level = status.service_level
    assert (level.answered, level.answered_within_target, level.abandoned, level.percent) == (1, 0, 1, 0.0)
