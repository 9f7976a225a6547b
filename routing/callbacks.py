"""Callbacks: booked from the IVR, a web page, a chat or an agent; made by the callback desk.

The service flushes and never commits (the request, the IVR booker or the desk owns the transaction).

**Booking** (`request_callback`) checks, in this order, each refusal a `CallbackRefused` (422, naming
the field and the rule): the number (read in the default region; "possible" for its country), the
queue (the one named, or the default), do-not-call (the global list; the customer's consent to calls,
withdrawn or unreadable), and the time (`routing.callback_rules.due_time`: not in the past, not too
far ahead, within the callee's local hours). A number that already has a callback pending in the same
queue gets that one back (`created` False): a page submitted twice, a caller who accepts twice, keep
one callback and the earlier place.

**Where it lands**: the customer is the one holding the number (a new one, with the name given, if
none does). The *originating interaction* is the IVR call, or the contact named by `interaction_id`
(an agent's or a chat's), or else a new `web` interaction holding the page context. It gets a
`callback_accepted` step with the callback's id and due time (an IVR call gets it from the call
journal, once the booking succeeded: one step, not two); what becomes of the callback (cancelled,
failed) is a `note` step there too. The *case* is, in this order:
1. the originating interaction's case, if it has one: the callback is about that call;
2. else the customer's most recently active open (or pending) case: what the customer is most likely
   still calling about, and what the agent who calls back should see;
3. else a new case ("Callback request").
The originating interaction joins that case when it had none, every attempt's outbound call is
recorded in it, and the case keeps the request's context (`attributes["callbacks"]`, the latest 20).

**Keeping the place**: the callback's `place_at` is the caller's entry time in the queue when the IVR
call was (or lately had been) waiting in it (`LiveQueues.place_of`), else the due time; the desk joins
it to the live ACD there (`routing.callback_dialer`).

**Making it** (called by the desk, each in its own transaction): `claim_due`, `begin_attempt` (checks
do-not-call, consent and hours again at dial time, and records the outbound call), `attempt_connected`,
`attempt_failed` (retry with back-off, or failed), `attempt_ended`, and `recover_interrupted` at start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import case as sql_case
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.audit import service as audit
from core.cases import service as cases
from core.cases.models import Case
from core.cases.schemas import OPEN_STATUSES, CaseCreate, CaseUpdate
from core.channels import Channel, Direction
from core.customers import service as customers
from core.customers.identities import IdentityKind, normalise_phone
from core.customers.models import Customer
from core.customers.schemas import CustomerCreate, IdentityIn
from core.db import affected_rows, unit_of_work, utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from core.timeline import service as timeline
from core.timeline.models import Interaction, InteractionRef
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
from dialer.calling_window import CalleeLocation, callee_location
from dialer.do_not_call import DialPermission, DoNotCallLists, InMemoryNumberList, dial_permission
from dialer.do_not_call_store import DatabaseNumberList
from routing import service as routing
from routing.callback_models import ACTIVE, Callback, CallbackSource, CallbackStatus
from routing.callback_rules import CallbackRefused, CallbackRules, dial_hours, due_time, next_attempt
from routing.live_queues import Place
from voice.ivr.actions import OfferCallback
from voice.ivr.voice_port import CallInfo

CASE_CONTEXTS_KEPT = 20
CONTEXT_MAX_KEYS = 50


@dataclass(frozen=True, slots=True)
class CallbackAsk:
    """What a booking asks for; `place`: the IVR caller's place in the queue, if they had one."""

    phone: str
    source: CallbackSource
    at: datetime | None = None
    queue: str | None = None
    name: str | None = None
    language: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    interaction_id: int | None = None
    place: Place | None = None


@dataclass(frozen=True, slots=True)
class Booked:
    callback: Callback
    created: bool  # False: the callback already pending for that number and queue
    note: str | None = None  # e.g. a "now" outside hours, moved to the next allowed moment


# --- booking ----------------------------------------------------------------------------------------


