"""The IVR joining a queue with the customer's preferred agent (who handled their open case last): the
ACD gives that agent the call when ready, before a longer-idle one, and never waits for them; a lookup
that fails or is slow never keeps the caller out of the queue."""

from __future__ import annotations

import asyncio
import logging

import pytest

from routing import ivr_queues
from routing.acd import SkillNeed
from routing.agent_state import Login, Pause
from routing.ivr_queues import IvrQueues
from routing.live_queues import (
    AgentProfile,
    CallOffer,
    FakeAgentConnector,
    FakeRoutingEvents,
    InboundCall,
    Joined,
    LiveQueues,
    QueueConfig,
)
from routing.preferred_agent import FakeOpenCases, OpenCase, OpenCaseLookup

A, B = 1, 2  # agent A has been idle the longest; B handled the customer's open case last
CUSTOMER = 7


class FailingLookup:
    async def open_case(self, customer_id: int, queue: str) -> OpenCase | None:
        raise ConnectionError("the database went away")


class SlowLookup:
    async def open_case(self, customer_id: int, queue: str) -> OpenCase | None:
        await asyncio.sleep(10)
        return OpenCase(B, 1)


def offered(
    finder: OpenCaseLookup,
    call: InboundCall,
    *,
    b_paused: bool = False,
) -> tuple[CallOffer, InboundCall]:
    """Agents A and B ready (A idle longer), unless B is paused; the call joins through IvrQueues with
    `finder`; the offer the ACD makes, and the call as it joined."""

    async def main() -> tuple[CallOffer, InboundCall]:
        events = FakeRoutingEvents()
        live = LiveQueues(FakeAgentConnector(hold=True), events)
        queues = IvrQueues.install(live)
        queues.preferred_agents = finder
        live.set_queue(QueueConfig("facturacion", needs=(SkillNeed("facturacion"),)))
        for agent_id in (A, B):
            live.set_agent(AgentProfile(agent_id, f"agent{agent_id}", {"facturacion": 5}))
            await live.change(agent_id, Login(f"PJSIP/100{agent_id}"), actor="test")
            await asyncio.sleep(0.005)  # A's idle time starts first
        if b_paused:
            await live.change(B, Pause("lunch"), actor="test")
        assert isinstance(await queues.join(call), Joined)
        await asyncio.sleep(0)
        (offer,) = events.offers
        live.clear()
        return offer, offer.call

    return asyncio.run(main())


def a_call(*, customer_id: int | None = None, preferred_agent: int | None = None) -> InboundCall:
    return InboundCall("c1", "facturacion", customer_id=customer_id, preferred_agent=preferred_agent)


def test_the_agent_of_the_open_case_gets_the_call_before_a_longer_idle_one() -> None:
    finder = FakeOpenCases({CUSTOMER: B})
    offer, call = offered(finder, a_call(customer_id=CUSTOMER))
    assert (offer.agent_id, offer.preferred) == (B, True)
    assert call.preferred_agent == B and finder.asked == [(CUSTOMER, "facturacion")]


def test_a_busy_preferred_agent_does_not_hold_the_call_up() -> None:
    offer, call = offered(FakeOpenCases({CUSTOMER: B}), a_call(customer_id=CUSTOMER), b_paused=True)
    assert (offer.agent_id, offer.preferred) == (A, False)
    assert call.preferred_agent == B


def test_without_a_case_agent_the_longest_idle_agent_gets_the_call() -> None:
    offer, call = offered(FakeOpenCases({}), a_call(customer_id=CUSTOMER))
    assert (offer.agent_id, call.preferred_agent) == (A, None)


def test_an_anonymous_caller_is_not_looked_up_and_a_call_naming_its_agent_keeps_it() -> None:
    finder = FakeOpenCases({CUSTOMER: B})
    offer, _ = offered(finder, a_call())
    assert offer.agent_id == A
    assert finder.asked == []
    offer, call = offered(finder, a_call(customer_id=CUSTOMER, preferred_agent=A))
    assert (offer.agent_id, call.preferred_agent) == (A, A)


def test_a_failing_lookup_joins_the_caller_without_a_preference(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="routing.ivr_queues"):
        offer, call = offered(FailingLookup(), a_call(customer_id=CUSTOMER))
    assert (offer.agent_id, call.preferred_agent) == (A, None)
    assert "no preferred agent" in caplog.text


def test_a_slow_lookup_is_given_up_and_the_caller_joins_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ivr_queues, "PREFERENCE_LOOKUP_S", 0.01)
    offer, call = offered(SlowLookup(), a_call(customer_id=CUSTOMER))
    assert (offer.agent_id, call.preferred_agent) == (A, None)
