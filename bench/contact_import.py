"""A contact list of N rows (default 1,000,000) imported into a campaign, through the production path.

    .venv/bin/python bench/contact_import.py                 # 1M rows into PostgreSQL, a table
    .venv/bin/python bench/contact_import.py --rows 20000    # a smoke run
    .venv/bin/python bench/contact_import.py --json          # one JSON object on stdout

The CSV is generated as a stream of 64 KiB chunks (never whole in memory) with the mix a real list
has: numbers in national, international and E.164 form, names with accents, an email, an extra column,
about 2% invalid numbers and 1% duplicates, and 500 numbers on the do-not-call list. It goes through
`dialer.list_import.import_contact_list` (the code behind `POST /campaigns/{id}/lists`): parsing,
do-not-call screening, customers found or created, contacts inserted, problems recorded. Target: 1M
rows in under 60 s on this machine. Peak memory (max RSS) is printed too: it must not grow with N.
So are this process's CPU seconds and the load average before and after: the machine is shared, and a
busy one stretches the wall-clock time of the same work.

PostgreSQL comes from CENTRALITA_BENCH_DATABASE_URL (default: this machine's `test` database); the run
works in a throw-away schema, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import psycopg

from centralita.container import build
from core.db import unit_of_work, utcnow
from core.settings import Settings
from dialer import campaigns
from dialer import do_not_call_store as dnc
from dialer.campaign_rules import CampaignSettings
from dialer.list_import import import_contact_list

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_SECONDS = 60.0
NAMES = ["Ana García", "Luis Pérez", "María Núñez", "José Martín", "Lucía Fernández", "Íñigo Ortiz"]


def rows(count: int, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    yield "telefono;nombre;email;poliza\n"
    for i in range(count):
        number = 600_000_000 + i
        kind = rng.random()
        if kind < 0.02:
            phone = f"12{i}"  # too short: invalid
        elif kind < 0.03 and i:
            phone = str(600_000_000 + rng.randrange(i))  # a number seen before: duplicate
        elif kind < 0.4:
            phone = f"{str(number)[:3]} {str(number)[3:6]} {str(number)[6:]}"
        elif kind < 0.6:
            phone = f"0034 {number}"
        else:
            phone = f"+34{number}"
        name = rng.choice(NAMES)
        yield f"{phone};{name} {i};cliente{i}@example.com;P-{i:07d}\n"


async def chunks(count: int, seed: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    buffer: list[str] = []
    length = 0
    for line in rows(count, seed):
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield "".join(buffer).encode()
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode()


def campaign_settings() -> CampaignSettings:
    return CampaignSettings.model_validate(
        {
            "name": "bench import",
            "mode": "progressive",
            "country": "ES",
            "caller_id": "910000000",
            "company_name": "Seguros Sol",
            "queue": "renewals",
            "schedule": {"time_zone": "Europe/Madrid"},
            "abandon_message": "Le llamábamos de Seguros Sol. Llámenos al 910 000 000.",
            "agents": ["PJSIP/1001"],
        }
    )


def run(count: int, url: str) -> dict[str, object]:
    container = build(Settings(database_url=url))
    container.migrate()
    try:
        with unit_of_work(container.session_factory) as db:
            campaign = campaigns.create_campaign(
                db=db, settings=campaign_settings(), actor="bench", now=utcnow()
            )
            dnc.add_numbers(
                db=db,
                numbers=[f"+34{600_000_000 + i}" for i in range(0, count, max(1, count // 500))][:500],
                campaign_id=None,
                reason="bench",
                actor="bench",
                region="ES",
            )
            campaign_id = campaign.id
        load_before = os.getloadavg()[0]
        cpu_before = time.process_time()
        started = time.perf_counter()
        report = asyncio.run(
            import_contact_list(
                chunks(count, seed=7),
                sessions=container.session_factory,
                campaign_id=campaign_id,
                filename="bench.csv",
            )
        )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_before
        load_after = os.getloadavg()[0]
    finally:
        container.close()
    return {
        "rows": count,
        "seconds": round(seconds, 2),
        "rows_per_second": round(count / seconds),
        "loaded": report.rows_loaded,
        "rejected": report.rows_rejected,
        "problems": report.summary.get("problems", {}),
        "status": report.status,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "python_cpu_seconds": round(cpu_seconds, 1),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "target_seconds": TARGET_SECONDS,
        "target_met": seconds <= TARGET_SECONDS * count / 1_000_000,
    }


def _stop(signum: int, _frame: object) -> None:
    # Turn SIGTERM into an exception, so that the finally block drops the schema.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    base = os.environ.get("CENTRALITA_BENCH_DATABASE_URL", DEFAULT_URL)
    schema = f"bench_import_{os.getpid()}"
    libpq = "postgresql://" + base.split("://", 1)[1]
    with psycopg.connect(libpq, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            separator = "&" if "?" in base else "?"
            results = run(args.rows, f"{base}{separator}options=-csearch_path%3D{schema}")
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if args.json:
        print(json.dumps(results))
    else:
        for key, value in results.items():
            print(f"{key:>16}: {value}")
    return 0 if results["status"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
