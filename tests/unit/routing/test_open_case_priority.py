"""A caller with an open case goes up the queue by the queue's open-case boost: a later caller with an
open case is answered before an earlier one without, unless the queue's boost is 0; the raise stops at
the IVR's highest priority and never lowers a call; a failed lookup joins the caller as the IVR sent it."""

from __future__ import annotations

import asyncio

import pytest

from routing.agent_state import Login, Pause, Ready
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
from routing.preferred_agent import (
    OPEN_CASE_PRIORITY_CAP,
    FakeOpenCases,
    OpenCase,
    OpenCaseLookup,
    raised_priority,
)

AGENT = 1
WITH_CASE, WITHOUT_CASE = 7, 8  # customers
QUEUE = "incidencias"


class FailingLookup:
    async def open_case(self, customer_id: int, queue: str) -> OpenCase | None:
        raise ConnectionError("the database went away")


def answered_first(lookup: OpenCaseLookup, *calls: InboundCall) -> CallOffer:
    """The only agent is paused while `calls` join through IvrQueues, in that order (each a moment after
    the one before); then the agent is ready: the offer the ACD makes."""

    async def main() -> CallOffer:
        events = FakeRoutingEvents()
        live = LiveQueues(FakeAgentConnector(hold=True), events)
        queues = IvrQueues.install(live)
        queues.preferred_agents = lookup
        live.set_queue(QueueConfig(QUEUE))
        live.set_agent(AgentProfile(AGENT, "alba"))
        await live.change(AGENT, Login("PJSIP/1001"), actor="test")
        await live.change(AGENT, Pause("coffee"), actor="test")
        for call in calls:
            assert isinstance(await queues.join(call), Joined)
            await asyncio.sleep(0.002)  # the next caller enters later
        assert events.offers == []
        await live.change(AGENT, Ready(), actor="test")
        await asyncio.sleep(0)
        (offer,) = events.offers
        live.clear()
        return offer

    return asyncio.run(main())


def call(call_id: str, customer_id: int | None, priority: int = 0) -> InboundCall:
    return InboundCall(call_id, QUEUE, customer_id=customer_id, priority=priority)


@pytest.mark.parametrize(("boost", "first"), [(1, "later-with-case"), (3, "later-with-case"), (0, "earlier")])
def test_a_later_caller_with_an_open_case_is_answered_first_unless_the_boost_is_off(
    boost: int, first: str
) -> None:
    cases = FakeOpenCases({WITH_CASE: None}, boosts={QUEUE: boost})
    offer = answered_first(cases, call("earlier", WITHOUT_CASE), call("later-with-case", WITH_CASE))
    assert offer.call.call_id == first
    assert offer.call.priority == boost
    assert cases.asked == [(WITHOUT_CASE, QUEUE), (WITH_CASE, QUEUE)]


def test_the_raise_adds_to_the_ivr_priority_and_outranks_a_higher_ivr_priority_it_passes() -> None:
    cases = FakeOpenCases({WITH_CASE: None}, boosts={QUEUE: 2})
    offer = answered_first(
        cases, call("earlier", WITHOUT_CASE, priority=5), call("later", WITH_CASE, priority=4)
    )
    assert (offer.call.call_id, offer.call.priority) == ("later", 6)


def test_an_open_case_never_lifts_a_call_above_the_ivrs_highest_priority() -> None:
    cases = FakeOpenCases({WITH_CASE: None}, boosts={QUEUE: 10})
    top = OPEN_CASE_PRIORITY_CAP
    offer = answered_first(
        cases, call("urgent", WITHOUT_CASE, priority=top), call("case", WITH_CASE, priority=9)
    )
    assert offer.call.call_id == "urgent"  # level with it, the earlier one goes first


def test_a_failed_lookup_joins_the_caller_at_the_ivrs_priority() -> None:
    offer = answered_first(
        FailingLookup(), call("earlier", WITHOUT_CASE), call("later", WITH_CASE, priority=0)
    )
    assert (offer.call.call_id, offer.call.priority) == ("earlier", 0)


@pytest.mark.parametrize(
    ("priority", "boost", "raised"),
    [
        (0, 1, 1),
        (0, 0, 0),
        (3, 2, 5),
        (9, 5, 10),  # capped
        (10, 1, 10),
        (12, 1, 12),  # above the cap already (not an IVR's): left as it is
        (4, -2, 4),  # a negative boost is no boost
    ],
)
def test_raised_priority(priority: int, boost: int, raised: int) -> None:
    assert raised_priority(priority, boost) == raised