def request_callback(
    *, db: Session, ask: CallbackAsk, rules: CallbackRules, actor: str, now: datetime
) -> Booked:
    phone, callee = _read_number(ask.phone, rules.region)
    queue = ask.queue or rules.default_queue
    try:
        routing.get_queue(db=db, name=queue)
    except NotFound:
        why = "" if ask.queue else " (no queue was named, and this is the default queue)"
        raise CallbackRefused("queue", "unknown_queue", f"there is no queue {queue!r}{why}") from None
    if len(ask.context) > CONTEXT_MAX_KEYS:
        raise CallbackRefused("context", "too_large", f"context has more than {CONTEXT_MAX_KEYS} keys")
    origin = _origin(db, ask.interaction_id)
    customer = _customer(db, phone, ask, origin, rules.region)
    _check_may_call(db, phone, customer)
    due, note = due_time(now, ask.at, callee=callee, rules=rules)
    pending = db.scalars(
        select(Callback)
        .where(Callback.phone == phone, Callback.queue == queue, Callback.status.in_(ACTIVE))
        .order_by(Callback.id)
        .limit(1)
    ).first()
    if pending is not None:
        return Booked(pending, created=False, note="a callback to this number is already pending")
    case = _case_for(db, customer.id, origin)
    if origin is None:
        origin = _record_request(db, ask, customer.id, case.id, queue, now, rules.region)
    elif origin.case_id is None and origin.customer_id == customer.id:
        cases.add_interaction(db=db, case_id=case.id, interaction_id=origin.id)
    place = ask.place if ask.place is not None and ask.place.queue == queue else None
    callback = Callback(
        customer_id=customer.id,
        case_id=case.id,
        phone=phone,
        queue=queue,
        source=ask.source.value,
        language=ask.language,
        requested_at=now,
        due_at=due,
        # A caller who was in the queue keeps their place; anyone else queues from the due time.
        place_at=place.entered_at if place is not None and due <= now else due,
        priority=place.priority if place is not None else 0,
        status=(CallbackStatus.WAITING if due <= now else CallbackStatus.REQUESTED).value,
        attempts=0,
        max_attempts=rules.max_attempts,
        next_attempt_at=due,
        context=dict(ask.context),
        interaction_id=origin.id,
        created_by=actor[:100],
    )
    db.add(callback)
    db.flush()
    if ask.source is not CallbackSource.IVR:  # the IVR's call journal records the caller's acceptance
        timeline.add_touchpoint(
            db=db,
            interaction_id=origin.id,
            data=TouchpointCreate(
                kind=TouchpointKind.CALLBACK_ACCEPTED,
                occurred_at=now,
                attributes={
                    "callback_id": callback.id,
                    "queue": queue,
                    "number": phone,
                    "due_at": due.isoformat(),
                    "source": ask.source.value,
                },
            ),
        )
    _keep_context_on_case(db, case, callback)
    audit.record(
        db=db,
        actor=actor[:100],
        action="callback.requested",
        subject_type="callback",
        subject_id=callback.id,
        details={"customer_id": customer.id, "case_id": case.id, "queue": queue, "due_at": due.isoformat()},
    )
    stage(db, "callback.requested", payload(callback))
    return Booked(callback, created=True, note=note)


def get_callback(*, db: Session, callback_id: int) -> Callback:
    callback = db.get(Callback, callback_id)
    if callback is None:
        raise NotFound(f"callback {callback_id} not found")
    return callback


def list_callbacks(
    *,
    db: Session,
    statuses: Sequence[str] = (),
    customer_id: int | None = None,
    queue: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Callback]:
    query = select(Callback).where(Callback.id > after_id)
    if statuses:
        query = query.where(Callback.status.in_(statuses))
    if customer_id is not None:
        query = query.where(Callback.customer_id == customer_id)
    if queue is not None:
        query = query.where(Callback.queue == queue)
    return list(db.scalars(query.order_by(Callback.id).limit(limit)))


def cancel_callback(
    *, db: Session, callback_id: int, actor: str, reason: str | None, now: datetime
) -> Callback:
    """Cancels a callback not yet with an agent (a call ringing the customer is hung up)."""
    callback = get_callback(db=db, callback_id=callback_id)
    if callback.status not in (
        CallbackStatus.REQUESTED.value,
        CallbackStatus.WAITING.value,
        CallbackStatus.DIALING.value,
    ):
        raise Conflict(
            f"callback {callback_id} is {callback.status}: only a pending callback can be cancelled"
        )
    callback.status = CallbackStatus.CANCELLED.value
    callback.status_reason = (reason or f"cancelled by {actor}")[:300]
    callback.next_attempt_at = None
    db.flush()
    _note(db, callback, f"callback cancelled: {callback.status_reason}", now)
    audit.record(
        db=db,
        actor=actor[:100],
        action="callback.cancelled",
        subject_type="callback",
        subject_id=callback.id,
        details={"reason": reason},
    )
    stage(db, "callback.cancelled", payload(callback))
    return callback


