"""A call on the customer timeline: the port the IVR runner writes through, the real journal on the core
services, an in-memory fake, and how IVR steps become touchpoints.

Each call is one Interaction (channel voice, inbound) keyed by its call id (`external_refs`), opened when
the call starts and closed with an outcome when it ends; every step is a Touchpoint. The database is
blocking, so `TimelineCallJournal` runs every write in a thread pool of its own, each in its own
`unit_of_work`: the event loop that carries the calls never waits on the database, and the API's thread
pool is not shared with them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.channels import Channel, Direction
from core.customers import screen_pop
from core.customers import service as customer_service
from core.customers.identities import IdentityKind, normalise_phone
from core.db import unit_of_work
from core.errors import Conflict, InvalidInput
from core.timeline import service as timeline
from core.timeline.schemas import (
    CustomerIdentityRef,
    ExternalRef,
    InteractionClose,
    InteractionCreate,
    Outcome,
    RefKind,
    TouchpointCreate,
    TouchpointKind,
)
from voice.ivr.actions import EnqueueCall, OfferCallback, RecordStep, SendLink, Transfer
from voice.ivr.events import CustomerInfo
from voice.ivr.schema import LookupBy, NodeKind
from voice.ivr.voice_port import CallInfo, QueueProgress

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class OpenedCall:
    interaction_id: int
    customer_id: int | None  # None: an anonymous call (withheld or unusable number)
    new_customer: bool = False  # nobody had the caller's number: this call made the customer
    created: bool = True  # False: the call id was on the timeline already (a second AGI of one call)


class CallJournal(Protocol):
    async def open(
        self, call: CallInfo, *, flow: str, flow_version: str, language: str, started_at: datetime
    ) -> OpenedCall: ...

    async def add_step(self, interaction_id: int, touchpoint: TouchpointCreate) -> None: ...

    async def lookup(self, by: LookupBy, value: str) -> CustomerInfo | None:
        """The customer with that phone number (by caller) or CRM id (by digits), or None."""
        ...

    async def close(self, interaction_id: int, outcome: Outcome, ended_at: datetime) -> None: ...


# --- what reaches the timeline ---------------------------------------------------------------------------

# A node entered (a step without input) that is more than "the call went through this node".
_ENTERED: dict[NodeKind, TouchpointKind] = {
    NodeKind.SET_LANGUAGE: TouchpointKind.LANGUAGE_SET,
    NodeKind.CALLBACK_OFFER: TouchpointKind.CALLBACK_OFFERED,
}
# An input taken at a node.
_ANSWERED: dict[NodeKind, TouchpointKind] = {
    NodeKind.MENU: TouchpointKind.MENU_CHOICE,
    NodeKind.CALLBACK_OFFER: TouchpointKind.MENU_CHOICE,
    NodeKind.LOOKUP: TouchpointKind.LOOKUP,
    NodeKind.RECORD: TouchpointKind.RECORDING,
}


def step_kind(step: RecordStep) -> TouchpointKind:
    """The touchpoint kind of an engine step.

    Entering a node is `ivr_node` (`language_set` and `callback_offered` for those nodes); an answer
    is `menu_choice` at a menu or an offer, `speech` when it was spoken, `dtmf` for digits elsewhere;
    a lookup's result is `lookup`, a voicemail `recording`. A caller hanging up, and a failure noted
    at a node, are `ivr_node` steps whose input or result says so. Queues, transfers, links sent and
    callbacks booked are recorded from the runner's actions (`action_touchpoint`), which carry the detail.
    """
    if step.input is None:
        entered = _ENTERED.get(step.kind)
        if entered is TouchpointKind.LANGUAGE_SET or (entered is not None and step.result is None):
            return entered
        return TouchpointKind.IVR_NODE
    if step.input == "hangup":
        return TouchpointKind.IVR_NODE
    if step.input == "speech":
        return TouchpointKind.SPEECH
    return _ANSWERED.get(step.kind, TouchpointKind.DTMF)


def step_touchpoint(
    step: RecordStep,
    *,
    occurred_at: datetime,
    duration_ms: int | None = None,
    extra: dict[str, Any] | None = None,
) -> TouchpointCreate:
    attributes: dict[str, Any] = {"node_kind": step.kind.value}
    if step.result is not None:
        attributes["result"] = step.result
    return TouchpointCreate(
        kind=step_kind(step),
        occurred_at=occurred_at,
        duration_ms=duration_ms,
        node=step.node or None,
        input=step.input[:200] if step.input else step.input,
        text=step.text,
        confidence=step.confidence,
        attributes=attributes | (extra or {}),
    )


def action_touchpoint(
    action: EnqueueCall | Transfer | SendLink | OfferCallback, *, node: str | None, occurred_at: datetime
) -> TouchpointCreate:
    kind: TouchpointKind
    text: str | None = None
    if isinstance(action, EnqueueCall):
        kind = TouchpointKind.QUEUE_ENTER
        attributes: dict[str, Any] = {
            "queue": action.queue,
            "priority": action.priority,
            "skills": list(action.skills),
            "language": action.language,
        }
    elif isinstance(action, Transfer):
        kind, attributes = TouchpointKind.TRANSFER, {"target": action.target}
    elif isinstance(action, SendLink):
        kind, text = TouchpointKind.LINK_SENT, action.text
        attributes = {"channel": action.channel.value, "link": action.link, "to": action.to}
    else:
        kind = TouchpointKind.CALLBACK_ACCEPTED
        attributes = {"queue": action.queue, "number": action.number, "language": action.language}
    return TouchpointCreate(kind=kind, occurred_at=occurred_at, node=node, text=text, attributes=attributes)


def queue_touchpoint(progress: QueueProgress, *, node: str | None, occurred_at: datetime) -> TouchpointCreate:
    """An agent answering (`agent_connect`) or the call leaving a queue (`queue_leave`), with the
    agent's name and how long the caller waited."""
    attributes: dict[str, Any] = {"queue": progress.queue, "waited_seconds": round(progress.waited_s, 1)}
    if progress.agent is not None:
        attributes["agent"] = progress.agent
    if progress.what == "agent_connected":
        kind = TouchpointKind.AGENT_CONNECT
    else:
        kind = TouchpointKind.QUEUE_LEAVE
        attributes["result"] = progress.result or "left"
        if progress.priority is not None:
            attributes["priority"] = progress.priority
        if progress.open_case_raised_from is not None:  # why this caller went ahead of others
            attributes["open_case_priority_from"] = progress.open_case_raised_from
    return TouchpointCreate(kind=kind, occurred_at=occurred_at, node=node, attributes=attributes)


