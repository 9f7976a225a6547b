"""The event bus every write publishes to; real-time KPIs and screen pops subscribe to it.

A small port (`EventBus`) with an in-process implementation. A broker (Redis streams, RabbitMQ)
implements the same two methods when several nodes run.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.db import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    topic: str  # "<entity>.<verb>", e.g. "interaction.created", "case.resolved"
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    occurred_at: datetime = field(default_factory=utcnow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "topic": self.topic,
            "occurred_at": self.occurred_at.isoformat(),
            "payload": self.payload,
        }


Handler = Callable[[Event], None]


class Subscription(Protocol):
    def close(self) -> None: ...


class EventBus(Protocol):
    def publish(self, event: Event) -> None: ...

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Calls `handler` for every event whose topic matches the glob `pattern` ("case.*", "*")."""
        ...


@dataclass(slots=True)
class _InProcessSubscription:
    bus: InProcessEventBus
    pattern: str
    handler: Handler

    def close(self) -> None:
        self.bus._remove(self)


class InProcessEventBus:
    """Delivers synchronously, in publish order, on the publishing thread.

    A handler that raises is logged and skipped: one broken subscriber never stops the others or
    the write that published. Handlers that do slow work hand it to their own queue or thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: tuple[_InProcessSubscription, ...] = ()

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        subscription = _InProcessSubscription(self, pattern, handler)
        with self._lock:
            self._subscriptions = (*self._subscriptions, subscription)
        return subscription

    def _remove(self, subscription: _InProcessSubscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def publish(self, event: Event) -> None:
        for subscription in self._subscriptions:  # a snapshot: subscribing mid-publish is safe
            if not fnmatch.fnmatchcase(event.topic, subscription.pattern):
                continue
            try:
                subscription.handler(event)
            except Exception:
                log.exception(
                    "event handler for %r failed on %s %s", subscription.pattern, event.topic, event.id
                )
