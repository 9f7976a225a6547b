"""Delivers ARI events to whoever waits for them: per channel, per bridge, per application / event type.

    router = AriRouter()
    router.subscribe(on_new_call, application="ccapp", types=[StasisStart])
    sub = router.on_channel(channel_id, call.events.put_nowait)   # inside on_new_call
    ...
    sub.cancel()                                                     # after StasisEnd

For each event: first the subscribers (in the order they subscribed), then the handlers of the channels and
bridges it concerns, as registered at that moment, so a handler added by a subscriber for StasisStart
also receives that StasisStart. Each handler is called at most once per event, even when it listens on two
of the channels involved (Dial: peer and caller). Handlers may be plain functions or coroutines; they run
one after another, in the order events arrive, so DTMF digits reach a call in the order they were pressed.
Keep them short (put the event in the call's queue): the next event waits for them.

A handler that raises is logged with the event and the channel, and never stops the stream or the others.
Channels are not forgotten on their own: cancel a channel's subscription when its call ends (StasisEnd;
the recordings show that a channel hung up over REST gets no ChannelDestroyed).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from voice.ari.errors import AriProtocolError
from voice.ari.events import AriEvent, parse_event
from voice.subscription import Subscription

logger = logging.getLogger(__name__)

Handler = Callable[[AriEvent], Awaitable[None] | None]


@dataclass(frozen=True, eq=False, slots=True)
class _Subscriber:
    handler: Handler
    application: str | None
    types: frozenset[str] | None

    def wants(self, event: AriEvent) -> bool:
        if self.application is not None and event.application != self.application:
            return False
        return self.types is None or event.type in self.types


class AriRouter:
    def __init__(self) -> None:
        self._subscribers: list[_Subscriber] = []
        self._channels: dict[str, list[Handler]] = {}
        self._bridges: dict[str, list[Handler]] = {}
        self.failures = 0  # handler calls that raised, for health checks and tests

    # --- registration -----------------------------------------------------------------------------

    def subscribe(
        self,
        handler: Handler,
        *,
        application: str | None = None,
        types: Iterable[str | type[AriEvent]] | None = None,
    ) -> Subscription:
        """Every event (of `application`, of the given types: names or model classes)."""
        names = None if types is None else frozenset(_type_name(kind) for kind in types)
        subscriber = _Subscriber(handler, application, names)
        self._subscribers.append(subscriber)
        return Subscription(lambda: _discard(self._subscribers, subscriber))

    def on_channel(self, channel_id: str, handler: Handler) -> Subscription:
        """Events about this channel (its id: `channel.id`, a Dial's peer/caller, a playback's target)."""
        return self._register(self._channels, channel_id, handler)

    def on_bridge(self, bridge_id: str, handler: Handler) -> Subscription:
        return self._register(self._bridges, bridge_id, handler)

    @property
    def watched_channels(self) -> frozenset[str]:
        return frozenset(self._channels)

    @staticmethod
    def _register(table: dict[str, list[Handler]], key: str, handler: Handler) -> Subscription:
        handlers = table.setdefault(key, [])

        def remove() -> None:  # this registration only, even if the same handler was registered twice
            current = table.get(key)
            if current is None:
                return
            for index, candidate in enumerate(current):
                if candidate is handler:
                    del current[index]
                    break
            if not current:
                del table[key]

        handlers.append(handler)
        return Subscription(remove)

    # --- delivery ---------------------------------------------------------------------------------

    async def dispatch_raw(self, data: Mapping[str, Any]) -> AriEvent | None:
        """Parse and deliver one decoded message; a message that is not an ARI event is logged, not raised."""
        try:
            event = parse_event(data)
        except AriProtocolError as exc:
            logger.warning("ARI: dropped a message that is not a valid event: %s", exc)
            return None
        await self.dispatch(event)
        return event

    async def dispatch(self, event: AriEvent) -> int:
        """Deliver to every interested handler; returns how many were called."""
        called: list[Handler] = []
        for subscriber in list(self._subscribers):
            if subscriber.wants(event):
                await self._call(subscriber.handler, event, called)
        for channel_id in event.channel_ids():
            for handler in list(self._channels.get(channel_id, ())):
                await self._call(handler, event, called)
        for bridge_id in event.bridge_ids():
            for handler in list(self._bridges.get(bridge_id, ())):
                await self._call(handler, event, called)
        return len(called)

    async def _call(self, handler: Handler, event: AriEvent, called: list[Handler]) -> None:
        if handler in called:  # == : the same bound method fetched twice is one handler
            return
        called.append(handler)
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            self.failures += 1
            logger.exception(
                "ARI handler %s failed on %s (channels %s, application %r)",
                getattr(handler, "__qualname__", repr(handler)),
                event.type,
                ", ".join(event.channel_ids()) or "-",
                event.application,
            )


def _type_name(kind: str | type[AriEvent]) -> str:
    if isinstance(kind, str):
        return kind
    default = kind.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{kind.__name__} has no fixed event type; subscribe by name instead")
    return default


def _discard(items: list[_Subscriber], item: _Subscriber) -> None:
    for index, candidate in enumerate(items):
        if candidate is item:
            del items[index]
            return
