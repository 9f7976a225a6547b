"""API keys and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import ManageKeys, ReadAudit, ReadDB, WriteDB, get_verifier
from core.audit import service as audit
from core.audit.models import AuditEntry
from core.auth import service as keys
from core.auth.roles import Role

router = APIRouter(tags=["admin"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(min_length=1, max_length=100)


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyRead):
    key: str = Field(description="shown this once; only its hash is stored")


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: int | None
    details: dict[str, Any]


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_key(data: KeyCreate, db: WriteDB, who: ManageKeys) -> Any:
    key, plain = keys.create_key(db=db, role=data.role, name=data.name)
    audit.record(
        db=db,
        actor=who.name,
        action="key.created",
        subject_type="api_key",
        subject_id=key.id,
        details={"role": key.role, "name": key.name},
    )
    return KeyCreated(**KeyRead.model_validate(key).model_dump(), key=plain)


@router.get("/keys", response_model=list[KeyRead])
def list_keys(db: ReadDB, _: ManageKeys) -> Any:
    return keys.list_keys(db=db)


@router.delete("/keys/{key_id}", response_model=KeyRead)
def revoke_key(key_id: int, request: Request, db: WriteDB, who: ManageKeys) -> Any:
    key = keys.revoke_key(db=db, key_id=key_id)
    audit.record(
        db=db, actor=who.name, action="key.revoked", subject_type="api_key", subject_id=key.id, details={}
    )
    get_verifier(request).forget(key.id)
    return key


@router.get("/audit", response_model=list[AuditRead])
def audit_log(
    db: ReadDB,
    _: ReadAudit,
    subject_type: Annotated[str | None, Query(max_length=32)] = None,
    subject_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if subject_type is not None:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(AuditEntry.subject_id == subject_id)
    return list(db.scalars(query))
