"""Preview campaigns through the API, on SQLite and PostgreSQL: agents ask for their next contact, see
it with the customer's screen pop, dial it or skip it; the dial-time rules apply at the moment of the
dial; reservations time out; two agents never get the same contact.

The API reads time from the dialer running in its process; these tests give it a dialer that is only a
clock they move (no calls are placed), except the last one, which runs the real supervisor on the
simulated network."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from test_campaigns_api import campaign_body
from test_contact_lists_api import upload

from centralita.container import Container
from core.auth.roles import Role
from core.db import unit_of_work
from dialer import preview
from dialer.clock import ScaledClock
from dialer.models import CampaignContact, DialAttempt
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork
from dialer.supervisor import DialerSupervisor

AGENT_1, AGENT_2 = "PJSIP/1001", "PJSIP/1002"
# A Monday, 10:00 in Madrid: inside the campaign's hours and every Spanish callee's.
MONDAY_MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class ManualClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+346{i:08d}" for i in range(start, start + count)]


def with_clock(client: TestClient, at: datetime = MONDAY_MORNING) -> ManualClock:
    """A dialer in the API's process that is only a clock: preview dials wait as `requested`."""
    clock = ManualClock(at)
    cast(FastAPI, client.app).state.dialer = SimpleNamespace(clock=clock, runners={})
    return clock


