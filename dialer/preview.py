"""Preview dialing: an agent asks for their next contact, sees it with the customer's history, and
dials it or skips it. Services flush; the edge commits.

    shown = preview.next_contact(db=db, campaign_id=7, agent="PJSIP/1001", actor="ana", now=now)
    done = preview.dial(db=db, campaign_id=7, contact_id=shown.contact.id, agent="PJSIP/1001", ...)
    done.refused     # the rule that failed at dial time (the contact is then blocked or deferred), or None
    done.attempt     # the attempt row; the campaign's runner places the call and bridges it to the agent
    preview.skip(db=db, campaign_id=7, contact_id=..., agent=..., reason="already renewed", final=True, ...)

A reservation lives in the contact's own row, so no other agent and no pacing loop gets the contact,
whichever process they run in: status `previewing`, `next_attempt_at` the moment the reservation ends
(`preview_timeout_seconds` after it was made), the agent under `attributes["@dialer"]["preview"]`. An
expired reservation is due like any pending contact, so it returns to the list by itself.

Contacts change hands by compare-and-set (`UPDATE ... WHERE status = <what was read>`): on PostgreSQL
the candidates are also locked (`SKIP LOCKED`), on SQLite the write lock serialises writers; either way
two agents asking at the same moment never get the same contact.

Dialing re-checks, at that moment, everything the pacing loop checks before it dials: the do-not-call
lists (a number listed while the agent was reading is refused), consent and erasure, and the callee's
local hours. The attempt is written here, naming its agent; the runner of the campaign (in whichever
process dials) places it on its next tick and bridges it to that agent, who is waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.audit import service as audit
from core.db import affected_rows
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from dialer import campaigns
from dialer.attempts import (
    DIALER_ATTRIBUTE,
    ContactStatus,
    DialCheck,
    check_contacts,
    due_contacts,
    start_attempt,
)
from dialer.campaign_rules import CampaignSettings, DialMode, RuleViolation
from dialer.campaigns import CampaignStatus
from dialer.models import Campaign, CampaignContact, DialAttempt

# One contact per query: on PostgreSQL each agent asking at once locks a different one (SKIP LOCKED),
# where a batch each would leave the later agents nothing unlocked to take. Rounds before answering
# "none now": each round's contact is reserved, set aside (blocked, deferred) or lost to another agent.
_BATCH = 1
_ROUNDS = 50


@dataclass(frozen=True, slots=True)
class Reservation:
    contact: CampaignContact
    agent: str
    reserved_at: datetime
    expires_at: datetime
    passed_over: int  # contacts found blocked or outside their hours on the way to this one


@dataclass(frozen=True, slots=True)
class PreviewDial:
    """What became of an agent's dial: an attempt for the runner to place, or the rule that refused it."""

    contact: CampaignContact
    attempt: DialAttempt | None = None
    refused: RuleViolation | None = None


def reservation_of(contact: CampaignContact) -> dict[str, Any] | None:
    """The preview reservation noted on the contact (agent, reserved_at, expires_at), if it is previewing."""
    if contact.status != ContactStatus.PREVIEWING:
        return None
    notes = (contact.attributes or {}).get(DIALER_ATTRIBUTE)
    found = notes.get("preview") if isinstance(notes, dict) else None
    return found if isinstance(found, dict) else None


def customer_attributes(contact: CampaignContact) -> dict[str, Any]:
    """The contact's own fields (the list's extra columns), without the dialer's notes."""
    return {key: value for key, value in (contact.attributes or {}).items() if key != DIALER_ATTRIBUTE}


