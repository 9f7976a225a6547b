"""Agents and queues over the API, on SQLite and PostgreSQL: profiles, state changes and their records."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from centralita.container import Container
from core.audit.models import AuditEntry
from core.auth.roles import Role
from routing.models import Agent, AgentStateChange

BILLING = {"name": "billing", "skills": [{"skill": "billing", "min_level": 3}], "wrap_up_seconds": 20}


def make_agent(client: TestClient, name: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "display_name": name.title(), "skills": [{"skill": "billing", "level": 5}]} | fields
    response = client.post("/api/v1/agents", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_an_agent_logs_in_and_each_change_is_a_history_row_an_audit_row_and_an_event(
    client: TestClient, container: Container
) -> None:
    events: list[Any] = []
    subscription = container.bus.subscribe("agent.state_changed", events.append)
    try:
        ana = make_agent(client, "ana", home_endpoint="PJSIP/1001")
        assert ana["status"]["state"] == "logged_out"
        logged_in = client.post(f"/api/v1/agents/{ana['id']}/login")
        assert logged_in.status_code == 200, logged_in.text
        assert logged_in.json()["status"] | {"since": None} == {
            "state": "ready", "since": None, "endpoint": "PJSIP/1001", "reason": None,
            "until": None, "call_id": None, "queue": None,
        }  # fmt: skip
        paused = client.post(f"/api/v1/agents/{ana['id']}/pause", json={"reason": "lunch"}).json()
        assert (paused["status"]["state"], paused["status"]["reason"]) == ("paused", "lunch")
        assert client.post(f"/api/v1/agents/{ana['id']}/ready").json()["status"]["state"] == "ready"
        assert client.post(f"/api/v1/agents/{ana['id']}/logout").json()["status"]["state"] == "logged_out"
    finally:
        subscription.close()
    with container.session_factory() as db:
        rows = db.scalars(select(AgentStateChange).order_by(AgentStateChange.id)).all()
        assert [(r.previous_state, r.state) for r in rows] == [
            ("logged_out", "ready"), ("ready", "paused"), ("paused", "ready"), ("ready", "logged_out")
        ]  # fmt: skip
        assert {r.actor for r in rows} == {"test admin"}
        audited = db.scalars(select(AuditEntry).where(AuditEntry.action == "agent.state_changed")).all()
        assert len(audited) == 4
        agent = db.get(Agent, ana["id"])
        assert agent is not None and (agent.state, agent.endpoint) == ("logged_out", None)
    assert [e.payload["state"] for e in events] == ["ready", "paused", "ready", "logged_out"]
    history = client.get(f"/api/v1/agents/{ana['id']}/history").json()
    assert [h["state"] for h in history] == ["logged_out", "ready", "paused", "ready"]


def test_an_endpoint_another_agent_holds_is_refused_naming_the_agent(client: TestClient) -> None:
    ana = make_agent(client, "ana")
    bob = make_agent(client, "bob")
    assert (
        client.post(f"/api/v1/agents/{ana['id']}/login", json={"endpoint": "PJSIP/1001"}).status_code == 200
    )
    refused = client.post(f"/api/v1/agents/{bob['id']}/login", json={"endpoint": "PJSIP/1001"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == "PJSIP/1001 is held by agent 'ana': they must log out first"
    assert client.get(f"/api/v1/agents/{bob['id']}").json()["status"]["state"] == "logged_out"


def test_impossible_state_changes_are_clear_errors(client: TestClient) -> None:
    ana = make_agent(client, "ana")
    paused = client.post(f"/api/v1/agents/{ana['id']}/pause", json={"reason": "lunch"})
    assert paused.status_code == 409
    assert "cannot pause while logged out" in paused.json()["detail"]
    no_phone = client.post(f"/api/v1/agents/{ana['id']}/login")
    assert no_phone.status_code == 422 and "no home endpoint" in no_phone.json()["detail"]
    assert client.post("/api/v1/agents/999/login", json={"endpoint": "PJSIP/1"}).status_code == 404


def test_an_agent_key_changes_only_its_own_agent_and_cannot_manage(
    client: TestClient, agent_key: tuple[int, str]
) -> None:
    key_id, key = agent_key
    ana = make_agent(client, "ana", api_key_id=key_id, home_endpoint="PJSIP/1001")
    bob = make_agent(client, "bob", home_endpoint="PJSIP/1002")
    as_ana = {"Authorization": f"Bearer {key}"}
    assert client.post(f"/api/v1/agents/{ana['id']}/login", headers=as_ana).status_code == 200
    other = client.post(f"/api/v1/agents/{bob['id']}/login", headers=as_ana)
    assert other.status_code == 403 and "only on its own agent" in other.json()["detail"]
    create = client.post("/api/v1/agents", json={"name": "eve", "display_name": "Eve"}, headers=as_ana)
    assert create.status_code == 403 and "routing:manage" in create.json()["detail"]
    assert client.get(f"/api/v1/agents/{bob['id']}/events", headers=as_ana).status_code == 403


def test_agent_profiles_are_validated_and_updated(client: TestClient) -> None:
    ana = make_agent(client, "ana")
    assert client.post("/api/v1/agents", json={"name": "ana", "display_name": "Other"}).status_code == 409
    twice = client.post(
        "/api/v1/agents",
        json={
            "name": "x",
            "display_name": "X",
            "skills": [{"skill": "a", "level": 1}, {"skill": "a", "level": 2}],
        },
    )
    assert twice.status_code == 422
    too_high = {"name": "y", "display_name": "Y", "skills": [{"skill": "a", "level": 11}]}
    assert client.post("/api/v1/agents", json=too_high).status_code == 422
    no_such_key = client.post("/api/v1/agents", json={"name": "z", "display_name": "Z", "api_key_id": 999})
    assert no_such_key.status_code == 422 and "API key 999 does not exist" in no_such_key.json()["detail"]
    changed = client.patch(
        f"/api/v1/agents/{ana['id']}",
        json={"skills": [{"skill": "billing", "level": 8}, {"skill": "es", "level": 3}]},
    )
    assert changed.status_code == 200
    assert changed.json()["skills"] == [{"skill": "billing", "level": 8}, {"skill": "es", "level": 3}]
    assert [a["name"] for a in client.get("/api/v1/agents").json()["items"]] == ["ana"]


def test_queues_are_created_updated_and_report_their_live_status(client: TestClient) -> None:
    created = client.post("/api/v1/queues", json=BILLING | {"overflow_wait_seconds": 120})
    assert created.status_code == 201, created.text
    assert created.json()["recording"] == "never" and created.json()["display_name"] == "billing"
    assert client.post("/api/v1/queues", json=BILLING).status_code == 409
    assert (
        client.patch("/api/v1/queues/billing", json={"max_length": 5, "recording": "always"}).status_code
        == 200
    )
    assert client.patch("/api/v1/queues/billing", json={"wrap_up_seconds": None}).status_code == 422
    assert client.get("/api/v1/queues/billing").json()["max_length"] == 5

    empty = client.get("/api/v1/queues/billing/status").json()
    assert (empty["estimated_wait_seconds"], empty["overflow"], empty["overflow_reason"]) == (
        None,
        True,
        "no_agents",
    )

    ana = make_agent(client, "ana", home_endpoint="PJSIP/1001")
    make_agent(client, "rookie", skills=[{"skill": "billing", "level": 1}])  # below the minimum: still staff
    make_agent(client, "seller", skills=[{"skill": "sales", "level": 9}])  # cannot take billing calls
    client.post(f"/api/v1/agents/{ana['id']}/login")
    status = client.get("/api/v1/queues/billing/status").json()
    assert status == {
        "queue": "billing",
        "waiting": 0,
        "longest_wait_seconds": 0.0,
        "estimated_wait_seconds": 0.0,
        "overflow": False,
        "overflow_reason": None,
        "agents": {"logged_out": 1, "ready": 1, "offered": 0, "on_call": 0, "wrap_up": 0, "paused": 0},
        "service_level": {
            "target_seconds": 20, "target_percent": 80, "answered": 0,
            "answered_within_target": 0, "abandoned": 0, "percent": None,
        },
    }  # fmt: skip
    assert client.get("/api/v1/queues/nope/status").status_code == 404
    assert [q["name"] for q in client.get("/api/v1/queues").json()["items"]] == ["billing"]


def test_a_restart_restores_logged_in_agents_from_what_was_recorded(
    client: TestClient, container: Container
) -> None:
    ana = make_agent(client, "ana", home_endpoint="PJSIP/1001")
    client.post(f"/api/v1/agents/{ana['id']}/login")
    client.post(f"/api/v1/agents/{ana['id']}/pause", json={"reason": "training"})
    container.routing().reload()  # as at start-up: from the database alone
    status = container.routing().live.status_of(ana["id"])
    assert (status.state, status.endpoint, status.reason) == ("paused", "PJSIP/1001", "training")


def test_the_role_grants_for_routing(client: TestClient, make_key: Any) -> None:
    manager = {"Authorization": f"Bearer {make_key(Role.MANAGER, 'supervisor')}"}
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION, 'ivr')}"}
    assert client.post("/api/v1/queues", json=BILLING, headers=manager).status_code == 201
    assert client.get("/api/v1/queues/billing/status", headers=integration).status_code == 200
    assert client.post("/api/v1/queues", json=BILLING | {"name": "x"}, headers=integration).status_code == 403