def payload(callback: Callback) -> dict[str, Any]:
    return {
        "callback_id": callback.id,
        "customer_id": callback.customer_id,
        "case_id": callback.case_id,
        "queue": callback.queue,
        "status": callback.status,
        "due_at": callback.due_at.isoformat(),
        "next_attempt_at": callback.next_attempt_at.isoformat() if callback.next_attempt_at else None,
    }


# --- making it (the callback desk) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueCallback:
    """What the desk needs to give a callback its virtual position."""

    id: int
    queue: str
    phone: str
    customer_id: int
    case_id: int
    interaction_id: int | None
    place_at: datetime
    priority: int
    context: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Attempt:
    callback_id: int
    attempt: int
    phone: str
    interaction_id: int  # the outbound call's


def claim_due(*, db: Session, now: datetime) -> tuple[list[DueCallback], datetime | None]:
    """Moves callbacks whose time has come to `waiting`; returns every waiting callback (those the
    live ACD should hold), and when the next one falls due."""
    due = db.scalars(
        select(Callback).where(
            Callback.status == CallbackStatus.REQUESTED.value, Callback.next_attempt_at <= now
        )
    ).all()
    for callback in due:
        callback.status = CallbackStatus.WAITING.value
        stage(db, "callback.waiting", payload(callback))
    db.flush()
    waiting = db.scalars(
        select(Callback).where(Callback.status == CallbackStatus.WAITING.value).order_by(Callback.place_at)
    ).all()
    upcoming = db.scalar(
        select(Callback.next_attempt_at)
        .where(Callback.status == CallbackStatus.REQUESTED.value)
        .order_by(Callback.next_attempt_at)
        .limit(1)
    )
    return [_due(callback) for callback in waiting], upcoming


def begin_attempt(
    *, db: Session, callback_id: int, agent: str, now: datetime, rules: CallbackRules
) -> Attempt | None:
    """An agent is reserved: checks the number may be called now, records the outbound call and
    marks the callback dialing. None when it is not to be dialed now (cancelled meanwhile, listed
    as do-not-call since, outside hours: each recorded on the callback)."""
    callback = db.get(Callback, callback_id, with_for_update=True)
    if callback is None or callback.status != CallbackStatus.WAITING.value:
        return None
    customer = db.get(Customer, callback.customer_id)
    permission = _permission(db, callback.phone, customer)
    if not permission.allowed:
        _finish(db, callback, CallbackStatus.FAILED, "do_not_call", permission.detail, now)
        return None
    callee = callee_location(callback.phone)
    hours = dial_hours(now, callee=callee, rules=rules)
    if not hours.allowed:
        if hours.next_allowed_at is None:
            _finish(db, callback, CallbackStatus.FAILED, "outside_hours", hours.detail, now)
        else:
            callback.status = CallbackStatus.REQUESTED.value
            callback.next_attempt_at = hours.next_allowed_at
            callback.last_result = "outside_hours"
            db.flush()
            stage(db, "callback.rescheduled", payload(callback))
        return None
    callback.attempts += 1
    callback.status = CallbackStatus.DIALING.value
    callback.agent = agent[:64]
    interaction, _ = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            customer_id=callback.customer_id,
            case_id=callback.case_id,
            channel=Channel.VOICE,
            direction=Direction.OUTBOUND,
            started_at=now,
            queue=callback.queue,
            agent=agent[:64],
            language=callback.language,
            attributes={
                # What reports count a completed callback by (reporting.rows).
                "callback_for": callback.interaction_id or f"callback:{callback.id}",
                "callback_id": callback.id,
                "attempt": callback.attempts,
            },
        ),
        region=rules.region,
    )
    callback.callback_interaction_id = interaction.id
    db.flush()
    stage(db, "callback.dialing", payload(callback) | {"attempt": callback.attempts, "agent": agent})
    return Attempt(callback.id, callback.attempts, callback.phone, interaction.id)