def next_contact(
    *, db: Session, campaign_id: int, agent: str, actor: str, now: datetime
) -> Reservation | None:
    """The agent's reservation: the one they hold, or the next due contact that may be called now,
    reserved for them. None when no contact may be called now."""
    campaign, settings = _preview_campaign(db, campaign_id, agent, running=True)
    _require_free(db, campaign_id, agent)
    held = _held_by(db, campaign_id, agent, now)
    if held is not None:
        notes = reservation_of(held) or {}
        return Reservation(
            held,
            agent,
            datetime.fromisoformat(notes["reserved_at"]),
            datetime.fromisoformat(notes["expires_at"]),
            0,
        )
    policy = settings.calling_policy()
    expires = now + timedelta(seconds=settings.preview_timeout_seconds)
    passed_over = 0
    for _ in range(_ROUNDS):
        candidates = list(db.scalars(due_contacts(campaign.id, now, _BATCH)))
        if not candidates:
            return None
        checks = check_contacts(
            db=db, campaign_id=campaign.id, settings=settings, policy=policy, contacts=candidates, now=now
        )
        for contact, check in zip(candidates, checks, strict=True):
            if not check.allowed:
                if _swap(db, contact, **_refusal(contact, check)):
                    passed_over += 1
                continue
            notes = {
                "agent": agent,
                "by": actor,
                "reserved_at": now.isoformat(),
                "expires_at": expires.isoformat(),
            }
            reserved = _swap(
                db,
                contact,
                status=ContactStatus.PREVIEWING,
                next_attempt_at=expires,
                attributes=_with_notes(contact, preview=notes),
            )
            if reserved:  # else another agent took it a moment ago: on to the next
                stage(db, "dialer.preview_reserved", _payload(contact, agent))
                return Reservation(contact, agent, now, expires, passed_over)
    return None


def dial(
    *, db: Session, campaign_id: int, contact_id: int, agent: str, actor: str, now: datetime
) -> PreviewDial:
    """Dial the contact reserved for `agent`, if the dial-time rules allow it now. A refusal is an
    answer, not an error: the contact is blocked or deferred as the pacing loop would, and that stays."""
    _, settings = _preview_campaign(db, campaign_id, agent, running=True)
    _require_free(db, campaign_id, agent)
    contact = _reserved_contact(db, campaign_id, contact_id, agent, now)
    check = check_contacts(
        db=db,
        campaign_id=campaign_id,
        settings=settings,
        policy=settings.calling_policy(),
        contacts=[contact],
        now=now,
    )[0]
    if not check.allowed:
        _take(db, contact, **_refusal(contact, check))
        assert check.rule is not None
        violation = RuleViolation("phone", check.rule, check.detail)
        stage(db, "dialer.preview_refused", _payload(contact, agent) | {"rule": check.rule})
        return PreviewDial(contact, refused=violation)
    _take(
        db,
        contact,
        status=ContactStatus.DIALING,
        next_attempt_at=None,
        attributes=_with_notes(contact, preview=None),
    )
    claimed = start_attempt(db=db, contact=contact, now=now, agent=agent)
    attempt = db.get(DialAttempt, claimed.attempt_id)
    assert attempt is not None
    stage(db, "dialer.preview_dialed", _payload(contact, agent) | {"attempt_id": attempt.id, "by": actor})
    return PreviewDial(contact, attempt=attempt)


def skip(
    *,
    db: Session,
    campaign_id: int,
    contact_id: int,
    agent: str,
    reason: str,
    final: bool,
    retry_at: datetime | None,
    actor: str,
    now: datetime,
) -> CampaignContact:
    """The agent passes on the contact reserved for them: for good (`final`: never dialed by this
    campaign), or until `retry_at` (default: the campaign's `retry_delays.skipped` from now)."""
    _, settings = _preview_campaign(db, campaign_id, agent, running=False)
    if final and retry_at is not None:
        raise InvalidInput("a final skip takes no retry_at: the contact will not be called again")
    if retry_at is not None and retry_at <= now:
        raise InvalidInput(
            f"retry_at ({retry_at.isoformat()}) must be in the future (now is {now.isoformat()})"
        )
    contact = _reserved_contact(db, campaign_id, contact_id, agent, now)
    skipped = {"agent": agent, "by": actor, "reason": reason, "final": final, "at": now.isoformat()}
    if final:
        status, later = ContactStatus.SKIPPED, None
    else:
        status = ContactStatus.PENDING
        later = retry_at or now + timedelta(seconds=settings.retry_delays.skipped)
    _take(
        db,
        contact,
        status=status,
        next_attempt_at=later,
        last_disposition="skipped",
        attributes=_with_notes(contact, preview=None, skipped=skipped),
    )
    audit.record(
        db=db,
        actor=actor,
        action="campaign.contact_skipped",
        subject_type="campaign_contact",
        subject_id=contact.id,
        details={
            "campaign_id": campaign_id,
            "agent": agent,
            "reason": reason,
            "final": final,
            "retry_at": later.isoformat() if later else None,
        },
    )
    stage(db, "dialer.preview_skipped", _payload(contact, agent) | {"final": final})
    return contact


# --- the rules every preview action shares ----------------------------------------------------------


