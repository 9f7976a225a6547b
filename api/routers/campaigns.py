"""Outbound campaigns and do-not-call lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import ManageCampaigns, ReadCampaigns, ReadDB, SettingsDep, WriteDB, WriteDoNotCall, require
from core.auth.roles import Permission, allows
from core.auth.service import Principal
from core.customers import screen_pop
from core.customers.identities import IdentityKind
from core.db import utcnow
from core.errors import Conflict, NotFound
from dialer import campaign_stats, campaigns, contact_lists, dispositions, preview
from dialer import do_not_call_store as dnc
from dialer.abandonment import ComplianceReport
from dialer.agent_availability import Availability
from dialer.campaign_rules import CampaignSettings
from dialer.list_import import import_contact_list
from dialer.models import CampaignContact, DialAttempt
from dialer.schemas import (
    AgentRequest,
    AttemptRead,
    CampaignAction,
    CampaignList,
    CampaignRead,
    CampaignStats,
    ContactListRead,
    DispositionRead,
    DispositionSet,
    DoNotCallAdd,
    DoNotCallAdded,
    DoNotCallPage,
    ImportProblemRead,
    PreviewContact,
    PreviewDialRead,
    PreviewRead,
    PreviewSkip,
)
from routing.campaign_agents import AcdCampaignAgents

router = APIRouter(tags=["campaigns"])

# Agents working a campaign: preview, dial, skip, dispositions.
WorkCampaigns = Annotated[Principal, Depends(require(Permission.CAMPAIGNS_WORK))]


@router.post("/campaigns", status_code=status.HTTP_201_CREATED, response_model=CampaignRead)
def create_campaign(data: CampaignSettings, db: WriteDB, who: ManageCampaigns) -> Any:
    """A campaign in `draft`: import a list, then start it. Settings that would break the law of the
    campaign's country are refused (422), each with its field."""
    return campaigns.create_campaign(db=db, settings=data, actor=who.name, now=utcnow())


@router.get("/campaigns", response_model=CampaignList)
def list_campaigns(
    db: ReadDB, _: ReadCampaigns, status: Annotated[list[campaigns.CampaignStatus] | None, Query()] = None
) -> Any:
    return {"items": campaigns.list_campaigns(db=db, statuses=[s.value for s in status or ()])}


@router.get("/campaigns/{campaign_id}", response_model=CampaignRead)
def get_campaign(campaign_id: int, db: ReadDB, _: ReadCampaigns) -> Any:
    return campaigns.get_campaign(db=db, campaign_id=campaign_id)


@router.put("/campaigns/{campaign_id}", response_model=CampaignRead)
def replace_settings(campaign_id: int, data: CampaignSettings, db: WriteDB, who: ManageCampaigns) -> Any:
    """New settings for a campaign in draft or paused."""
    return campaigns.replace_settings(
        db=db, campaign_id=campaign_id, settings=data, actor=who.name, now=utcnow()
    )


@router.post("/campaigns/{campaign_id}/start", response_model=CampaignRead)
def start(campaign_id: int, db: WriteDB, who: ManageCampaigns, data: CampaignAction | None = None) -> Any:
    """Draft -> running: checks the law again and that there are contacts to call."""
    return _change(db, campaign_id, "start", who.name, data)


@router.post("/campaigns/{campaign_id}/pause", response_model=CampaignRead)
def pause(campaign_id: int, db: WriteDB, who: ManageCampaigns, data: CampaignAction | None = None) -> Any:
    """Running -> paused: no new calls; calls in progress finish."""
    return _change(db, campaign_id, "pause", who.name, data)


@router.post("/campaigns/{campaign_id}/resume", response_model=CampaignRead)
def resume(campaign_id: int, db: WriteDB, who: ManageCampaigns, data: CampaignAction | None = None) -> Any:
    return _change(db, campaign_id, "resume", who.name, data)


@router.post("/campaigns/{campaign_id}/stop", response_model=CampaignRead)
def stop(campaign_id: int, db: WriteDB, who: ManageCampaigns, data: CampaignAction | None = None) -> Any:
    """Final: the campaign's contacts are not dialed again."""
    return _change(db, campaign_id, "stop", who.name, data)


def _change(db: Any, campaign_id: int, action: str, actor: str, data: CampaignAction | None) -> Any:
    reason = data.reason if data else None
    return campaigns.change_status(
        db=db, campaign_id=campaign_id, action=action, actor=actor, now=utcnow(), reason=reason
    )


