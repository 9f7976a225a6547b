"""Records what the live ACD does: state changes in the database, screen pops on the event bus.

The live ACD must never wait on the database while it routes calls, so the work goes to one thread
of its own. One thread, not several: the history of an agent's states is written in the order it
happened. A failed write is logged and never disturbs the calls.

The screen pop (`agent.call_offered`) carries the customer lookup of the caller's number (the same
read as `GET /customers/lookup`, `core.customers.screen_pop`), what the IVR collected, the queue and
the wait; the agent's event stream and the CRM webhook read it from the bus.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from core.customers import screen_pop
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.errors import DomainError
from core.events import Event, EventBus
from routing import service
from routing.live_queues import CallOffer, StateChange

log = logging.getLogger(__name__)

CALL_OFFERED = "agent.call_offered"


class DatabaseRecorder:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        read_session_factory: sessionmaker[Session],
        bus: EventBus,
        *,
        region: str,
    ) -> None:
        self._sessions = session_factory
        self._reads = read_session_factory
        self._bus = bus
        self._region = region
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="routing-recorder")

    def state_changed(self, change: StateChange) -> asyncio.Future[None]:
        return asyncio.wrap_future(self._thread.submit(self._record, change))

    def call_offered(self, offer: CallOffer) -> asyncio.Future[None]:
        return asyncio.wrap_future(self._thread.submit(self._pop, offer))

    def close(self) -> None:
        self._thread.shutdown(wait=True)

    def _record(self, change: StateChange) -> None:
        try:
            with unit_of_work(self._sessions) as db:
                service.record_state_change(db=db, change=change)
        except Exception:
            log.exception("could not record agent %s going %s", change.agent_id, change.after.state)
            raise

    def _pop(self, offer: CallOffer) -> None:
        self._bus.publish(Event(CALL_OFFERED, self.screen_pop(offer)))

    def screen_pop(self, offer: CallOffer) -> dict[str, Any]:
        call = offer.call
        customer: dict[str, Any] | None = None
        if call.caller:
            try:
                with self._reads() as db:
                    found = screen_pop.lookup(
                        db=db, kind=IdentityKind.PHONE, value=call.caller, region=self._region
                    )
                customer = found.document() if found is not None else None
            except DomainError:  # a withheld or malformed number: the pop shows the call without a customer
                customer = None
        payload = {
            "agent_id": offer.agent_id,
            "agent": offer.agent_name,
            "endpoint": offer.endpoint,
            "call_id": call.call_id,
            "queue": call.queue,
            "caller": call.caller,
            "customer_id": call.customer_id,
            "interaction_id": call.interaction_id,
            "waited_seconds": round(offer.waited_s, 1),
            "preferred_agent": offer.preferred,
            "ivr": dict(call.context),
            "lookup": customer,
        }
        # Timestamps as ISO text: the stream and the webhook send it as JSON as it is.
        loaded: dict[str, Any] = orjson.loads(orjson.dumps(payload, default=str))
        return loaded