def preview_campaign(client: TestClient, contacts: list[str], **changes: Any) -> int:
    body = campaign_body(mode="preview", schedule={"time_zone": "Europe/Madrid"}) | changes
    created = client.post("/api/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    campaign = int(created.json()["id"])
    rows = "".join(f"{number},Cliente {i},{i}\n" for i, number in enumerate(contacts))
    loaded = upload(client, campaign, f"phone,name,policy\n{rows}".encode()).json()
    assert loaded["rows_loaded"] == len(contacts), loaded
    assert client.post(f"/api/v1/campaigns/{campaign}/start").json()["status"] == "running"
    return campaign


def ask(client: TestClient, campaign: int, agent: str, **headers: str) -> Any:
    return client.post(f"/api/v1/campaigns/{campaign}/preview/next", json={"agent": agent}, headers=headers)


def dial(client: TestClient, campaign: int, contact: int, agent: str) -> Any:
    return client.post(f"/api/v1/campaigns/{campaign}/preview/{contact}/dial", json={"agent": agent})


def skip(client: TestClient, campaign: int, contact: int, agent: str, **body: Any) -> Any:
    return client.post(
        f"/api/v1/campaigns/{campaign}/preview/{contact}/skip", json={"agent": agent, "reason": "test"} | body
    )


def contact_row(container: Container, contact: int) -> CampaignContact:
    with container.session_factory() as db:
        row = db.get(CampaignContact, contact)
        assert row is not None
        return row


def attempts_of(container: Container, campaign: int) -> list[DialAttempt]:
    with container.session_factory() as db:
        return list(db.scalars(select(DialAttempt).where(DialAttempt.campaign_id == campaign)))


def test_each_agent_gets_a_contact_of_their_own_with_the_customer_screen_pop(
    client: TestClient, make_key: Any
) -> None:
    clock = with_clock(client)
    contacts = numbers(3)
    campaign = preview_campaign(client, contacts)
    agent_key = {"Authorization": f"Bearer {make_key(Role.AGENT)}"}

    first = ask(client, campaign, AGENT_1, **agent_key)
    assert first.status_code == 200, first.text
    shown = first.json()
    assert shown["contact"]["phone"] == contacts[0] and shown["contact"]["status"] == "previewing"
    assert shown["contact"]["attributes"] == {"name": "Cliente 0", "policy": "0"}  # not the dialer's notes
    assert shown["customer"]["customer"]["name"] == "Cliente 0"
    assert shown["customer"]["customer"]["id"] == shown["contact"]["customer_id"]
    assert datetime.fromisoformat(shown["expires_at"]) == clock.now() + timedelta(seconds=120)

    second = ask(client, campaign, AGENT_2, **agent_key).json()
    assert second["contact"]["phone"] == contacts[1]
    # Asking again (a retry, a reload) gives the same contact, not another one.
    clock.advance(seconds=30)
    assert ask(client, campaign, AGENT_1).json()["contact"]["id"] == shown["contact"]["id"]
    stats = client.get(f"/api/v1/campaigns/{campaign}/stats").json()
    assert stats["contacts"] == {"previewing": 2, "pending": 1} and stats["contacts_remaining"] == 3


def test_who_may_ask_and_for_which_campaign(client: TestClient, make_key: Any) -> None:
    with_clock(client)
    campaign = preview_campaign(client, numbers(2))
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    refused = ask(client, campaign, AGENT_1, **integration)
    assert refused.status_code == 403 and "campaigns:work" in refused.json()["detail"]
    stranger = ask(client, campaign, "PJSIP/1999")
    assert stranger.status_code == 409 and "not an agent of campaign" in stranger.json()["detail"]
    assert ask(client, 999999, AGENT_1).status_code == 404
    assert (
        client.post(f"/api/v1/campaigns/{campaign}/preview/next", json={"agent": "nobody"}).status_code == 422
    )

    progressive = client.post(
        "/api/v1/campaigns", json=campaign_body(name="Progresiva", mode="progressive")
    ).json()["id"]
    wrong_mode = ask(client, progressive, AGENT_1)
    assert wrong_mode.status_code == 409 and "preview campaigns" in wrong_mode.json()["detail"]
    client.post(f"/api/v1/campaigns/{campaign}/pause")
    paused = ask(client, campaign, AGENT_1)
    assert paused.status_code == 409 and "paused" in paused.json()["detail"]


def test_a_reservation_nobody_acts_on_returns_to_the_list_when_it_times_out(
    client: TestClient, container: Container
) -> None:
    clock = with_clock(client)
    campaign = preview_campaign(client, numbers(1), preview_timeout_seconds=60)
    contact = ask(client, campaign, AGENT_1).json()["contact"]["id"]
    assert ask(client, campaign, AGENT_2).status_code == 204  # held for agent 1

    clock.advance(seconds=61)
    taken = ask(client, campaign, AGENT_2)
    assert taken.status_code == 200 and taken.json()["contact"]["id"] == contact
    late = dial(client, campaign, contact, AGENT_1)
    assert late.status_code == 409 and "another agent" in late.json()["detail"]
    assert skip(client, campaign, contact, AGENT_1).status_code == 409

    # Agent 2 lets it time out too: its own dial is then refused, and nothing was dialed.
    clock.advance(seconds=61)
    expired = dial(client, campaign, contact, AGENT_2)
    assert expired.status_code == 409 and "went back to the list" in expired.json()["detail"]
    assert attempts_of(container, campaign) == []
    assert ask(client, campaign, AGENT_1).json()["contact"]["id"] == contact


def test_a_number_listed_or_a_consent_withdrawn_after_the_preview_is_refused_at_dial_time(
    client: TestClient, container: Container
) -> None:
    with_clock(client)
    contacts = numbers(3)
    campaign = preview_campaign(client, contacts)

    shown = ask(client, campaign, AGENT_1).json()["contact"]
    client.post("/api/v1/do-not-call", json={"numbers": [contacts[0]], "reason": "asked by email"})
    refused = dial(client, campaign, shown["id"], AGENT_1)
    assert refused.status_code == 409, refused.text
    assert [v["rule"] for v in refused.json()["violations"]] == ["global_do_not_call"]
    assert (
        contact_row(container, shown["id"]).status,
        contact_row(container, shown["id"]).last_disposition,
    ) == (
        "blocked",
        "global_do_not_call",
    )

    shown = ask(client, campaign, AGENT_1).json()["contact"]
    client.post(f"/api/v1/campaigns/{campaign}/do-not-call", json={"numbers": [contacts[1]]})
    assert (
        dial(client, campaign, shown["id"], AGENT_1).json()["violations"][0]["rule"] == "campaign_do_not_call"
    )

    shown = ask(client, campaign, AGENT_1).json()["contact"]
    withdrawn = {"consents": {"calls": {"granted": False, "source": "phone"}}}
    assert client.patch(f"/api/v1/customers/{shown['customer_id']}", json=withdrawn).status_code == 200
    assert dial(client, campaign, shown["id"], AGENT_1).json()["violations"][0]["rule"] == "consent_withdrawn"

    assert attempts_of(container, campaign) == []  # nothing was dialed
    assert ask(client, campaign, AGENT_1).status_code == 204


def test_a_dial_after_the_callee_hours_end_is_refused_and_deferred_to_their_morning(
    client: TestClient, container: Container
) -> None:
    # 20:59 in Madrid: the callee may be called for one more minute.
    clock = with_clock(client, datetime(2026, 11, 23, 19, 59, tzinfo=UTC))
    campaign = preview_campaign(client, numbers(1))
    contact = ask(client, campaign, AGENT_1).json()["contact"]["id"]
    clock.advance(seconds=90)
    refused = dial(client, campaign, contact, AGENT_1)
    assert refused.status_code == 409
    assert refused.json()["violations"][0]["rule"] == "outside_callee_hours"
    row = contact_row(container, contact)
    # A Spanish mobile may be in the Canaries, an hour behind: 09:00 there is the first lawful moment.
    assert row.status == "pending" and row.next_attempt_at == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    assert ask(client, campaign, AGENT_1).status_code == 204


def test_the_next_contact_passes_over_numbers_that_may_not_be_called(
    client: TestClient, container: Container
) -> None:
    with_clock(client)
    contacts = numbers(3)
    campaign = preview_campaign(client, contacts)
    client.post("/api/v1/do-not-call", json={"numbers": contacts[:2]})
    shown = ask(client, campaign, AGENT_1).json()
    assert shown["contact"]["phone"] == contacts[2] and shown["passed_over"] == 2
    stats = client.get(f"/api/v1/campaigns/{campaign}/stats").json()
    assert stats["contacts"] == {"blocked": 2, "previewing": 1}


def test_a_skip_is_final_or_until_a_time_and_is_audited(client: TestClient, container: Container) -> None:
    clock = with_clock(client)
    contacts = numbers(2)
    campaign = preview_campaign(client, contacts)

    first = ask(client, campaign, AGENT_1).json()["contact"]["id"]
    assert skip(client, campaign, first, AGENT_2).status_code == 409  # not theirs
    past = skip(client, campaign, first, AGENT_1, retry_at=(clock.now() - timedelta(hours=1)).isoformat())
    assert past.status_code == 422 and "future" in past.json()["detail"]
    both = skip(
        client, campaign, first, AGENT_1, final=True, retry_at=(clock.now() + timedelta(hours=1)).isoformat()
    )
    assert both.status_code == 422
    done = skip(client, campaign, first, AGENT_1, final=True, reason="already renewed by phone")
    assert done.status_code == 200 and done.json()["status"] == "skipped", done.text
    assert "@dialer" not in done.json()["attributes"]

    second = ask(client, campaign, AGENT_1).json()["contact"]["id"]
    later = skip(client, campaign, second, AGENT_1)
    assert later.json()["status"] == "pending"
    assert datetime.fromisoformat(later.json()["next_attempt_at"]) == clock.now() + timedelta(hours=1)
    assert ask(client, campaign, AGENT_1).status_code == 204  # nothing due until then
    clock.advance(hours=1, seconds=1)
    assert ask(client, campaign, AGENT_1).json()["contact"]["id"] == second

    audit = client.get(
        "/api/v1/audit", params={"subject_type": "campaign_contact", "subject_id": first}
    ).json()
    assert [(e["action"], e["details"]["reason"], e["details"]["final"]) for e in audit] == [
        ("campaign.contact_skipped", "already renewed by phone", True)
    ]
    assert attempts_of(container, campaign) == []


def test_a_dial_waits_for_the_dialer_and_the_agent_gets_nothing_new_meanwhile(
    client: TestClient, container: Container
) -> None:
    with_clock(client)
    campaign = preview_campaign(client, numbers(2))
    contact = ask(client, campaign, AGENT_1).json()["contact"]["id"]
    accepted = dial(client, campaign, contact, AGENT_1)
    assert accepted.status_code == 202, accepted.text
    attempt = accepted.json()["attempt"]
    assert (attempt["state"], attempt["agent"], attempt["attempt"]) == ("requested", AGENT_1, 1)
    assert accepted.json()["contact"]["status"] == "dialing"
    busy = ask(client, campaign, AGENT_1)
    assert busy.status_code == 409 and "on a call" in busy.json()["detail"]
    assert dial(client, campaign, contact, AGENT_1).status_code == 409  # not reserved any more
    read = client.get(f"/api/v1/campaigns/{campaign}/attempts/{attempt['id']}")
    assert read.json()["state"] == "requested" and read.json()["agent_disposition"] is None
    assert client.get(f"/api/v1/campaigns/{campaign}/attempts/999999").status_code == 404


def test_a_dial_needs_a_process_that_places_calls(client: TestClient) -> None:
    with_clock(client)
    campaign = preview_campaign(client, numbers(1))
    contact = ask(client, campaign, AGENT_1).json()["contact"]["id"]
    cast(FastAPI, client.app).state.dialer = None  # and CENTRALITA_DIALER_NETWORK is off
    refused = dial(client, campaign, contact, AGENT_1)
    assert refused.status_code == 409 and "CENTRALITA_DIALER_NETWORK" in refused.json()["detail"]


def test_agents_asking_at_the_same_moment_never_get_the_same_contact(
    container: Container, client: TestClient
) -> None:
    agents = [f"PJSIP/2{i:03d}" for i in range(12)]
    campaign = preview_campaign(client, numbers(20), agents=agents)
    now = datetime.now(UTC).replace(hour=10)  # any day: the campaign runs every day, all day
    gate = threading.Barrier(len(agents))
    got: dict[str, int | None] = {}
    failures: list[BaseException] = []

    def work(agent: str) -> None:
        try:
            gate.wait(timeout=10)
            with unit_of_work(container.session_factory) as db:
                shown = preview.next_contact(db=db, campaign_id=campaign, agent=agent, actor="test", now=now)
                got[agent] = shown.contact.id if shown else None
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures, failures
    reserved = [contact for contact in got.values() if contact is not None]
    assert len(reserved) == len(agents) and len(set(reserved)) == len(agents), got
    with container.session_factory() as db:
        held = {
            row.id: preview.reservation_of(row)
            for row in db.scalars(select(CampaignContact).where(CampaignContact.status == "previewing"))
        }
    assert set(held) == set(reserved)
    assert {agent: held[contact]["agent"] for agent, contact in got.items() if contact} == {  # type: ignore[index]
        agent: agent for agent in agents
    }


def test_a_preview_call_is_placed_by_the_dialer_and_bridged_to_the_agent_who_dialed(
    client: TestClient, container: Container
) -> None:
    contacts = numbers(3, start=500)
    campaign = preview_campaign(client, contacts, preview_timeout_seconds=3600)  # 12 s at 300 times
    behaviour = CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0, talk_mean_s=30)
    network = SimulatedCallNetwork(ScaledClock(300.0, start=MONDAY_MORNING), behaviour, seed=3)

    async def scenario() -> dict[str, Any]:
        supervisor = DialerSupervisor(
            container.session_factory, container.engine, network, network.clock, region="ES", tick_seconds=1.0
        )
        cast(FastAPI, client.app).state.dialer = supervisor
        await supervisor.start()
        try:
            shown = (await asyncio.to_thread(ask, client, campaign, AGENT_2)).json()["contact"]
            await asyncio.sleep(
                0.5
            )  # the runner ticks ~10 times (2.5 min of its clock): a preview campaign dials nothing itself
            assert attempts_of(container, campaign) == []
            accepted = await asyncio.to_thread(dial, client, campaign, shown["id"], AGENT_2)
            assert accepted.status_code == 202, accepted.text
            url = f"/api/v1/campaigns/{campaign}/attempts/{accepted.json()['attempt']['id']}"
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                attempt: dict[str, Any] = (await asyncio.to_thread(client.get, url)).json()
                if attempt["state"] == "ended":
                    return attempt
                assert asyncio.get_running_loop().time() < deadline, attempt
                await asyncio.sleep(0.05)
        finally:
            await supervisor.stop()
            await network.close()

    attempt = asyncio.run(scenario())
    assert attempt["agent"] == AGENT_2 and attempt["connected_at"] is not None
    assert (attempt["disposition"], attempt["call_class"]) == ("connected", "connected")
    # Placed when the runner took it, so the ring is measured from the real dial.
    assert attempt["dialed_at"] < attempt["answered_at"] <= attempt["connected_at"] < attempt["ended_at"]
    assert [a.phone for a in attempts_of(container, campaign)] == [contacts[0]]

    sold = client.post(
        f"/api/v1/campaigns/{campaign}/attempts/{attempt['id']}/disposition",
        json={"agent": AGENT_2, "disposition": "sale", "note": "two-year renewal"},
    )
    assert sold.status_code == 200, sold.text
    assert sold.json()["contact"]["status"] == "done"
    stats = client.get(f"/api/v1/campaigns/{campaign}/stats").json()
    assert (stats["dialed"], stats["connected"], stats["abandoned"]) == (1, 1, 0)
    assert stats["dispositions"] == {"sale": 1}
    report = client.get(f"/api/v1/campaigns/{campaign}/compliance").json()
    assert all(rule["passed"] for rule in report["rules"]), report
    assert "preview" in report["notes"][0]


