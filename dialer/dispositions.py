"""Agents' dispositions: what a call came to, in the agent's words, and what that means for the contact.

    result = dispositions.set_disposition(db=db, campaign_id=7, attempt_id=41, agent="PJSIP/1001",
                                          disposition=AgentDisposition.CALL_BACK, call_back_at=at, ...)
    result.contact.status, result.contact.next_attempt_at   # pending, at the time the callee asked for

Two records of one call, kept apart on purpose. The network's verdict (connected, no answer, busy, ...)
stays the attempt's `disposition`: the compliance rules read it. The agent's goes where people read
about the customer, the attempt's interaction on their timeline: `Interaction.disposition`, with the
details (agent, call-back time, note, who set it, the do-not-call list used) under its attributes'
`agent_disposition`. The campaign's stats count them from there.

What each disposition does to the contact's next attempt (`next_attempt`, pure):

    sale, not_interested   done: not called again
    call_back (at)         due at `at` (in the future); the callee asked, so even past max_attempts;
                           callee-local hours still apply when it is dialed
    no_contact             retried after retry_delays.no_contact, unless max_attempts is reached
    wrong_number           failed: never called again by this campaign
    do_not_call            blocked, and the number listed (the campaign's or the global list, as the
                           campaign's `do_not_call_disposition` or the request says), with its source

A disposition is final and idempotent: the same one again changes and counts nothing; another one for
the same attempt is refused. It reschedules the contact only when the attempt is the contact's latest and
the contact is not being dialed or previewed again already (a late disposition must not undo a later
attempt), and never revives a contact that is blocked, failed or skipped; do_not_call lists the number
whatever the contact's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from core.timeline.models import Interaction
from dialer import campaigns
from dialer import do_not_call_store as dnc
from dialer.attempts import ContactStatus
from dialer.campaign_rules import RetryDelays
from dialer.models import CampaignContact, DialAttempt

# How far ahead a call-back may be booked.
MAX_CALL_BACK_AHEAD = timedelta(days=366)
# Where the agent's disposition is noted in the interaction's attributes.
TIMELINE_ATTRIBUTE = "agent_disposition"


class AgentDisposition(StrEnum):
    SALE = "sale"
    NOT_INTERESTED = "not_interested"
    CALL_BACK = "call_back"
    WRONG_NUMBER = "wrong_number"
    DO_NOT_CALL = "do_not_call"
    NO_CONTACT = "no_contact"  # nobody, or not the right person, to talk to


# The dispositions that say the agent talked with someone: they need a call that reached the agent.
SPOKE_WITH_SOMEONE = frozenset(
    {
        AgentDisposition.SALE,
        AgentDisposition.NOT_INTERESTED,
        AgentDisposition.CALL_BACK,
        AgentDisposition.WRONG_NUMBER,
        AgentDisposition.DO_NOT_CALL,
    }
)
# Contact states a disposition never changes: dialed or previewed again already, or out for good.
_LEFT_ALONE = frozenset(
    {
        ContactStatus.DIALING,
        ContactStatus.PREVIEWING,
        ContactStatus.BLOCKED,
        ContactStatus.FAILED,
        ContactStatus.SKIPPED,
    }
)


@dataclass(frozen=True, slots=True)
class NextAttempt:
    status: str  # the contact's new status (dialer.attempts.ContactStatus)
    at: datetime | None  # when it is due again; None: not again
    reason: str


def next_attempt(
    disposition: AgentDisposition,
    *,
    call_back_at: datetime | None,
    attempts: int,
    max_attempts: int,
    ended_at: datetime,
    retry_delays: RetryDelays,
) -> NextAttempt:
    """The contact's next attempt after an agent's disposition (see the module's table)."""
    match disposition:
        case AgentDisposition.SALE | AgentDisposition.NOT_INTERESTED:
            return NextAttempt(ContactStatus.DONE, None, f"{disposition.value}: reached, not called again")
        case AgentDisposition.WRONG_NUMBER:
            return NextAttempt(
                ContactStatus.FAILED, None, "wrong number: not the customer's, never called again"
            )
        case AgentDisposition.DO_NOT_CALL:
            return NextAttempt(
                ContactStatus.BLOCKED, None, "asked not to be called: listed, never called again"
            )
        case AgentDisposition.CALL_BACK:
            if call_back_at is None:
                raise ValueError("call_back needs the time the callee asked for")
            return NextAttempt(
                ContactStatus.PENDING, call_back_at, "call back at the time the callee asked for"
            )
        case AgentDisposition.NO_CONTACT:
            if attempts >= max_attempts:
                return NextAttempt(ContactStatus.EXHAUSTED, None, f"no contact after {attempts} attempts")
            later = ended_at + timedelta(seconds=retry_delays.no_contact)
            return NextAttempt(
                ContactStatus.PENDING, later, "no contact: retried after retry_delays.no_contact"
            )


def reschedules(disposition: AgentDisposition, *, contact_status: str, latest: bool) -> bool:
    """Whether the disposition of an attempt (`latest`: the contact's last one) sets the contact's next
    attempt, given where the contact stands now."""
    if contact_status in _LEFT_ALONE:
        return False
    # Listing the number is right whatever attempt the callee asked on.
    return latest or disposition is AgentDisposition.DO_NOT_CALL


def check_call_back_time(disposition: AgentDisposition, at: datetime | None, *, now: datetime) -> None:
    """InvalidInput when `at` does not fit the disposition: call_back needs one, in the future (and not
    more than a year ahead); the others take none."""
    if disposition is not AgentDisposition.CALL_BACK:
        if at is not None:
            raise InvalidInput(
                f"`at` is the time of a call_back; a {disposition.value} disposition takes none"
            )
        return
    if at is None:
        raise InvalidInput(
            "a call_back needs `at`: when the callee asked to be called (ISO 8601, with its offset)"
        )
    if at.tzinfo is None:
        raise InvalidInput(f"`at` ({at.isoformat()}) needs a UTC offset, e.g. 2026-11-24T18:00:00+01:00")
    if at <= now:
        raise InvalidInput(
            f"`at` ({at.isoformat()}) is in the past: a call_back is booked in the future"
            f" (now is {now.isoformat()})"
        )
    if at > now + MAX_CALL_BACK_AHEAD:
        raise InvalidInput(f"`at` ({at.isoformat()}) is more than {MAX_CALL_BACK_AHEAD.days} days ahead")


@dataclass(frozen=True, slots=True)
class DispositionResult:
    attempt: DialAttempt
    contact: CampaignContact
    disposition: AgentDisposition
    details: dict[str, Any]  # as recorded on the timeline
    recorded: bool  # False: the same disposition was already recorded, nothing changed
    rescheduled: bool  # whether it set the contact's next attempt
    listed: list[str] = field(default_factory=list)  # numbers newly put on a do-not-call list


def set_disposition(
    *,
    db: Session,
    campaign_id: int,
    attempt_id: int,
    agent: str,
    disposition: AgentDisposition,
    call_back_at: datetime | None,
    note: str | None,
    do_not_call_scope: str | None,
    actor: str,
    now: datetime,
    region: str,
) -> DispositionResult:
    """Record the agent's disposition of an ended attempt they took, and what follows from it."""
    settings = campaigns.settings_of(campaigns.get_campaign(db=db, campaign_id=campaign_id))
    attempt = db.get(DialAttempt, attempt_id, with_for_update=True)
    if attempt is None or attempt.campaign_id != campaign_id:
        raise NotFound(f"attempt {attempt_id} not found in campaign {campaign_id}")
    if attempt.agent is None:
        raise Conflict(
            f"attempt {attempt_id} reached no agent (it ended {attempt.disposition or 'unfinished'})"
        )
    if attempt.agent != agent:
        raise Conflict(f"attempt {attempt_id} was {attempt.agent}'s call, not {agent}'s")
    if attempt.ended_at is None:
        raise Conflict(
            f"attempt {attempt_id} is still in progress: set its disposition once the call has ended"
        )
    if attempt.disposition == "not_placed":
        raise Conflict(f"attempt {attempt_id} was never placed: there is no call to set a disposition for")
    if do_not_call_scope is not None and disposition is not AgentDisposition.DO_NOT_CALL:
        raise InvalidInput("do_not_call_scope goes with a do_not_call disposition only")
    interaction = db.get(Interaction, attempt.interaction_id) if attempt.interaction_id else None
    if interaction is None:
        raise Conflict(f"attempt {attempt_id} has no call on the customer's timeline to set a disposition on")
    contact = db.get(CampaignContact, attempt.contact_id, with_for_update=True)
    assert contact is not None  # an attempt's contact goes only with the attempt (ON DELETE CASCADE)

    already = (interaction.attributes or {}).get(TIMELINE_ATTRIBUTE)
    if isinstance(already, dict):
        same = already.get("disposition") == disposition.value and already.get("call_back_at") == (
            call_back_at.isoformat() if call_back_at else None
        )
        if same:
            return DispositionResult(
                attempt, contact, disposition, already, recorded=False, rescheduled=False
            )
        raise Conflict(
            f"attempt {attempt_id} already has the disposition {already.get('disposition')!r}"
            f" (set at {already.get('set_at')}); a disposition is final"
        )
    check_call_back_time(disposition, call_back_at, now=now)
    if disposition in SPOKE_WITH_SOMEONE and attempt.connected_at is None:
        raise InvalidInput(
            f"attempt {attempt_id} never reached {agent} (it ended {attempt.disposition}): "
            f"{disposition.value} needs a conversation; use no_contact"
        )

    listed: list[str] = []
    scope = None
    if disposition is AgentDisposition.DO_NOT_CALL:
        scope = do_not_call_scope or settings.do_not_call_disposition
        listed = dnc.add_numbers(
            db=db,
            numbers=[attempt.phone],
            campaign_id=campaign_id if scope == "campaign" else None,
            reason=f"asked not to be called, on attempt {attempt.id} of campaign {campaign_id}",
            actor=actor,
            source=f"disposition:{attempt.id}:{agent}"[:64],
            region=region,
        )
    if disposition in SPOKE_WITH_SOMEONE:
        attempt.live_person = True  # an agent talked with them: the compliance rules may rely on it

    details: dict[str, Any] = {
        "disposition": disposition.value,
        "agent": agent,
        "by": actor,
        "set_at": now.isoformat(),
        "call_back_at": call_back_at.isoformat() if call_back_at else None,
        "note": note,
        "do_not_call_list": scope,
        "call": attempt.disposition,  # the network's verdict, kept beside it
    }
    interaction.disposition = disposition.value
    interaction.attributes = {**(interaction.attributes or {}), TIMELINE_ATTRIBUTE: details}

    latest = contact.attempts == attempt.attempt
    rescheduled = reschedules(disposition, contact_status=contact.status, latest=latest)
    if rescheduled:
        following = next_attempt(
            disposition,
            call_back_at=call_back_at,
            attempts=contact.attempts,
            max_attempts=settings.max_attempts,
            ended_at=attempt.ended_at,
            retry_delays=settings.retry_delays,
        )
        contact.status, contact.next_attempt_at = following.status, following.at
        contact.last_disposition = disposition.value
    db.flush()
    stage(
        db,
        "dialer.disposition_set",
        {
            "campaign_id": campaign_id,
            "attempt_id": attempt.id,
            "contact_id": contact.id,
            "customer_id": interaction.customer_id,
            "interaction_id": interaction.id,
            "agent": agent,
            "disposition": disposition.value,
        },
    )
    return DispositionResult(attempt, contact, disposition, details, True, rescheduled, listed)


def disposition_of(db: Session, attempt: DialAttempt) -> dict[str, Any] | None:
    """The agent's disposition recorded for the attempt, if any."""
    if attempt.interaction_id is None:
        return None
    attributes = db.scalar(select(Interaction.attributes).where(Interaction.id == attempt.interaction_id))
    found = (attributes or {}).get(TIMELINE_ATTRIBUTE)
    return found if isinstance(found, dict) else None


def disposition_counts(*, db: Session, campaign_id: int) -> dict[str, int]:
    """The campaign's agent dispositions by kind (each attempt counts once: it has one at most)."""
    query = (
        select(Interaction.disposition, func.count())
        .select_from(DialAttempt)
        .join(Interaction, Interaction.id == DialAttempt.interaction_id)
        .where(
            DialAttempt.campaign_id == campaign_id,
            Interaction.disposition.in_([kind.value for kind in AgentDisposition]),
        )
        .group_by(Interaction.disposition)
    )
    return {str(kind): int(count) for kind, count in db.execute(query).all()}
