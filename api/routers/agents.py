"""Agents: their profiles, their state (log in, log out, pause, ready), their event stream and the preview
campaigns they work.

An agent-role key acts only on the agent it is linked to (`api_key_id`); supervisors (managers) and
admins act on anyone. State changes go through the live ACD, which checks them against the agent's
live state (nobody logs out in the middle of a call) and records each one (history, audit, event).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from api.deps import ReadDB, WriteDB, in_read_session, require
from core.auth.roles import Permission, allows
from core.auth.service import Principal
from core.errors import NotFound
from core.events import Event
from dialer import campaigns as dialer_campaigns
from dialer.campaign_rules import DialMode
from dialer.campaigns import CampaignStatus
from dialer.dispositions import SPOKE_WITH_SOMEONE, AgentDisposition
from routing import service
from routing.agent_state import AgentEvent, AgentStatus, Login, Logout, Pause, Ready
from routing.live_queues import LiveQueues
from routing.models import Agent
from routing.schemas import AgentCreate, AgentList, AgentRead, AgentUpdate, LoginRequest, PauseRequest

router = APIRouter(tags=["agents"])

ChangeState = Annotated[Principal, Depends(require(Permission.AGENTS_STATE))]
ReadRouting = Annotated[Principal, Depends(require(Permission.ROUTING_READ))]
ManageRouting = Annotated[Principal, Depends(require(Permission.ROUTING_MANAGE))]
WorkCampaigns = Annotated[Principal, Depends(require(Permission.CAMPAIGNS_WORK))]

KEEP_ALIVE_SECONDS = 15.0


def live_queues(request: Request) -> LiveQueues:
    routing = getattr(request.app.state, "routing", None)
    if routing is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "inbound routing does not run in this process"
        )
    live: LiveQueues = routing.live
    return live


Live = Annotated[LiveQueues, Depends(live_queues)]


def agent_document(agent: Agent, live: LiveQueues) -> dict[str, Any]:
    try:
        current = live.status_of(agent.id)
    except NotFound:  # not in the live ACD yet (its creation event is on its way)
        current = service.stored_status(agent)
    return {
        "id": agent.id,
        "name": agent.name,
        "display_name": agent.display_name,
        "home_endpoint": agent.home_endpoint,
        "skills": [{"skill": s.skill, "level": s.level} for s in agent.skills],
        "api_key_id": agent.api_key_id,
        "created_at": agent.created_at,
        "updated_at": agent.updated_at,
        "status": _status(current),
    }


def _status(current: AgentStatus) -> dict[str, Any]:
    return service.status_payload(current) | {"since": current.since, "until": current.until}


@router.post("/agents", status_code=status.HTTP_201_CREATED, response_model=AgentRead)
def create_agent(data: AgentCreate, db: WriteDB, who: ManageRouting, live: Live) -> Any:
    return agent_document(service.create_agent(db=db, data=data, actor=who.name), live)


@router.get("/agents", response_model=AgentList)
def list_agents(db: ReadDB, _: ReadRouting, live: Live) -> Any:
    return {"items": [agent_document(agent, live) for agent in service.list_agents(db=db)]}


@router.get("/agents/{agent_id}", response_model=AgentRead)
def get_agent(agent_id: int, db: ReadDB, _: ReadRouting, live: Live) -> Any:
    return agent_document(service.get_agent(db=db, agent_id=agent_id), live)


@router.patch("/agents/{agent_id}", response_model=AgentRead)
def update_agent(agent_id: int, data: AgentUpdate, db: WriteDB, who: ManageRouting, live: Live) -> Any:
    """Only the fields given change; `skills` replaces the agent's whole set."""
    return agent_document(service.update_agent(db=db, agent_id=agent_id, data=data, actor=who.name), live)


@router.post("/agents/{agent_id}/login", response_model=AgentRead)
async def log_in(
    agent_id: int, request: Request, who: ChangeState, live: Live, data: LoginRequest | None = None
) -> Any:
    """Logs the agent in on a phone (default: their home endpoint) and makes them ready. A phone
    another agent is logged in on is refused (409) naming that agent."""
    agent = await _own_agent(request, who, agent_id)
    endpoint = (data.endpoint if data else None) or agent.home_endpoint
    if endpoint is None:
        raise HTTPException(422, "give the endpoint to log in on: the agent has no home endpoint")
    return await _change(live, agent, Login(endpoint), who)


@router.post("/agents/{agent_id}/logout", response_model=AgentRead)
async def log_out(agent_id: int, request: Request, who: ChangeState, live: Live) -> Any:
    """Frees the phone. Refused (409) while a call rings or is in progress."""
    return await _change(live, await _own_agent(request, who, agent_id), Logout(), who)


@router.post("/agents/{agent_id}/pause", response_model=AgentRead)
async def pause(agent_id: int, data: PauseRequest, request: Request, who: ChangeState, live: Live) -> Any:
    """No calls are offered until ready again. Refused (409) while logged out or on a call."""
    return await _change(live, await _own_agent(request, who, agent_id), Pause(data.reason), who)


