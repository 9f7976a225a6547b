"""The Sankey data of customers' journeys, counted by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reporting.journeys import journey_map
from reporting.rows import Contact, Step

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ivr(
    interaction_id: int, customer: int | None, minute: float, outcome: str, *nodes: str, queue: str = ""
) -> Contact:
    steps = [Step("ivr_node", at(minute), node=node) for node in nodes]
    if queue:
        steps.append(Step("queue_enter", at(minute), node="q", attributes={"queue": queue}))
    return Contact(
        interaction_id, "voice", "inbound", at(minute), at(minute + 2), outcome, customer_id=customer,
        attributes={"flow": "banco_es"}, steps=tuple(steps),
    )  # fmt: skip


def sms(interaction_id: int, customer: int, minute: float) -> Contact:
    return Contact(
        interaction_id, "sms", "inbound", at(minute), at(minute), "delivered", customer_id=customer
    )


def test_links_count_moves_between_channels_and_ivr_nodes() -> None:
    contacts = [
        # customer 1: voice -> ivr:welcome -> ivr:menu -> queue:billing, then an SMS
        ivr(1, 1, 0, "transferred", "welcome", "menu", queue="billing"),
        sms(2, 1, 30),
        # customer 2: voice -> ivr:welcome -> ivr:menu, hung up (drop-off at ivr:menu)
        ivr(3, 2, 5, "abandoned", "welcome", "menu"),
        # customer 3: voice -> ivr:welcome -> ivr:balance, finished in the IVR
        ivr(4, 3, 6, "contained", "welcome", "balance"),
    ]
    journeys = journey_map(contacts)
    links = {(k.source, k.target): k.value for k in journeys.links}
    # every journey starts 0:voice -> 1:ivr:welcome (3); two go on to the menu, one to the balance
    assert links == {
        ("0:voice", "1:ivr:welcome"): 3,
        ("1:ivr:welcome", "2:ivr:menu"): 2,
        ("1:ivr:welcome", "2:ivr:balance"): 1,
        ("2:ivr:menu", "3:queue:billing"): 1,
        ("3:queue:billing", "4:sms"): 1,
    }
    nodes = {n.id: (n.journeys, n.ended, n.dropped) for n in journeys.nodes}
    assert nodes["0:voice"] == (3, 0, 0)
    assert nodes["2:ivr:menu"] == (2, 1, 1)  # customer 2 ended here, abandoned
    assert nodes["2:ivr:balance"] == (1, 1, 0)
    assert nodes["4:sms"] == (1, 1, 0)
    assert journeys.journeys == 3


def test_a_customer_calling_twice_draws_no_cycle() -> None:
    contacts = [ivr(1, 7, 0, "abandoned", "welcome"), ivr(2, 7, 10, "contained", "welcome")]
    ids = [n.id for n in journey_map(contacts).nodes]
    assert ids == ["0:voice", "1:ivr:welcome", "2:voice", "3:ivr:welcome"]


def test_anonymous_callers_are_journeys_of_their_own_and_long_ones_are_cut() -> None:
    contacts = [ivr(1, None, 0, "contained", "a", "b", "c"), ivr(2, None, 1, "contained", "a")]
    journeys = journey_map(contacts, max_steps=3)
    assert (journeys.journeys, journeys.truncated) == (2, 1)
    assert max(n.step for n in journeys.nodes) == 2


def test_filters_keep_whole_journeys_that_touched_what_is_asked() -> None:
    contacts = [ivr(1, 1, 0, "transferred", "welcome", queue="billing"), sms(2, 1, 30), sms(3, 2, 30)]
    journeys = journey_map(contacts, touching=lambda c: c.channel == "voice")
    assert journeys.journeys == 1
    assert [n.label for n in journeys.nodes] == ["voice", "ivr:welcome", "queue:billing", "sms"]


def test_by_case_groups_the_contacts_of_each_case() -> None:
    a = Contact(1, "email", "inbound", at(0), customer_id=1, case_id=10)
    b = Contact(2, "voice", "inbound", at(5), customer_id=1, case_id=11)
    c = Contact(3, "chat", "inbound", at(9), customer_id=1, case_id=10)
    links = {(k.source, k.target): k.value for k in journey_map([a, b, c], by="case").links}
    assert links == {("0:email", "1:chat"): 1}


def test_max_steps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_steps"):
        journey_map([], max_steps=0)
    assert journey_map([]).as_dict() == {"journeys": 0, "truncated": 0, "nodes": [], "links": []}
