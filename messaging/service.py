"""Messages on the customer timeline: SMS, WhatsApp and email, sent and received, and their delivery.

Every message is one interaction (channel sms, whatsapp or email; inbound or outbound) keyed by the
provider's id (`twilio_sid`, `email_message_id`), so a webhook delivered twice is recorded once, with
a `message` touchpoint carrying the text. Functions flush and never commit: the edge (the request,
the IVR's link sender) owns the transaction. Sending takes the sender port as an argument, so the
checks and the recording are tested with the fakes and run unchanged with Twilio and SMTP.

Which case a message belongs to:
- outbound: the case the agent names, else the customer's most recently active open case, else none;
- inbound email that names its thread: the case of the email it answers (In-Reply-To, then
  References, newest first) or the "[case #N]" tag outbound subjects carry, when that case is the
  sender's; a resolved case is reopened, as helpdesks do when a customer writes back about it;
- any other inbound message: the case of the latest outbound message on the same kind of channel
  (texts for texts, email for email) sent to the customer in the last `REPLY_WINDOW`, if that case
  is still open (this is how the reply to an IVR's SMS continuation finds the call's case); else the
  customer's most recently active open case; else none. A message is never filed under a case it
  cannot be matched to: an agent can attach it later, while a wrong guess would mislead one.

Delivery statuses move forward only (`messaging.delivery`): a late or repeated report changes nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.cases import service as cases
from core.cases.models import Case
from core.cases.schemas import OPEN_STATUSES, CaseStatus
from core.channels import Channel, ConsentChannel, Direction
from core.customers import service as customers
from core.customers.identities import IdentityKind, normalise_phone
from core.customers.models import Customer
from core.customers.schemas import Consent, CustomerUpdate, LegalBasis
from core.db import utcnow
from core.errors import Conflict, InvalidInput
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
from dialer.do_not_call_store import DatabaseNumberList
from messaging import delivery
from messaging.email_smtp import EmailSender, InboundEmail, OutgoingEmail, thread_references
from messaging.twilio_messages import (
    TEXT_CHANNELS,
    DeliveryReport,
    InboundText,
    OutgoingText,
    TextSender,
    explain_error_code,
)

log = logging.getLogger(__name__)

# How long after an outbound message a reply is taken as an answer to it (and filed in its case).
REPLY_WINDOW = timedelta(days=7)
_CASE_TAG = re.compile(r"\[case #(\d{1,18})\]", re.IGNORECASE)
_SUMMARY = 20_000


class ContactRefused(Conflict):
    """The customer may not be contacted on this channel: a withdrawn consent, a do-not-call listing."""


@dataclass(frozen=True, slots=True)
class Recorded:
    interaction: Interaction
    created: bool  # False: the provider's id was on the timeline already (a retried webhook)


def case_tag(case_id: int) -> str:
    return f"[case #{case_id}]"


# --- who, where, and whether we may --------------------------------------------------------------------


def contact_address(customer: Customer, channel: Channel) -> str:
    """Where to reach the customer on `channel`: a number (E.164) for texts, an address for email.
    A phone number and a WhatsApp number are one handset, so each stands in for the other."""
    wanted = {
        Channel.SMS: (IdentityKind.PHONE, IdentityKind.WHATSAPP),
        Channel.WHATSAPP: (IdentityKind.WHATSAPP, IdentityKind.PHONE),
        Channel.EMAIL: (IdentityKind.EMAIL,),
    }.get(channel)
    if wanted is None:
        raise InvalidInput(f"messages go by sms, whatsapp or email, not {channel.value}")
    for kind in wanted:
        found = next((i.value for i in customer.identities if i.kind == kind.value), None)
        if found is not None:
            return found
    have = "phone or WhatsApp number" if channel in TEXT_CHANNELS else "email address"
    raise InvalidInput(f"customer {customer.id} has no {have} to send a {channel.value} message to")


def contact_refusal(db: Session, customer: Customer, channel: Channel, address: str) -> str | None:
    """Why the customer may not get a message on `channel` at `address`, or None if they may.

    A withdrawn (or unreadable) consent for the channel refuses; no consent recorded does not, since
    these are service messages (contract or legitimate interest), not marketing. A number on the
    global do-not-call list refuses texts too: the listing is the customer's "do not contact me".
    """
    statement = (customer.consents or {}).get(ConsentChannel(channel.value).value)
    if statement is not None:
        granted = statement.get("granted") if isinstance(statement, dict) else None
        if granted is not True:
            when = statement.get("recorded_at", "?") if isinstance(statement, dict) else "?"
            return f"customer {customer.id} withdrew consent to {channel.value} messages ({when})"
    if channel in TEXT_CHANNELS and DatabaseNumberList(db, None).listed([address]):
        return f"{address} is on the do-not-call list"
    return None


def outbound_case(db: Session, customer_id: int, case_id: int | None) -> int | None:
    if case_id is not None:
        case = cases.get_case(db=db, case_id=case_id)
        if case.customer_id != customer_id:
            raise InvalidInput(f"case {case_id} belongs to customer {case.customer_id}, not to {customer_id}")
        return case.id
    return latest_open_case(db, customer_id)


def latest_open_case(db: Session, customer_id: int) -> int | None:
    found = cases.cases_of(db=db, customer_id=customer_id, statuses=OPEN_STATUSES, limit=1)
    return found[0].id if found else None


def reply_case(db: Session, customer_id: int, channels: Sequence[Channel], now: datetime) -> int | None:
    """The case an inbound message that names no thread belongs to (see the module's rule)."""
    answered = db.scalar(
        select(Interaction.case_id)
        .join(Case, Case.id == Interaction.case_id)
        .where(
            Interaction.customer_id == customer_id,
            Interaction.direction == Direction.OUTBOUND.value,
            Interaction.channel.in_([c.value for c in channels]),
            Interaction.started_at >= now - REPLY_WINDOW,
            Case.status.in_(OPEN_STATUSES),
        )
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(1)
    )
    return answered if answered is not None else latest_open_case(db, customer_id)


# --- outbound -----------------------------------------------------------------------------------------


def record_outbound(
    *,
    db: Session,
    channel: Channel,
    customer_id: int,
    case_id: int | None,
    ref: ExternalRef,
    body: str,
    to: str,
    sender: str | None,
    status: str = "queued",
    subject: str | None = None,
    agent: str | None = None,
    language: str | None = None,
    attributes: dict[str, Any] | None = None,
    now: datetime | None = None,
    region: str,
) -> Interaction:
    """Records a message that left: an outbound interaction keyed by the provider's id, with its text."""
    now = now or utcnow()
    details = {"to": to, "from": sender, "delivery_status": status} | (attributes or {})
    interaction, created = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            customer_id=customer_id,
            case_id=case_id,
            channel=channel,
            direction=Direction.OUTBOUND,
            started_at=now,
            agent=agent[:64] if agent else None,
            subject=subject[:200] if subject else None,
            summary=body[:_SUMMARY],
            language=language,
            external_refs=[ref],
            attributes={k: v for k, v in details.items() if v is not None},
        ),
        region=region,
    )
    if created:
        timeline.add_touchpoint(
            db=db,
            interaction_id=interaction.id,
            data=TouchpointCreate(
                kind=TouchpointKind.MESSAGE, occurred_at=now, text=body[:_SUMMARY], input=status
            ),
        )
        stage(db, "message.sent", _payload(interaction))
    return interaction


