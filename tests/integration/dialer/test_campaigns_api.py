"""Campaigns and do-not-call lists through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from core.auth.roles import Role


def campaign_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Renovaciones noviembre",
        "mode": "predictive",
        "country": "ES",
        "caller_id": "910 000 000",
        "company_name": "Seguros Sol",
        "queue": "renewals",
        "schedule": {
            "time_zone": "Europe/Madrid",
            "weekly": {"mon": ["09:00-20:00"], "tue": ["09:00-20:00"]},
        },
        "abandon_message": "Le llamábamos de Seguros Sol. Llámenos al 910 000 000. Gracias.",
        "agents": ["PJSIP/1001", "PJSIP/1002"],
    }
    return body | changes


def test_a_campaign_is_created_in_draft_with_its_settings_normalised(client: TestClient) -> None:
    response = client.post("/api/v1/campaigns", json=campaign_body())
    assert response.status_code == 201, response.text
    campaign = response.json()
    assert campaign["status"] == "draft" and campaign["mode"] == "predictive"
    assert campaign["settings"]["caller_id"] == "+34910000000"
    assert campaign["settings"]["abandonment_target"] == 0.03
    assert client.get(f"/api/v1/campaigns/{campaign['id']}").json() == campaign
    assert [c["id"] for c in client.get("/api/v1/campaigns").json()["items"]] == [campaign["id"]]
    assert client.get("/api/v1/campaigns", params={"status": "running"}).json()["items"] == []


def test_a_campaign_that_would_break_the_law_is_refused_naming_each_field(client: TestClient) -> None:
    body = campaign_body(
        abandonment_target=0.05,
        drop_wait_seconds=5,
        ring_timeout_seconds=10,
        abandon_message="Hello, please hold.",
    )
    response = client.post("/api/v1/campaigns", json=body)
    assert response.status_code == 422
    fields = {v["field"] for v in response.json()["violations"]}
    assert {"abandonment_target", "drop_wait_seconds", "ring_timeout_seconds", "abandon_message"} <= fields
    assert client.get("/api/v1/campaigns").json()["items"] == []


def test_shape_errors_and_duplicates_are_clear(client: TestClient) -> None:
    assert client.post("/api/v1/campaigns", json=campaign_body(mode="telepathic")).status_code == 422
    assert client.post("/api/v1/campaigns", json=campaign_body(surprise=1)).status_code == 422
    assert client.post("/api/v1/campaigns", json=campaign_body()).status_code == 201
    duplicate = client.post("/api/v1/campaigns", json=campaign_body())
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    assert client.get("/api/v1/campaigns/999999").status_code == 404


def test_starting_needs_contacts_and_states_follow_the_rules(client: TestClient) -> None:
    campaign = client.post("/api/v1/campaigns", json=campaign_body()).json()
    url = f"/api/v1/campaigns/{campaign['id']}"
    refused = client.post(f"{url}/start")
    assert refused.status_code == 409 and "no contacts" in refused.json()["detail"]
    assert client.post(f"{url}/pause").status_code == 409
    assert client.post(f"{url}/resume").status_code == 409
    stopped = client.post(f"{url}/stop", json={"reason": "cancelled by the client"})
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert stopped.json()["status_reason"] == "cancelled by the client"
    assert client.post(f"{url}/start").status_code == 409
    audit = client.get("/api/v1/audit", params={"subject_type": "campaign", "subject_id": campaign["id"]})
    assert [e["action"] for e in audit.json()] == ["campaign.stop", "campaign.created"]  # newest first


def test_settings_change_only_when_not_dialing(client: TestClient) -> None:
    campaign = client.post("/api/v1/campaigns", json=campaign_body()).json()
    changed = client.put(f"/api/v1/campaigns/{campaign['id']}", json=campaign_body(max_attempts=5))
    assert changed.status_code == 200 and changed.json()["settings"]["max_attempts"] == 5


def test_only_managers_and_admins_run_campaigns(client: TestClient, make_key: Any) -> None:
    agent = {"Authorization": f"Bearer {make_key(Role.AGENT)}"}
    manager = {"Authorization": f"Bearer {make_key(Role.MANAGER)}"}
    assert client.post("/api/v1/campaigns", json=campaign_body(), headers=agent).status_code == 403
    assert client.get("/api/v1/campaigns", headers=agent).status_code == 403
    assert client.post("/api/v1/campaigns", json=campaign_body(), headers=manager).status_code == 201


def test_do_not_call_lists_normalise_numbers_and_are_idempotent(client: TestClient, make_key: Any) -> None:
    agent = {"Authorization": f"Bearer {make_key(Role.AGENT)}"}
    added = client.post(
        "/api/v1/do-not-call",
        json={"numbers": ["600 111 222", "+34600111222", "0034 600-333-444"]},
        headers=agent,
    )
    assert added.status_code == 200, added.text
    assert added.json()["added"] == ["+34600111222", "+34600333444"]
    again = client.post(
        "/api/v1/do-not-call", json={"numbers": ["600111222"], "reason": "asked on the phone"}
    )
    assert again.json()["added"] == []
    page = client.get("/api/v1/do-not-call", params={"limit": 1}).json()
    assert [i["phone"] for i in page["items"]] == ["+34600111222"] and page["next_after"] is not None
    rest = client.get("/api/v1/do-not-call", params={"after": page["next_after"]}).json()
    assert [i["phone"] for i in rest["items"]] == ["+34600333444"] and rest["next_after"] is None
    # An agent may list a number; only a manager may make it callable again.
    assert client.delete("/api/v1/do-not-call/600111222", headers=agent).status_code == 403
    assert client.delete("/api/v1/do-not-call/600111222").status_code == 204
    assert client.delete("/api/v1/do-not-call/600111222").status_code == 404


def test_a_bad_number_lists_nothing(client: TestClient) -> None:
    response = client.post("/api/v1/do-not-call", json={"numbers": ["600111222", "not a number"]})
    assert response.status_code == 422 and "not a number" in response.json()["detail"]
    assert client.get("/api/v1/do-not-call").json()["items"] == []


def test_campaign_lists_are_separate_from_the_global_one(client: TestClient) -> None:
    campaign = client.post("/api/v1/campaigns", json=campaign_body()).json()
    url = f"/api/v1/campaigns/{campaign['id']}/do-not-call"
    assert client.post(url, json={"numbers": ["600111222"]}).json()["added"] == ["+34600111222"]
    assert client.get("/api/v1/do-not-call").json()["items"] == []
    assert [i["campaign_id"] for i in client.get(url).json()["items"]] == [campaign["id"]]
    assert (
        client.post("/api/v1/campaigns/999999/do-not-call", json={"numbers": ["600111222"]}).status_code
        == 404
    )
