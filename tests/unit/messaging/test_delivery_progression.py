"""Delivery statuses only move forward, whatever order Twilio's webhooks arrive in."""

from __future__ import annotations

import pytest

from core.timeline.schemas import Outcome
from messaging.delivery import Advance, advance


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        (None, "queued", Advance("queued", None)),
        ("queued", "sent", Advance("sent", None)),
        ("queued", "delivered", Advance("delivered", Outcome.DELIVERED)),  # "sent" never arrived
        ("sent", "delivered", Advance("delivered", Outcome.DELIVERED)),
        ("sent", "undelivered", Advance("undelivered", Outcome.UNDELIVERED)),
        ("sending", "failed", Advance("failed", Outcome.FAILED)),
        ("accepted", "canceled", Advance("canceled", Outcome.FAILED)),
        ("delivered", "read", Advance("read", Outcome.DELIVERED)),
        (None, "delivered", Advance("delivered", Outcome.DELIVERED)),
        ("something new", "sent", Advance("sent", None)),  # an unknown recorded status is no obstacle
    ],
)
def test_a_status_further_along_moves_the_message_on(
    current: str | None, reported: str, expected: Advance
) -> None:
    assert advance(current, reported) == expected


@pytest.mark.parametrize(
    ("current", "reported"),
    [
        ("delivered", "sent"),  # late: never regress a delivered message
        ("delivered", "queued"),
        ("delivered", "delivered"),  # repeated
        ("sent", "sent"),
        ("sent", "queued"),
        ("delivered", "undelivered"),  # two final outcomes: the first one stands
        ("delivered", "failed"),
        ("failed", "delivered"),
        ("undelivered", "read"),  # a failure is final
        ("read", "delivered"),
        ("queued", "receiving"),  # inbound statuses say nothing about an outbound message
        ("queued", "no such status"),
    ],
)
def test_a_late_repeated_or_unknown_status_changes_nothing(current: str, reported: str) -> None:
    assert advance(current, reported) is None