def send_text(
    *,
    db: Session,
    sender: TextSender,
    channel: Channel,
    customer_id: int,
    body: str,
    case_id: int | None = None,
    agent: str | None = None,
    status_callback: str | None = None,
    region: str,
) -> Interaction:
    """Sends an SMS or WhatsApp message to a customer, if they may get one, and records it.

    Nothing is written before the provider has taken the message (so no lock is held while it is
    sent), and nothing at all if it refuses (the `MessageNotSent` says why)."""
    if channel not in TEXT_CHANNELS:
        raise InvalidInput(f"{channel.value} is not a text channel")
    customer = customers.get_customer(db=db, customer_id=customer_id)
    to = normalise_phone(contact_address(customer, channel), region=region)
    refusal = contact_refusal(db, customer, channel, to)
    if refusal:
        raise ContactRefused(refusal)
    case = outbound_case(db, customer.id, case_id)
    sent = sender.send(OutgoingText(channel, to, body, status_callback=status_callback))
    return record_outbound(
        db=db,
        channel=channel,
        customer_id=customer.id,
        case_id=case,
        ref=ExternalRef(kind=RefKind.TWILIO_SID, value=sent.sid),
        body=body,
        to=sent.to,
        sender=sent.sender,
        status=sent.status,
        agent=agent,
        region=region,
    )


