"""A whole outbound campaign through `centralita serve` against a real Asterisk: created, loaded, started
and watched over HTTP as a campaign manager would, with the dialer on the ARI network and two worker
processes (the dialer runs in one of them and learns of the start from the database). The list holds
ordinary E.164 numbers; the rendered `centralita-test-numbers` context makes each one behave as its last
digit says (a person, an answering machine, busy, no answer, congested), so AMD and the agents meet real
audio and real channels. The service runs a Stasis application of its own, so a running Centralita
never sees its calls."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from asterisk_calls import TEST_AGENT, TEST_NUMBERS, ari_base_url
from served import http, run_cli, serving

from core.settings import Settings
from voice.ari.client import AriClient

CAMPAIGN_CALLER_ID = "+34910000000"
AGENTS = [f"Local/1001@{TEST_AGENT}", f"Local/1002@{TEST_AGENT}"]
RING_TIMEOUT = 15
# What becomes of a number of the test context, by its last digit: disposition, AMD verdict.
EXPECTED = {
    **{digit: ("connected", "human") for digit in "12345"},
    **{digit: ("answering_machine", "machine") for digit in "67"},
    "8": ("busy", None),
    "9": ("no_answer", None),
    "0": ("failed", None),
}


def midday_zone() -> str:
    """A time zone where it is around noon now: the callees may be called whatever the hour of the run."""
    offset = max(-12, min(14, 12 - datetime.now(UTC).hour))
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def upload_csv(base: str, key: str, campaign: int, body: bytes) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{base}/api/v1/campaigns/{campaign}/lists",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def campaign_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "mode": "progressive",
        "country": "ES",
        "caller_id": CAMPAIGN_CALLER_ID,
        "company_name": "Seguros Sol",
        "queue": "renewals",
        "schedule": {"time_zone": "Europe/Madrid"},
        "abandon_message": "Le llamábamos de Seguros Sol. Llámenos al 910 000 000. Gracias.",
        "agents": AGENTS,
        "amd": True,
        "ring_timeout_seconds": RING_TIMEOUT,
        "max_attempts": 1,
        "wrap_up_seconds": 1,
    }


def channels_left(settings: Settings, refs: list[str]) -> list[str]:
    """The channels of these calls (callees, agents' legs, Local halves) still up in Asterisk."""

    async def read() -> list[str]:
        base = ari_base_url(settings)
        async with AriClient(base, settings.asterisk_ari_user, settings.asterisk_ari_password) as ari:
            return [c.id for c in await ari.list_channels() if c.id.startswith(tuple(refs))]

    return asyncio.run(read()) if refs else []


def test_a_progressive_campaign_with_amd_reaches_people_and_records_every_kind_of_line(
    env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    app = f"{settings.asterisk_ari_app}-e2e-campaign-{uuid.uuid4().hex[:8]}"
    env = env | {
        "CENTRALITA_DIALER_NETWORK": "ari",
        "CENTRALITA_DIALER_ENDPOINT": f"Local/{{digits}}@{TEST_NUMBERS}",
        "CENTRALITA_ASTERISK_ARI_APP": app,
        # Nobody reads the service's output until it stops: at INFO (a few lines a second while it
        # dials) a slow run would fill the pipe and stall the service.
        "CENTRALITA_LOG_LEVEL": "WARNING",
    }
    created = run_cli("keys", "create", "--role", "manager", "--name", "campaigns", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1].split()[-1]
    name = f"E2E renewals {uuid.uuid4().hex[:6]}"
    zone = midday_zone()
    # One number per last digit: five people, two machines, busy, no answer, congested.
    numbers = {f"+44770090{index:04d}": str(index % 10) for index in range(10)}
    contacts = "phone,name,time_zone\n" + "".join(f"{n},Callee {n[-1]},{zone}\n" for n in numbers)

    with serving("--workers", "2", env=env, cwd=tmp_path) as (server, base):
        status, campaign = http("POST", f"{base}/api/v1/campaigns", key, campaign_body(name))
        assert status == 201, campaign
        url = f"{base}/api/v1/campaigns/{campaign['id']}"
        status, report = upload_csv(base, key, campaign["id"], contacts.encode())
        assert (status, report["rows_loaded"]) == (201, len(numbers)), report
        status, started = http("POST", f"{url}/start", key)
        assert (status, started["status"]) == (200, "running"), started

        began = time.monotonic()
        deadline = began + 180
        most_calls = 0
        while True:
            status, stats = http("GET", f"{url}/stats", key)
            assert status == 200, stats
            assert stats["status"] == "running", stats  # it would pause itself if Asterisk were lost
            most_calls = max(most_calls, stats["calls_in_progress"] or 0)
            if stats["contacts_remaining"] == 0 and not stats["calls_in_progress"]:
                break
            assert time.monotonic() < deadline, stats
            time.sleep(0.5)
        took = time.monotonic() - began

        people = sum(1 for digit in numbers.values() if EXPECTED[digit][0] == "connected")
        machines = sum(1 for digit in numbers.values() if EXPECTED[digit][0] == "answering_machine")
        assert stats["dialed"] == len(numbers), stats
        assert (stats["answered"], stats["connected"], stats["abandoned"]) == (people, people, 0), stats
        assert stats["machines"] == machines, stats
        assert stats["contacts"] == {"done": people, "exhausted": len(numbers) - people}, stats
        # Progressive: never more calls at once than agents (as the dialing worker's answers showed it).
        assert most_calls <= len(AGENTS), most_calls

        status, compliance = http("GET", f"{url}/compliance", key)
        assert status == 200 and all(rule["passed"] for rule in compliance["rules"]), compliance
        rules = {rule["rule"]: rule for rule in compliance["rules"]}
        # What the rules were measured on: the people as live calls, the one unanswered line.
        for window in ("abandonment_rate_30_days", "abandonment_rate_24_hours"):
            assert (rules[window]["counted"], rules[window]["out_of"]) == (0, people), rules[window]
        assert rules["minimum_ring_before_no_answer"]["out_of"] == 1, rules

        seen: dict[str, dict[str, Any]] = {}
        for number in numbers:
            status, found = http("GET", f"{base}/api/v1/customers?phone={quote(number)}", key)
            assert status == 200 and len(found["items"]) == 1, found
            status, page = http("GET", f"{base}/api/v1/customers/{found['items'][0]['id']}/timeline", key)
            assert status == 200, page
            calls = [i for i in page["items"] if i["channel"] == "voice" and i["direction"] == "outbound"]
            assert len(calls) == 1 and calls[0]["campaign"] == name, page
            seen[number] = calls[0]

        for number, digit in numbers.items():
            call = seen[number]
            disposition, amd = EXPECTED[digit]
            assert (call["disposition"], call["attributes"]["amd"]) == (disposition, amd), (number, call)
            assert call["attributes"]["phone"] == number
            if disposition == "connected":
                assert call["agent"] in AGENTS, call
                assert call["outcome"] == "completed", call
            else:
                assert call["agent"] is None, call
            if disposition == "no_answer":
                rang = datetime.fromisoformat(call["ended_at"]) - datetime.fromisoformat(call["started_at"])
                assert rang.total_seconds() >= RING_TIMEOUT, call

        refs = [call["attributes"]["call_ref"] for call in seen.values()]
        assert channels_left(settings, refs) == []
        status, stopped = http("POST", f"{url}/stop", key)
        assert (status, stopped["status"]) == (200, "stopped"), stopped
        assert server.poll() is None

    print(
        f"\n{len(numbers)} numbers dialed through Asterisk in {took:.1f}s with {len(AGENTS)} agents: "
        + ", ".join(f"{n[-1]}={seen[n]['disposition']}" for n in numbers)
    )
