"""Screen-pop and timeline latency on PostgreSQL, with the production code paths.

Loads a realistic data set into a throw-away schema of its own (dropped at the end, even on error
or Ctrl-C), then measures:

1. the floor: one hand-written SQL statement that makes PostgreSQL build the whole screen-pop
   answer as one JSON document, in one round trip;
2. the screen pop in-process, through `core.customers.screen_pop.lookup` and the API's schemas;
3. a 50-row timeline page in-process;
4. the same over HTTP against `centralita serve`, with a tiny keep-alive client (concurrency 1
   for latency, 16 connections for throughput);
5. how many SQL statements one screen pop sends.

    .venv/bin/python bench/lookup.py                    # 100k customers, table with the targets
    .venv/bin/python bench/lookup.py --customers 2000   # smoke run, a few seconds
    .venv/bin/python bench/lookup.py --json             # one JSON object on stdout, logs on stderr
    .venv/bin/python bench/lookup.py --explain --profile  # plus query plans and a cProfile on stderr

PostgreSQL comes from CENTRALITA_BENCH_DATABASE_URL (default: this machine's `test` database).
Exits 1 if any request fails, 0 otherwise (missed targets are reported, not fatal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import itertools
import json
import math
import os
import pstats
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from api.responses import json_response
from centralita.container import Container, build
from core import migrate
from core.auth import service as keys
from core.auth.roles import Role
from core.customers import screen_pop
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.settings import Settings
from core.text_folding import fold
from core.timeline import service as timeline

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REGION = "ES"
SEED = 20261124
WARMUP = 200
C16_CONNECTIONS = 16
C16_SECONDS = 8.0
C16_MAX_REQUESTS = 16_000
# A fixed clock, so that the same seed gives the same rows on every run.
END = datetime(2026, 1, 1, tzinfo=UTC)
START = END - timedelta(days=730)

# The targets: result key -> ("<=" or ">=", limit).
TARGETS: dict[str, tuple[str, float]] = {
    "inprocess_lookup_p99_ms": ("<=", 1.5),
    "http_lookup_p50_ms": ("<=", 2.0),
    "http_lookup_p99_ms": ("<=", 6.0),
    "http_rps_c16": (">=", 1000.0),
    "timeline_page_p50_ms": ("<=", 1.5),
    "lookup_round_trips": ("<=", 3.0),
}


def log(message: str) -> None:
    """Progress goes to stderr, so that --json leaves stdout to the one JSON object."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 2,000 samples is the 1,980th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def p50_p99(values_ms: Sequence[float]) -> tuple[float, float]:
    return round(percentile(values_ms, 0.50), 3), round(percentile(values_ms, 0.99), 3)


def elapsed_ms(started_ns: int) -> float:
    return (time.perf_counter_ns() - started_ns) / 1e6


# --------------------------------------------------------------------------------------------
# Database addresses and the throw-away schema


def sqlalchemy_url(url: str) -> str:
    """The psycopg 3 driver is the one installed; a plain libpq URL gets its name, as Settings does."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def with_search_path(url: str, schema: str) -> str:
    """Every connection made from this URL sees only `schema` (libpq `options`, as the tests do)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def libpq_url(url: str) -> str:
    """The same address for a raw psycopg connection (no SQLAlchemy driver name)."""
    return "postgresql://" + url.split("://", 1)[1]


# --------------------------------------------------------------------------------------------
# Data set: generated with a fixed seed, its rows streamed into COPY as they are made

FIRST_NAMES = ("María", "José", "Lucía", "Javier", "Carmen", "Álvaro", "Núria", "Iñaki", "Sofía", "Raúl")
LAST_NAMES = ("García", "Fernández", "López", "Martínez", "Pérez", "Sánchez", "Gómez", "Ibáñez", "Muñoz")
DOMAINS = ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "empresa.example")
QUEUES = ("atencion", "facturacion", "averias", "ventas", "bajas")
SUBJECTS = ("Factura duplicada", "Cambio de tarifa", "Avería en la línea", "Portabilidad", "Baja")
INTENTS = ("billing", "tech_support", "sales", "cancel", "address_change", "payment")
DISPOSITIONS = ("resuelto", "escalado", "pendiente_cliente", "informacion", "venta")
SUMMARIES = (
    "Cliente llama por un cargo duplicado en la última factura; se verifica identidad y se abre "
    "reclamación con abono previsto en el próximo ciclo.",
    "Sin servicio desde ayer por la tarde; se hacen pruebas de línea y se programa visita técnica "
    "para el jueves por la mañana.",
    "Pregunta por la tarifa de fibra y móvil; se envía la oferta por correo y se agenda una llamada.",
    "Solicita cambio de domicilio de facturación; actualizado y confirmado por SMS.",
)
CONSENTS = (
    "{}",
    json.dumps({"sms": {"granted": True, "recorded_at": "2024-05-02T10:00:00+00:00",
                        "legal_basis": "consent", "source": "web form"}}),
    json.dumps({"calls": {"granted": False, "recorded_at": "2024-09-12T16:30:00+00:00",
                          "legal_basis": "legitimate_interest", "source": "agent"},
                "email": {"granted": True, "recorded_at": "2023-11-20T09:15:00+00:00",
                          "legal_basis": "consent", "source": "shop"}}),
)  # fmt: skip
CUSTOMER_ATTRIBUTES = ("{}", "{}", "{}", '{"vip": true, "segment": "gold"}', '{"segment": "pyme"}')
CHANNELS = ("voice", "ivr", "whatsapp", "sms", "email", "chat", "web", "store")
CHANNEL_WEIGHTS = (45, 15, 12, 8, 10, 7, 2, 1)
LANGUAGES = ("es",) * 17 + ("ca", "ca", "en", "eu")