def customer_info(pop: screen_pop.ScreenPop) -> CustomerInfo:
    customer = pop.customer  # shaped like CustomerRead
    return CustomerInfo(
        customer_id=customer["id"],
        name=customer.get("name"),
        language=customer.get("preferred_language"),
        vip=_truthy((customer.get("attributes") or {}).get("vip")),
        open_case_count=len(pop.open_cases),
    )


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return value is True or value == 1


# --- the real journal -----------------------------------------------------------------------------------


class TimelineCallJournal:
    """The journal on the core services. Writes go through `unit_of_work(session_factory)`, one per call;
    lookups read through the autocommit `read_session_factory` (three round trips, no transaction)."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        read_session_factory: sessionmaker[Session],
        region: str,
        threads: int = 8,
    ) -> None:
        self._writes = session_factory
        self._reads = read_session_factory
        self._region = region
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="call-journal")

    def close_pool(self) -> None:
        self._executor.shutdown(wait=True)

    async def _blocking(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    # --- CallJournal ------------------------------------------------------------------------------

    async def open(
        self, call: CallInfo, *, flow: str, flow_version: str, language: str, started_at: datetime
    ) -> OpenedCall:
        def work() -> OpenedCall:
            return self._open(call, flow, flow_version, language, started_at)

        try:
            return await self._blocking(work)
        except Conflict:
            # Another call from the same new number made its customer at the same moment: now it exists.
            return await self._blocking(work)

    async def add_step(self, interaction_id: int, touchpoint: TouchpointCreate) -> None:
        def work() -> None:
            with unit_of_work(self._writes) as db:
                timeline.add_touchpoint(db=db, interaction_id=interaction_id, data=touchpoint)

        try:
            await self._blocking(work)
        except Conflict:  # a step written at the same moment by another writer took the number: retry
            await self._blocking(work)

    async def lookup(self, by: LookupBy, value: str) -> CustomerInfo | None:
        kind = IdentityKind.PHONE if by is LookupBy.CALLER else IdentityKind.CRM

        def work() -> CustomerInfo | None:
            with self._reads() as db:
                try:
                    pop = screen_pop.lookup(db=db, kind=kind, value=value, region=self._region, recent=0)
                except InvalidInput:  # not a number we can read: nobody has it
                    return None
                return customer_info(pop) if pop is not None else None

        return await self._blocking(work)

    async def close(self, interaction_id: int, outcome: Outcome, ended_at: datetime) -> None:
        def work() -> None:
            with unit_of_work(self._writes) as db:
                timeline.close_interaction(
                    db=db,
                    interaction_id=interaction_id,
                    data=InteractionClose(outcome=outcome, ended_at=ended_at),
                )

        try:
            await self._blocking(work)
        except Conflict as exc:  # closed already: a second AGI of the same call ended first
            logger.info("interaction %d not closed again: %s", interaction_id, exc)

    # --- in the worker threads ---------------------------------------------------------------------

    def _open(
        self, call: CallInfo, flow: str, flow_version: str, language: str, started_at: datetime
    ) -> OpenedCall:
        number = self._usable_number(call.caller)
        with unit_of_work(self._writes) as db:
            new_customer = False
            identity = None
            if number is not None:
                identity = CustomerIdentityRef(kind=IdentityKind.PHONE, value=number)
                holder = customer_service.customer_id_holding(
                    db=db, kind=IdentityKind.PHONE, value=number, region=self._region
                )
                new_customer = holder is None
            attributes: dict[str, Any] = {"flow": flow, "flow_version": flow_version}
            if call.caller:
                attributes["caller"] = call.caller
            if call.called:
                attributes["called"] = call.called
            if call.channel:
                attributes["channel"] = call.channel
            data = InteractionCreate(
                identity=identity,
                channel=Channel.VOICE,
                direction=Direction.INBOUND,
                started_at=started_at,
                language=language or None,
                external_refs=[ExternalRef(kind=RefKind(call.ref_kind), value=call.call_id[:255])],
                attributes=attributes,
            )
            interaction, created = timeline.record_interaction(db=db, data=data, region=self._region)
            return OpenedCall(
                interaction_id=interaction.id,
                customer_id=interaction.customer_id,
                new_customer=new_customer and created,
                created=created,
            )

    def _usable_number(self, caller: str | None) -> str | None:
        """The caller's number in E.164, or None when withheld, `unknown` or not a phone number."""
        if not caller:
            return None
        try:
            return normalise_phone(caller, region=self._region)
        except InvalidInput:
            return None


