import logging

import pytest

from core.events import Event, InProcessEventBus


def test_handlers_receive_matching_topics_in_publish_order() -> None:
    bus = InProcessEventBus()
    cases: list[str] = []
    everything: list[str] = []
    bus.subscribe("case.*", lambda e: cases.append(e.topic))
    bus.subscribe("*", lambda e: everything.append(e.topic))
    for topic in ("case.opened", "interaction.created", "case.resolved"):
        bus.publish(Event(topic=topic, payload={}))
    assert cases == ["case.opened", "case.resolved"]
    assert everything == ["case.opened", "interaction.created", "case.resolved"]


def test_a_failing_handler_is_logged_and_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = InProcessEventBus()
    seen: list[str] = []

    def broken(_: Event) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe("*", broken)
    bus.subscribe("*", lambda e: seen.append(e.id))
    with caplog.at_level(logging.ERROR):
        bus.publish(event := Event(topic="customer.created", payload={}))
    assert seen == [event.id]
    assert "subscriber bug" in caplog.text


def test_closed_subscriptions_hear_nothing_more() -> None:
    bus = InProcessEventBus()
    seen: list[str] = []
    subscription = bus.subscribe("*", lambda e: seen.append(e.topic))
    bus.publish(Event(topic="a.b", payload={}))
    subscription.close()
    bus.publish(Event(topic="a.c", payload={}))
    assert seen == ["a.b"]


def test_events_serialise_with_an_iso_timestamp() -> None:
    event = Event(topic="case.opened", payload={"case_id": 3})
    as_dict = event.to_dict()
    assert as_dict["topic"] == "case.opened"
    assert as_dict["payload"] == {"case_id": 3}
    assert as_dict["occurred_at"].endswith("+00:00")