@dataclass
class Dataset:
    customers: int
    identities: int
    cases: int
    interactions: int
    interaction_refs: int
    # Every phone and WhatsApp number loaded (E.164): what callers are drawn from.
    phones: list[str]
    # Customers with at least 50 interactions: a full timeline page.
    timeline_customers: list[int]
    heaviest_customer: int
    heaviest_phone: str
    load_seconds: float = 0.0


def _customer_rows(n: int, rng: random.Random, created: list[datetime]) -> Iterator[tuple[Any, ...]]:
    for customer_id in range(1, n + 1):
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} {rng.choice(LAST_NAMES)}"
        at = created[customer_id]
        yield (
            customer_id,
            name,
            fold(name),
            rng.choice(LANGUAGES) if rng.random() < 0.8 else None,
            rng.choice((None, None, "voice", "whatsapp", "email", "sms")),
            rng.choice(CONSENTS),
            rng.choice(CUSTOMER_ATTRIBUTES),
            at,
            at + timedelta(days=rng.uniform(0, 200)),
        )


def _identity_rows(
    n: int, total: int, rng: random.Random, created: list[datetime], phones_out: list[str]
) -> Iterator[tuple[Any, ...]]:
    """One phone each; the rest split into emails, WhatsApp (mostly the same handset) and second phones."""
    extra = total - n
    emails, whatsapps = int(extra * 0.6), int(extra * 0.3)
    second_phones = extra - emails - whatsapps
    # Unique +346xxxxxxxx numbers: sampling a range does not build the range.
    numbers = iter(rng.sample(range(10**8), n + whatsapps + second_phones))
    own_phone = [""] * (n + 1)
    identity_id = 0
    for customer_id in range(1, n + 1):
        identity_id += 1
        own_phone[customer_id] = f"+346{next(numbers):08d}"
        phones_out.append(own_phone[customer_id])
        yield identity_id, customer_id, "phone", own_phone[customer_id], created[customer_id]
    for customer_id in rng.sample(range(1, n + 1), emails):
        identity_id += 1
        user = fold(f"{rng.choice(FIRST_NAMES)}.{rng.choice(LAST_NAMES)}")
        # Stored lower-cased, the canonical form `normalise` produces.
        email = f"{user}{identity_id}@{rng.choice(DOMAINS)}"
        yield identity_id, customer_id, "email", email, created[customer_id]
    for customer_id in rng.sample(range(1, n + 1), whatsapps):
        identity_id += 1
        # Most WhatsApp identities are the handset the customer also calls from.
        number = own_phone[customer_id] if rng.random() < 0.67 else f"+346{next(numbers):08d}"
        if number != own_phone[customer_id]:
            phones_out.append(number)
        yield identity_id, customer_id, "whatsapp", number, created[customer_id]
    for customer_id in rng.sample(range(1, n + 1), second_phones):
        identity_id += 1
        number = f"+346{next(numbers):08d}"
        phones_out.append(number)
        yield identity_id, customer_id, "phone", number, created[customer_id]


def _case_rows(
    count: int, owners: Sequence[int], rng: random.Random, cases_by_customer: dict[int, list[int]]
) -> Iterator[tuple[Any, ...]]:
    span = (END - START).total_seconds()
    for case_id, customer_id in enumerate(owners, start=1):
        cases_by_customer.setdefault(customer_id, []).append(case_id)
        opened = START + timedelta(seconds=rng.uniform(0, span))
        draw = rng.random()
        status = "open" if draw < 0.15 else "pending" if draw < 0.25 else "resolved"
        resolved = opened + timedelta(hours=rng.uniform(1, 400)) if status == "resolved" else None
        yield (
            case_id,
            customer_id,
            rng.choice(SUBJECTS),
            status,
            opened,
            resolved,
            rng.choice(DISPOSITIONS) if resolved else None,
            1 if rng.random() < 0.05 else 0,
            "{}",
            resolved or opened + timedelta(hours=rng.uniform(0, 48)),
        )


