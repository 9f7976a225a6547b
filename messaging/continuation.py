"""The IVR's "continue in writing": the SMS or WhatsApp message a send_link node sends, on the call's case.

`TimelineLinkSender` is the `voice.ivr.call_runner.LinkSender` the IVR runner uses. For a call it:
1. finds the call on the timeline (its interaction is being opened by the runner's own writer task,
   so it waits briefly for it; after `wait_for_call` seconds it sends anyway, on the recipient's
   customer, so a slow database never costs the caller their message);
2. settles the case: the call's case, else the customer's most recently active open case, else a new
   case, with the call attached, so that the agent who picks the conversation up sees the call, the
   IVR's answers and the messages together. When the number the caller gave belongs to nobody yet it
   becomes the caller's phone identity, so their reply finds them; a number that is someone else's
   gets the message on that customer's timeline, and the call is not moved across customers;
3. sends the text with `{link}` replaced by CENTRALITA_PUBLIC_URL + "/l/" + a signed token naming
   the case and the continuation (`LinkTokens`), and records it as an outbound message on the case.
   The customer's reply then lands in the same case (see `messaging.service`).

Step 2 is committed before the message is sent: no database lock is held while Twilio answers, and
if the provider refuses, the call still sits on its case. The caller asked for the message during
the call, which is the consent this message rests on; a recipient who opted out at Twilio (STOP)
gets nothing, and the flow takes its on_failure path.

The page the link opens (api/routers/continuation.py) reads and writes through the functions at the
end: `linked_case` (what the page may show: the case's subject and status and the customer's first
name, nothing else), `record_web_message` (a `web` message on the case, reopening it if resolved,
as a reply to an email naming its case does) and `request_callback_from_link` (routing's
`request_callback`, source web, hung on a `web` contact in the case so the callback lands there).
A link lasts `LINK_LIFETIME`; its forms carry a nonce signed for that link (`LinkTokens.form_nonce`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.cases import service as cases
from core.cases.models import Case
from core.cases.schemas import CaseCreate, CaseStatus
from core.channels import Channel, Direction
from core.customers import service as customers
from core.customers.identities import IdentityKind, normalise_phone
from core.customers.models import Customer
from core.customers.schemas import IdentityIn
from core.db import unit_of_work, utcnow
from core.errors import Conflict, DomainError, InvalidInput, NotFound
from core.events import stage
from core.timeline import service as timeline
from core.timeline.models import Interaction, InteractionRef
from core.timeline.schemas import (
    ExternalRef,
    InteractionCreate,
    Outcome,
    RefKind,
    TouchpointCreate,
    TouchpointKind,
)
from dialer.calling_window import callee_location, calling_decision
from messaging import service
from messaging.twilio_messages import TEXT_CHANNELS, OutgoingText, TextSender
from routing import callbacks
from routing import service as routing
from routing.callback_models import Callback, CallbackSource, CallbackStatus
from routing.callback_rules import CallbackRefused, CallbackRules
from voice.ivr.actions import SendLink
from voice.ivr.voice_port import ActionNotDone, CallInfo

log = logging.getLogger(__name__)

LINK_PATH = "/l/"
_MAC_BYTES = 10  # 80 bits: a forged token is found by trying, and each try is one web request
_HEADER = struct.Struct(">QI")  # case id, minutes since the epoch
# As long as a reply by text is taken as an answer to the message (messaging.service.REPLY_WINDOW):
# the link is that message's other way back.
LINK_LIFETIME = service.REPLY_WINDOW
_CLOCK_SKEW = timedelta(minutes=5)  # a token "issued" later than that is not one of ours
# A form nonce: minute issued, 6 random bytes, and a MAC over them and the link's token.
_NONCE = struct.Struct(">I6s")
FORM_MAX_AGE = timedelta(hours=12)  # a page left open overnight asks to be reloaded


class LinkExpired(DomainError):
    """A link this service issued, older than its lifetime."""


@dataclass(frozen=True, slots=True)
class LinkGrant:
    case_id: int
    link: str  # which continuation: "balance", "chat", …
    issued_at: datetime


class LinkTokens:
    """Short signed tokens naming a case and a continuation: about 40 characters, so the link
    keeps a text message within one or two segments. Stateless: the HMAC is the proof."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a link secret needs at least 32 bytes")
        self._key = hashlib.sha256(b"centralita link tokens\x00" + secret).digest()
        self._form_key = hmac.new(self._key, b"continuation page forms", hashlib.sha256).digest()

    def issue(self, *, case_id: int, link: str, issued_at: datetime) -> str:
        payload = _HEADER.pack(case_id, int(issued_at.timestamp() // 60)) + link.encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def read(self, token: str) -> LinkGrant:
        """The grant a token carries; InvalidInput if it was not issued with this secret."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise InvalidInput("not a link this service issued") from None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]
        if len(payload) < _HEADER.size or not hmac.compare_digest(mac, expected):
            raise InvalidInput("not a link this service issued")
        case_id, minutes = _HEADER.unpack_from(payload)
        try:
            link = payload[_HEADER.size :].decode()
        except UnicodeDecodeError:
            raise InvalidInput("not a link this service issued") from None
        return LinkGrant(case_id, link, datetime.fromtimestamp(minutes * 60, UTC))

    def read_current(self, token: str, *, now: datetime, lifetime: timedelta = LINK_LIFETIME) -> LinkGrant:
        """`read`, and LinkExpired when the link is older than `lifetime`."""
        grant = self.read(token)
        if grant.issued_at > now + _CLOCK_SKEW:
            raise InvalidInput("not a link this service issued")
        if now - grant.issued_at > lifetime:
            raise LinkExpired(f"the link was issued at {grant.issued_at.isoformat()} and has expired")
        return grant

    def form_nonce(self, token: str, *, now: datetime) -> str:
        """A value for the page's forms: proves a post comes from a page served for this link, lately.
        Random per page, so the page's edge can also refuse the same form posted twice."""
        payload = _NONCE.pack(int(now.timestamp() // 60), secrets.token_bytes(6))
        mac = hmac.new(self._form_key, payload + token.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")

    def form_nonce_valid(
        self, token: str, nonce: str, *, now: datetime, max_age: timedelta = FORM_MAX_AGE
    ) -> bool:
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return False
        # Only the text form_nonce makes (decoding is lenient): one nonce, one spelling, taken once.
        if (
            len(raw) != _NONCE.size + _MAC_BYTES
            or base64.urlsafe_b64encode(raw).decode().rstrip("=") != nonce
        ):
            return False
        payload, mac = raw[: _NONCE.size], raw[_NONCE.size :]
        expected = hmac.new(self._form_key, payload + token.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            return False
        issued = datetime.fromtimestamp(_NONCE.unpack(payload)[0] * 60, UTC)
        return issued <= now + _CLOCK_SKEW and now - issued <= max_age


def continuation_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{LINK_PATH}{token}"


@dataclass(frozen=True, slots=True)
class _Plan:
    customer_id: int
    case_id: int
    call_interaction_id: int | None
    number: str


class TimelineLinkSender:
    """The IVR's `LinkSender` on Twilio and the timeline."""

    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        texts: TextSender,
        tokens: LinkTokens,
        public_url: str,
        status_callback: str | None,
        region: str,
        clock: Callable[[], datetime] = utcnow,
        wait_for_call: float = 5.0,
    ) -> None:
        self._sessions = session_factory
        self._texts = texts
        self._tokens = tokens
        self._public_url = public_url
        self._status_callback = status_callback
        self._region = region
        self._clock = clock
        self._wait_for_call = wait_for_call

    async def send_link(self, link: SendLink, call: CallInfo) -> None:
        deadline = time.monotonic() + self._wait_for_call
        try:
            while True:
                must_find_call = time.monotonic() < deadline
                plan = await asyncio.to_thread(self._settle, link, call, must_find_call)
                if plan is not None:
                    break
                await asyncio.sleep(0.05)
            if plan.call_interaction_id is None:
                log.warning(
                    "call %s is not on the timeline: its %s link is sent without it", call.call_id, link.link
                )
            await asyncio.to_thread(self._send, link, call, plan)
        except DomainError as exc:  # MessageNotSent, a number that is not one, a case that vanished
            raise ActionNotDone(str(exc)) from None

    # --- in worker threads --------------------------------------------------------------------------

    def _settle(self, link: SendLink, call: CallInfo, must_find_call: bool) -> _Plan | None:
        """Who gets the message and on which case; None while the call is not on the timeline yet."""
        number = normalise_phone(link.to, region=self._region)
        try:
            return self._settle_once(link, call, number, must_find_call)
        except Conflict:  # the number was taken by a customer at the same moment: now it has a holder
            return self._settle_once(link, call, number, must_find_call)

    def _settle_once(self, link: SendLink, call: CallInfo, number: str, must_find_call: bool) -> _Plan | None:
        with unit_of_work(self._sessions) as db:
            the_call = db.scalar(
                select(Interaction)
                .join(InteractionRef, InteractionRef.interaction_id == Interaction.id)
                .where(InteractionRef.kind == call.ref_kind, InteractionRef.value == call.call_id[:255])
            )
            if the_call is None and must_find_call:
                return None
            holder = customers.customer_id_holding(
                db=db, kind=IdentityKind.PHONE, value=number, region=self._region
            )
            caller = the_call.customer_id if the_call is not None else None
            if caller is not None and holder is None:
                customers.add_identity(
                    db=db,
                    customer_id=caller,
                    identity=IdentityIn(kind=IdentityKind.PHONE, value=number),
                    region=self._region,
                )
                holder = caller
            if holder is None:
                holder = customers.find_or_create_by_identity(
                    db=db, kind=IdentityKind.PHONE, value=number, region=self._region
                )
            on_call = the_call is not None and the_call.customer_id == holder
            case_id = (
                the_call.case_id if on_call and the_call is not None else None
            ) or service.latest_open_case(db, holder)
            if case_id is None:
                case_id = cases.open_case(
                    db=db,
                    data=CaseCreate(
                        customer_id=holder,
                        subject=f"Continued by {link.channel.value}: {link.link}"[:200],
                        attributes={"opened_by": "ivr", "link": link.link, "call_id": call.call_id},
                    ),
                ).id
            if on_call and the_call is not None and the_call.case_id is None:
                cases.add_interaction(db=db, case_id=case_id, interaction_id=the_call.id)
            return _Plan(holder, case_id, the_call.id if on_call and the_call is not None else None, number)

    def _send(self, link: SendLink, call: CallInfo, plan: _Plan) -> None:
        now = self._clock()
        url = continuation_url(
            self._public_url, self._tokens.issue(case_id=plan.case_id, link=link.link, issued_at=now)
        )
        body = link.text.replace("{link}", url) if "{link}" in link.text else f"{link.text} {url}"
        channel = Channel(link.channel.value)
        sent = self._texts.send(
            OutgoingText(channel, plan.number, body, status_callback=self._status_callback)
        )
        try:
            with unit_of_work(self._sessions) as db:
                service.record_outbound(
                    db=db,
                    channel=channel,
                    customer_id=plan.customer_id,
                    case_id=plan.case_id,
                    ref=ExternalRef(kind=RefKind.TWILIO_SID, value=sent.sid),
                    body=body,
                    to=sent.to,
                    sender=sent.sender,
                    status=sent.status,
                    language=link.language or None,
                    attributes={
                        "link": link.link,
                        "call_id": call.call_id,
                        "call_interaction_id": plan.call_interaction_id,
                    },
                    now=now,
                    region=self._region,
                )
        except Exception:
            # The message is out: the caller must hear that it is. Only the record is missing.
            log.exception("sent %s to the caller of %s but could not record it", sent.sid, call.call_id)


# --- the page the link opens (api/routers/continuation.py) ----------------------------------------------

MESSAGE_MAX_CHARS = 2000
CALLBACKS_PENDING = (
    CallbackStatus.REQUESTED.value,
    CallbackStatus.WAITING.value,
    CallbackStatus.DIALING.value,
)
CALLBACK_ACTOR = "web: continuation link"
# Subjects the service writes for staff (in English) rather than about the customer's problem.
_SERVICE_SUBJECTS = frozenset({"callback request"})
_FIRST_NAME = re.compile(r"^[^\W\d_]+(?:['\u2019-][^\W\d_]+)*$")  # "Ana", "Jean-Luc", "O'Neil"; not "+34…"
_EMAIL_LIKE = re.compile(r"\S+@\S+")
_NUMBER_LIKE = re.compile(r"\+?\d[\d\s().-]{4,}\d")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CALLABLE_IDENTITIES = (IdentityKind.PHONE, IdentityKind.WHATSAPP)


class MessageRefused(InvalidInput):
    """A message from the page that cannot be recorded: `rule` is "empty" or "too_long"."""

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(message)


class LinkCallbackRefused(CallbackRefused):
    """A callback the page cannot book. Besides routing's rules: "case_closed" (the case is resolved:
    write to reopen it) and "no_number" (nobody to call); for "outside_hours", `next_allowed_at` is
    the first time after the one asked for that would do, and `zone` the callee's clock."""

    def __init__(
        self,
        field: str,
        rule: str,
        message: str,
        *,
        zone: str | None = None,
        next_allowed_at: datetime | None = None,
    ) -> None:
        super().__init__(field, rule, message)
        self.zone = zone
        self.next_allowed_at = next_allowed_at


@dataclass(frozen=True, slots=True)
class LinkedCase:
    """What the page may show of the link's case, and nothing more of the customer's."""

    case_id: int
    status: str
    subject: str | None  # masked (`neutral_subject`); None when the service wrote it for staff
    first_name: str | None
    language: str | None  # of the message that carried the link, else the customer's preferred one
    zone: str | None  # the local time zone of the number a callback would ring (`clock_zone`)
    callback_due_at: datetime | None  # when a callback pending on the case is due


@dataclass(frozen=True, slots=True)
class LinkCallback:
    callback_id: int
    due_at: datetime
    zone: str | None
    created: bool  # False: a callback to that number was pending already (that one)


def first_name(name: str | None) -> str | None:
    """The first word of a name when it is a name (not a number, not an address)."""
    words = (name or "").split()
    if not words or not _FIRST_NAME.match(words[0]):
        return None
    return words[0][:40]


def neutral_subject(subject: str | None) -> str | None:
    """A case's subject fit for the customer's eyes: staff-only subjects dropped, email addresses and
    long digit runs (a phone, a card, an account) masked, since an agent may have typed one in."""
    if subject is None or subject.strip().lower() in _SERVICE_SUBJECTS:
        return None

    def number(found: re.Match[str]) -> str:
        return "…" if sum(c.isdigit() for c in found.group()) >= 7 else found.group()

    masked = _NUMBER_LIKE.sub(number, _EMAIL_LIKE.sub("…", subject)).strip()
    return masked or None


def clean_message(text: str) -> str:
    """The text as it will be recorded: line ends normalised, control characters dropped, trimmed;
    MessageRefused when nothing is left or it is longer than MESSAGE_MAX_CHARS."""
    body = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not body:
        raise MessageRefused("empty", "the message is empty")
    if len(body) > MESSAGE_MAX_CHARS:
        raise MessageRefused("too_long", f"the message is longer than {MESSAGE_MAX_CHARS} characters")
    return body


def linked_case(*, db: Session, grant: LinkGrant, region: str, now: datetime) -> LinkedCase:
    """The link's case as the page shows it; NotFound when the case is gone or its customer was erased."""
    case = cases.get_case(db=db, case_id=grant.case_id)
    customer = customers.get_customer(db=db, customer_id=case.customer_id)
    language = db.scalar(
        select(Interaction.language)
        .where(
            Interaction.case_id == case.id,
            Interaction.direction == Direction.OUTBOUND.value,
            Interaction.language.is_not(None),
        )
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(1)
    )
    number = _number_to_call(db, case, customer, region)
    due = db.scalar(
        select(Callback.due_at)
        .where(Callback.case_id == case.id, Callback.status.in_(CALLBACKS_PENDING))
        .order_by(Callback.due_at)
        .limit(1)
    )
    generated = bool((case.attributes or {}).get("opened_by"))  # the IVR's "Continued by sms: …"
    return LinkedCase(
        case_id=case.id,
        status=case.status,
        subject=None if generated else neutral_subject(case.subject),
        first_name=first_name(customer.name),
        language=language or customer.preferred_language,
        zone=clock_zone(number, now) if number is not None else None,
        callback_due_at=due,
    )


def record_web_message(
    *, db: Session, grant: LinkGrant, text: str, language: str | None, now: datetime, region: str
) -> Interaction:
    """Records what the customer wrote on the page: an inbound `web` message in the link's case, on
    their timeline. A resolved case is reopened, as an email naming its case reopens it."""
    body = clean_message(text)
    case = cases.get_case(db=db, case_id=grant.case_id)
    customers.require_customer(db=db, customer_id=case.customer_id)
    reopened = case.status == CaseStatus.RESOLVED.value
    if reopened:
        cases.reopen_case(db=db, case_id=case.id)
    interaction, _ = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            customer_id=case.customer_id,
            case_id=case.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
            started_at=now,
            ended_at=now,
            outcome=Outcome.DELIVERED,
            summary=body,
            language=language,
            attributes={"via": "continuation_link", "link": grant.link}
            | ({"reopened_case": True} if reopened else {}),
        ),
        region=region,
    )
    timeline.add_touchpoint(
        db=db,
        interaction_id=interaction.id,
        data=TouchpointCreate(kind=TouchpointKind.MESSAGE, occurred_at=now, text=body),
    )
    stage(
        db,
        "message.received",
        {
            "interaction_id": interaction.id,
            "customer_id": interaction.customer_id,
            "case_id": interaction.case_id,
            "channel": interaction.channel,
            "direction": interaction.direction,
        },
    )
    return interaction


def request_callback_from_link(
    *,
    db: Session,
    grant: LinkGrant,
    local_at: datetime | None,
    zone: str | None,
    language: str | None,
    context: Mapping[str, Any],
    rules: CallbackRules,
    now: datetime,
) -> LinkCallback:
    """Books "call me back" (now, or at `local_at` on the customer's clock: `zone`, their browser's,
    else the number's) to the number the link was texted to, through routing's `request_callback`
    with source web. The request is a `web` contact in the link's case, which makes the callback that
    case's; a refusal (LinkCallbackRefused) raises before anything is kept, when the edge rolls back."""
    case = cases.get_case(db=db, case_id=grant.case_id)
    customer = customers.get_customer(db=db, customer_id=case.customer_id)
    if case.status == CaseStatus.RESOLVED.value:
        raise LinkCallbackRefused("case", "case_closed", f"case {case.id} is resolved: write to reopen it")
    number = _number_to_call(db, case, customer, rules.region)
    if number is None:
        raise LinkCallbackRefused("phone", "no_number", f"customer {customer.id} has no number to call")
    zone = zone or clock_zone(number, now)
    # No zone: the number cannot be called at all, and routing says so (no_calling_hours).
    at = local_at.replace(tzinfo=ZoneInfo(zone or "UTC")) if local_at is not None else None
    queue = _queue_of(db, case)
    origin, _ = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            customer_id=customer.id,
            case_id=case.id,
            channel=Channel.WEB,
            direction=Direction.INBOUND,
            started_at=now,
            ended_at=now,
            queue=queue,
            outcome=Outcome.CALLBACK_REQUESTED,
            language=language,
            attributes={"callback_request": dict(context), "source": "web", "via": "continuation_link"},
        ),
        region=rules.region,
    )
    try:
        booked = callbacks.request_callback(
            db=db,
            ask=callbacks.CallbackAsk(
                phone=number,
                source=CallbackSource.WEB,
                at=at,
                queue=queue,
                language=language,
                context=context,
                interaction_id=origin.id,
            ),
            rules=rules,
            actor=CALLBACK_ACTOR,
            now=now,
        )
    except CallbackRefused as refused:
        later = None
        if refused.rule == "outside_hours" and at is not None:
            later = calling_decision(at, callee=callee_location(number), policy=rules.policy).next_allowed_at
        field = refused.violations[0].field
        raise LinkCallbackRefused(
            field, refused.rule, str(refused), zone=zone, next_allowed_at=later
        ) from None
    if not booked.created:  # the request is on the timeline; the callback it meant is the pending one
        timeline.add_touchpoint(
            db=db,
            interaction_id=origin.id,
            data=TouchpointCreate(
                kind=TouchpointKind.NOTE,
                occurred_at=now,
                text=f"a callback to this number was already pending: callback {booked.callback.id}",
                attributes={"callback_id": booked.callback.id},
            ),
        )
    return LinkCallback(booked.callback.id, booked.callback.due_at, zone, booked.created)


def _number_to_call(db: Session, case: Case, customer: Customer, region: str) -> str | None:
    """The number the case's latest text went to (the link's own message), else the customer's phone,
    else their WhatsApp number (one handset either way)."""
    sent_to = db.scalars(
        select(Interaction.attributes)
        .where(
            Interaction.case_id == case.id,
            Interaction.customer_id == customer.id,
            Interaction.direction == Direction.OUTBOUND.value,
            Interaction.channel.in_([c.value for c in TEXT_CHANNELS]),
        )
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(5)
    )
    for attributes in sent_to:
        to = (attributes or {}).get("to")
        if isinstance(to, str):
            try:
                return normalise_phone(to, region=region)
            except InvalidInput:
                continue
    for kind in _CALLABLE_IDENTITIES:
        found = next((i.value for i in customer.identities if i.kind == kind.value), None)
        if found is not None:
            return found
    return None


def clock_zone(number: str, now: datetime) -> str | None:
    """The time zone a number's holder most likely reads the clock in: its only one, or, where the
    number may be in several (a Spanish mobile: the Canaries or the mainland), a guess: the one
    furthest ahead, the most populous in Spain, Portugal, Brazil or Australia (not in Russia). The
    page uses the browser's own zone instead whenever its script sends it."""
    try:
        zones = callee_location(number).zones
    except ValueError:
        return None
    if not zones:
        return None
    return max(zones, key=lambda zone: (now.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0), zone))


def _queue_of(db: Session, case: Case) -> str | None:
    """The queue the case's contacts last went through, when it still exists (else the default)."""
    name = db.scalar(
        select(Interaction.queue)
        .where(Interaction.case_id == case.id, Interaction.queue.is_not(None))
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(1)
    )
    if name is None:
        return None
    try:
        routing.get_queue(db=db, name=name)
    except NotFound:
        return None
    return name