def attempt_connected(*, db: Session, attempt: Attempt, agent: str, endpoint: str, now: datetime) -> None:
    callback = _callback(db, attempt.callback_id)
    callback.status = CallbackStatus.CONNECTED.value
    callback.last_result = "connected"
    callback.next_attempt_at = None
    db.flush()
    timeline.add_touchpoint(
        db=db,
        interaction_id=attempt.interaction_id,
        data=TouchpointCreate(
            kind=TouchpointKind.AGENT_CONNECT,
            occurred_at=now,
            attributes={"agent": agent, "endpoint": endpoint, "callback_id": callback.id},
        ),
    )
    stage(db, "callback.connected", payload(callback) | {"agent": agent})


def attempt_failed(
    *, db: Session, attempt: Attempt, result: str, cause: str, now: datetime, rules: CallbackRules
) -> Callback:
    """The customer was not reached (busy, no_answer, failed, cancelled, agent_missed): closes the
    outbound call and retries later with back-off, or fails when no attempt is left."""
    callback = _callback(db, attempt.callback_id)
    outcome = {"busy": Outcome.BUSY, "no_answer": Outcome.NO_ANSWER}.get(result, Outcome.FAILED)
    _close(db, attempt.interaction_id, outcome, result, cause, now)
    callback.last_result = result[:32]
    if callback.status != CallbackStatus.DIALING.value:
        db.flush()  # cancelled while ringing: it stays cancelled
        return callback
    retry = next_attempt(now, callback.attempts, callee=callee_location(callback.phone), rules=rules)
    if callback.attempts >= callback.max_attempts or retry is None:
        _finish(
            db,
            callback,
            CallbackStatus.FAILED,
            result,
            f"not reached after {callback.attempts} attempts",
            now,
        )
        return callback
    callback.status = CallbackStatus.REQUESTED.value
    callback.next_attempt_at = retry
    db.flush()
    stage(db, "callback.rescheduled", payload(callback) | {"result": result})
    return callback


def attempt_ended(*, db: Session, attempt: Attempt, cause: str, now: datetime) -> None:
    """The conversation with the agent is over."""
    callback = _callback(db, attempt.callback_id)
    _close(db, attempt.interaction_id, Outcome.COMPLETED, None, cause, now)
    if callback.status == CallbackStatus.CONNECTED.value:
        callback.status = CallbackStatus.COMPLETED.value
        callback.status_reason = None
        db.flush()
        stage(db, "callback.completed", payload(callback))


def recover_interrupted(*, db: Session, now: datetime) -> int:
    """At start: calls the last process was making did not survive it. A callback that was ringing
    waits again (its place kept, the attempt counted); one that was connected is completed."""
    rows = db.scalars(
        select(Callback).where(
            Callback.status.in_((CallbackStatus.DIALING.value, CallbackStatus.CONNECTED.value))
        )
    ).all()
    for callback in rows:
        interrupted = "the service restarted during the call"
        if callback.callback_interaction_id is not None:
            connected = callback.status == CallbackStatus.CONNECTED.value
            outcome = Outcome.COMPLETED if connected else Outcome.FAILED
            _close(db, callback.callback_interaction_id, outcome, "interrupted", interrupted, now)
        callback.last_result = "interrupted"
        if callback.status == CallbackStatus.CONNECTED.value:
            callback.status = CallbackStatus.COMPLETED.value
            callback.status_reason = interrupted
        else:
            callback.status = CallbackStatus.WAITING.value
            callback.next_attempt_at = now
    db.flush()
    return len(rows)


def forget_customer(*, db: Session, customer_id: int) -> int:
    """The customer's data was erased: pending callbacks are cancelled, numbers and contexts removed."""
    return affected_rows(
        db,
        update(Callback)
        .where(Callback.customer_id == customer_id)
        .values(
            phone="erased",
            context={},
            status=_case_when_active(CallbackStatus.CANCELLED.value),
            next_attempt_at=None,
        ),
    )


def move_customer(*, db: Session, source_id: int, target_id: int) -> int:
    """A merge: the duplicate's callbacks now belong to the customer it was merged into."""
    return affected_rows(
        db, update(Callback).where(Callback.customer_id == source_id).values(customer_id=target_id)
    )


# --- inside -------------------------------------------------------------------------------------------


def _read_number(value: str, region: str) -> tuple[str, CalleeLocation]:
    try:
        phone = normalise_phone(value, region=region)
    except InvalidInput as exc:
        raise CallbackRefused("phone", "malformed_number", str(exc)) from None
    number = phonenumbers.parse(phone, None)
    if not phonenumbers.is_valid_number(number):
        raise CallbackRefused("phone", "malformed_number", f"{value!r} is not a number in use in its country")
    return phone, callee_location(phone)


