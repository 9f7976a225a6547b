"""Whole campaigns on the simulated network, on SQLite and PostgreSQL: the supervisor runs the real
runner, pacing and compliance code; callees answer, are busy or are machines, many times faster than
real time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from test_campaigns_api import campaign_body
from test_contact_lists_api import upload

from centralita.container import Container
from core.db import unit_of_work
from core.timeline.models import Interaction
from dialer.agent_availability import AgentAvailability
from dialer.clock import ScaledClock
from dialer.models import CampaignContact, DialAttempt
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork
from dialer.supervisor import DialerSupervisor

# A Monday, 10:00 in Madrid: inside the campaign's hours and every Spanish callee's.
MONDAY_MORNING = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SPEED = 300.0


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+346{i:08d}" for i in range(start, start + count)]


async def run_until_done(
    container: Container,
    network: SimulatedCallNetwork,
    campaign: int,
    seconds: float,
    agents: AgentAvailability | None = None,
) -> None:
    supervisor = DialerSupervisor(
        container.session_factory,
        container.engine,
        network,
        network.clock,
        region="ES",
        bus=container.bus,
        tick_seconds=1.0,
        agents=agents,
    )
    await supervisor.start()
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            with container.session_factory() as db:
                left = db.scalars(
                    select(CampaignContact.id).where(
                        CampaignContact.campaign_id == campaign,
                        CampaignContact.status.in_(("pending", "dialing")),
                    )
                ).first()
            if left is None:
                break
    finally:
        await supervisor.stop()
        await network.close()


def attempts_of(container: Container, campaign: int) -> list[DialAttempt]:
    with container.session_factory() as db:
        return list(db.scalars(select(DialAttempt).where(DialAttempt.campaign_id == campaign)))


def test_a_progressive_campaign_calls_every_contact_once_and_never_a_do_not_call_number(
    client: TestClient, container: Container
) -> None:
    body = campaign_body(mode="progressive", max_attempts=1, wrap_up_seconds=5)
    campaign = client.post("/api/v1/campaigns", json=body).json()["id"]
    contacts = numbers(24)
    csv = "phone\n" + "\n".join(contacts) + "\n"
    assert upload(client, campaign, csv.encode()).json()["rows_loaded"] == 24
    # Listed after the import: the dial-time check must still keep it from being called.
    client.post("/api/v1/do-not-call", json={"numbers": [contacts[3]]})
    assert client.post(f"/api/v1/campaigns/{campaign}/start").json()["status"] == "running"

    behaviour = CalleeBehaviour(live_answer=0.6, machine=0.1, busy=0.1, failed=0.0, talk_mean_s=40)
    network = SimulatedCallNetwork(ScaledClock(SPEED, start=MONDAY_MORNING), behaviour, seed=5)
    asyncio.run(run_until_done(container, network, campaign, seconds=60))

    made = attempts_of(container, campaign)
    dialed = [a.phone for a in made]
    assert contacts[3] not in dialed
    assert sorted(dialed) == sorted(set(contacts) - {contacts[3]})  # each once: max_attempts=1
    assert all(a.ended_at is not None and a.disposition for a in made)
    # Progressive never calls ahead of a free agent, so it never abandons a call.
    assert not [a for a in made if a.call_class == "abandoned"]
    assert {a.disposition for a in made} >= {"connected", "no_answer"}
    with container.session_factory() as db:
        blocked = db.scalars(
            select(CampaignContact).where(
                CampaignContact.campaign_id == campaign, CampaignContact.phone == contacts[3]
            )
        ).one()
        assert (blocked.status, blocked.last_disposition) == ("blocked", "global_do_not_call")
        interactions = db.scalars(select(Interaction).where(Interaction.campaign == body["name"])).all()
    assert len(interactions) == len(made)
    assert {(i.channel, i.direction) for i in interactions} == {("voice", "outbound")}

    # Every call is on its customer's timeline, found by number.
    connected = next(a for a in made if a.disposition == "connected")
    pop = client.get("/api/v1/customers/lookup", params={"phone": connected.phone}).json()
    assert pop["recent_interactions"][0]["campaign"] == body["name"]
    stats = client.get(f"/api/v1/campaigns/{campaign}/stats").json()
    assert stats["dialed"] == 23 and stats["abandoned"] == 0 and stats["contacts_remaining"] == 0
    report = client.get(f"/api/v1/campaigns/{campaign}/compliance").json()
    assert all(rule["passed"] for rule in report["rules"]), report

    # The agent the dialer bridged the call to sets its disposition, as in preview.
    assert connected.agent is not None
    url = f"/api/v1/campaigns/{campaign}/attempts/{connected.id}/disposition"
    other = "PJSIP/1002" if connected.agent == "PJSIP/1001" else "PJSIP/1001"
    assert client.post(url, json={"agent": other, "disposition": "sale"}).status_code == 409
    sold = client.post(url, json={"agent": connected.agent, "disposition": "sale"})
    assert sold.status_code == 200 and sold.json()["contact"]["status"] == "done", sold.text
    assert client.get(f"/api/v1/campaigns/{campaign}/stats").json()["dispositions"] == {"sale": 1}


def test_a_predictive_campaign_keeps_to_its_abandonment_target_and_abandoned_calls_hear_the_message(
    client: TestClient, container: Container
) -> None:
    body = campaign_body(
        mode="predictive",
        max_attempts=1,
        wrap_up_seconds=5,
        agents=[f"PJSIP/10{i:02d}" for i in range(4)],
        amd=True,
    )
    campaign = client.post("/api/v1/campaigns", json=body).json()["id"]
    csv = "phone\n" + "\n".join(numbers(200, start=1000)) + "\n"
    assert upload(client, campaign, csv.encode()).json()["rows_loaded"] == 200
    client.post(f"/api/v1/campaigns/{campaign}/start")

    behaviour = CalleeBehaviour(live_answer=0.3, machine=0.1, busy=0.05, failed=0.0, talk_mean_s=60)
    network = SimulatedCallNetwork(ScaledClock(SPEED, start=MONDAY_MORNING), behaviour, seed=11)
    asyncio.run(run_until_done(container, network, campaign, seconds=90))

    made = attempts_of(container, campaign)
    assert len(made) == 200
    live = [a for a in made if a.call_class in ("connected", "abandoned")]
    abandoned = [a for a in live if a.call_class == "abandoned"]
    assert live and len(abandoned) <= max(1, 0.06 * len(live))  # the target is 3%; a short run is noisy
    for call in abandoned:
        assert call.message_played_at is not None  # the message naming the company and a number
    machines = [a for a in made if a.amd == "machine"]
    assert machines and all(a.agent is None for a in machines)  # machines never take an agent
    # Predictive dials ahead of free agents: more calls at once than there are agents, at some point.
    assert _most_at_once(made) > 4


def _most_at_once(made: list[DialAttempt]) -> int:
    moments: list[tuple[datetime, int]] = []
    for attempt in made:
        assert attempt.ended_at is not None
        moments += [(attempt.dialed_at, 1), (attempt.ended_at + timedelta(microseconds=1), -1)]
    level = most = 0
    for _, change in sorted(moments):
        level += change
        most = max(most, level)
    return most


def test_a_campaign_pauses_itself_when_the_network_is_down_and_gives_back_its_contacts(
    client: TestClient, container: Container
) -> None:
    campaign = client.post("/api/v1/campaigns", json=campaign_body(mode="progressive")).json()["id"]
    upload(client, campaign, b"phone\n600111222\n600333444\n")
    client.post(f"/api/v1/campaigns/{campaign}/start")
    network = SimulatedCallNetwork(ScaledClock(SPEED, start=MONDAY_MORNING), available=False)
    asyncio.run(run_until_done(container, network, campaign, seconds=3))

    state = client.get(f"/api/v1/campaigns/{campaign}").json()
    assert state["status"] == "paused" and "unavailable" in state["status_reason"]
    with unit_of_work(container.session_factory) as db:
        contacts = db.scalars(select(CampaignContact).where(CampaignContact.campaign_id == campaign)).all()
        assert {(c.status, c.attempts) for c in contacts} == {("pending", 0)}  # nothing counted
    assert {a.disposition for a in attempts_of(container, campaign)} <= {"not_placed"}
