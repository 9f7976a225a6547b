"""Queues: their configuration (supervisors) and their live status (anyone who routes or watches)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import ReadDB, WriteDB
from api.routers.agents import Live, ManageRouting, ReadRouting
from routing import service
from routing.schemas import QueueCreate, QueueList, QueueRead, QueueStatus, QueueUpdate

router = APIRouter(tags=["queues"])


@router.post("/queues", status_code=status.HTTP_201_CREATED, response_model=QueueRead)
def create_queue(data: QueueCreate, db: WriteDB, who: ManageRouting) -> Any:
    """Required skills (each with a minimum level; `optional` ones are preferred, not required),
    priority, business hours, service-level target, max wait and length, wrap-up, the estimated wait
    above which the IVR offers overflow, when to widen the skill match, the recording policy, and how
    far up a caller with an open case goes (`open_case_priority_boost`, 0 to 10, default 1, 0: off)."""
    return service.create_queue(db=db, data=data, actor=who.name)


@router.get("/queues", response_model=QueueList)
def list_queues(db: ReadDB, _: ReadRouting) -> Any:
    return {"items": service.list_queues(db=db)}


@router.get("/queues/{name}", response_model=QueueRead)
def get_queue(name: str, db: ReadDB, _: ReadRouting) -> Any:
    return service.get_queue(db=db, name=name)


@router.patch("/queues/{name}", response_model=QueueRead)
def update_queue(name: str, data: QueueUpdate, db: WriteDB, who: ManageRouting) -> Any:
    """Only the fields given change; `null` clears an optional limit."""
    return service.update_queue(db=db, name=name, data=data, actor=who.name)


@router.get("/queues/{name}/status", response_model=QueueStatus)
async def queue_status(name: str, _: ReadRouting, live: Live) -> Any:
    """Calls waiting and the longest wait, the estimated wait of a caller joining now (null when no
    agent is serving) and whether the IVR would offer overflow, the agents who can take the queue's
    calls by state, and the service level so far today (UTC)."""
    now = live.queue_status(name)
    level = now.service_level
    return {
        "queue": name,
        "waiting": now.waiting,
        "longest_wait_seconds": round(now.longest_wait_s, 1),
        "estimated_wait_seconds": now.estimate.seconds,
        "overflow": now.estimate.overflow,
        "overflow_reason": now.estimate.reason,
        "agents": now.agents,
        "service_level": {
            "target_seconds": now.config.service_level_s,
            "target_percent": now.config.service_level_percent,
            "answered": level.answered,
            "answered_within_target": level.answered_within_target,
            "abandoned": level.abandoned,
            "percent": level.percent,
        },
    }
