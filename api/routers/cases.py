from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from api.deps import ReadCustomers, ReadDB, WriteCases, WriteDB
from core.cases import service as cases
from core.cases.schemas import CaseAddInteraction, CaseCreate, CaseRead, CaseResolve, CaseUpdate

router = APIRouter(prefix="/cases", tags=["cases"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=CaseRead)
def open_case(data: CaseCreate, db: WriteDB, _: WriteCases) -> Any:
    return cases.open_case(db=db, data=data)


@router.get("/{case_id}", response_model=CaseRead)
def get_case(case_id: int, db: ReadDB, _: ReadCustomers) -> Any:
    return cases.get_case(db=db, case_id=case_id)


@router.patch("/{case_id}", response_model=CaseRead)
def update_case(case_id: int, data: CaseUpdate, db: WriteDB, _: WriteCases) -> Any:
    return cases.update_case(db=db, case_id=case_id, data=data)


@router.post("/{case_id}/interactions", response_model=CaseRead)
def add_interaction(case_id: int, data: CaseAddInteraction, db: WriteDB, _: WriteCases) -> Any:
    return cases.add_interaction(db=db, case_id=case_id, interaction_id=data.interaction_id)


@router.post("/{case_id}/resolve", response_model=CaseRead)
def resolve(case_id: int, data: CaseResolve, db: WriteDB, _: WriteCases) -> Any:
    return cases.resolve_case(db=db, case_id=case_id, resolution=data.resolution)


@router.post("/{case_id}/reopen", response_model=CaseRead)
def reopen(case_id: int, db: WriteDB, _: WriteCases) -> Any:
    return cases.reopen_case(db=db, case_id=case_id)
