"""Campaigns: create, change, start, pause, resume, stop. Services flush; the edge commits.

A campaign's state lives in its row, so it survives a restart: the dialer's supervisor runs every
campaign whose status is `running`. Every change of state is an audit row and an event.

    draft --start--> running --pause--> paused --resume--> running
      any but stopped --stop--> stopped (final: its contacts are not dialed again)

Settings are checked twice: their shape when they arrive (`CampaignSettings`), the law when the
campaign is created, changed or started (`check_campaign`), so that a campaign that has become
unlawful (its end date passed, a stricter law) cannot be started.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.audit import service as audit
from core.errors import Conflict, InvalidInput, NotFound
from core.events import stage
from dialer.campaign_rules import CampaignSettings, check_campaign
from dialer.models import Campaign, CampaignContact


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# action -> (the states it may start from, the state it leads to)
_TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus]] = {
    "start": (frozenset({CampaignStatus.DRAFT}), CampaignStatus.RUNNING),
    "pause": (frozenset({CampaignStatus.RUNNING}), CampaignStatus.PAUSED),
    "resume": (frozenset({CampaignStatus.PAUSED}), CampaignStatus.RUNNING),
    "stop": (
        frozenset({CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED}),
        CampaignStatus.STOPPED,
    ),
}


def settings_of(campaign: Campaign) -> CampaignSettings:
    return CampaignSettings.model_validate(campaign.settings)


def _payload(campaign: Campaign) -> dict[str, Any]:
    return {"campaign_id": campaign.id, "name": campaign.name, "status": campaign.status}


def create_campaign(*, db: Session, settings: CampaignSettings, actor: str, now: datetime) -> Campaign:
    check_campaign(settings, now=now)
    campaign = Campaign(
        name=settings.name,
        mode=settings.mode.value,
        status=CampaignStatus.DRAFT.value,
        settings=settings.model_dump(mode="json"),
    )
    _flush_unique(db, campaign)
    audit.record(
        db=db,
        actor=actor,
        action="campaign.created",
        subject_type="campaign",
        subject_id=campaign.id,
        details={"name": campaign.name, "mode": campaign.mode},
    )
    stage(db, "campaign.created", _payload(campaign))
    return campaign


def get_campaign(*, db: Session, campaign_id: int) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def list_campaigns(*, db: Session, statuses: Sequence[str] = ()) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id)
    if statuses:
        query = query.where(Campaign.status.in_(statuses))
    return list(db.scalars(query))


def replace_settings(
    *, db: Session, campaign_id: int, settings: CampaignSettings, actor: str, now: datetime
) -> Campaign:
    """New settings for a campaign that is not dialing (draft or paused)."""
    campaign = get_campaign(db=db, campaign_id=campaign_id)
    if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.PAUSED):
        raise Conflict(f"campaign {campaign_id} is {campaign.status}: pause it before changing its settings")
    check_campaign(settings, now=now)
    before = campaign.settings
    campaign.name = settings.name
    campaign.mode = settings.mode.value
    campaign.settings = settings.model_dump(mode="json")
    _flush_unique(db, campaign)
    changed = sorted(key for key in campaign.settings if campaign.settings[key] != before.get(key))
    audit.record(
        db=db,
        actor=actor,
        action="campaign.changed",
        subject_type="campaign",
        subject_id=campaign.id,
        details={"fields": changed},
    )
    stage(db, "campaign.changed", _payload(campaign) | {"fields": changed})
    return campaign


def change_status(
    *, db: Session, campaign_id: int, action: str, actor: str, now: datetime, reason: str | None = None
) -> Campaign:
    """Apply `action` (start, pause, resume, stop). Starting or resuming checks the law again and needs
    contacts to call; the dialer itself pauses a campaign with a reason (actor `dialer`)."""
    if action not in _TRANSITIONS:
        raise InvalidInput(f"unknown action {action!r}; use one of {', '.join(_TRANSITIONS)}")
    allowed_from, to = _TRANSITIONS[action]
    # Lock the row: the API and the dialer's own pause may race.
    campaign = db.get(Campaign, campaign_id, with_for_update=True)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} not found")
    current = CampaignStatus(campaign.status)
    if current not in allowed_from:
        raise Conflict(
            f"campaign {campaign_id} is {current}; {action} needs it {' or '.join(sorted(allowed_from))}"
        )
    if to is CampaignStatus.RUNNING:
        check_campaign(settings_of(campaign), now=now)
        if not _has_contacts(db, campaign_id):
            raise Conflict(f"campaign {campaign_id} has no contacts to call: import a list first")
    campaign.status = to.value
    campaign.status_reason = reason
    db.flush()
    audit.record(
        db=db,
        actor=actor,
        action=f"campaign.{action}",
        subject_type="campaign",
        subject_id=campaign.id,
        details={"from": current.value, "to": to.value, "reason": reason},
    )
    stage(db, f"campaign.{to.value}", _payload(campaign) | {"reason": reason})
    return campaign


def _has_contacts(db: Session, campaign_id: int) -> bool:
    query = (
        select(func.count()).select_from(CampaignContact).where(CampaignContact.campaign_id == campaign_id)
    )
    return bool(db.scalar(query.limit(1)))


def _flush_unique(db: Session, campaign: Campaign) -> None:
    try:
        with db.begin_nested():
            db.add(campaign)
            db.flush()
    except IntegrityError:
        raise Conflict(f"a campaign named {campaign.name!r} already exists") from None
