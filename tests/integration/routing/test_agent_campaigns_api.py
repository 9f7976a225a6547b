"""`GET /agents/{id}/campaigns`, on SQLite and PostgreSQL: the running preview campaigns an agent works (by
the phone they are logged in on, or their home one) and the dispositions their key may set, for the desk of
an agent whose key may not list campaigns."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.auth.roles import Role

EVERY_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def campaign(
    client: TestClient, name: str, agents: list[str], *, mode: str = "preview", start: bool = True
) -> int:
    body = {
        "name": name,
        "mode": mode,
        "country": "GB",
        "caller_id": "020 7946 0000",
        "company_name": "Northwind Broadband",
        "queue": "renewals",
        "schedule": {"time_zone": "Europe/London"},
        "callee_hours": EVERY_DAY,
        "abandon_message": "This was Northwind Broadband. Call us back on 020 7946 0000. Thank you.",
        "agents": agents,
    }
    created = client.post("/api/v1/campaigns", json=body)
    assert created.status_code == 201, created.text
    campaign_id = int(created.json()["id"])
    loaded = client.post(
        f"/api/v1/campaigns/{campaign_id}/lists",
        content=b"phone,name\n+447400123401,Contact 0\n",
        headers={"Content-Type": "text/csv"},
    )
    assert loaded.status_code == 201, loaded.text
    if start:
        assert client.post(f"/api/v1/campaigns/{campaign_id}/start").status_code == 200
    return campaign_id


def agent_with_key(client: TestClient, name: str, home: str) -> tuple[dict[str, Any], dict[str, str]]:
    key = client.post("/api/v1/keys", json={"role": Role.AGENT.value, "name": f"{name}'s desk"}).json()
    agent = client.post(
        "/api/v1/agents",
        json={"name": name, "display_name": name.title(), "home_endpoint": home, "api_key_id": key["id"]},
    ).json()
    return agent, {"Authorization": f"Bearer {key['key']}"}


def test_an_agent_sees_the_running_preview_campaigns_of_their_phones_with_the_dispositions(
    client: TestClient,
) -> None:
    agent, as_agent = agent_with_key(client, "ana", "PJSIP/1001")
    renewals = campaign(client, "Renewals", ["PJSIP/1001", "PJSIP/1002"])
    campaign(client, "Progressive", ["PJSIP/1001"], mode="progressive")
    campaign(client, "Not started", ["PJSIP/1001"], start=False)
    campaign(client, "Others", ["PJSIP/1002"])
    upgrades = campaign(client, "Upgrades", ["PJSIP/2002"])

    answer = client.get(f"/api/v1/agents/{agent['id']}/campaigns", headers=as_agent)
    assert answer.status_code == 200, answer.text
    assert [(c["id"], c["name"], c["endpoint"], c["status"]) for c in answer.json()["items"]] == [
        (renewals, "Renewals", "PJSIP/1001", "running")
    ]
    dispositions = {d["disposition"]: d["needs_conversation"] for d in answer.json()["dispositions"]}
    assert dispositions == {
        "sale": True, "not_interested": True, "call_back": True, "wrong_number": True, "do_not_call": True,
        "no_contact": False,
    }  # fmt: skip
    assert client.get("/api/v1/campaigns", headers=as_agent).status_code == 403  # why the desk needs this

    # Logged in on another phone: that phone's campaigns too, named by the phone to work them from.
    logged_in = client.post(
        f"/api/v1/agents/{agent['id']}/login", json={"endpoint": "PJSIP/2002"}, headers=as_agent
    )
    assert logged_in.status_code == 200, logged_in.text
    items = client.get(f"/api/v1/agents/{agent['id']}/campaigns", headers=as_agent).json()["items"]
    assert [(c["id"], c["endpoint"]) for c in items] == [(renewals, "PJSIP/1001"), (upgrades, "PJSIP/2002")]


def test_only_the_agents_own_key_or_a_supervisor_may_ask(client: TestClient, make_key: Any) -> None:
    ana, _ = agent_with_key(client, "ana", "PJSIP/1001")
    _, as_bob = agent_with_key(client, "bob", "PJSIP/1002")
    refused = client.get(f"/api/v1/agents/{ana['id']}/campaigns", headers=as_bob)
    assert refused.status_code == 403 and "only on its own agent" in refused.json()["detail"]
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    refused = client.get(f"/api/v1/agents/{ana['id']}/campaigns", headers=integration)
    assert refused.status_code == 403 and "campaigns:work" in refused.json()["detail"]
    manager = {"Authorization": f"Bearer {make_key(Role.MANAGER)}"}
    assert client.get(f"/api/v1/agents/{ana['id']}/campaigns", headers=manager).json()["items"] == []
    assert client.get("/api/v1/agents/999999/campaigns", headers=manager).status_code == 404
