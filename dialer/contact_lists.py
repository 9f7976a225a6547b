"""Contact lists into a campaign: each contact is a customer, found by phone number or created.

The parser (dialer.contact_import) turns the CSV stream into rows and problems; this module writes them
in batches, a few statements per batch whatever its size: the do-not-call screening (the lists as they
are at import; the dialer checks again at every call), the phone identities already on file, new
customers with their identities, and the campaign's contacts (a number already in the campaign is a
duplicate, reported, not loaded twice). On PostgreSQL the batch goes in by COPY and one statement does
all of that on the server; SQLite takes a few plain statements. Services flush; the importing edge
commits each batch, so a file that turns out broken half-way keeps the contacts loaded before the
break, and says where it stopped.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from sqlalchemy import insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from core.customers.models import Customer, Identity
from core.errors import NotFound
from core.text_folding import fold
from dialer.contact_import import ContactRow, ImportNotice, ImportSummary, RowProblem
from dialer.do_not_call import DialBlock
from dialer.do_not_call_store import lists_for
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


@dataclass(frozen=True, slots=True)
class LoadedBatch:
    """What became of a batch of parsed contacts."""

    loaded: int
    duplicates: list[ContactRow]  # the campaign already had the number
    listed: list[tuple[ContactRow, tuple[DialBlock, ...]]]  # on a do-not-call list, and which


def load_contacts(
    *,
    db: Session,
    campaign_id: int,
    list_id: int,
    rows: Sequence[ContactRow],
    copy_data: bytes | None = None,
) -> LoadedBatch:
    """Screen `rows` against the do-not-call lists, then insert the others as the campaign's contacts,
    each found by phone among the customers or created with its phone identity. On PostgreSQL,
    `copy_data` is `copy_data_of(rows)` when the caller built it ahead."""
    if not rows:
        return LoadedBatch(0, [], [])
    if db.get_bind().dialect.name == "postgresql":
        data = copy_data if copy_data is not None else copy_data_of(rows)
        return _load_postgresql(db, campaign_id, list_id, rows, data)
    screened = lists_for(db, campaign_id).screen([row.phone for row in rows])
    listed = [(row, screened[row.phone]) for row in rows if row.phone in screened]
    rows = [row for row in rows if row.phone not in screened]
    if not rows:
        return LoadedBatch(0, [], listed)
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
        ids = _new_customers(db, new)
        holders.update((row.phone, cid) for cid, row in zip(ids, new, strict=True))
    contacts = [(holders[row.phone], row.phone, _explicit_zone(row), _attributes(row)) for row in rows]
    inserted = _contacts(db, campaign_id, list_id, contacts)
    db.flush()
    duplicates = [row for row in rows if row.phone not in inserted]
    return LoadedBatch(len(rows) - len(duplicates), duplicates, listed)


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


# PostgreSQL: the batch is copied (COPY, the cheapest way in) into a temporary table that the commit
# drops, and one statement does the rest on the server: do-not-call screening, the phone identities on
# file, new customers with their identities (ids drawn from the sequence as the rows are read, so a
# customer and its identity agree without relying on RETURNING's order), the contacts (ON CONFLICT DO
# NOTHING on campaign and number), and back come only the rows that were not loaded, and why. The
# foreign keys of the new identities and contacts are checked at the statement's end, when the new
# customers are there. The lookups are subqueries per row on purpose: as joins, the planner (with no
# statistics for the batch and stale ones for a table growing under the import) hashed every phone
# identity for each batch, a cost that grew with the table. See docs/benchmarks.md.
# Without parameters, so both go in one round trip. The commit of an import batch need not wait for
# the disk: see docs/decisions.md (20).
_STAGING = """
    SET LOCAL synchronous_commit = off;
    CREATE TEMPORARY TABLE contact_import_batch (
        seq integer NOT NULL, phone text NOT NULL, name text, name_search text, language text,
        customer_attributes text NOT NULL, time_zone text, attributes text NOT NULL
    ) ON COMMIT DROP
"""
_COPY = (
    "COPY contact_import_batch (seq, phone, name, name_search, language, customer_attributes,"
    " time_zone, attributes) FROM STDIN"
)
_LOAD = """
    WITH screened AS MATERIALIZED (
        SELECT batch.*,
               EXISTS (SELECT FROM do_not_call AS dnc
                       WHERE dnc.campaign_id IS NULL AND dnc.phone = batch.phone) AS on_global,
               EXISTS (SELECT FROM do_not_call AS dnc
                       WHERE dnc.campaign_id = %(campaign_id)s AND dnc.phone = batch.phone) AS on_campaign,
               (SELECT holder.customer_id FROM identities AS holder
                WHERE holder.kind = 'phone' AND holder.value = batch.phone) AS holder
        FROM contact_import_batch AS batch
    ),
    sequence AS MATERIALIZED (SELECT pg_get_serial_sequence('customers', 'id')::regclass AS name),
    batch AS MATERIALIZED (
        SELECT screened.*, coalesce(holder, nextval(sequence.name)) AS customer_id
        FROM screened CROSS JOIN sequence
        WHERE NOT (on_global OR on_campaign)
    ),
    new_customers AS (
        INSERT INTO customers
            (id, name, name_search, preferred_language, consents, attributes, created_at, updated_at)
        SELECT customer_id, name, name_search, language, '{}', customer_attributes::jsonb, now(), now()
        FROM batch WHERE holder IS NULL
    ),
    new_identities AS (
        INSERT INTO identities (customer_id, kind, value, created_at)
        SELECT customer_id, 'phone', phone, now() FROM batch WHERE holder IS NULL
    ),
    loaded AS (
        INSERT INTO campaign_contacts
            (campaign_id, list_id, customer_id, phone, time_zone, attributes, status, attempts, updated_at)
        SELECT %(campaign_id)s, %(list_id)s, customer_id, phone, time_zone, attributes::jsonb, 'pending', 0,
               now()
        FROM batch
        ON CONFLICT (campaign_id, phone) DO NOTHING
        RETURNING phone
    )
    SELECT seq, on_global, on_campaign FROM screened WHERE on_global OR on_campaign
    UNION ALL
    SELECT seq, NULL, NULL FROM batch WHERE NOT EXISTS (SELECT FROM loaded WHERE loaded.phone = batch.phone)
