"""Outbound campaigns and do-not-call lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status

from api.deps import ManageCampaigns, ReadCampaigns, ReadDB, SettingsDep, WriteDB, WriteDoNotCall
from core.db import utcnow
from dialer import campaign_stats, campaigns, contact_lists
from dialer import do_not_call_store as dnc
from dialer.abandonment import ComplianceReport
from dialer.campaign_rules import CampaignSettings
from dialer.list_import import import_contact_list
from dialer.schemas import (
    CampaignAction,
    CampaignList,
    CampaignRead,
    CampaignStats,
    ContactListRead,
    DoNotCallAdd,
    DoNotCallAdded,
    DoNotCallPage,
    ImportProblemRead,
)

router = APIRouter(tags=["campaigns"])


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