def _origin(db: Session, interaction_id: int | None) -> Interaction | None:
    if interaction_id is None:
        return None
    interaction = db.get(Interaction, interaction_id)
    if interaction is None:
        raise CallbackRefused(
            "interaction_id", "unknown_interaction", f"interaction {interaction_id} not found"
        )
    return interaction


def _customer(db: Session, phone: str, ask: CallbackAsk, origin: Interaction | None, region: str) -> Customer:
    """The customer of the originating contact, else the one holding the number, else a new one."""
    if origin is not None and origin.customer_id is not None:
        return customers.get_customer(db=db, customer_id=origin.customer_id)
    found = customers.customer_id_holding(db=db, kind=IdentityKind.PHONE, value=phone, region=region)
    if found is not None:
        return customers.get_customer(db=db, customer_id=found)
    data = CustomerCreate(name=ask.name, identities=[IdentityIn(kind=IdentityKind.PHONE, value=phone)])
    return customers.create_customer(db=db, data=data, region=region)


def _permission(db: Session, phone: str, customer: Customer | None) -> DialPermission:
    lists = DoNotCallLists(DatabaseNumberList(db, None), InMemoryNumberList.of(()))
    return dial_permission(
        phone,
        lists=lists,
        consents=customer.consents if customer is not None else None,
        customer_erased=customer is not None and customer.erased_at is not None,
    )


def _check_may_call(db: Session, phone: str, customer: Customer) -> None:
    permission = _permission(db, phone, customer)
    if not permission.allowed:
        rule = permission.reason.value if permission.reason is not None else "do_not_call"
        raise CallbackRefused("phone", rule, f"cannot call back: {permission.detail}")


def _case_for(db: Session, customer_id: int, origin: Interaction | None) -> Case:
    if origin is not None and origin.case_id is not None:
        return cases.get_case(db=db, case_id=origin.case_id)
    open_cases = cases.cases_of(db=db, customer_id=customer_id, statuses=OPEN_STATUSES, limit=1)
    if open_cases:
        return open_cases[0]
    return cases.open_case(db=db, data=CaseCreate(customer_id=customer_id, subject="Callback request"))


def _record_request(
    db: Session, ask: CallbackAsk, customer_id: int, case_id: int, queue: str, now: datetime, region: str
) -> Interaction:
    """The contact that asked, when there is no call to hang it on: the page or the agent's desk."""
    interaction, _ = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            customer_id=customer_id,
            case_id=case_id,
            channel=Channel.WEB,
            direction=Direction.INBOUND if ask.source is CallbackSource.WEB else Direction.INTERNAL,
            started_at=now,
            ended_at=now,
            queue=queue,
            outcome=Outcome.CALLBACK_REQUESTED,
            language=ask.language,
            attributes={"callback_request": dict(ask.context), "source": ask.source.value},
        ),
        region=region,
    )
    return interaction


def _keep_context_on_case(db: Session, case: Case, callback: Callback) -> None:
    attributes = dict(case.attributes or {})
    kept = [entry for entry in attributes.get("callbacks", []) if isinstance(entry, dict)]
    kept.append(
        {
            "callback_id": callback.id,
            "source": callback.source,
            "requested_at": callback.requested_at.isoformat(),
            "context": dict(callback.context),
        }
    )
    attributes["callbacks"] = kept[-CASE_CONTEXTS_KEPT:]
    cases.update_case(db=db, case_id=case.id, data=CaseUpdate(attributes=attributes))


def _due(callback: Callback) -> DueCallback:
    return DueCallback(
        id=callback.id,
        queue=callback.queue,
        phone=callback.phone,
        customer_id=callback.customer_id,
        case_id=callback.case_id,
        interaction_id=callback.interaction_id,
        place_at=callback.place_at,
        priority=callback.priority,
        context=dict(callback.context),
    )


def _callback(db: Session, callback_id: int) -> Callback:
    callback = db.get(Callback, callback_id)
    if callback is None:
        raise NotFound(f"callback {callback_id} not found")
    return callback


def _finish(
    db: Session, callback: Callback, status: CallbackStatus, result: str, reason: str, now: datetime
) -> None:
    callback.status = status.value
    callback.status_reason = reason[:300]
    callback.last_result = result[:32]
    callback.next_attempt_at = None
    db.flush()
    _note(db, callback, f"callback {status.value}: {reason}", now)
    stage(db, f"callback.{status.value}", payload(callback))