async def run_supervisor(
    container: Container, network: SimulatedCallNetwork, until: Any, seconds: float
) -> None:
    """Run the dialer until `until()` holds (checked in a thread: it reads the database)."""
    supervisor = DialerSupervisor(
        container.session_factory, container.engine, network, network.clock, region="ES", tick_seconds=1.0
    )
    await supervisor.start()
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while not await asyncio.to_thread(until):
            assert asyncio.get_running_loop().time() < deadline, "the dialer did not get there in time"
            await asyncio.sleep(0.05)
    finally:
        await supervisor.stop()
        await network.close()


def test_dials_a_stopped_dialer_left_unplaced_are_given_back_and_fresh_ones_placed(
    client: TestClient, container: Container
) -> None:
    clock = with_clock(client)
    campaign = preview_campaign(client, numbers(2, start=700), preview_timeout_seconds=600)
    old = dial(client, campaign, ask(client, campaign, AGENT_1).json()["contact"]["id"], AGENT_1).json()
    clock.advance(minutes=15)
    fresh = dial(client, campaign, ask(client, campaign, AGENT_2).json()["contact"]["id"], AGENT_2).json()
    assert old["attempt"]["state"] == fresh["attempt"]["state"] == "requested"

    # The dialer starts 15 minutes after the first request (more than the 10-minute reservation).
    behaviour = CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0, talk_mean_s=20)
    network = SimulatedCallNetwork(ScaledClock(300.0, start=clock.now() + timedelta(seconds=5)), behaviour)

    def fresh_call_ended() -> bool:
        with container.session_factory() as db:
            row = db.get(DialAttempt, fresh["attempt"]["id"])
            return row is not None and row.ended_at is not None

    asyncio.run(run_supervisor(container, network, fresh_call_ended, seconds=20))
    with container.session_factory() as db:
        given_back = db.get(DialAttempt, old["attempt"]["id"])
        placed = db.get(DialAttempt, fresh["attempt"]["id"])
        assert given_back is not None and placed is not None
        assert (given_back.disposition, given_back.call_ref) == ("not_placed", None)
        assert (placed.disposition, placed.agent, placed.call_ref) == (
            "connected",
            AGENT_2,
            f"sim-{placed.id}",
        )
    returned = contact_row(container, old["contact"]["id"])
    assert (returned.status, returned.attempts) == ("pending", 0)  # not counted: it never rang


