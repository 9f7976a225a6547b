"""What an agent's screen or the IVR needs the moment a contact arrives.

This is the hottest read in the product (every call, message and page view), so it reads straight
into JSON-ready dicts instead of loading ORM objects, with statements built once. On PostgreSQL
the database assembles the whole answer in one statement (one round trip); SQLite, embedded and
without round trips, runs three simple ones. Both take their columns from the API schemas, so the
dicts always have the shape `Lookup` documents (docs/decisions.md, "the screen pop's read path").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Select, bindparam, select, text
from sqlalchemy.orm import Session

from core.cases.models import Case
from core.cases.schemas import OPEN_STATUSES, CaseRead
from core.customers.identities import IdentityKind, matching_kinds, normalise
from core.customers.models import Customer, Identity
from core.customers.schemas import CustomerRead, IdentityRead
from core.db import columns_of, timestamp_fields, utc_timestamps
from core.timeline.models import Interaction
from core.timeline.schemas import InteractionRead

_customers = Customer.__table__
_identities = Identity.__table__
_CUSTOMER_FIELDS = [name for name in CustomerRead.model_fields if name != "identities"]
_IDENTITY_FIELDS = list(IdentityRead.model_fields)


# The customer holding the identity, one row per identity the customer has.
_BY_IDENTITY: Select[Any] = (
    select(
        *(_customers.c[name] for name in _CUSTOMER_FIELDS),
        *(_identities.c[name].label(f"identity_{name}") for name in _IDENTITY_FIELDS),
    )
    .select_from(_customers.join(_identities, _identities.c.customer_id == _customers.c.id))
    .where(
        _customers.c.id.in_(
            select(_identities.c.customer_id).where(
                _identities.c.kind.in_(bindparam("kinds", expanding=True)),
                _identities.c.value == bindparam("value"),
            )
        )
    )
    .order_by(_customers.c.id, _identities.c.id)
)
_OPEN_CASES: Select[Any] = (
    select(*columns_of(Case, CaseRead))
    .where(Case.customer_id == bindparam("customer_id"), Case.status.in_(OPEN_STATUSES))
    .order_by(Case.updated_at.desc(), Case.id.desc())
    .limit(20)
)
_RECENT: Select[Any] = (
    select(*columns_of(Interaction, InteractionRead))
    .where(Interaction.customer_id == bindparam("customer_id"))
    .order_by(Interaction.started_at.desc(), Interaction.id.desc())
    .limit(bindparam("recent"))
)


@dataclass(frozen=True, slots=True)
class ScreenPop:
    """Plain dicts shaped like `CustomerRead`, `IdentityRead`, `CaseRead` and `InteractionRead`."""

    customer: dict[str, Any]
    matched_identity: dict[str, Any]
    open_cases: list[dict[str, Any]]
    recent_interactions: list[dict[str, Any]]

    def document(self) -> dict[str, Any]:
        """The API's `Lookup` answer."""
        return {
            "customer": self.customer,
            "matched_identity": self.matched_identity,
            "preferred_language": self.customer["preferred_language"],
            "preferred_channel": self.customer["preferred_channel"],
            "open_cases": self.open_cases,
            "recent_interactions": self.recent_interactions,
        }


def lookup(*, db: Session, kind: IdentityKind, value: str, region: str, recent: int = 10) -> ScreenPop | None:
    """Finds who holds an identity (see `matching_kinds`; an exact-kind match wins)."""
    normalised = normalise(kind, value, region=region)
    connection = db.connection()
    if connection.dialect.name == "postgresql":
        return _lookup_in_one_statement(connection, kind, normalised, recent)
    return _lookup_in_three_statements(connection, kind, normalised, recent)


def _lookup_in_three_statements(
    connection: Connection, kind: IdentityKind, normalised: str, recent: int
) -> ScreenPop | None:
    kinds = matching_kinds(kind)
    customers: dict[int, dict[str, Any]] = {}
    matches: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for row in connection.execute(_BY_IDENTITY, {"kinds": kinds, "value": normalised}).all():
        fields = row._mapping
        customer = customers.get(fields["id"])
        if customer is None:
            customer = {name: fields[name] for name in _CUSTOMER_FIELDS} | {"identities": []}
            customers[customer["id"]] = customer
        identity = {name: fields[f"identity_{name}"] for name in _IDENTITY_FIELDS}
        customer["identities"].append(identity)
        if identity["kind"] in kinds and identity["value"] == normalised:
            matches.append((customer, identity))
    if not matches:
        return None
    customer, identity = min(matches, key=lambda match: match[1]["kind"] != kind.value)
    params = {"customer_id": customer["id"], "recent": recent}
    return ScreenPop(
        customer=customer,
        matched_identity=identity,
        open_cases=[row._asdict() for row in connection.execute(_OPEN_CASES, params).all()],
        recent_interactions=[row._asdict() for row in connection.execute(_RECENT, params).all()],
    )


def _names(schema: type[BaseModel], skip: str = "") -> str:
    return ", ".join(f'"{name}"' for name in schema.model_fields if name != skip)


# PostgreSQL writes the JSON; each part is a row or an array of rows with exactly the schema's columns.
_ONE_STATEMENT = text(f"""
WITH hit AS (
    SELECT id, customer_id FROM identities
    WHERE kind = ANY(:kinds) AND value = :value
    ORDER BY kind = :kind DESC, id
    LIMIT 1
)
SELECT
    (SELECT id FROM hit) AS identity_id,
    (SELECT row_to_json(c) FROM (
        SELECT {_names(CustomerRead, skip="identities")} FROM customers
        WHERE id = (SELECT customer_id FROM hit)
    ) c) AS customer,
    (SELECT json_agg(i ORDER BY i.id) FROM (
        SELECT {_names(IdentityRead)} FROM identities WHERE customer_id = (SELECT customer_id FROM hit)
    ) i) AS identities,
    (SELECT json_agg(k ORDER BY k.updated_at DESC, k.id DESC) FROM (
        SELECT {_names(CaseRead)} FROM cases
        WHERE customer_id = (SELECT customer_id FROM hit) AND status = ANY(:open)
        ORDER BY updated_at DESC, id DESC LIMIT 20
    ) k) AS open_cases,
    (SELECT json_agg(r ORDER BY r.started_at DESC, r.id DESC) FROM (
        SELECT {_names(InteractionRead)} FROM interactions
        WHERE customer_id = (SELECT customer_id FROM hit)
        ORDER BY started_at DESC, id DESC LIMIT :recent
    ) r) AS recent_interactions
""")
_CUSTOMER_TIMES = timestamp_fields(CustomerRead)
_CASE_TIMES = timestamp_fields(CaseRead)
_INTERACTION_TIMES = timestamp_fields(InteractionRead)


def _lookup_in_one_statement(
    connection: Connection, kind: IdentityKind, normalised: str, recent: int
) -> ScreenPop | None:
    params = {
        "kinds": matching_kinds(kind),
        "value": normalised,
        "kind": kind.value,
        "open": list(OPEN_STATUSES),
        "recent": recent,
    }
    row = connection.execute(_ONE_STATEMENT, params).one()
    if row.identity_id is None:
        return None
    identities: list[dict[str, Any]] = row.identities
    return ScreenPop(
        customer=utc_timestamps(row.customer, _CUSTOMER_TIMES) | {"identities": identities},
        matched_identity=next(i for i in identities if i["id"] == row.identity_id),
        open_cases=[utc_timestamps(case, _CASE_TIMES) for case in row.open_cases or ()],
        recent_interactions=[utc_timestamps(i, _INTERACTION_TIMES) for i in row.recent_interactions or ()],
    )
