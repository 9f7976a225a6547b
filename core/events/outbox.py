"""Events wait on the session until its transaction commits, so nobody hears of a rolled-back write."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from core.events.bus import Event, EventBus

_PENDING = "centralita.pending_events"


def stage(db: Session, topic: str, payload: dict[str, Any]) -> Event:
    """Queues an event to be published when `db` commits; dropped if it rolls back."""
    event = Event(topic=topic, payload=payload)
    db.info.setdefault(_PENDING, []).append(event)
    return event


def bind_outbox(factory: sessionmaker[Session], bus: EventBus) -> None:
    """Publishes each session's staged events to `bus` after a successful commit."""

    @sa_event.listens_for(factory, "after_commit")
    def _publish(session: Session) -> None:
        pending: list[Event] = session.info.pop(_PENDING, [])
        for staged in pending:
            bus.publish(staged)

    @sa_event.listens_for(factory, "after_soft_rollback")
    def _discard(session: Session, previous_transaction: Any) -> None:
        if previous_transaction.parent is None:  # only the outermost transaction owns the events
            session.info.pop(_PENDING, None)