@router.post("/agents/{agent_id}/ready", response_model=AgentRead)
async def ready(agent_id: int, request: Request, who: ChangeState, live: Live) -> Any:
    """Unpauses, or ends wrap-up early."""
    return await _change(live, await _own_agent(request, who, agent_id), Ready(), who)


@router.get("/agents/{agent_id}/events", response_class=StreamingResponse)
async def events(
    agent_id: int,
    request: Request,
    who: ChangeState,
    live: Live,
    keep_alive: Annotated[float, Query(ge=0.05, le=60, description="seconds between keep-alive comments")] = (
        KEEP_ALIVE_SECONDS
    ),
) -> StreamingResponse:
    """Server-Sent Events for one agent: first `agent.state` (the state now), then every state change
    (`agent.state_changed`) and every call offered with its screen pop (`agent.call_offered`: the
    customer lookup and what the IVR collected), with a keep-alive comment when nothing happens."""
    agent = await _own_agent(request, who, agent_id)
    bus = request.app.state.routing.bus
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)

    def deliver(event: Event) -> None:  # on the publishing thread
        if event.payload.get("agent_id") == agent_id:
            loop.call_soon_threadsafe(_put, event)

    def _put(event: Event) -> None:
        if inbox.full():  # a reader too slow to keep up loses the oldest events, never the service
            inbox.get_nowait()
        inbox.put_nowait(event)

    subscription = bus.subscribe("agent.*", deliver)  # before the first event: nothing falls between
    live.set_agent(service.profile_of(agent))
    first = Event(
        "agent.state", {"agent_id": agent_id, "agent": agent.name, **_status(live.status_of(agent_id))}
    )

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield _sse(first)
            while True:
                try:
                    event = await asyncio.wait_for(inbox.get(), keep_alive)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield _sse(event)
        finally:
            subscription.close()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/agents/{agent_id}/campaigns")
async def preview_campaigns(agent_id: int, request: Request, who: WorkCampaigns) -> dict[str, Any]:
    """The running preview campaigns the agent works, for their desk (an agent's key may not list
    campaigns): those listing the phone the agent is logged in on, or else their home endpoint. Each
    names the `endpoint` to give as `agent` in its preview and disposition requests. `dispositions`:
    what this key may set after a call (`needs_conversation`: only on a call that reached the agent;
    `call_back` also needs `at`)."""
    agent = await _own_agent(request, who, agent_id)
    routing = getattr(request.app.state, "routing", None)
    try:
        current = routing.live.status_of(agent_id) if routing is not None else service.stored_status(agent)
    except NotFound:
        current = service.stored_status(agent)
    phones = [phone for phone in (current.endpoint, agent.home_endpoint) if phone]

    def read(db: Session) -> list[dict[str, Any]]:
        found = []
        for campaign in dialer_campaigns.list_campaigns(db=db, statuses=[CampaignStatus.RUNNING]):
            settings = dialer_campaigns.settings_of(campaign)
            phone = next((p for p in phones if p in settings.agents), None)
            if settings.mode is DialMode.PREVIEW and phone is not None:
                found.append(
                    {
                        "id": campaign.id,
                        "name": campaign.name,
                        "status": campaign.status,
                        "endpoint": phone,
                        "preview_timeout_seconds": settings.preview_timeout_seconds,
                    }
                )
        return found

    may_list = allows(who.role, Permission.DO_NOT_CALL_WRITE)
    dispositions = [
        {"disposition": d.value, "needs_conversation": d in SPOKE_WITH_SOMEONE}
        for d in AgentDisposition
        if d is not AgentDisposition.DO_NOT_CALL or may_list
    ]
    return {"items": await in_read_session(request, read), "dispositions": dispositions}


@router.get("/agents/{agent_id}/history")
def history(
    agent_id: int, db: ReadDB, _: ReadRouting, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The agent's state changes, newest first."""
    service.get_agent(db=db, agent_id=agent_id)
    return [
        {
            "state": row.state,
            "previous_state": row.previous_state,
            "reason": row.reason,
            "endpoint": row.endpoint,
            "queue": row.queue,
            "call_id": row.call_ref,
            "actor": row.actor,
            "changed_at": row.changed_at,
        }
        for row in service.state_history(db=db, agent_id=agent_id, limit=limit)
    ]


def _sse(event: Event) -> bytes:
    data = orjson.dumps(event.to_dict(), default=str, option=orjson.OPT_UTC_Z)
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event.id.encode(), event.topic.encode(), data)


async def _own_agent(request: Request, who: Principal, agent_id: int) -> Agent:
    """The agent, if `who` may act on it: a supervisor or admin on anyone, an agent on itself."""

    def read(db: Session) -> Agent:
        agent = service.get_agent(db=db, agent_id=agent_id)
        _ = agent.skills  # loaded before the session closes
        return agent

    agent = await in_read_session(request, read)
    if not allows(who.role, Permission.ROUTING_MANAGE) and agent.api_key_id != who.key_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"this key may act only on its own agent, not agent {agent_id}"
        )
    return agent


async def _change(live: LiveQueues, agent: Agent, event: AgentEvent, who: Principal) -> dict[str, Any]:
    live.set_agent(service.profile_of(agent))  # in case its creation event has not arrived yet
    await live.change(agent.id, event, actor=who.name)
    return agent_document(agent, live)