def _interaction_rows(
    owners: Sequence[int],
    rng: random.Random,
    cases_by_customer: dict[int, list[int]],
    counts: list[int],
    refs_out: list[tuple[int, str]],
) -> Iterator[tuple[Any, ...]]:
    """Interactions in time order, so ids grow with started_at and a customer's rows are scattered
    over the table as they are in production (the worst case for reading a customer's history)."""
    span = (END - START).total_seconds()
    mean_gap = span / max(1, len(owners))
    channel_cum = list(itertools.accumulate(CHANNEL_WEIGHTS))
    offset = 0.0
    for interaction_id, owner in enumerate(owners, start=1):
        offset = min(span, offset + rng.expovariate(1.0 / mean_gap))
        started = START + timedelta(seconds=offset)
        # About 1% of contacts come from withheld numbers and stay anonymous.
        customer_id: int | None = None if rng.random() < 0.01 else owner
        if customer_id is not None:
            counts[customer_id] += 1
        channel = rng.choices(CHANNELS, cum_weights=channel_cum)[0]
        direction = "outbound" if channel in ("voice", "sms", "email") and rng.random() < 0.25 else "inbound"
        queue = agent = campaign = None
        attributes, external_refs = "{}", "[]"
        if channel in ("voice", "ivr"):
            duration = rng.uniform(20, 1200 if channel == "voice" else 300)
            if channel == "voice":
                outcome = rng.choice(("completed", "completed", "transferred", "abandoned", "voicemail"))
                queue = rng.choice(QUEUES)
                agent = (
                    f"agente{rng.randrange(1, 301):03d}" if outcome in ("completed", "transferred") else None
                )
            else:
                outcome = rng.choice(("contained", "contained", "transferred", "abandoned"))
                attributes = '{"ivr_path": "menu>facturacion", "dtmf": "2"}'
            linkedid = f"{int(started.timestamp())}.{interaction_id}"
            external_refs = json.dumps([{"kind": "asterisk_linkedid", "value": linkedid}])
            refs_out.append((interaction_id, linkedid))
        else:
            duration = rng.uniform(5, 1800)
            outcome = rng.choice(("completed", "delivered", "completed", None))
        if direction == "outbound" and rng.random() < 0.5:
            campaign = f"campana-2025-q{rng.randrange(1, 5)}"
        ended = started + timedelta(seconds=duration) if rng.random() < 0.97 else None
        owned_cases = cases_by_customer.get(owner)
        case_id = rng.choice(owned_cases) if customer_id and owned_cases and rng.random() < 0.3 else None
        yield (
            interaction_id,
            customer_id,
            case_id,
            channel,
            direction,
            started,
            ended,
            queue,
            agent,
            campaign,
            outcome,
            rng.choice(DISPOSITIONS) if rng.random() < 0.3 else None,
            rng.choice(SUBJECTS) if rng.random() < 0.4 else None,
            rng.choice(INTENTS) if rng.random() < 0.5 else None,
            rng.choice(SUMMARIES) if rng.random() < 0.3 else None,
            rng.choice(LANGUAGES),
            rng.randint(1, 5) if outcome == "completed" and rng.random() < 0.15 else None,
            attributes,
            external_refs,
            started,
            ended or started,
        )


def _copy(cursor: psycopg.Cursor[Any], table: str, columns: str, rows: Iterator[tuple[Any, ...]]) -> int:
    """COPY FROM STDIN: one stream per table, orders of magnitude cheaper than INSERTs."""
    started = time.perf_counter()
    written = 0
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
    log(f"  {table:<17} {written:>10,} rows in {time.perf_counter() - started:6.1f} s")
    return written


def load(conninfo: str, n: int) -> Dataset:
    rng = random.Random(SEED)
    started = time.perf_counter()
    total_identities, total_interactions, total_cases = round(n * 1.5), n * 10, round(n * 0.3)
    log(f"loading {n:,} customers, {total_identities:,} identities, {total_interactions:,} interactions…")

    # Skewed activity: a Pareto weight per customer (capped), so the median customer has about 5
    # interactions, the 99th percentile about 100 and the busiest a few hundred. Heavy customers
    # also open more cases.
    weights = [min(rng.paretovariate(1.2), 150.0) for _ in range(n)]
    cum_weights = list(itertools.accumulate(weights))
    customer_ids = range(1, n + 1)
    interaction_owners = rng.choices(customer_ids, cum_weights=cum_weights, k=total_interactions)
    case_owners = rng.choices(customer_ids, cum_weights=cum_weights, k=total_cases)
    # Customers signed up over the four years before the first interaction loaded.
    signup_span = timedelta(days=1500).total_seconds()
    created = [START] + [START - timedelta(seconds=rng.uniform(0, signup_span)) for _ in customer_ids]

    phones: list[str] = []
    cases_by_customer: dict[int, list[int]] = {}
    counts = [0] * (n + 1)
    refs: list[tuple[int, str]] = []
    with psycopg.connect(conninfo) as conn, conn.cursor() as cursor:
        sizes = {
            "customers": _copy(
                cursor,
                "customers",
                "id, name, name_search, preferred_language, preferred_channel, consents, attributes, "
                "created_at, updated_at",
                _customer_rows(n, rng, created),
            ),
            "identities": _copy(
                cursor,
                "identities",
                "id, customer_id, kind, value, created_at",
                _identity_rows(n, total_identities, rng, created, phones),
            ),
            "cases": _copy(
                cursor,
                "cases",
                "id, customer_id, subject, status, opened_at, resolved_at, resolution, reopened_count, "
                "attributes, updated_at",
                _case_rows(total_cases, case_owners, rng, cases_by_customer),
            ),
            "interactions": _copy(
                cursor,
                "interactions",
                "id, customer_id, case_id, channel, direction, started_at, ended_at, queue, agent, "
                "campaign, outcome, disposition, subject, intent, summary, language, csat, attributes, "
                "external_refs, created_at, updated_at",
                _interaction_rows(interaction_owners, rng, cases_by_customer, counts, refs),
            ),
            "interaction_refs": _copy(
                cursor,
                "interaction_refs",
                "id, interaction_id, kind, value",
                ((i, iid, "asterisk_linkedid", value) for i, (iid, value) in enumerate(refs, start=1)),
            ),
        }
        conn.commit()
    finish_load(conninfo)

    heaviest = max(customer_ids, key=counts.__getitem__)
    timeline_customers = [c for c in customer_ids if counts[c] >= 50]
    if not timeline_customers:  # tiny smoke runs: take the busiest customers there are
        timeline_customers = sorted(customer_ids, key=counts.__getitem__)[-20:]
    dataset = Dataset(
        customers=sizes["customers"],
        identities=sizes["identities"],
        cases=sizes["cases"],
        interactions=sizes["interactions"],
        interaction_refs=sizes["interaction_refs"],
        phones=phones,
        timeline_customers=timeline_customers,
        heaviest_customer=heaviest,
        # Customer i's first identity is its phone, with id i (see _identity_rows).
        heaviest_phone=phones[heaviest - 1],
        load_seconds=round(time.perf_counter() - started, 1),
    )
    log(
        f"loaded in {dataset.load_seconds} s; {len(timeline_customers):,} customers have ≥ 50 interactions, "
        f"the busiest {counts[heaviest]:,}"
    )
    return dataset