def _note(db: Session, callback: Callback, text: str, now: datetime) -> None:
    """Says on the originating contact what became of the callback."""
    if callback.interaction_id is None:
        return
    timeline.add_touchpoint(
        db=db,
        interaction_id=callback.interaction_id,
        data=TouchpointCreate(
            kind=TouchpointKind.NOTE,
            occurred_at=now,
            text=text,
            attributes={"callback_id": callback.id, "status": callback.status},
        ),
    )


def _close(
    db: Session, interaction_id: int, outcome: Outcome, disposition: str | None, cause: str, now: datetime
) -> None:
    interaction = db.get(Interaction, interaction_id)
    if interaction is None or interaction.ended_at is not None:
        return
    interaction.attributes = {**(interaction.attributes or {}), "cause": cause[:200]}
    timeline.close_interaction(
        db=db,
        interaction_id=interaction_id,
        data=InteractionClose(
            outcome=outcome, ended_at=max(now, interaction.started_at), disposition=disposition
        ),
    )


def _case_when_active(cancelled: str) -> Any:
    return sql_case((Callback.status.in_(ACTIVE), cancelled), else_=Callback.status)


# --- the IVR's booker -----------------------------------------------------------------------------------


class IvrCallbackBooker:
    """The IVR's `CallbackBooker` (voice.ivr.call_runner): books the callback a caller accepted, on the
    call's own interaction, keeping the place the call had in the queue.

    The booking runs in a thread of its own (the call's loop never waits on the database) and commits
    on its own. A refused booking (a do-not-call number, say) raises `CallbackRefused` for the runner
    to log, after a note on the call's timeline says why."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        rules: CallbackRules,
        places: Callable[[str], Place | None] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = session_factory
        self._rules = rules
        self._places = places  # LiveQueues.place_of: where the call waited, if it did
        self._clock = clock

    async def book_callback(
        self, action: OfferCallback, call: CallInfo, *, context: Mapping[str, str]
    ) -> None:
        place = self._places(call.call_id) if self._places is not None else None
        await asyncio.to_thread(self._book, action, call, dict(context), place)

    def _book(
        self, action: OfferCallback, call: CallInfo, context: dict[str, str], place: Place | None
    ) -> None:
        now = self._clock()
        try:
            with unit_of_work(self._sessions) as db:
                origin = _call_interaction(db, call, now, self._rules.region)
                request_callback(
                    db=db,
                    ask=CallbackAsk(
                        phone=action.number,
                        source=CallbackSource.IVR,
                        queue=action.queue,
                        language=action.language,
                        context=context,
                        interaction_id=origin,
                        place=place,
                    ),
                    rules=self._rules,
                    actor="ivr",
                    now=now,
                )
        except CallbackRefused as refused:
            self._note_refusal(call, now, str(refused), refused.rule)
            raise

    def _note_refusal(self, call: CallInfo, now: datetime, why: str, rule: str) -> None:
        with unit_of_work(self._sessions) as db:
            origin = _call_interaction(db, call, now, self._rules.region)
            if origin is not None:
                timeline.add_touchpoint(
                    db=db,
                    interaction_id=origin,
                    data=TouchpointCreate(
                        kind=TouchpointKind.NOTE,
                        occurred_at=now,
                        text=f"callback not booked: {why}"[:20_000],
                        attributes={"callback_refused": rule},
                    ),
                )


def _call_interaction(db: Session, call: CallInfo, now: datetime, region: str) -> int | None:
    """The IVR call's interaction, by its external ref; recorded now if the call journal (which writes
    in the background) has not yet: the ref makes whichever comes second find the first's row."""
    try:
        kind = RefKind(call.ref_kind)
    except ValueError:
        return None
    found = db.scalar(
        select(InteractionRef.interaction_id).where(
            InteractionRef.kind == kind.value, InteractionRef.value == call.call_id
        )
    )
    if found is not None:
        return int(found)
    interaction, _ = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            identity=CustomerIdentityRef(kind=IdentityKind.PHONE, value=call.caller) if call.caller else None,
            channel=Channel.VOICE,
            direction=Direction.INBOUND,
            started_at=now,
            external_refs=[ExternalRef(kind=kind, value=call.call_id)],
            attributes={"flow": call.flow} if call.flow else {},
        ),
        region=region,
    )
    return interaction.id
