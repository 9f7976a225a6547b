"""Blended agents: the live ACD's answer to the dialer (`routing.campaign_agents`), on a real event loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from test_live_queues import T0, Centre, run, settle

from dialer.agent_availability import Availability
from routing.agent_state import (
    AgentState,
    AgentStatus,
    Dialed,
    Hangup,
    IllegalTransition,
    Login,
    Pause,
    transition,
)
from routing.campaign_agents import AcdCampaignAgents
from routing.live_queues import AgentProfile


def test_a_ready_agent_takes_a_campaigns_call_and_nobody_else_does() -> None:
    ready = transition(AgentStatus(), Login("PJSIP/1001"), T0)
    on_call = transition(ready, Dialed("attempt-7", "12"), T0)
    assert (on_call.state, on_call.call_id, on_call.queue) == (
        AgentState.ON_CALL,
        "attempt-7",
        "campaign:12",
    )
    assert on_call.endpoint == "PJSIP/1001"
    assert transition(on_call, Hangup(15), T0).state is AgentState.WRAP_UP
    paused = transition(ready, Pause("lunch"), T0)
    for busy in (paused, on_call, AgentStatus()):
        with pytest.raises(IllegalTransition, match="only a ready agent takes a campaign's call"):
            transition(busy, Dialed("attempt-8", "12"), T0)


@run
async def test_the_agents_state_in_the_acd_decides_their_availability_for_a_campaign() -> None:
    centre = Centre()
    agents = AcdCampaignAgents(centre.live)
    phone = await centre.agent(1)
    assert agents.availability(phone) is Availability.FREE
    assert agents.availability("PJSIP/7777") is Availability.FREE  # no agent's phone: the dialer's own

    await centre.live.change(1, Pause("training"), actor="test")
    assert agents.availability(phone) is Availability.AWAY
    assert not agents.claim(phone, call_ref="attempt-1", campaign="12")

    # Logged out, their own phone is theirs all the same: away, not the dialer's.
    centre.live.set_agent(AgentProfile(2, "agent2", {"billing": 5}, home_endpoint="PJSIP/1002"))
    assert agents.availability("PJSIP/1002") is Availability.AWAY
    assert not agents.claim("PJSIP/1002", call_ref="attempt-2", campaign="12")


@run
async def test_an_agent_on_a_campaigns_call_is_offered_no_inbound_call_until_their_wrap_up_ends() -> None:
    centre = Centre(wrap_up_s=30)
    agents = AcdCampaignAgents(centre.live)
    phone = await centre.agent(1)
    assert agents.claim(phone, call_ref="attempt-9", campaign="12")
    status = centre.live.status_of(1)
    assert (status.state, status.queue, status.call_id) == (
        AgentState.ON_CALL,
        "campaign:12",
        "attempt-9",
    )
    assert agents.availability(phone) is Availability.BUSY
    assert not agents.claim(phone, call_ref="attempt-10", campaign="12")  # one call at a time

    centre.call("inbound-1")
    await settle()
    assert centre.phones.offers == []  # the caller waits: their agent is on the campaign's call
    assert centre.live.position_of("inbound-1") == 1

    agents.release(phone, call_ref="attempt-8", wrap_up_seconds=15)  # another call's end: nothing
    assert centre.live.status_of(1).state is AgentState.ON_CALL
    agents.release(phone, call_ref="attempt-9", wrap_up_seconds=15)
    status = centre.live.status_of(1)
    assert status.state is AgentState.WRAP_UP and status.until == centre.clock.now + timedelta(seconds=15)
    assert agents.availability(phone) is Availability.WRAPPING_UP
    await settle()
    assert centre.phones.offers == []

    centre.clock.advance(15)
    centre.live.tick()
    outcome = await asyncio.wait_for(centre.live.wait("inbound-1"), 1)
    assert outcome.agent_id == 1
    assert centre.events.states(1) == ["ready", "on_call", "wrap_up", "ready", "offered", "on_call"]
    # The campaign's call (0 s of talk) is not the queue's: the next caller's wait is still the defaults'
    # 180 s of talk and the queue's 30 s of wrap-up, not 0 + 30.
    assert centre.live.estimate("billing").seconds == 210.0


@run
async def test_an_agents_own_preview_dial_ends_their_wrap_up_and_nothing_else_does() -> None:
    centre = Centre()
    agents = AcdCampaignAgents(centre.live)
    phone = await centre.agent(1)
    assert agents.claim(phone, call_ref="attempt-1", campaign="12")
    agents.release(phone, call_ref="attempt-1", wrap_up_seconds=60)
    assert not agents.claim(phone, call_ref="attempt-2", campaign="12")  # the dialer waits for the wrap-up
    assert agents.claim(phone, call_ref="attempt-2", campaign="12", ends_wrap_up=True)
    assert centre.live.status_of(1).call_id == "attempt-2"
    await settle()
    assert centre.events.states(1) == ["ready", "on_call", "wrap_up", "ready", "on_call"]
