"""Agents who work both a campaign and the inbound queues (blended), on SQLite and PostgreSQL: the dialer
takes only agents the ACD has ready, and its calls put them on a call in the ACD."""

from __future__ import annotations

import asyncio

from fastapi.testclient import TestClient
from sqlalchemy import select
from test_campaign_runs import MONDAY_MORNING, SPEED, attempts_of, numbers, run_until_done
from test_campaigns_api import campaign_body
from test_contact_lists_api import upload

from centralita.container import Container
from dialer.agent_availability import AgentAvailability, Availability, FakeAgentAvailability
from dialer.clock import ScaledClock
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork
from routing.campaign_agents import AcdCampaignAgents
from routing.models import AgentStateChange

TALKERS = CalleeBehaviour(live_answer=0.8, machine=0.0, busy=0.1, failed=0.0, talk_mean_s=30)


def start_campaign(client: TestClient, count: int) -> int:
    body = campaign_body(name="Blended", mode="progressive", max_attempts=1, wrap_up_seconds=5)
    campaign = int(client.post("/api/v1/campaigns", json=body).json()["id"])
    csv = "phone\n" + "\n".join(numbers(count, start=500)) + "\n"
    assert upload(client, campaign, csv.encode()).json()["rows_loaded"] == count
    assert client.post(f"/api/v1/campaigns/{campaign}/start").json()["status"] == "running"
    return campaign


async def run_campaign(container: Container, campaign: int, agents: AgentAvailability) -> None:
    network = SimulatedCallNetwork(ScaledClock(SPEED, start=MONDAY_MORNING), TALKERS, seed=11)
    await run_until_done(container, network, campaign, seconds=60, agents=agents)


def test_the_dialer_works_only_agents_the_inbound_queues_have_free_and_hands_them_back(
    client: TestClient, container: Container
) -> None:
    campaign = start_campaign(client, 12)
    agents = FakeAgentAvailability(states={"PJSIP/1002": Availability.AWAY})  # paused at the ACD
    asyncio.run(run_campaign(container, campaign, agents))

    made = attempts_of(container, campaign)
    assert len(made) == 12 and all(a.ended_at is not None for a in made)
    connected = [a for a in made if a.connected_at is not None]
    assert connected and {a.agent for a in connected} == {"PJSIP/1001"}
    assert not [a for a in made if a.call_class == "abandoned"]
    # Each call that reached the agent claimed them first, and handed them back with the wrap-up.
    assert [c[:2] for c in agents.claims] == [("PJSIP/1001", f"attempt-{a.id}") for a in connected]
    assert {c[2] for c in agents.claims} == {str(campaign)}
    assert agents.releases == [("PJSIP/1001", f"attempt-{a.id}", 5.0) for a in connected]


def test_a_blended_agent_is_on_the_campaigns_call_in_the_acd_and_a_paused_one_is_never_dialed_for(
    client: TestClient, container: Container
) -> None:
    ana, bob = (
        client.post(
            "/api/v1/agents", json={"name": name, "display_name": name.title(), "home_endpoint": phone}
        ).json()["id"]
        for name, phone in (("ana", "PJSIP/1001"), ("bob", "PJSIP/1002"))
    )
    assert client.post(f"/api/v1/agents/{ana}/login", json={}).json()["status"]["state"] == "ready"
    client.post(f"/api/v1/agents/{bob}/login", json={})
    assert client.post(f"/api/v1/agents/{bob}/pause", json={"reason": "training"}).status_code == 200
    campaign = start_campaign(client, 4)
    live = container.routing().live

    asyncio.run(run_campaign(container, campaign, AcdCampaignAgents(live)))

    made = attempts_of(container, campaign)
    connected = [a for a in made if a.connected_at is not None]
    assert connected and {a.agent for a in connected} == {"PJSIP/1001"}
    with container.session_factory() as db:
        changes = db.scalars(
            select(AgentStateChange).where(AgentStateChange.agent_id == ana).order_by(AgentStateChange.id)
        ).all()
    on_calls = [c for c in changes if c.state == "on_call"]
    assert [(c.queue, c.call_ref, c.actor) for c in on_calls] == [
        (f"campaign:{campaign}", f"attempt-{a.id}", "dialer") for a in connected
    ]
    assert {c.state for c in changes} >= {"ready", "on_call", "wrap_up"}
    assert live.status_of(bob).state.value == "paused"
    assert not [c for c in changes if c.agent_id == bob]