"""


def copy_data_of(rows: Sequence[ContactRow]) -> bytes:
    """`rows` as the PostgreSQL path copies them into its staging table (COPY's text format). Apart
    from the write so that the importer can build a batch's data while the database works on the batch
    before: built in the writing thread, it kept the database waiting."""
    lines = []
    for seq, row in enumerate(rows):
        name = row.name
        external = _json({"external_id": row.external_id}) if row.external_id else "{}"
        fields = (
            str(seq),
            row.phone,
            _copy_text(name),
            _copy_text(_name_search(name)[:_NAME_SEARCH_CHARS] if name else None),
            _copy_text(row.language),
            _copy_text(external),
            _copy_text(_explicit_zone(row)),
            _copy_text(_json(_attributes(row))),
        )
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines).encode()


# COPY's text format: a backslash, tab, newline or carriage return in a value is escaped; \N is NULL.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str | None) -> str:
    if value is None:
        return "\\N"
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


_COPY_PROBLEMS = "COPY import_problems (list_id, row_number, problem, detail) FROM STDIN"


def _load_postgresql(
    db: Session, campaign_id: int, list_id: int, rows: Sequence[ContactRow], copy_data: bytes
) -> LoadedBatch:
    driver = db.connection().connection.driver_connection
    if not isinstance(driver, psycopg.Connection):  # COPY goes through the driver's own API
        raise TypeError(f"importing contacts into PostgreSQL needs psycopg 3, not {type(driver).__name__}")
    with driver.cursor() as cursor:
        cursor.execute(_STAGING)
        with cursor.copy(_COPY) as copy:
            copy.write(copy_data)
        cursor.execute(_LOAD, {"campaign_id": campaign_id, "list_id": list_id})
        outcomes = cursor.fetchall()
    duplicates: list[ContactRow] = []
    listed: list[tuple[ContactRow, tuple[DialBlock, ...]]] = []
    for seq, on_global, on_campaign in sorted(outcomes):
        row = rows[seq]
        if on_global is None:
            duplicates.append(row)
            continue
        lists = (DialBlock.GLOBAL_DO_NOT_CALL,) if on_global else ()
        listed.append((row, lists + ((DialBlock.CAMPAIGN_DO_NOT_CALL,) if on_campaign else ())))
    return LoadedBatch(len(rows) - len(outcomes), duplicates, listed)


def record_problems(*, db: Session, list_id: int, problems: Sequence[RowProblem], kept_so_far: int) -> int:
    """Keep `problems` (up to MAX_PROBLEMS_KEPT for the list); returns how many are kept now in all."""
    room = max(0, MAX_PROBLEMS_KEPT - kept_so_far)
    keep = problems[:room]
    driver = db.connection().connection.driver_connection
    if keep and isinstance(driver, psycopg.Connection):  # PostgreSQL: COPY, several times faster
        with driver.cursor() as cursor, cursor.copy(_COPY_PROBLEMS) as copy:
            for p in keep:
                copy.write_row((list_id, p.row, p.kind.value, _detail(p)))
    elif keep:
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


# customers.name_search is as long as the name, but folding may lengthen it ("ß" is "ss").
_NAME_SEARCH_CHARS = 200


def _name_search(name: str) -> str:
    """fold(name) for a name the parser left single-spaced, word by word: a word folds the same alone
    (case folding and NFKD work per character, and a space separates them), ASCII words are only
    lowered, and the others (García, Núñez) repeat from row to row."""
    if name.isascii():
        return name.lower()
    words = (word.lower() if word.isascii() else _fold_word(word) for word in name.split(" "))
    return " ".join(word for word in words if word)


_fold_word = functools.lru_cache(maxsize=16_384)(fold)


def _explicit_zone(row: ContactRow) -> str | None:
    return row.time_zones[0] if row.explicit_time_zone else None


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _attributes(row: ContactRow) -> dict[str, Any]:
    attributes: dict[str, Any] = dict(row.attributes)
    for key, value in (("name", row.name), ("email", row.email), ("external_id", row.external_id)):
        if value:
            attributes[key] = value
    return attributes


def _detail(problem: RowProblem) -> str:
    where = f" (line {problem.line}" + (f", column {problem.column}" if problem.column else "") + ")"
    return (problem.message + where)[:500]