# --- the fake -------------------------------------------------------------------------------------------


@dataclass
class JournalEntry:
    call: CallInfo
    flow: str
    flow_version: str
    language: str
    started_at: datetime
    customer_id: int | None
    steps: list[TouchpointCreate] = field(default_factory=list)
    outcome: Outcome | None = None
    ended_at: datetime | None = None

    def kinds(self) -> list[str]:
        return [step.kind.value for step in self.steps]

    def nodes(self) -> list[str | None]:
        return [step.node for step in self.steps]


@dataclass
class InMemoryCallJournal:
    """A journal in a dict, for tests of the runner. `customers` maps a caller number or a CRM id, as
    given, to who has it; `failures` maps a method name to an exception it raises every time."""

    customers: dict[str, CustomerInfo] = field(default_factory=dict)
    failures: dict[str, Exception] = field(default_factory=dict)
    entries: dict[int, JournalEntry] = field(default_factory=dict)
    lookups: list[tuple[LookupBy, str]] = field(default_factory=list)

    def only(self) -> JournalEntry:
        (entry,) = self.entries.values()
        return entry

    def by_call(self, call_id: str) -> JournalEntry:
        return next(entry for entry in self.entries.values() if entry.call.call_id == call_id)

    def _fail(self, name: str) -> None:
        failure = self.failures.get(name)
        if failure is not None:
            raise failure

    async def open(
        self, call: CallInfo, *, flow: str, flow_version: str, language: str, started_at: datetime
    ) -> OpenedCall:
        self._fail("open")
        known = self.customers.get(call.caller or "")
        interaction_id = len(self.entries) + 1
        self.entries[interaction_id] = JournalEntry(
            call, flow, flow_version, language, started_at, known.customer_id if known else None
        )
        return OpenedCall(interaction_id, known.customer_id if known else None)

    async def add_step(self, interaction_id: int, touchpoint: TouchpointCreate) -> None:
        self._fail("add_step")
        self.entries[interaction_id].steps.append(touchpoint)

    async def lookup(self, by: LookupBy, value: str) -> CustomerInfo | None:
        self.lookups.append((by, value))
        self._fail("lookup")
        return self.customers.get(value)

    async def close(self, interaction_id: int, outcome: Outcome, ended_at: datetime) -> None:
        self._fail("close")
        entry = self.entries[interaction_id]
        entry.outcome, entry.ended_at = outcome, ended_at