# --- contact lists, compliance, stats -----------------------------------------------------------------


@router.post(
    "/campaigns/{campaign_id}/lists",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactListRead,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def import_list(
    campaign_id: int,
    request: Request,
    _: ManageCampaigns,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    region: Annotated[
        str | None, Query(pattern="^[A-Z]{2}$", description="default: the campaign's country")
    ] = None,
) -> Any:
    """Upload a CSV as the request body (`curl --data-binary @list.csv -H 'Content-Type: text/csv'`).
    It is read as it streams: a header with a phone column (and name, email, language, time zone,
    external id; other columns are kept as attributes), comma or semicolon, UTF-8 or Windows-1252.
    Each contact becomes a customer (found by number, or created). The answer counts what was loaded
    and why rows were not; `GET .../lists/{id}/problems` lists them row by row."""
    return await import_contact_list(
        request.stream(),
        sessions=request.app.state.session_factory,
        campaign_id=campaign_id,
        filename=filename,
        region=region,
    )


@router.get("/campaigns/{campaign_id}/lists/{list_id}", response_model=ContactListRead)
def get_list(campaign_id: int, list_id: int, db: ReadDB, _: ReadCampaigns) -> Any:
    return contact_lists.get_list(db=db, campaign_id=campaign_id, list_id=list_id)


@router.get("/campaigns/{campaign_id}/lists/{list_id}/problems", response_model=list[ImportProblemRead])
def list_problems(
    campaign_id: int,
    list_id: int,
    db: ReadDB,
    _: ReadCampaigns,
    after_row: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    contact_lists.get_list(db=db, campaign_id=campaign_id, list_id=list_id)
    return contact_lists.problems_of(db=db, list_id=list_id, after_row=after_row, limit=limit)


@router.get("/campaigns/{campaign_id}/compliance", response_model=ComplianceReport)
def compliance(campaign_id: int, db: ReadDB, _: ReadCampaigns) -> Any:
    """Each rule (abandonment over 30 days and 24 hours, 15 s of ringing before a no-answer, the
    message every abandoned call hears), its measured value and window, and the dial attempts behind it."""
    return campaign_stats.compliance(db=db, campaign_id=campaign_id, now=utcnow())


@router.get("/campaigns/{campaign_id}/stats", response_model=CampaignStats)
def stats(campaign_id: int, request: Request, db: ReadDB, _: ReadCampaigns) -> Any:
    """Dialed, answered, abandoned, the rolling abandonment rates, agents, contacts remaining, attempts
    in the last hour; the live pacing figures when the campaign runs in this process."""
    dialer = getattr(request.app.state, "dialer", None)
    runner = dialer.runners.get(campaign_id) if dialer is not None else None
    return campaign_stats.stats(db=db, campaign_id=campaign_id, now=utcnow(), runner=runner)


# --- agents: preview and dispositions -----------------------------------------------------------------


@router.post(
    "/campaigns/{campaign_id}/preview/next",
    response_model=PreviewRead,
    responses={204: {"description": "no contact may be called now"}},
)
def preview_next(
    campaign_id: int,
    data: AgentRequest,
    request: Request,
    db: WriteDB,
    who: WorkCampaigns,
    settings: SettingsDep,
) -> Any:
    """Preview campaigns: the agent's next contact, held for them alone for the campaign's
    `preview_timeout_seconds` (asking again returns the same one), with the customer's screen pop.
    Contacts on a do-not-call list or outside their local hours are passed over (and set aside as the
    dialer would). 204 when no contact may be called now."""
    shown = preview.next_contact(
        db=db, campaign_id=campaign_id, agent=data.agent, actor=who.name, now=_now(request)
    )
    if shown is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    pop = screen_pop.lookup(
        db=db, kind=IdentityKind.PHONE, value=shown.contact.phone, region=settings.default_region, recent=5
    )
    return {
        "campaign_id": campaign_id,
        "agent": shown.agent,
        "contact": _contact(shown.contact),
        "reserved_at": shown.reserved_at,
        "expires_at": shown.expires_at,
        "passed_over": shown.passed_over,
        "customer": pop.document() if pop is not None else None,
    }


@router.post(
    "/campaigns/{campaign_id}/preview/{contact_id}/dial",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PreviewDialRead,
    responses={409: {"description": "refused: the reservation, or the dial-time rule that failed"}},
)
def preview_dial(
    campaign_id: int,
    contact_id: int,
    data: AgentRequest,
    request: Request,
    db: WriteDB,
    who: WorkCampaigns,
    settings: SettingsDep,
) -> Any:
    """Dial the contact reserved for the agent. The do-not-call lists, consent and the callee's local
    hours are checked again now: a refusal (409) names the rule in `violations`, and the contact is set
    aside as the dialer would. Accepted (202): the campaign's dialer places the call within a second and
    bridges it to this agent; follow it with `GET .../attempts/{id}`."""
    if getattr(request.app.state, "dialer", None) is None and settings.dialer_network == "off":
        raise Conflict("no process places calls (CENTRALITA_DIALER_NETWORK is off)")
    routing = getattr(request.app.state, "routing", None)
    if routing is not None:  # an agent of the inbound queues dials only while ready there
        available = AcdCampaignAgents(routing.live).availability(data.agent)
        if available in (Availability.AWAY, Availability.BUSY):  # dialing ends a wrap-up
            doing = "logged out or paused" if available is Availability.AWAY else "on a call"
            raise Conflict(f"{data.agent} is {doing} in the inbound queues: log in and be ready to dial")
    outcome = preview.dial(
        db=db,
        campaign_id=campaign_id,
        contact_id=contact_id,
        agent=data.agent,
        actor=who.name,
        now=_now(request),
    )
    if outcome.refused is not None:
        # An answer, not an error: the contact's new state (blocked or deferred) is committed.
        refused = outcome.refused
        return JSONResponse(
            {
                "detail": f"contact {contact_id} may not be dialed now: {refused.message}",
                "violations": [{"field": refused.field, "rule": refused.rule, "message": refused.message}],
            },
            status_code=status.HTTP_409_CONFLICT,
        )
    assert outcome.attempt is not None
    return {"contact": _contact(outcome.contact), "attempt": _attempt(db, outcome.attempt)}


@router.post("/campaigns/{campaign_id}/preview/{contact_id}/skip", response_model=PreviewContact)
def preview_skip(
    campaign_id: int, contact_id: int, data: PreviewSkip, request: Request, db: WriteDB, who: WorkCampaigns
) -> Any:
    """Pass on the contact reserved for the agent: for good (`final`), or until `retry_at`."""
    contact = preview.skip(
        db=db,
        campaign_id=campaign_id,
        contact_id=contact_id,
        agent=data.agent,
        reason=data.reason,
        final=data.final,
        retry_at=data.retry_at,
        actor=who.name,
        now=_now(request),
    )
    return _contact(contact)


@router.get("/campaigns/{campaign_id}/attempts/{attempt_id}", response_model=AttemptRead)
def get_attempt(campaign_id: int, attempt_id: int, db: ReadDB, _: WorkCampaigns) -> Any:
    """One call: requested (a preview dial not placed yet), in progress or ended, and its dispositions."""
    attempt = db.get(DialAttempt, attempt_id)
    if attempt is None or attempt.campaign_id != campaign_id:
        raise NotFound(f"attempt {attempt_id} not found in campaign {campaign_id}")
    return _attempt(db, attempt)


@router.post("/campaigns/{campaign_id}/attempts/{attempt_id}/disposition", response_model=DispositionRead)
def set_disposition(
    campaign_id: int,
    attempt_id: int,
    data: DispositionSet,
    request: Request,
    db: WriteDB,
    who: WorkCampaigns,
    settings: SettingsDep,
) -> Any:
    """The agent's disposition of a call they took, once it has ended: sale, not_interested,
    call_back (with `at`), wrong_number, do_not_call (lists the number; needs dnc:write), no_contact.
    It decides the contact's next attempt and lands on the customer's timeline. Setting the same
    disposition again changes nothing; another one for the same call is refused (409)."""
    if data.disposition is dispositions.AgentDisposition.DO_NOT_CALL and not allows(
        who.role, Permission.DO_NOT_CALL_WRITE
    ):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {who.role.value} may not do this (needs {Permission.DO_NOT_CALL_WRITE.value})",
        )
    result = dispositions.set_disposition(
        db=db,
        campaign_id=campaign_id,
        attempt_id=attempt_id,
        agent=data.agent,
        disposition=data.disposition,
        call_back_at=data.at,
        note=data.note,
        do_not_call_scope=data.do_not_call_scope,
        actor=who.name,
        now=_now(request),
        region=settings.default_region,
    )
    return {
        "attempt_id": result.attempt.id,
        "disposition": result.disposition,
        "recorded": result.recorded,
        "rescheduled": result.rescheduled,
        "contact": result.contact,
        "details": result.details,
        "do_not_call_listed": result.listed,
    }


def _now(request: Request) -> datetime:
    """The dialer's clock when it runs in this process (a simulation may run faster than real time),
    so that reservations, dials and call-backs share the time the calls are placed in."""
    dialer = getattr(request.app.state, "dialer", None)
    if dialer is None:
        return utcnow()
    now: datetime = dialer.clock.now()
    return now


def _contact(contact: CampaignContact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "phone": contact.phone,
        "customer_id": contact.customer_id,
        "time_zone": contact.time_zone,
        "attributes": preview.customer_attributes(contact),
        "attempts": contact.attempts,
        "last_disposition": contact.last_disposition,
        "status": contact.status,
        "next_attempt_at": contact.next_attempt_at,
    }


def _attempt(db: Session, attempt: DialAttempt) -> dict[str, Any]:
    if attempt.ended_at is not None:
        state = "ended"
    elif attempt.agent is not None and attempt.call_ref is None:
        state = "requested"
    else:
        state = "in_progress"
    fields = AttemptRead.model_fields.keys() - {"state", "agent_disposition"}
    return {name: getattr(attempt, name) for name in fields} | {
        "state": state,
        "agent_disposition": dispositions.disposition_of(db, attempt),
    }


# --- do-not-call -------------------------------------------------------------------------------------


@router.get("/do-not-call", response_model=DoNotCallPage)
def global_do_not_call(
    db: ReadDB,
    _: ReadCampaigns,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    return _page(dnc.list_numbers(db=db, campaign_id=None, after_id=after, limit=limit), limit)


@router.post("/do-not-call", response_model=DoNotCallAdded)
def add_global_do_not_call(
    data: DoNotCallAdd, db: WriteDB, who: WriteDoNotCall, settings: SettingsDep
) -> Any:
    """Never call these numbers again, from any campaign, including lists imported before."""
    return _add(db, data, None, who.name, settings.default_region)


@router.delete("/do-not-call/{number}", status_code=status.HTTP_204_NO_CONTENT)
def remove_global_do_not_call(number: str, db: WriteDB, who: ManageCampaigns, settings: SettingsDep) -> None:
    dnc.remove_number(db=db, number=number, campaign_id=None, actor=who.name, region=settings.default_region)


@router.get("/campaigns/{campaign_id}/do-not-call", response_model=DoNotCallPage)
def campaign_do_not_call(
    campaign_id: int,
    db: ReadDB,
    _: ReadCampaigns,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    campaigns.get_campaign(db=db, campaign_id=campaign_id)
    return _page(dnc.list_numbers(db=db, campaign_id=campaign_id, after_id=after, limit=limit), limit)


@router.post("/campaigns/{campaign_id}/do-not-call", response_model=DoNotCallAdded)
def add_campaign_do_not_call(
    campaign_id: int, data: DoNotCallAdd, db: WriteDB, who: WriteDoNotCall, settings: SettingsDep
) -> Any:
    campaigns.get_campaign(db=db, campaign_id=campaign_id)
    return _add(db, data, campaign_id, who.name, settings.default_region)


@router.delete("/campaigns/{campaign_id}/do-not-call/{number}", status_code=status.HTTP_204_NO_CONTENT)
def remove_campaign_do_not_call(
    campaign_id: int, number: str, db: WriteDB, who: ManageCampaigns, settings: SettingsDep
) -> None:
    dnc.remove_number(
        db=db, number=number, campaign_id=campaign_id, actor=who.name, region=settings.default_region
    )


def _add(db: Any, data: DoNotCallAdd, campaign_id: int | None, actor: str, region: str) -> dict[str, Any]:
    added = dnc.add_numbers(
        db=db, numbers=data.numbers, campaign_id=campaign_id, reason=data.reason, actor=actor, region=region
    )
    return {"added": added}


def _page(items: list[Any], limit: int) -> dict[str, Any]:
    return {"items": items, "next_after": items[-1].id if len(items) == limit else None}
