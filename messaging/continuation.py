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
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.channels import Channel
from core.customers import service as customers
from core.customers.identities import IdentityKind, normalise_phone
from core.customers.schemas import IdentityIn
from core.db import unit_of_work, utcnow
from core.errors import Conflict, DomainError, InvalidInput
from core.timeline.models import Interaction, InteractionRef
from core.timeline.schemas import ExternalRef, RefKind
from messaging import service
from messaging.twilio_messages import OutgoingText, TextSender
from voice.ivr.actions import SendLink
from voice.ivr.voice_port import ActionNotDone, CallInfo

log = logging.getLogger(__name__)

LINK_PATH = "/l/"
_MAC_BYTES = 10  # 80 bits: a forged token is found by trying, and each try is one web request
_HEADER = struct.Struct(">QI")  # case id, minutes since the epoch


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
