"""Delivers AMI events to subscribers (all events, or those named). Used by `AmiClient` and `FakeAmi`.

Handlers may be plain functions or coroutines; they run one after another in the order events arrive.
The client runs them in a task of their own, never in the task reading the socket, so a handler may
itself send actions and await their answers. A handler that raises is logged and never stops the others.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from voice.ami.events import AmiEvent
from voice.subscription import Subscription

logger = logging.getLogger(__name__)

Handler = Callable[[AmiEvent], Awaitable[None] | None]


@dataclass(frozen=True, eq=False, slots=True)
class _Subscriber:
    handler: Handler
    events: frozenset[str] | None  # lower-case names

    def wants(self, event: AmiEvent) -> bool:
        return self.events is None or event.event.lower() in self.events


class AmiSubscribers:
    def __init__(self) -> None:
        self._subscribers: list[_Subscriber] = []
        self.failures = 0  # handler calls that raised

    def subscribe(self, handler: Handler, *, events: Iterable[str] | None = None) -> Subscription:
        """`events`: names such as "Hangup", "OriginateResponse" (any case); None for every event."""
        names = None if events is None else frozenset(name.lower() for name in events)
        subscriber = _Subscriber(handler, names)
        self._subscribers.append(subscriber)

        def remove() -> None:
            for index, candidate in enumerate(self._subscribers):
                if candidate is subscriber:
                    del self._subscribers[index]
                    return

        return Subscription(remove)

    async def dispatch(self, event: AmiEvent) -> int:
        called = 0
        for subscriber in list(self._subscribers):
            if not subscriber.wants(event):
                continue
            called += 1
            try:
                result = subscriber.handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.failures += 1
                logger.exception(
                    "AMI handler %s failed on %s (channel %s)",
                    getattr(subscriber.handler, "__qualname__", repr(subscriber.handler)),
                    event.event,
                    getattr(event, "channel", "") or "-",
                )
        return called