class AgentAway(SimulatedCallNetwork):
    async def connect(self, call: Any, agent: str) -> None:
        raise LookupError(f"{agent} did not answer their phone")


def test_a_preview_call_its_agent_cannot_take_hears_the_message_and_counts_as_abandoned(
    client: TestClient, container: Container
) -> None:
    clock = with_clock(client)
    campaign = preview_campaign(client, numbers(1, start=800), preview_timeout_seconds=3600)
    accepted = dial(client, campaign, ask(client, campaign, AGENT_1).json()["contact"]["id"], AGENT_1).json()
    behaviour = CalleeBehaviour(live_answer=1.0, machine=0.0, busy=0.0, failed=0.0)
    network = AgentAway(ScaledClock(300.0, start=clock.now()), behaviour)

    def ended() -> bool:
        with container.session_factory() as db:
            row = db.get(DialAttempt, accepted["attempt"]["id"])
            return row is not None and row.ended_at is not None

    asyncio.run(run_supervisor(container, network, ended, seconds=20))
    with container.session_factory() as db:
        row = db.get(DialAttempt, accepted["attempt"]["id"])
        assert row is not None
        assert (row.call_class, row.agent, row.connected_at) == ("abandoned", AGENT_1, None)
        assert row.message_played_at is not None  # the campaign's message, not silence
