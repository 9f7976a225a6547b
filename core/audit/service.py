from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.models import AuditEntry


def record(
    *,
    db: Session,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: int | None,
    details: dict[str, Any],
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor, action=action, subject_type=subject_type, subject_id=subject_id, details=details
    )
    db.add(entry)
    return entry


def entries_for(*, db: Session, subject_type: str, subject_id: int) -> list[AuditEntry]:
    query = (
        select(AuditEntry)
        .where(AuditEntry.subject_type == subject_type, AuditEntry.subject_id == subject_id)
        .order_by(AuditEntry.id)
    )
    return list(db.scalars(query))