def _preview_campaign(
    db: Session, campaign_id: int, agent: str, *, running: bool
) -> tuple[Campaign, CampaignSettings]:
    campaign = campaigns.get_campaign(db=db, campaign_id=campaign_id)
    settings = campaigns.settings_of(campaign)
    if settings.mode is not DialMode.PREVIEW:
        raise Conflict(
            f"campaign {campaign_id} is {settings.mode.value}: the dialer places its calls; "
            "agents choose their contacts only in preview campaigns"
        )
    if agent not in settings.agents:
        raise Conflict(f"{agent} is not an agent of campaign {campaign_id} ({', '.join(settings.agents)})")
    if running and campaign.status != CampaignStatus.RUNNING:
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: contacts are dialed only while it runs")
    return campaign, settings


def _require_free(db: Session, campaign_id: int, agent: str) -> None:
    on_call = db.scalar(
        select(DialAttempt.id).where(
            DialAttempt.campaign_id == campaign_id, DialAttempt.agent == agent, DialAttempt.ended_at.is_(None)
        )
    )
    if on_call is not None:
        raise Conflict(f"{agent} is on a call (attempt {on_call}): the next contact comes after it ends")


def _held_by(db: Session, campaign_id: int, agent: str, now: datetime) -> CampaignContact | None:
    query = select(CampaignContact).where(
        CampaignContact.campaign_id == campaign_id,
        CampaignContact.status == ContactStatus.PREVIEWING,
        CampaignContact.next_attempt_at > now,
    )
    for contact in db.scalars(query):
        notes = reservation_of(contact)
        if notes is not None and notes.get("agent") == agent:
            return contact
    return None


def _reserved_contact(
    db: Session, campaign_id: int, contact_id: int, agent: str, now: datetime
) -> CampaignContact:
    contact = db.get(CampaignContact, contact_id, with_for_update=True)
    if contact is None or contact.campaign_id != campaign_id:
        raise NotFound(f"contact {contact_id} not found in campaign {campaign_id}")
    notes = reservation_of(contact)
    if notes is None:
        raise Conflict(
            f"contact {contact_id} is not reserved for preview (it is {contact.status}): "
            "ask for your next contact"
        )
    holder = notes.get("agent")
    expired = contact.next_attempt_at is None or contact.next_attempt_at <= now
    if holder != agent and not expired:
        raise Conflict(f"contact {contact_id} is reserved for another agent ({holder})")
    if expired:
        raise Conflict(
            f"the reservation of contact {contact_id} ended at {notes.get('expires_at')}: "
            "it went back to the list; ask for your next contact"
        )
    return contact


def _refusal(contact: CampaignContact, check: DialCheck) -> dict[str, Any]:
    """The contact's new state when the dial-time rules refuse it: blocked for good, or due later."""
    changes: dict[str, Any] = {
        "last_disposition": check.rule,
        "attributes": _with_notes(contact, preview=None),
    }
    if check.blocked:
        return changes | {"status": ContactStatus.BLOCKED, "next_attempt_at": None}
    return changes | {"status": ContactStatus.PENDING, "next_attempt_at": check.next_allowed_at}


def _with_notes(contact: CampaignContact, **notes: Any) -> dict[str, Any]:
    """The contact's attributes with the dialer's notes changed (a None note is removed)."""
    current = (contact.attributes or {}).get(DIALER_ATTRIBUTE)
    merged = dict(current) if isinstance(current, dict) else {}
    for key, value in notes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    attributes = customer_attributes(contact)
    return attributes | {DIALER_ATTRIBUTE: merged} if merged else attributes


def _swap(db: Session, contact: CampaignContact, **values: Any) -> bool:
    """Change the contact only if nobody changed it since it was read (compare-and-set on its status and
    due time); the session's copy is reloaded either way."""
    statement = (
        update(CampaignContact)
        .where(
            CampaignContact.id == contact.id,
            CampaignContact.status == contact.status,
            CampaignContact.next_attempt_at.is_not_distinct_from(contact.next_attempt_at),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    changed = affected_rows(db, statement) == 1
    db.refresh(contact)
    return changed


def _take(db: Session, contact: CampaignContact, **values: Any) -> None:
    """`_swap` for a contact this agent holds: losing it means the reservation ended under them."""
    if not _swap(db, contact, **values):
        raise Conflict(
            f"contact {contact.id} changed hands while this was decided; ask for your next contact"
        )


def _payload(contact: CampaignContact, agent: str) -> dict[str, Any]:
    return {"campaign_id": contact.campaign_id, "contact_id": contact.id, "agent": agent}
