"""A campaign through `centralita serve` on the simulated network: created, loaded, started and watched
over HTTP, as a campaign manager would, with two worker processes (the dialer runs in one of them and
learns of the start from the database)."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from served import http, run_cli, serving
from test_campaigns_api import campaign_body


def upload_csv(base: str, key: str, campaign: int, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}/api/v1/campaigns/{campaign}/lists",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def midday_zone() -> str:
    """A time zone where it is around noon now: the callees may be called whatever the hour of the run."""
    offset = max(-12, min(14, 12 - datetime.now(UTC).hour))
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def test_a_campaign_runs_end_to_end_through_the_service(env: dict[str, str], tmp_path: Path) -> None:
    env = env | {"CENTRALITA_DIALER_NETWORK": "simulated", "CENTRALITA_DIALER_SIMULATION_SPEED": "200"}
    created = run_cli("keys", "create", "--role", "manager", "--name", "campaigns", env=env, cwd=tmp_path)
    key = created.stdout.strip().splitlines()[-1].split()[-1]
    zone = midday_zone()
    contacts = "phone,name,time_zone\n" + "".join(f"+44770090{i:04d},Caller {i},{zone}\n" for i in range(12))

    with serving("--workers", "2", env=env, cwd=tmp_path) as (_, base):
        body = campaign_body(mode="progressive", max_attempts=1, schedule={"time_zone": "Europe/Madrid"})
        status, campaign = http("POST", f"{base}/api/v1/campaigns", key, body)
        assert status == 201, campaign
        status, report = upload_csv(base, key, campaign["id"], contacts.encode())
        assert (status, report["rows_loaded"]) == (201, 12), report
        status, started = http("POST", f"{base}/api/v1/campaigns/{campaign['id']}/start", key)
        assert (status, started["status"]) == (200, "running"), started

        deadline = time.monotonic() + 90
        while True:
            status, stats = http("GET", f"{base}/api/v1/campaigns/{campaign['id']}/stats", key)
            assert status == 200, stats
            if stats["contacts_remaining"] == 0:
                break
            assert time.monotonic() < deadline, stats
            time.sleep(0.5)
        assert stats["dialed"] == 12 and stats["abandoned"] == 0
        status, compliance = http("GET", f"{base}/api/v1/campaigns/{campaign['id']}/compliance", key)
        assert status == 200 and all(rule["passed"] for rule in compliance["rules"]), compliance
        status, stopped = http("POST", f"{base}/api/v1/campaigns/{campaign['id']}/stop", key)
        assert stopped["status"] == "stopped"
