"""Dial attempts in the database: which contacts to call next, and what became of each call.

The compliance rules are enforced here, at dial time, for every contact claimed (not only at import):
do-not-call lists (global and the campaign's), the customer's consent to calls and erasure, and the
callee's local calling hours. A contact outside its hours is deferred to the next instant it may be
called; a blocked one is never dialed by this campaign again.

Each attempt is one row, numbered per contact (unique), written when the call is placed and completed
once when it ends; a second report of the same end changes nothing, so an attempt is never counted
twice. Services flush; the runner commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from core.channels import Channel, Direction
from core.customers.models import Customer
from core.timeline import service as timeline
from core.timeline.schemas import ExternalRef, InteractionCreate, Outcome, RefKind
from dialer.abandonment import (
    WINDOW_24_HOURS,
    WINDOW_30_DAYS,
    CallClass,
    CallOutcome,
    classify,
)
from dialer.call_network import AmdVerdict, CallEnd
from dialer.calling_window import CallingPolicy, callee_location, calling_decision
from dialer.campaign_rules import CampaignSettings
from dialer.contact_import import RESERVED_ATTRIBUTE
from dialer.do_not_call import DoNotCallLists, InMemoryNumberList, dial_permission
from dialer.do_not_call_store import DatabaseNumberList
from dialer.models import Campaign, CampaignContact, DialAttempt
from dialer.pacing import AbandonmentWindow

# Claimed per call wanted: some candidates turn out blocked or outside their hours.
_CANDIDATES_PER_CALL = 4
# A contact with no calling window within the policy's horizon is looked at again after this long.
_RECHECK = timedelta(hours=12)


class ContactStatus:
    PENDING = "pending"
    PREVIEWING = "previewing"  # shown to one agent (preview mode) until next_attempt_at, then free again
    DIALING = "dialing"
    DONE = "done"
    EXHAUSTED = "exhausted"
    BLOCKED = "blocked"
    FAILED = "failed"  # not this customer's number (an agent's `wrong_number`)
    SKIPPED = "skipped"  # an agent skipped it for good in preview


# Contacts a claim may take: pending ones that are due, and preview reservations that timed out (their
# next_attempt_at is the reservation's end), so that a reservation nobody acted on returns to the list.
CLAIMABLE = (ContactStatus.PENDING, ContactStatus.PREVIEWING)
# Where the dialer keeps its own notes in a contact's `attributes` (the CSV's other columns live there
# too; the import refuses a column of this name).
DIALER_ATTRIBUTE = RESERVED_ATTRIBUTE


@dataclass(frozen=True, slots=True)
class ClaimedCall:
    attempt_id: int
    contact_id: int
    customer_id: int
    phone: str
    attempt: int
    dialed_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    calls: list[ClaimedCall]
    blocked: int  # contacts found on a do-not-call list or without consent: never dialed
    deferred: int  # contacts outside their calling hours: rescheduled


@dataclass(frozen=True, slots=True)
class DialCheck:
    """The dial-time verdict on one contact: callable now, blocked for good, or not yet (deferred)."""

    allowed: bool
    rule: str | None = None  # what refused it: a do_not_call.DialBlock or a calling_window.CallingBlock
    detail: str = ""
    blocked: bool = False  # do-not-call, consent or erasure: never dialed by this campaign again
    next_allowed_at: datetime | None = None  # deferred: the next instant it may be called


def due_contacts(campaign_id: int, now: datetime, limit: int) -> Select[CampaignContact]:
    """The campaign's contacts due for a call, oldest due first, locked (skipping rows others hold)."""
    return (
        select(CampaignContact)
        .where(
            CampaignContact.campaign_id == campaign_id,
            CampaignContact.status.in_(CLAIMABLE),
            # A reservation always has its end in next_attempt_at, so only expired ones pass.
            (CampaignContact.next_attempt_at.is_(None)) | (CampaignContact.next_attempt_at <= now),
        )
        .order_by(
            CampaignContact.next_attempt_at.is_not(None), CampaignContact.next_attempt_at, CampaignContact.id
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def check_contacts(
    *,
    db: Session,
    campaign_id: int,
    settings: CampaignSettings,
    policy: CallingPolicy,
    contacts: Sequence[CampaignContact],
    now: datetime,
) -> list[DialCheck]:
    """The dial-time compliance of each contact, in order: do-not-call lists (global and the campaign's),
    the customer's consent and erasure, then the callee's local hours. Reads only."""
    if not contacts:
        return []
    phones = [contact.phone for contact in contacts]
    # One query per list for the whole batch, then the pure per-number decision.
    lists = DoNotCallLists(
        InMemoryNumberList.of(DatabaseNumberList(db, None).listed(phones)),
        InMemoryNumberList.of(DatabaseNumberList(db, campaign_id).listed(phones)),
    )
    people = {
        row.id: row
        for row in db.execute(
            select(Customer.id, Customer.consents, Customer.erased_at).where(
                Customer.id.in_({contact.customer_id for contact in contacts})
            )
        )
    }
    checks: list[DialCheck] = []
    for contact in contacts:
        person = people.get(contact.customer_id)
        permission = dial_permission(
            contact.phone,
            lists=lists,
            consents=person.consents if person else None,
            require_consent=settings.require_call_consent,
            customer_erased=person is None or person.erased_at is not None,
        )
        if not permission.allowed:
            rule = permission.reason.value if permission.reason else "blocked"
            checks.append(DialCheck(False, rule, permission.detail, blocked=True))
            continue
        decision = calling_decision(
            now, callee=callee_location(contact.phone, time_zone=contact.time_zone), policy=policy
        )
        if not decision.allowed:
            rule = decision.reason.value if decision.reason else "outside_hours"
            later = decision.next_allowed_at or now + _RECHECK
            checks.append(DialCheck(False, rule, decision.detail, next_allowed_at=later))
            continue
        checks.append(DialCheck(True))
    return checks


def claim_calls(
    *,
    db: Session,
    campaign: Campaign,
    settings: CampaignSettings,
    policy: CallingPolicy,
    wanted: int,
    now: datetime,
) -> Claim:
    """Up to `wanted` contacts that are due and may be called now, each with a new attempt row."""
    if wanted <= 0:
        return Claim([], 0, 0)
    candidates = list(db.scalars(due_contacts(campaign.id, now, wanted * _CANDIDATES_PER_CALL)))
    if not candidates:
        return Claim([], 0, 0)
    checks = check_contacts(
        db=db, campaign_id=campaign.id, settings=settings, policy=policy, contacts=candidates, now=now
    )
    calls: list[ClaimedCall] = []
    blocked = deferred = 0
    for contact, check in zip(candidates, checks, strict=True):
        if len(calls) == wanted:
            break
        if contact.status == ContactStatus.PREVIEWING:
            end_reservation(contact)
        if check.blocked:
            contact.status = ContactStatus.BLOCKED
            contact.last_disposition = check.rule
            blocked += 1
            continue
        if not check.allowed:
            contact.status = ContactStatus.PENDING
            contact.next_attempt_at = check.next_allowed_at
            contact.last_disposition = check.rule
            deferred += 1
            continue
        calls.append(start_attempt(db=db, contact=contact, now=now))
    db.flush()
    return Claim(calls, blocked, deferred)


def start_attempt(
    *, db: Session, contact: CampaignContact, now: datetime, agent: str | None = None
) -> ClaimedCall:
    """A new attempt row for `contact` (which passed the dial-time checks); the contact is dialing.
    `agent`: the agent who placed it (preview), who the call is bridged to."""
    contact.status = ContactStatus.DIALING
    contact.attempts += 1
    attempt = DialAttempt(
        campaign_id=contact.campaign_id,
        contact_id=contact.id,
        attempt=contact.attempts,
        phone=contact.phone,
        dialed_at=now,
        agent=agent,
    )
    db.add(attempt)
    db.flush()
    return ClaimedCall(attempt.id, contact.id, contact.customer_id, contact.phone, contact.attempts, now)


def end_reservation(contact: CampaignContact) -> None:
    """Forget the preview reservation noted on the contact (the status is the caller's to set)."""
    notes = contact.attributes.get(DIALER_ATTRIBUTE) if contact.attributes else None
    if isinstance(notes, dict) and "preview" in notes:
        kept = {key: value for key, value in notes.items() if key != "preview"}
        attributes = {key: value for key, value in contact.attributes.items() if key != DIALER_ATTRIBUTE}
        contact.attributes = attributes | ({DIALER_ATTRIBUTE: kept} if kept else {})


def release_unplaced(*, db: Session, attempt_id: int, reason: str, now: datetime) -> None:
    """The network refused the call before it rang: the attempt did not happen. It stays on record
    (disposition `not_placed`) but does not count against the contact's attempts."""
    attempt = db.get(DialAttempt, attempt_id)
    if attempt is None or attempt.ended_at is not None:
        return
    attempt.ended_at, attempt.disposition = now, "not_placed"
    attempt.call_class = CallClass.NOT_ANSWERED.value
    contact = db.get(CampaignContact, attempt.contact_id)
    if contact is not None and contact.status == ContactStatus.DIALING:
        contact.status, contact.attempts = ContactStatus.PENDING, max(0, contact.attempts - 1)
        contact.last_disposition = f"not_placed: {reason}"[:32]
    db.flush()


@dataclass(frozen=True, slots=True)
class CallResult:
    """What happened to a placed call, as the runner saw it."""

    attempt_id: int
    ended_at: datetime
    end: CallEnd
    cause: str
    call_ref: str | None = None
    answered_at: datetime | None = None
    greeting_ended_at: datetime | None = None
    amd: AmdVerdict | None = None  # None: AMD off
    connected_at: datetime | None = None
    agent: str | None = None
    message_played_at: datetime | None = None


_DISPOSITIONS = {
    CallClass.CONNECTED: ("connected", Outcome.COMPLETED),
    CallClass.ABANDONED: ("abandoned", Outcome.ABANDONED),
    CallClass.MACHINE: ("answering_machine", Outcome.ANSWERING_MACHINE),
    CallClass.AMD_MACHINE_UNVERIFIED: ("answering_machine", Outcome.ANSWERING_MACHINE),
}
_UNANSWERED = {
    CallEnd.NO_ANSWER: ("no_answer", Outcome.NO_ANSWER),
    CallEnd.BUSY: ("busy", Outcome.BUSY),
    CallEnd.FAILED: ("failed", Outcome.FAILED),
    CallEnd.COMPLETED: ("no_answer", Outcome.NO_ANSWER),  # hung up before an answer
}


def finish_call(
    *, db: Session, result: CallResult, settings: CampaignSettings, campaign_name: str, region: str
) -> CallClass | None:
    """Record the end of an attempt, schedule the contact's next one, and put the call on the customer's
    timeline. None (and no change) when this attempt was already finished."""
    attempt = db.get(DialAttempt, result.attempt_id)
    if attempt is None or attempt.ended_at is not None:
        return None
    outcome = CallOutcome(
        attempt_id=attempt.id,
        dialed_at=attempt.dialed_at,
        ended_at=result.ended_at,
        end=result.end,
        answered_at=result.answered_at,
        greeting_ended_at=result.greeting_ended_at,
        connected_at=result.connected_at,
        amd=result.amd,
        message_played_at=result.message_played_at,
    )
    call_class = classify(
        outcome, now=result.ended_at, drop_wait=timedelta(seconds=settings.drop_wait_seconds)
    )
    disposition, timeline_outcome = _DISPOSITIONS.get(call_class) or _UNANSWERED[result.end]
    attempt.call_ref = result.call_ref
    attempt.answered_at, attempt.greeting_ended_at = result.answered_at, result.greeting_ended_at
    attempt.connected_at, attempt.ended_at = result.connected_at, result.ended_at
    attempt.message_played_at, attempt.agent = result.message_played_at, result.agent
    attempt.amd = result.amd.value if result.amd else None
    attempt.disposition, attempt.call_class = disposition, call_class.value

    contact = db.get(CampaignContact, attempt.contact_id)
    if contact is not None:
        contact.last_disposition = disposition
        if contact.status == ContactStatus.DIALING:
            _schedule_next(contact, disposition, settings, result.ended_at)
        interaction, _ = timeline.record_interaction(
            db=db,
            data=InteractionCreate(
                customer_id=contact.customer_id,
                channel=Channel.VOICE,
                direction=Direction.OUTBOUND,
                started_at=attempt.dialed_at,
                ended_at=result.ended_at,
                campaign=campaign_name[:64],
                agent=result.agent,
                outcome=timeline_outcome,
                disposition=disposition,
                external_refs=[ExternalRef(kind=RefKind.DIAL_ATTEMPT, value=str(attempt.id))],
                attributes={
                    "attempt": attempt.attempt,
                    "phone": attempt.phone,
                    "amd": attempt.amd,
                    "cause": result.cause,
                    "call_ref": result.call_ref,
                },
            ),
            region=region,
        )
        attempt.interaction_id = interaction.id
    db.flush()
    return call_class


def _schedule_next(
    contact: CampaignContact, disposition: str, settings: CampaignSettings, now: datetime
) -> None:
    if disposition == "connected":
        contact.status, contact.next_attempt_at = ContactStatus.DONE, None
        return
    if contact.attempts >= settings.max_attempts:
        contact.status, contact.next_attempt_at = ContactStatus.EXHAUSTED, None
        return
    delays = settings.retry_delays
    delay = {
        "busy": delays.busy,
        "no_answer": delays.no_answer,
        "answering_machine": delays.answering_machine,
        "failed": delays.failed,
    }.get(disposition, delays.call_back_later)  # abandoned: a person expected a call; call back
    contact.status, contact.next_attempt_at = ContactStatus.PENDING, now + timedelta(seconds=delay)


def interrupted_attempts(*, db: Session, campaign_id: int) -> list[DialAttempt]:
    """Attempts placed by a process that stopped before they ended (found when a runner starts). Preview
    dials an agent asked for and that no runner placed yet are not among them: see `requested_dials`."""
    query = select(DialAttempt).where(
        DialAttempt.campaign_id == campaign_id, DialAttempt.ended_at.is_(None), ~_requested()
    )
    return list(db.scalars(query))


def requested_dials(*, db: Session, campaign_id: int) -> list[DialAttempt]:
    """Preview dials waiting for the runner: an agent asked for them (through any process's API); the
    runner places each and bridges it to that agent."""
    query = select(DialAttempt).where(
        DialAttempt.campaign_id == campaign_id, DialAttempt.ended_at.is_(None), _requested()
    )
    return list(db.scalars(query.order_by(DialAttempt.id)))


def _requested() -> Any:
    # A preview attempt names its agent from the start and gets its call_ref once placed; the pacing
    # loop's attempts learn their agent only when they end.
    return DialAttempt.agent.is_not(None) & DialAttempt.call_ref.is_(None)


def mark_placed(*, db: Session, attempt_id: int, call_ref: str, now: datetime) -> None:
    """A requested preview dial is on the network: it is no longer waiting, and rings from `now`."""
    attempt = db.get(DialAttempt, attempt_id, with_for_update=True)
    # The call may have ended (and been recorded) before this write: then there is nothing to mark.
    if attempt is not None and attempt.ended_at is None and attempt.call_ref is None:
        attempt.call_ref, attempt.dialed_at = call_ref, now
        db.flush()


def abandonment_windows(*, db: Session, campaign_id: int, now: datetime) -> list[AbandonmentWindow]:
    """Live and abandoned calls over the rolling 24 hours and 30 days, from the finished attempts."""
    live = (CallClass.CONNECTED.value, CallClass.ABANDONED.value)
    windows = []
    for label, span in (("24h", WINDOW_24_HOURS), ("30d", WINDOW_30_DAYS)):
        row = db.execute(
            select(
                func.count().label("answered"),
                func.coalesce(
                    func.sum(case((DialAttempt.call_class == CallClass.ABANDONED.value, 1), else_=0)), 0
                ),
            ).where(
                DialAttempt.campaign_id == campaign_id,
                DialAttempt.answered_at > now - span,
                DialAttempt.answered_at <= now,
                DialAttempt.call_class.in_(live),
            )
        ).one()
        windows.append(AbandonmentWindow(label, int(row[0]), int(row[1])))
    return windows


def contact_counts(*, db: Session, campaign_id: int) -> dict[str, int]:
    query = (
        select(CampaignContact.status, func.count())
        .where(CampaignContact.campaign_id == campaign_id)
        .group_by(CampaignContact.status)
    )
    return {status: count for status, count in db.execute(query).all()}


def outcomes_since(*, db: Session, campaign_id: int, since: datetime) -> Sequence[CallOutcome]:
    """The attempts dialed since `since`, as the abandonment rules read them."""
    query = select(DialAttempt).where(DialAttempt.campaign_id == campaign_id, DialAttempt.dialed_at > since)
    return [outcome_of(row) for row in db.scalars(query.order_by(DialAttempt.id))]


def outcome_of(row: DialAttempt) -> CallOutcome:
    ends = {end.value: end for end in CallEnd}
    end: Any = None
    if row.disposition in ("busy", "failed"):
        end = ends[row.disposition]
    elif row.disposition == "no_answer":
        end = CallEnd.NO_ANSWER
    elif row.ended_at is not None:
        end = CallEnd.COMPLETED
    return CallOutcome(
        attempt_id=row.id,
        dialed_at=row.dialed_at,
        ended_at=row.ended_at,
        end=end,
        answered_at=row.answered_at,
        greeting_ended_at=row.greeting_ended_at,
        connected_at=row.connected_at,
        amd=AmdVerdict(row.amd) if row.amd else None,
        live_person=row.live_person,
        message_played_at=row.message_played_at,
    )
