"""The do-not-call lists in the database: the global one (campaign_id empty) and one per campaign.

`DatabaseNumberList` is the `dialer.do_not_call.NumberList` the dial-time check and the import use: one
query per batch of numbers. Adding is idempotent (a number already listed stays as it was, with its
first reason), and every change is an audit row, since removing a number is what makes it callable.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.audit import service as audit
from core.customers.identities import normalise_phone
from core.db import affected_rows
from core.errors import NotFound
from core.events import stage
from dialer.do_not_call import DoNotCallLists
from dialer.models import DoNotCall

_BATCH = 500  # numbers per IN (...) query


@dataclass(frozen=True, slots=True)
class DatabaseNumberList:
    db: Session
    campaign_id: int | None  # None: the global list

    def listed(self, numbers: Collection[str]) -> AbstractSet[str]:
        found: set[str] = set()
        pending = list(numbers)
        for start in range(0, len(pending), _BATCH):
            query = select(DoNotCall.phone).where(
                DoNotCall.phone.in_(pending[start : start + _BATCH]), _scope(self.campaign_id)
            )
            found.update(self.db.scalars(query))
        return found


def lists_for(db: Session, campaign_id: int) -> DoNotCallLists:
    return DoNotCallLists(DatabaseNumberList(db, None), DatabaseNumberList(db, campaign_id))


def add_numbers(
    *,
    db: Session,
    numbers: Iterable[str],
    campaign_id: int | None,
    reason: str | None,
    actor: str,
    region: str,
    source: str | None = None,
) -> list[str]:
    """List `numbers` (any format `region` can read); returns the E.164 numbers newly listed. A number
    that cannot be read raises InvalidInput naming it, and nothing is listed. `source` says where the
    request came from when it is not `actor` itself (e.g. an agent's disposition of a call)."""
    wanted = list(dict.fromkeys(normalise_phone(number, region=region) for number in numbers))
    already = DatabaseNumberList(db, campaign_id).listed(wanted)
    added = [number for number in wanted if number not in already]
    origin = (source or actor)[:64]
    db.add_all(DoNotCall(phone=n, campaign_id=campaign_id, reason=reason, source=origin) for n in added)
    db.flush()
    if added:
        details: dict[str, Any] = {"numbers": added, "reason": reason, "campaign_id": campaign_id}
        if source:
            details["source"] = origin
        audit.record(
            db=db,
            actor=actor,
            action="dnc.added",
            subject_type="do_not_call",
            subject_id=campaign_id,
            details=details,
        )
        stage(db, "dnc.added", details)
    return added


def remove_number(*, db: Session, number: str, campaign_id: int | None, actor: str, region: str) -> None:
    phone = normalise_phone(number, region=region)
    removed = affected_rows(db, delete(DoNotCall).where(DoNotCall.phone == phone, _scope(campaign_id)))
    if not removed:
        where = "the global list" if campaign_id is None else f"campaign {campaign_id}'s list"
        raise NotFound(f"{phone} is not on {where}")
    details = {"number": phone, "campaign_id": campaign_id}
    audit.record(
        db=db,
        actor=actor,
        action="dnc.removed",
        subject_type="do_not_call",
        subject_id=campaign_id,
        details=details,
    )
    stage(db, "dnc.removed", details)


def list_numbers(
    *, db: Session, campaign_id: int | None, after_id: int = 0, limit: int = 100
) -> list[DoNotCall]:
    query = (
        select(DoNotCall)
        .where(_scope(campaign_id), DoNotCall.id > after_id)
        .order_by(DoNotCall.id)
        .limit(limit)
    )
    return list(db.scalars(query))


def _scope(campaign_id: int | None) -> Any:
    if campaign_id is None:
        return DoNotCall.campaign_id.is_(None)
    return DoNotCall.campaign_id == campaign_id
