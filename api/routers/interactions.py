from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from api.deps import ReadDB, ReadTimeline, SettingsDep, WriteDB, WriteInteractions
from core.timeline import service as timeline
from core.timeline.schemas import (
    InteractionClose,
    InteractionCreate,
    InteractionRead,
    TouchpointCreate,
    TouchpointRead,
)

router = APIRouter(prefix="/interactions", tags=["interactions"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=InteractionRead,
    responses={200: {"description": "already recorded under one of its external_refs; nothing changed"}},
)
def record(
    data: InteractionCreate,
    response: Response,
    db: WriteDB,
    settings: SettingsDep,
    _: WriteInteractions,
) -> Any:
    """Records a contact from any channel. Send the source's ids in `external_refs` and a retried
    delivery answers 200 with the first recording instead of making a duplicate."""
    interaction, created = timeline.record_interaction(db=db, data=data, region=settings.default_region)
    if not created:
        response.status_code = status.HTTP_200_OK
    return interaction


@router.get("/{interaction_id}", response_model=InteractionRead)
def get(interaction_id: int, db: ReadDB, _: ReadTimeline) -> Any:
    return timeline.get_interaction(db=db, interaction_id=interaction_id)


@router.post("/{interaction_id}/close", response_model=InteractionRead)
def close(interaction_id: int, data: InteractionClose, db: WriteDB, _: WriteInteractions) -> Any:
    return timeline.close_interaction(db=db, interaction_id=interaction_id, data=data)


@router.post(
    "/{interaction_id}/touchpoints", status_code=status.HTTP_201_CREATED, response_model=TouchpointRead
)
def add_touchpoint(interaction_id: int, data: TouchpointCreate, db: WriteDB, _: WriteInteractions) -> Any:
    return timeline.add_touchpoint(db=db, interaction_id=interaction_id, data=data)


@router.get("/{interaction_id}/touchpoints", response_model=list[TouchpointRead])
def list_touchpoints(interaction_id: int, db: ReadDB, _: ReadTimeline) -> Any:
    timeline.get_interaction(db=db, interaction_id=interaction_id)
    return timeline.touchpoints_of(db=db, interaction_ids=[interaction_id])[interaction_id]
