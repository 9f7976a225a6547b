"""How a message's delivery status moves on, whatever order the provider's reports arrive in.

Pure. Twilio reports queued, sending, sent, delivered (and read, on WhatsApp), or undelivered and
failed, each in its own webhook; webhooks can arrive twice and out of order. A status applies only
if it is further along than the one recorded: a late "sent" never turns a delivered message back,
a repeated "delivered" changes nothing, and once a message has a final outcome (delivered,
undelivered, failed) only "read" may still follow a delivery.

    advance("sent", "delivered")   # Advance(status="delivered", outcome=Outcome.DELIVERED)
    advance("delivered", "sent")   # None: ignored
"""

from __future__ import annotations

from dataclasses import dataclass

from core.timeline.schemas import Outcome

# How far along each status is. Statuses of the same rank do not replace each other.
_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "partially_delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}
_OUTCOMES = {
    "delivered": Outcome.DELIVERED,
    "partially_delivered": Outcome.DELIVERED,
    "read": Outcome.DELIVERED,
    "undelivered": Outcome.UNDELIVERED,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}
_FAILURES = frozenset({"undelivered", "failed", "canceled"})
KNOWN_STATUSES = frozenset(_RANK)


@dataclass(frozen=True, slots=True)
class Advance:
    status: str
    outcome: Outcome | None  # the interaction's outcome from now on; None: not final yet


def advance(current: str | None, reported: str) -> Advance | None:
    """The move from `current` to the `reported` status, or None if the report changes nothing
    (a repeat, a status that arrived late, or one this service does not know)."""
    if reported not in _RANK:
        return None
    if current in _FAILURES:
        return None  # a failure is final: nothing Twilio reports later makes it delivered
    if current is not None and current in _RANK and _RANK[reported] <= _RANK[current]:
        return None
    return Advance(status=reported, outcome=_OUTCOMES.get(reported))