def _latest_email(db: Session, case_id: int) -> tuple[Interaction, str] | None:
    row = db.execute(
        select(Interaction, InteractionRef.value)
        .join(InteractionRef, InteractionRef.interaction_id == Interaction.id)
        .where(
            Interaction.case_id == case_id,
            Interaction.channel == Channel.EMAIL.value,
            InteractionRef.kind == RefKind.EMAIL_MESSAGE_ID.value,
        )
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row is not None else None


def send_email(
    *,
    db: Session,
    sender: EmailSender,
    customer_id: int,
    body: str,
    subject: str | None = None,
    case_id: int | None = None,
    agent: str | None = None,
    region: str,
) -> Interaction:
    """Emails a customer, if they may get one, and records it. On a case, the email answers the
    case's latest email (In-Reply-To, References) and its subject carries the case's tag, so the
    customer's answer comes back to the same case."""
    customer = customers.get_customer(db=db, customer_id=customer_id)
    to = contact_address(customer, Channel.EMAIL)
    refusal = contact_refusal(db, customer, Channel.EMAIL, to)
    if refusal:
        raise ContactRefused(refusal)
    case = outbound_case(db, customer.id, case_id)
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    previous = _latest_email(db, case) if case is not None else None
    if previous is not None:
        earlier, in_reply_to = previous
        references = thread_references(tuple(earlier.attributes.get("references") or ()), in_reply_to)
        if not subject and earlier.subject:
            subject = (
                earlier.subject if earlier.subject.lower().startswith("re:") else f"Re: {earlier.subject}"
            )
    if not subject:
        raise InvalidInput("an email needs a subject (none to answer on this case)")
    if case is not None and case_tag(case).lower() not in subject.lower():
        subject = f"{subject} {case_tag(case)}"
    sent = sender.send(
        OutgoingEmail(to=to, subject=subject, body=body, in_reply_to=in_reply_to, references=references)
    )
    return record_outbound(
        db=db,
        channel=Channel.EMAIL,
        customer_id=customer.id,
        case_id=case,
        ref=ExternalRef(kind=RefKind.EMAIL_MESSAGE_ID, value=sent.message_id),
        body=body,
        to=to,
        sender=sent.sender,
        status="sent",  # the server took it; SMTP reports nothing further
        subject=subject,
        agent=agent,
        attributes={"in_reply_to": in_reply_to, "references": list(sent.references) or None},
        region=region,
    )


# --- inbound ------------------------------------------------------------------------------------------


def _record_inbound(
    db: Session,
    *,
    channel: Channel,
    identity: CustomerIdentityRef | None,
    case_for: Any,
    ref: ExternalRef,
    body: str,
    subject: str | None,
    attributes: dict[str, Any],
    touchpoint_attributes: dict[str, Any],
    now: datetime,
    region: str,
) -> Recorded:
    existing = db.scalar(
        select(InteractionRef.interaction_id).where(
            InteractionRef.kind == ref.kind.value, InteractionRef.value == ref.value
        )
    )
    if existing is not None:  # a retried webhook: answer with the first recording, change nothing
        return Recorded(timeline.get_interaction(db=db, interaction_id=existing), False)
    customer_id = None
    if identity is not None:
        customer_id = customers.find_or_create_by_identity(
            db=db, kind=identity.kind, value=identity.value, region=region
        )
    case_id = case_for(customer_id) if customer_id is not None else None
    interaction, created = timeline.record_interaction(
        db=db,
        data=InteractionCreate(
            customer_id=customer_id,
            case_id=case_id,
            channel=channel,
            direction=Direction.INBOUND,
            started_at=now,
            ended_at=now,
            outcome=Outcome.DELIVERED,
            subject=subject,
            summary=body[:_SUMMARY] or None,
            external_refs=[ref],
            attributes={k: v for k, v in attributes.items() if v not in (None, [], ())},
        ),
        region=region,
    )
    if created:
        timeline.add_touchpoint(
            db=db,
            interaction_id=interaction.id,
            data=TouchpointCreate(
                kind=TouchpointKind.MESSAGE,
                occurred_at=now,
                text=body[:_SUMMARY] or None,
                attributes={k: v for k, v in touchpoint_attributes.items() if v not in (None, [], ())},
            ),
        )
        stage(db, "message.received", _payload(interaction))
    return Recorded(interaction, created)


def _sender_identity(kind: IdentityKind, value: str, region: str) -> CustomerIdentityRef | None:
    """The sender as an identity, or None for one no customer can hold (a short code, a name)."""
    try:
        return CustomerIdentityRef(kind=kind, value=normalise_phone(value, region=region))
    except InvalidInput:
        return None


def record_inbound_text(
    *, db: Session, message: InboundText, region: str, now: datetime | None = None
) -> Recorded:
    """Records an SMS or WhatsApp message a customer sent, on the customer holding the sender's
    number (a new customer if nobody does), in the case it answers (see the module's rule). An
    opt-out ("STOP") or opt-in ("START") Twilio reports becomes the customer's consent for the channel."""
    now = now or utcnow()
    kind = IdentityKind.WHATSAPP if message.channel is Channel.WHATSAPP else IdentityKind.PHONE
    media = [m.model_dump() for m in message.media]
    recorded = _record_inbound(
        db,
        channel=message.channel,
        identity=_sender_identity(kind, message.sender, region),
        case_for=lambda customer_id: reply_case(db, customer_id, TEXT_CHANNELS, now),
        ref=ExternalRef(kind=RefKind.TWILIO_SID, value=message.sid[:255]),
        body=message.body,
        subject=None,
        attributes={
            "from": message.sender,
            "to": message.recipient,
            "profile_name": message.profile_name,
            "media": media,
            "opt_out": message.opt_out,
        },
        touchpoint_attributes={"media": media},
        now=now,
        region=region,
    )
    customer_id = recorded.interaction.customer_id
    if recorded.created and customer_id is not None and message.opt_out in ("stop", "start"):
        granted = message.opt_out == "start"
        customers.update_customer(
            db=db,
            customer_id=customer_id,
            data=CustomerUpdate(
                consents={
                    ConsentChannel(message.channel.value): Consent(
                        granted=granted,
                        recorded_at=now,
                        legal_basis=LegalBasis.CONSENT if granted else None,
                        source=f"{message.channel.value} {message.opt_out.upper()} ({message.sid[:40]})",
                    )
                }
            ),
        )
    return recorded


def _threaded_case(db: Session, message: InboundEmail, customer_id: int) -> int | None:
    """The case the email names: by the emails it answers, else by a "[case #N]" tag in its subject."""
    answered = [i for i in (message.in_reply_to, *reversed(message.references)) if i]
    if answered:
        rows = db.execute(
            select(InteractionRef.value, Interaction.case_id)
            .join(Interaction, Interaction.id == InteractionRef.interaction_id)
            .where(
                InteractionRef.kind == RefKind.EMAIL_MESSAGE_ID.value,
                InteractionRef.value.in_(answered),
                Interaction.customer_id == customer_id,
                Interaction.case_id.is_not(None),
            )
        ).all()
        by_id = {value: case_id for value, case_id in rows}
        found = next((by_id[i] for i in answered if i in by_id), None)
        if found is not None:
            return int(found)
    tag = _CASE_TAG.search(message.subject or "")
    if tag:
        case = db.get(Case, int(tag.group(1)))
        if case is not None and case.customer_id == customer_id:  # a tag is only a claim: check it
            return case.id
    return None


def record_inbound_email(
    *, db: Session, message: InboundEmail, region: str, now: datetime | None = None
) -> Recorded:
    """Records an email a customer sent, on the customer holding the From address, in the case its
    thread or subject names (reopened if resolved) or else by the reply rule."""
    now = now or utcnow()

    def case_for(customer_id: int) -> int | None:
        threaded = _threaded_case(db, message, customer_id)
        if threaded is None:
            return reply_case(db, customer_id, (Channel.EMAIL,), now)
        case = cases.get_case(db=db, case_id=threaded)
        if case.status == CaseStatus.RESOLVED and not message.auto_submitted:
            cases.reopen_case(db=db, case_id=case.id)
        return case.id

    attachments = [a.model_dump() for a in message.attachments]
    return _record_inbound(
        db,
        channel=Channel.EMAIL,
        identity=CustomerIdentityRef(kind=IdentityKind.EMAIL, value=message.sender),
        case_for=case_for,
        ref=ExternalRef(kind=RefKind.EMAIL_MESSAGE_ID, value=message.message_id),
        body=message.text,
        subject=message.subject,
        attributes={
            "from": message.sender,
            "from_name": message.sender_name,
            "to": list(message.to),
            "in_reply_to": message.in_reply_to,
            "references": list(message.references),
            "auto_submitted": message.auto_submitted or None,
        },
        touchpoint_attributes={"attachments": attachments},
        now=now,
        region=region,
    )


# --- delivery -----------------------------------------------------------------------------------------


def apply_delivery_report(
    *, db: Session, report: DeliveryReport, now: datetime | None = None
) -> Interaction | None:
    """Moves a message's delivery status on: the interaction's outcome once it is final, and a
    `message` touchpoint per status reached. Idempotent; a late or repeated report changes nothing.
    None: no message with that SID is on the timeline (sent by something else)."""
    now = now or utcnow()
    interaction_id = db.scalar(
        select(InteractionRef.interaction_id).where(
            InteractionRef.kind == RefKind.TWILIO_SID.value, InteractionRef.value == report.sid
        )
    )
    if interaction_id is None:
        log.info("delivery status %s for %s: no such message on the timeline", report.status, report.sid)
        return None
    # Locked: two reports for one message arriving together must not both think they came first.
    interaction = db.get(Interaction, interaction_id, with_for_update=True, populate_existing=True)
    if interaction is None:
        return None
    current = (interaction.attributes or {}).get("delivery_status")
    step = delivery.advance(current, report.status)
    if step is None:
        return interaction
    reason = explain_error_code(report.error_code)
    interaction.attributes = {**(interaction.attributes or {}), "delivery_status": step.status} | (
        {"error_code": report.error_code} if report.error_code is not None else {}
    )
    db.flush()
    if step.outcome is not None and interaction.outcome is None:
        timeline.close_interaction(
            db=db,
            interaction_id=interaction.id,
            data=InteractionClose(outcome=step.outcome, ended_at=max(now, interaction.started_at)),
        )
    timeline.add_touchpoint(
        db=db,
        interaction_id=interaction.id,
        data=TouchpointCreate(
            kind=TouchpointKind.MESSAGE,
            occurred_at=now,
            input=step.status,
            text=reason,
            attributes={"status": step.status}
            | ({"error_code": report.error_code} if report.error_code is not None else {}),
        ),
    )
    stage(
        db, "message.status", _payload(interaction) | {"status": step.status, "error_code": report.error_code}
    )
    return interaction


def _payload(interaction: Interaction) -> dict[str, Any]:
    return {
        "interaction_id": interaction.id,
        "customer_id": interaction.customer_id,
        "case_id": interaction.case_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
    }