def finish_load(conninfo: str) -> None:
    """Ids were given explicitly, so the sequences must move past them; then fresh statistics.

    VACUUM (ANALYZE) rather than ANALYZE alone: it also sets hint bits and the visibility map, the
    state autovacuum would leave a real database in, so the first lookups do not pay for it.
    """
    started = time.perf_counter()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in ("customers", "identities", "cases", "interactions", "interaction_refs"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")
            conn.execute(f"VACUUM (ANALYZE) {table}")
    log(f"  sequences, VACUUM (ANALYZE) in {time.perf_counter() - started:.1f} s")


# --------------------------------------------------------------------------------------------
# What callers send


def as_dialled(e164: str, rng: random.Random) -> str:
    """A Spanish number the ways callers and CRMs write it, so every parser path is exercised."""
    digits = e164.removeprefix("+34")
    return rng.choice(
        (
            f"{digits[:3]} {digits[3:6]} {digits[6:]}",
            e164,
            f"0034 {digits[:3]}-{digits[3:6]}-{digits[6:]}",
            digits,
        )
    )


@dataclass
class Workload:
    phones: list[str]  # E.164, for the floor
    dialled: list[str]  # the same numbers as written by people
    timeline_customers: list[int]

    @classmethod
    def draw(cls, dataset: Dataset, count: int) -> Workload:
        rng = random.Random(SEED + 1)
        phones = rng.choices(dataset.phones, k=count)
        return cls(
            phones=phones,
            dialled=[as_dialled(p, rng) for p in phones],
            timeline_customers=rng.choices(dataset.timeline_customers, k=count),
        )


# --------------------------------------------------------------------------------------------
# 1. The floor: PostgreSQL builds the whole answer, one round trip

FLOOR_SQL = """
WITH hit AS (
    SELECT id, customer_id, kind, value FROM identities
    WHERE kind IN ('phone', 'whatsapp') AND value = %(value)s
    ORDER BY kind <> 'phone'
    LIMIT 1
)
SELECT json_build_object(
    'customer', json_build_object(
        'id', c.id, 'name', c.name, 'preferred_language', c.preferred_language,
        'preferred_channel', c.preferred_channel, 'consents', c.consents, 'attributes', c.attributes,
        'identities', (
            SELECT json_agg(json_build_object('id', i.id, 'kind', i.kind, 'value', i.value) ORDER BY i.id)
            FROM identities i WHERE i.customer_id = c.id
        ),
        'created_at', c.created_at, 'updated_at', c.updated_at
    ),
    'matched_identity', json_build_object('id', hit.id, 'kind', hit.kind, 'value', hit.value),
    'preferred_language', c.preferred_language,
    'preferred_channel', c.preferred_channel,
    'open_cases', coalesce((
        SELECT json_agg(k ORDER BY k.updated_at DESC, k.id DESC) FROM (
            SELECT id, customer_id, subject, status, opened_at, resolved_at, resolution, reopened_count,
                   attributes, updated_at
            FROM cases WHERE customer_id = c.id AND status IN ('open', 'pending')
            ORDER BY updated_at DESC, id DESC LIMIT 20
        ) k
    ), '[]'),
    'recent_interactions', coalesce((
        SELECT json_agg(r ORDER BY r.started_at DESC, r.id DESC) FROM (
            SELECT id, customer_id, case_id, channel, direction, started_at, ended_at, queue, agent,
                   campaign, outcome, disposition, subject, intent, summary, language, csat,
                   external_refs, attributes
            FROM interactions WHERE customer_id = c.id
            ORDER BY started_at DESC, id DESC LIMIT 10
        ) r
    ), '[]')
)::text
FROM hit JOIN customers c ON c.id = hit.customer_id
"""


def measure_floor(conninfo: str, workload: Workload) -> tuple[float, float]:
    """Takes numbers already in E.164: the floor is the database's part alone. psycopg prepares
    the statement after a few executions, as it does for the application's queries."""
    timings: list[float] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for index, phone in enumerate(itertools.chain(workload.phones[:WARMUP], workload.phones)):
            started = time.perf_counter_ns()
            row = conn.execute(FLOOR_SQL, {"value": phone}).fetchone()
            took = elapsed_ms(started)
            if row is None:
                raise RuntimeError(f"floor query found nobody with {phone}")
            if index >= WARMUP:
                timings.append(took)
    return p50_p99(timings)


# --------------------------------------------------------------------------------------------
# 2, 3, 5. In-process, through the real services and the API's response schemas


def screen_pop_json(factory: sessionmaker[Session], dialled: str) -> tuple[bytes, float]:
    """What GET /customers/lookup does, minus HTTP: returns the JSON body and the ms spent serialising."""
    with factory() as db:
        found = screen_pop.lookup(db=db, kind=IdentityKind.PHONE, value=dialled, region=REGION)
        if found is None:
            raise LookupError(f"no customer found for {dialled!r}")
        started = time.perf_counter_ns()
        body = bytes(json_response(found.document()).body)
        return body, elapsed_ms(started)


def timeline_json(factory: sessionmaker[Session], customer_id: int) -> bytes:
    """What GET /customers/{id}/timeline?limit=50 does, minus HTTP."""
    with factory() as db:
        items, next_cursor = timeline.timeline_page(db=db, customer_id=customer_id, limit=50)
        return bytes(json_response({"items": items, "next_cursor": next_cursor}).body)


@dataclass
class InProcess:
    lookup_ms: tuple[float, float]
    serialise_ms: tuple[float, float]
    timeline_ms: tuple[float, float]
    lookup_round_trips: int
    timeline_round_trips: int


def measure_inprocess(container: Container, workload: Workload, dataset: Dataset) -> InProcess:
    factory = container.read_session_factory
    for dialled in workload.dialled[:WARMUP]:
        screen_pop_json(factory, dialled)
    lookups: list[float] = []
    serialising: list[float] = []
    for dialled in workload.dialled:
        started = time.perf_counter_ns()
        _, serialise = screen_pop_json(factory, dialled)
        lookups.append(elapsed_ms(started))
        serialising.append(serialise)

    for customer_id in workload.timeline_customers[:WARMUP]:
        timeline_json(factory, customer_id)
    pages: list[float] = []
    for customer_id in workload.timeline_customers:
        started = time.perf_counter_ns()
        timeline_json(factory, customer_id)
        pages.append(elapsed_ms(started))

    lookup_sql = capture_sql(container, lambda: screen_pop_json(factory, dataset.heaviest_phone))
    timeline_sql = capture_sql(container, lambda: timeline_json(factory, dataset.heaviest_customer))
    return InProcess(
        lookup_ms=p50_p99(lookups),
        serialise_ms=p50_p99(serialising),
        timeline_ms=p50_p99(pages),
        lookup_round_trips=len(lookup_sql),
        timeline_round_trips=len(timeline_sql),
    )


def capture_sql(container: Container, action: Callable[[], object]) -> list[tuple[str, Any]]:
    """Every statement the read engine sends while `action` runs: one entry per round trip."""
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        sent.append((statement, parameters))

    event.listen(container.read_engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(container.read_engine, "before_cursor_execute", record)
    return sent


def explain(container: Container, dataset: Dataset) -> None:
    """EXPLAIN ANALYZE of each statement a screen pop and a timeline page send, for the busiest customer."""
    factory = container.read_session_factory
    phone, customer_id = dataset.heaviest_phone, dataset.heaviest_customer
    for title, action in (
        (f"screen pop for {phone}", lambda: screen_pop_json(factory, phone)),
        (f"timeline page of customer {customer_id}", lambda: timeline_json(factory, customer_id)),
    ):
        log(f"\n=== EXPLAIN (ANALYZE, BUFFERS): {title}")
        for number, (statement, parameters) in enumerate(capture_sql(container, action), start=1):
            with container.read_engine.connect() as conn:
                plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
                log(f"--- statement {number}: {' '.join(statement.split())}\n    parameters: {parameters}")
                log("\n".join("    " + row[0] for row in plan))


def profile_lookups(container: Container, workload: Workload, top: int = 15) -> None:
    """Where an in-process screen pop spends its time: the top entries by cumulative time."""
    factory = container.read_session_factory
    profiler = cProfile.Profile()
    profiler.enable()
    for dialled in workload.dialled[:1000]:
        screen_pop_json(factory, dialled)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    log(f"\n=== cProfile of {min(1000, len(workload.dialled))} in-process screen pops\n{out.getvalue()}")


# --------------------------------------------------------------------------------------------
# 4. Over HTTP: the real service in a subprocess, and a client light enough not to be the limit


class HttpConnection:
    """HTTP/1.1 keep-alive GETs over one socket. httpx costs more CPU than the server at ~700 req/s
    on two cores; this reads only the status line and Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, key: str) -> None:
        self._reader = reader
        self._writer = writer
        self._headers = f"Host: bench\r\nAuthorization: Bearer {key}\r\n\r\n".encode()

    @classmethod
    async def open(cls, port: int, key: str) -> HttpConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer, key)

    async def get(self, path: str) -> tuple[int, bytes]:
        self._writer.write(b"GET " + path.encode("ascii") + b" HTTP/1.1\r\n" + self._headers)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length: int | None = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"response without Content-Length: {head!r}")
        return status, await self._reader.readexactly(length)

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


@dataclass
class Failures:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, what: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(what)


async def sequential(port: int, key: str, paths: Sequence[str], failures: Failures) -> list[float]:
    """Concurrency 1: one connection, one request at a time; returns each latency in ms."""
    connection = await HttpConnection.open(port, key)
    timings: list[float] = []
    try:
        for path in paths:
            started = time.perf_counter_ns()
            status, body = await connection.get(path)
            timings.append(elapsed_ms(started))
            if status != 200:
                failures.add(f"{status} {path}: {body[:200]!r}")
    finally:
        await connection.close()
    return timings


async def concurrent(
    port: int, key: str, paths: Sequence[str], failures: Failures, *, seconds: float, max_requests: int
) -> tuple[float, list[float]]:
    """C16_CONNECTIONS connections each sending back to back until the time or the request budget
    runs out; returns requests per second and each latency in ms."""
    connections = [await HttpConnection.open(port, key) for _ in range(C16_CONNECTIONS)]
    cycle = itertools.cycle(paths)
    timings: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(connection: HttpConnection) -> None:
        while time.perf_counter() < deadline and len(timings) < max_requests:
            path = next(cycle)
            started = time.perf_counter_ns()
            status, body = await connection.get(path)
            timings.append(elapsed_ms(started))
            if status != 200:
                failures.add(f"{status} {path}: {body[:200]!r}")

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c) for c in connections))
        took = time.perf_counter() - started
    finally:
        for connection in connections:
            await connection.close()
    return len(timings) / took, timings


async def wait_until_healthy(port: int, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} before answering")
        try:
            connection = await HttpConnection.open(port, "none")
            try:
                status, _ = await connection.get("/health")
            finally:
                await connection.close()
            if status == 200:
                return
        except (OSError, asyncio.IncompleteReadError):
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s")


@dataclass
class Http:
    lookup_ms: tuple[float, float]
    timeline_ms: tuple[float, float]
    rps_c16: float
    lookup_c16_ms: tuple[float, float]
    failures: Failures
    # Where the time goes: the server's CPU per request, and how busy the whole machine was.
    server_cpu_ms_c1: float | None
    server_cpu_ms_c16: float | None
    machine_busy_c16: float | None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU a process and its live children (`serve --workers`) have used so far
    (Linux /proc; None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            children = [int(child) for child in listing.read().split()]
    except OSError:
        return None
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) or 0.0 for child in children)


def machine_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine since boot, all cores (Linux /proc)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(t) for t in stat.readline().split()[1:]]
    except OSError:
        return None
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


class CpuMeter:
    """The server's CPU per request and the machine's busy fraction over one measured stretch."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._cpu = cpu_seconds(pid)
        self._ticks = machine_ticks()

    def per_request_ms(self, requests: int) -> float | None:
        now = cpu_seconds(self._pid)
        if now is None or self._cpu is None or not requests:
            return None
        return round((now - self._cpu) * 1000 / requests, 3)

    def machine_busy(self) -> float | None:
        now = machine_ticks()
        if now is None or self._ticks is None or now[1] == self._ticks[1]:
            return None
        return round((now[0] - self._ticks[0]) / (now[1] - self._ticks[1]), 3)


async def measure_http(port: int, key: str, server: subprocess.Popen[bytes], workload: Workload) -> Http:
    await wait_until_healthy(port, server)
    failures = Failures()
    lookups = [f"/api/v1/customers/lookup?phone={quote(d, safe='')}" for d in workload.dialled]
    pages = [f"/api/v1/customers/{c}/timeline?limit=50" for c in workload.timeline_customers]
    # Warm-up: imports, prepared statements, and all 16 pooled connections opened before timing.
    await sequential(port, key, lookups[:WARMUP], failures)
    await sequential(port, key, pages[:WARMUP], failures)
    await concurrent(port, key, lookups, failures, seconds=1.0, max_requests=C16_CONNECTIONS * 20)

    meter = CpuMeter(server.pid)
    lookup_ms = await sequential(port, key, lookups, failures)
    cpu_c1 = meter.per_request_ms(len(lookup_ms))
    timeline_ms = await sequential(port, key, pages, failures)
    meter = CpuMeter(server.pid)
    rps, c16_ms = await concurrent(
        port, key, lookups, failures, seconds=C16_SECONDS, max_requests=C16_MAX_REQUESTS
    )
    return Http(
        lookup_ms=p50_p99(lookup_ms),
        timeline_ms=p50_p99(timeline_ms),
        rps_c16=round(rps, 1),
        lookup_c16_ms=p50_p99(c16_ms),
        failures=failures,
        server_cpu_ms_c1=cpu_c1,
        server_cpu_ms_c16=meter.per_request_ms(len(c16_ms)),
        machine_busy_c16=meter.machine_busy(),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_http_phase(url: str, key: str, workload: Workload, workers: int) -> Http:
    port = free_port()
    env = os.environ | {
        "CENTRALITA_DATABASE_URL": url,
        "CENTRALITA_AUTO_MIGRATE": "false",
        "CENTRALITA_LOG_LEVEL": "WARNING",
        "CENTRALITA_DEFAULT_REGION": REGION,
        "CENTRALITA_AGI_PORT": str(free_port()),  # serve runs FastAGI too; 4573 may be taken
    }
    command = [sys.executable, "-c", "from centralita.cli import main; main()", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    log(f"starting `centralita serve --port {port} --workers {workers}`…")
    # The server's output joins ours on stderr, so that stdout stays one JSON object under --json.
    server = subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr)
    try:
        with asyncio.Runner(loop_factory=_client_loop()) as runner:
            return runner.run(measure_http(port, key, server, workload))
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _client_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: the client shares two cores with the server and PostgreSQL."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


# --------------------------------------------------------------------------------------------
# Report


def met(value: float, op: str, limit: float) -> bool:
    return value <= limit if op == "<=" else value >= limit


def verdict(value: float, op: str, limit: float) -> str:
    return "ok" if met(value, op, limit) else f"MISS by {abs(value - limit) / limit:.0%}"


def targets_met(results: dict[str, Any]) -> dict[str, bool]:
    return {key: met(results[key], op, limit) for key, (op, limit) in TARGETS.items()}


def print_table(results: dict[str, Any]) -> None:

    def fmt(value: float | None, unit: str) -> str:
        if value is None:
            return "n/a"
        if unit == "%":
            return f"{value:.0%}"
        if unit == "ms":
            return f"{value:.2f} ms"
        if unit == "req/s":
            return f"{value:,.0f} req/s"
        return f"{value:g}"

    # The floor sits beside the screen-pop latencies it bounds from below.
    floor_of = {
        "inprocess_lookup_p50_ms": results["floor_inprocess_p50_ms"],
        "inprocess_lookup_p99_ms": results["floor_inprocess_p99_ms"],
        "http_lookup_p50_ms": results["floor_inprocess_p50_ms"],
        "http_lookup_p99_ms": results["floor_inprocess_p99_ms"],
    }
    rows: list[tuple[str, ...]] = []
    for key, label, unit in (
        ("inprocess_lookup_p50_ms", "in-process screen pop p50", "ms"),
        ("inprocess_lookup_p99_ms", "in-process screen pop p99", "ms"),
        ("inprocess_lookup_serialise_p50_ms", "  of which building the JSON, p50", "ms"),
        ("http_lookup_p50_ms", "HTTP screen pop p50, c=1", "ms"),
        ("http_lookup_p99_ms", "HTTP screen pop p99, c=1", "ms"),
        ("http_rps_c16", "HTTP screen pops/s, c=16", "req/s"),
        ("http_lookup_c16_p50_ms", "HTTP screen pop p50, c=16", "ms"),
        ("http_lookup_c16_p99_ms", "HTTP screen pop p99, c=16", "ms"),
        ("http_server_cpu_ms_per_lookup_c1", "  server CPU per screen pop, c=1", "ms"),
        ("http_server_cpu_ms_per_lookup_c16", "  server CPU per screen pop, c=16", "ms"),
        ("machine_cpu_busy_c16", "  whole machine CPU busy during c=16", "%"),
        ("timeline_page_p50_ms", "HTTP timeline page (50 rows) p50, c=1", "ms"),
        ("timeline_page_p99_ms", "HTTP timeline page (50 rows) p99, c=1", "ms"),
        ("inprocess_timeline_page_p50_ms", "in-process timeline page (50 rows) p50", "ms"),
        ("inprocess_timeline_page_p99_ms", "in-process timeline page (50 rows) p99", "ms"),
        ("lookup_round_trips", "SQL round trips per screen pop", ""),
        ("timeline_round_trips", "SQL round trips per timeline page", ""),
    ):
        value = results[key]
        target = verdict_text = ""
        if key in TARGETS:
            op, limit = TARGETS[key]
            target, verdict_text = (
                f"{'≤' if op == '<=' else '≥'} {fmt(limit, unit)}",
                verdict(value, op, limit),
            )
        floor_text = fmt(floor_of[key], "ms") if key in floor_of else ""
        rows.append((label, fmt(value, unit), target, verdict_text, floor_text))

    print(
        f"\nCentralita screen-pop benchmark on {results['postgres']}\n"
        f"data: {results['customers']:,} customers, {results['identities']:,} identities, "
        f"{results['interactions']:,} interactions, {results['cases']:,} cases, "
        f"{results['interaction_refs']:,} interaction refs; loaded in {results['load_seconds']} s\n"
        f"{results['samples']:,} measured requests per latency figure, after {WARMUP} warm-up ones; "
        f"over HTTP: `centralita serve --workers {results['workers']}`\n"
        "floor = one hand-written SQL statement in which PostgreSQL builds the whole screen-pop JSON\n"
    )
    header = ("measure", "measured", "target", "verdict", "floor")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(
            f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  "
            f"{row[3]:<{widths[3]}}  {row[4]:>{widths[4]}}".rstrip()
        )
    failures = results["http_failures"]
    print(f"\nHTTP failures: {failures}" + (" (the figures above are NOT valid)" if failures else ""))
    for example in results["http_failure_examples"]:
        print(f"  {example}")


# --------------------------------------------------------------------------------------------
# Main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print only one JSON object on stdout")
    parser.add_argument("--customers", type=int, default=100_000, help="identities 1.5 N, interactions 10 N")
    parser.add_argument("--samples", type=int, default=2_000, help="measured requests per latency figure")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the screen-pop SQL (stderr)")
    parser.add_argument("--profile", action="store_true", help="cProfile in-process screen pops (stderr)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="`centralita serve --workers`, one process per core as deployed [default: the cores here]",
    )
    args = parser.parse_args(argv)
    if args.customers < 100 or args.samples < 1:
        parser.error("--customers must be at least 100 and --samples at least 1")
    return args


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Everything between creating the schema and dropping it."""
    container = build(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
    try:
        started = time.perf_counter()
        migrate.upgrade(container.engine)
        log(f"migrated in {time.perf_counter() - started:.1f} s")
        dataset = load(libpq_url(url), args.customers)
        workload = Workload.draw(dataset, args.samples)

        log("measuring the floor…")
        floor = measure_floor(libpq_url(url), workload)
        log("measuring in-process…")
        inprocess = measure_inprocess(container, workload, dataset)
        if args.explain:
            explain(container, dataset)
        if args.profile:
            profile_lookups(container, workload)
        with unit_of_work(container.session_factory) as db:
            _, key = keys.create_key(db=db, role=Role.ADMIN, name="bench")
        with container.engine.connect() as conn:
            postgres = str(conn.execute(text("SHOW server_version")).scalar())
    finally:
        container.close()

    log("measuring over HTTP…")
    http = run_http_phase(url, key, workload, args.workers)
    results: dict[str, Any] = {
        "inprocess_lookup_p50_ms": inprocess.lookup_ms[0],
        "inprocess_lookup_p99_ms": inprocess.lookup_ms[1],
        "inprocess_lookup_serialise_p50_ms": inprocess.serialise_ms[0],
        "inprocess_lookup_serialise_p99_ms": inprocess.serialise_ms[1],
        "http_lookup_p50_ms": http.lookup_ms[0],
        "http_lookup_p99_ms": http.lookup_ms[1],
        "http_rps_c16": http.rps_c16,
        "http_lookup_c16_p50_ms": http.lookup_c16_ms[0],
        "http_lookup_c16_p99_ms": http.lookup_c16_ms[1],
        "http_server_cpu_ms_per_lookup_c1": http.server_cpu_ms_c1,
        "http_server_cpu_ms_per_lookup_c16": http.server_cpu_ms_c16,
        "machine_cpu_busy_c16": http.machine_busy_c16,
        "timeline_page_p50_ms": http.timeline_ms[0],
        "timeline_page_p99_ms": http.timeline_ms[1],
        "inprocess_timeline_page_p50_ms": inprocess.timeline_ms[0],
        "inprocess_timeline_page_p99_ms": inprocess.timeline_ms[1],
        "floor_inprocess_p50_ms": floor[0],
        "floor_inprocess_p99_ms": floor[1],
        "lookup_round_trips": inprocess.lookup_round_trips,
        "timeline_round_trips": inprocess.timeline_round_trips,
        "load_seconds": dataset.load_seconds,
        "customers": dataset.customers,
        "identities": dataset.identities,
        "interactions": dataset.interactions,
        "cases": dataset.cases,
        "interaction_refs": dataset.interaction_refs,
        "samples": args.samples,
        "workers": args.workers,
        "http_failures": http.failures.count,
        "http_failure_examples": http.failures.examples,
        "postgres": f"PostgreSQL {postgres}",
    }
    results["targets_met"] = targets_met(results)
    return results


def _stop(signum: int, _frame: object) -> None:
    # Turn SIGTERM into an exception, so that the finally blocks stop the server and drop the schema.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    base = sqlalchemy_url(os.environ.get("CENTRALITA_BENCH_DATABASE_URL", DEFAULT_URL))
    schema = f"bench_lookup_{os.getpid()}"
    with psycopg.connect(libpq_url(base), autocommit=True) as admin:
        # Fails if the schema exists: it would be someone else's, and must not be dropped below.
        admin.execute(f'CREATE SCHEMA "{schema}"')
        log(f"created schema {schema}")
        try:
            results = run(args, sqlalchemy_url(with_search_path(base, schema)))
        finally:
            # Bounded, so a connection left holding a lock cannot hang the benchmark here.
            admin.execute("SET lock_timeout = '60s'")
            try:
                admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
            except psycopg.Error as exc:
                log(f"could NOT drop schema {schema} ({exc}); drop it by hand")
                raise
            log(f"dropped schema {schema}")

    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    if results["http_failures"]:
        log(f"{results['http_failures']} HTTP requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
