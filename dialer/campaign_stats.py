"""Campaign figures for the API: the compliance report and the live statistics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from dialer import attempts, campaigns, dispositions
from dialer.abandonment import WINDOW_30_DAYS, CallClass, ComplianceReport, compliance_report
from dialer.campaign_rules import DialMode
from dialer.models import DialAttempt

# Contacts still to be called: due or waiting for their time, shown to an agent, or being dialed.
_REMAINING = (
    attempts.ContactStatus.PENDING,
    attempts.ContactStatus.PREVIEWING,
    attempts.ContactStatus.DIALING,
)

if TYPE_CHECKING:
    from dialer.campaign_runner import CampaignRunner


def compliance(*, db: Session, campaign_id: int, now: datetime) -> ComplianceReport:
    campaign = campaigns.get_campaign(db=db, campaign_id=campaign_id)
    settings = campaigns.settings_of(campaign)
    records = attempts.outcomes_since(
        db=db, campaign_id=campaign_id, since=now - WINDOW_30_DAYS - timedelta(days=1)
    )
    report = compliance_report(
        records,
        now=now,
        target=settings.abandonment_target,
        drop_wait=timedelta(seconds=settings.drop_wait_seconds),
    )
    if settings.mode is DialMode.PREVIEW:
        note = (
            "preview: every call is placed by the agent it is bridged to, who is waiting for it, so it "
            "reaches an agent as soon as the callee's greeting ends; a preview call is abandoned only when "
            "that agent's phone could not be connected (it then hears the campaign's message)"
        )
        report = report.model_copy(update={"notes": [*report.notes, note]})
    return report


def stats(
    *, db: Session, campaign_id: int, now: datetime, runner: CampaignRunner | None = None
) -> dict[str, Any]:
    campaign = campaigns.get_campaign(db=db, campaign_id=campaign_id)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    klass = DialAttempt.call_class
    totals = db.execute(
        select(
            func.count(),
            count(klass.in_((CallClass.CONNECTED.value, CallClass.ABANDONED.value))),
            count(klass == CallClass.CONNECTED.value),
            count(klass == CallClass.ABANDONED.value),
            count(klass.in_((CallClass.MACHINE.value, CallClass.AMD_MACHINE_UNVERIFIED.value))),
            count(DialAttempt.dialed_at > now - timedelta(hours=1)),
        ).where(
            DialAttempt.campaign_id == campaign_id, DialAttempt.disposition.is_distinct_from("not_placed")
        )
    ).one()
    windows = {w.label: w for w in attempts.abandonment_windows(db=db, campaign_id=campaign_id, now=now)}
    contacts = attempts.contact_counts(db=db, campaign_id=campaign_id)
    figures: dict[str, Any] = {
        "campaign_id": campaign_id,
        "status": campaign.status,
        "at": now,
        "dialed": int(totals[0]),
        "answered": int(totals[1]),
        "connected": int(totals[2]),
        "abandoned": int(totals[3]),
        "machines": int(totals[4]),
        "attempts_last_hour": int(totals[5]),
        "abandonment_rate_24h": windows["24h"].rate,
        "abandonment_rate_30d": windows["30d"].rate,
        "contacts": contacts,
        "contacts_remaining": sum(contacts.get(status, 0) for status in _REMAINING),
        "dispositions": dispositions.disposition_counts(db=db, campaign_id=campaign_id),
        "running_here": runner is not None,
    }
    if runner is not None:
        agents = runner.pool.snapshot(runner.clock.now())
        talking = len(agents.talking_elapsed_s)
        figures |= {
            "calls_in_progress": len(runner.calls),
            "agents": {
                "idle": agents.idle,
                "reserved": agents.reserved,
                "talking": talking,
                "wrap_up": len(agents.wrap_up_remaining_s),
                "paused": agents.paused,
            },
            "occupancy": talking / agents.staffed if agents.staffed else 0.0,
            "last_pacing": (
                {"calls": runner.last_decision.calls, "reason": runner.last_decision.reason}
                | runner.last_decision.figures
                if runner.last_decision
                else None
            ),
        }
    return figures
