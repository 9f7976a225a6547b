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

import orjson
from sqlalchemy import insert, select, text
from sqlalchemy.dialects import sqlite
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
    postgresql = db.get_bind().dialect.name == "postgresql"
    if postgresql:
        holders = dict(db.execute(_PHONE_HOLDERS, {"phones": phones}).all())
    else:
        holders = dict(
            db.execute(
                select(Identity.value, Identity.customer_id).where(
                    Identity.kind == "phone", Identity.value.in_(phones)
                )
            ).all()
        )
    new = [row for row in rows if row.phone not in holders]
    if new:
        ids = _new_customers_postgresql(db, new) if postgresql else _new_customers(db, new)
        holders.update((row.phone, cid) for cid, row in zip(ids, new, strict=True))
    contacts = [
        (
            holders[row.phone],
            row.phone,
            row.time_zones[0] if row.explicit_time_zone else None,
            _attributes(row),
        )
        for row in rows
    ]
    load = _contacts_postgresql if postgresql else _contacts
    inserted = load(db, campaign_id, list_id, contacts)
    db.flush()
    return [row for row in rows if row.phone not in inserted]


# A contact about to be loaded: (customer id, E.164 phone, explicit time zone, attributes).
_Contact = tuple[int, str, str | None, dict[str, Any]]


def _new_customers(db: Session, new: Sequence[ContactRow]) -> list[int]:
    created = db.execute(
        insert(Customer).returning(Customer.id, sort_by_parameter_order=True), [_customer(row) for row in new]
    ).scalars()
    ids = list(created)
    db.execute(
        insert(Identity),
        [
            {"customer_id": cid, "kind": "phone", "value": row.phone}
            for cid, row in zip(ids, new, strict=True)
        ],
    )
    return ids


def _contacts(db: Session, campaign_id: int, list_id: int, contacts: Sequence[_Contact]) -> set[str]:
    # ON CONFLICT DO NOTHING on (campaign, phone): a number already in the campaign is not loaded again.
    statement = sqlite.insert(CampaignContact).on_conflict_do_nothing(index_elements=["campaign_id", "phone"])
    values = [
        {
            "campaign_id": campaign_id,
            "list_id": list_id,
            "customer_id": customer_id,
            "phone": phone,
            "time_zone": zone,
            "attributes": attributes,
            "status": "pending",
            "attempts": 0,
        }
        for customer_id, phone, zone, attributes in contacts
    ]
    return set(db.execute(statement.returning(CampaignContact.phone), values).scalars())


# PostgreSQL: a batch in a few statements with array parameters (unnest), rather than multi-row VALUES
# whose thousands of placeholders the driver parses one statement at a time: 3,300 rows/s became
# (see docs/benchmarks.md) several times that. Ids are taken from the sequence first, so customers and
# their identities are matched without relying on the order RETURNING gives.
# A join with the batch as an array: an index lookup per number whatever the table's statistics say.
# (`value IN (5,000 parameters)` on a table that grew during the import was planned as a scan of every
# identity, over 5 s a batch at a few hundred thousand rows.)
_PHONE_HOLDERS = text(
    """
    SELECT identities.value, identities.customer_id
    FROM unnest(CAST(:phones AS text[])) AS batch(phone)
    JOIN identities ON identities.kind = 'phone' AND identities.value = batch.phone
    """
)
_NEW_IDS = text("SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, :count)")
_NEW_CUSTOMERS = text(
    """
    INSERT INTO customers
        (id, name, name_search, preferred_language, consents, attributes, created_at, updated_at)
    SELECT id, name, search, language, '{}'::jsonb, attributes::jsonb, now(), now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:names AS text[]), CAST(:searches AS text[]),
                CAST(:languages AS text[]), CAST(:attributes AS text[]))
         AS t(id, name, search, language, attributes)
    """
)
_NEW_IDENTITIES = text(
    """
    INSERT INTO identities (customer_id, kind, value, created_at)
    SELECT customer_id, 'phone', phone, now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:phones AS text[])) AS t(customer_id, phone)
    """
)
_NEW_CONTACTS = text(
    """
    INSERT INTO campaign_contacts
        (campaign_id, list_id, customer_id, phone, time_zone, attributes, status, attempts, updated_at)
    SELECT :campaign_id, :list_id, customer_id, phone, zone, attributes::jsonb, 'pending', 0, now()
    FROM unnest(CAST(:customers AS bigint[]), CAST(:phones AS text[]), CAST(:zones AS text[]),
                CAST(:attributes AS text[])) AS t(customer_id, phone, zone, attributes)
    ON CONFLICT (campaign_id, phone) DO NOTHING
    RETURNING phone
    """
)


def _new_customers_postgresql(db: Session, new: Sequence[ContactRow]) -> list[int]:
    ids = list(db.execute(_NEW_IDS, {"count": len(new)}).scalars())
    customers = [_customer(row) for row in new]
    db.execute(
        _NEW_CUSTOMERS,
        {
            "ids": ids,
            "names": [c["name"] for c in customers],
            "searches": [c["name_search"] for c in customers],
            "languages": [c["preferred_language"] for c in customers],
            "attributes": [orjson.dumps(c["attributes"]).decode() for c in customers],
        },
    )
    db.execute(_NEW_IDENTITIES, {"ids": ids, "phones": [row.phone for row in new]})
    return ids


def _contacts_postgresql(
    db: Session, campaign_id: int, list_id: int, contacts: Sequence[_Contact]
) -> set[str]:
    parameters = {
        "campaign_id": campaign_id,
        "list_id": list_id,
        "customers": [c[0] for c in contacts],
        "phones": [c[1] for c in contacts],
        "zones": [c[2] for c in contacts],
        "attributes": [orjson.dumps(c[3]).decode() for c in contacts],
    }
    return set(db.execute(_NEW_CONTACTS, parameters).scalars())


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
