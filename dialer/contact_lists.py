"""Contact lists into a campaign: each contact is a customer, found by phone number or created.

The parser (dialer.contact_import) turns the CSV stream into rows and problems; this module writes them
in batches, a few statements per batch whatever its size: the phone identities already on file, new
customers with their identities, and the campaign's contacts (a number already in the campaign is a
duplicate, reported, not loaded twice). Services flush; the importing edge commits each batch, so a
file that turns out broken half-way keeps the contacts loaded before the break, and says where it
stopped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.customers.models import Customer, Identity
from core.errors import NotFound
from core.text_folding import fold
from dialer.contact_import import ContactRow, ImportNotice, ImportSummary, RowProblem
from dialer.models import CampaignContact, ContactList, ImportProblem

# Problems kept row by row; beyond this they are only counted (a million bad rows is a wrong file).
MAX_PROBLEMS_KEPT = 10_000
# Problems shown in the list's summary, beside the counts.
FIRST_PROBLEMS = 20


def start_list(*, db: Session, campaign_id: int, filename: str | None) -> ContactList:
    contact_list = ContactList(campaign_id=campaign_id, filename=filename, summary={})
    db.add(contact_list)
    db.flush()
    return contact_list


def get_list(*, db: Session, campaign_id: int, list_id: int) -> ContactList:
    found = db.get(ContactList, list_id)
    if found is None or found.campaign_id != campaign_id:
        raise NotFound(f"list {list_id} of campaign {campaign_id} not found")
    return found


def problems_of(*, db: Session, list_id: int, after_row: int = 0, limit: int = 100) -> list[ImportProblem]:
    query = (
        select(ImportProblem)
        .where(ImportProblem.list_id == list_id, ImportProblem.row_number > after_row)
        .order_by(ImportProblem.row_number, ImportProblem.id)
        .limit(limit)
    )
    return list(db.scalars(query))


def load_contacts(
    *, db: Session, campaign_id: int, list_id: int, rows: Sequence[ContactRow]
) -> list[ContactRow]:
    """Insert `rows` as the campaign's contacts; returns the rows whose number the campaign already had."""
    if not rows:
        return []
    phones = [row.phone for row in rows]
    holders = dict(
        db.execute(
            select(Identity.value, Identity.customer_id).where(
                Identity.kind == "phone", Identity.value.in_(phones)
            )
        ).all()
    )
    new = [row for row in rows if row.phone not in holders]
    if new:
        created = db.execute(
            insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
            [_customer(row) for row in new],
        ).scalars()
        ids = list(created)
        db.execute(
            insert(Identity),
            [
                {"customer_id": cid, "kind": "phone", "value": row.phone}
                for cid, row in zip(ids, new, strict=True)
            ],
        )
        holders.update((row.phone, cid) for cid, row in zip(ids, new, strict=True))
    values = [
        {
            "campaign_id": campaign_id,
            "list_id": list_id,
            "customer_id": holders[row.phone],
            "phone": row.phone,
            "time_zone": row.time_zones[0] if row.explicit_time_zone else None,
            "attributes": _attributes(row),
            "status": "pending",
            "attempts": 0,
        }
        for row in rows
    ]
    inserted = set(db.execute(_insert_new_contacts(db).returning(CampaignContact.phone), values).scalars())
    db.flush()
    return [row for row in rows if row.phone not in inserted]


def record_problems(*, db: Session, list_id: int, problems: Sequence[RowProblem], kept_so_far: int) -> int:
    """Keep `problems` (up to MAX_PROBLEMS_KEPT for the list); returns how many are kept now in all."""
    room = max(0, MAX_PROBLEMS_KEPT - kept_so_far)
    keep = problems[:room]
    if keep:
        db.execute(
            insert(ImportProblem),
            [
                {"list_id": list_id, "row_number": p.row, "problem": p.kind.value, "detail": _detail(p)}
                for p in keep
            ],
        )
    return kept_so_far + len(keep)


def finish_list(
    *,
    db: Session,
    list_id: int,
    summary: ImportSummary,
    loaded: int,
    rejected: Counter[str],
    first_problems: list[dict[str, Any]],
    notices: list[ImportNotice],
    error: str | None,
    now: datetime,
) -> ContactList:
    contact_list = db.get(ContactList, list_id)
    if contact_list is None:
        raise NotFound(f"list {list_id} not found")
    contact_list.status = "failed" if error else "done"
    contact_list.error = error
    contact_list.rows_read = summary.rows
    contact_list.rows_loaded = loaded
    contact_list.rows_rejected = sum(rejected.values())
    contact_list.summary = {
        "encoding": summary.encoding,
        "delimiter": summary.delimiter,
        "columns": summary.mapping,
        "problems": dict(rejected),
        "first_problems": first_problems,
        "notices": [{"kind": n.kind.value, "message": n.message, "line": n.line} for n in notices],
    }
    contact_list.finished_at = now
    db.flush()
    return contact_list


def problem_summary(problem: RowProblem) -> dict[str, Any]:
    return {
        "row": problem.row,
        "line": problem.line,
        "problem": problem.kind.value,
        "detail": _detail(problem),
    }


def _customer(row: ContactRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "name_search": fold(row.name) if row.name else None,
        "preferred_language": row.language,
        "consents": {},
        "attributes": {"external_id": row.external_id} if row.external_id else {},
    }


def _attributes(row: ContactRow) -> dict[str, Any]:
    attributes: dict[str, Any] = dict(row.attributes)
    for key, value in (("name", row.name), ("email", row.email), ("external_id", row.external_id)):
        if value:
            attributes[key] = value
    return attributes


def _detail(problem: RowProblem) -> str:
    where = f" (line {problem.line}" + (f", column {problem.column}" if problem.column else "") + ")"
    return (problem.message + where)[:500]


def _insert_new_contacts(db: Session) -> Any:
    # ON CONFLICT DO NOTHING on (campaign, phone): a number already in the campaign is not loaded again.
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(CampaignContact).on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
