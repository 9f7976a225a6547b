"""Inbound routing as the service runs it: the live ACD, its recorder, and the copies it keeps in sync.

The composition root makes one `InboundRouting` per process; the API and the voice layer share its
`live` ACD. At start it reads the agents (with the state last recorded) and the queues; afterwards
the `agent.*` and `queue.*` events that the services stage keep its copies current, whichever
thread committed them (`LiveQueues.submit` moves the change onto the ACD's loop).

Routing runs in one process: with `serve --workers N` each worker would have an ACD of its own, so
agents and calls must reach the same one (worker 0, like the dialer) until the bus runs on a broker.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from core.db import utcnow
from core.events import Event, EventBus, Subscription
from routing import service
from routing.crm_webhook import ScreenPopWebhook
from routing.live_queues import AgentConnector, LiveQueues, restored
from routing.recorder import DatabaseRecorder

log = logging.getLogger(__name__)


class InboundRouting:
    def __init__(
        self,
        *,
        connector: AgentConnector,
        session_factory: sessionmaker[Session],
        read_session_factory: sessionmaker[Session],
        bus: EventBus,
        region: str,
        ring_seconds: float = 15.0,
        webhook: ScreenPopWebhook | None = None,
    ) -> None:
        self.bus = bus
        self.recorder = DatabaseRecorder(session_factory, read_session_factory, bus, region=region)
        self.live = LiveQueues(connector, self.recorder, ring_timeout_s=ring_seconds)
        self.webhook = webhook
        self._reads = read_session_factory
        self._subscriptions: list[Subscription] = []

    def start(self) -> None:
        """Reads agents and queues into the live ACD and follows their changes from then on."""
        self._subscriptions = [
            self.bus.subscribe("agent.created", self._on_agent),
            self.bus.subscribe("agent.updated", self._on_agent),
            self.bus.subscribe("queue.created", self._on_queue),
            self.bus.subscribe("queue.updated", self._on_queue),
        ]
        if self.webhook is not None:
            self.webhook.subscribe(self.bus)
        self.reload()

    def reload(self) -> None:
        """Forgets the live state and reads agents and queues again (start-up, and tests)."""
        now = utcnow()
        try:
            with self._reads() as db:
                rows = service.list_agents(db=db)
                agents = [(service.profile_of(a), service.stored_status(a)) for a in rows]
                queues = [
                    service.config_from_payload(service.queue_payload(q)) for q in service.list_queues(db=db)
                ]
        except SQLAlchemyError:  # a schema not brought up to date: the API still serves what it can
            log.exception("inbound routing could not read its agents and queues; starting with none")
            agents, queues = [], []

        def load() -> None:
            self.live.clear()
            for config in queues:
                self.live.set_queue(config)
            for profile, status in agents:
                self.live.set_agent(profile, restored(status, now))

        self.live.submit(load)

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []
        if self.webhook is not None:
            self.webhook.close()
        self.recorder.close()

    def _on_agent(self, event: Event) -> None:
        profile = service.profile_from_payload(event.payload)
        self.live.submit(lambda: self.live.set_agent(profile))

    def _on_queue(self, event: Event) -> None:
        config = service.config_from_payload(event.payload)
        self.live.submit(lambda: self.live.set_queue(config))
