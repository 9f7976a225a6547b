"""The agent's desk over HTTP, on SQLite and PostgreSQL: which desk a key opens, and the desk's changes
(JSON posts to the API with the session cookie, from the service's own page only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.deps import SESSION_COOKIE
from core.auth.roles import Role

PAGE = {"Origin": "http://testserver", "Content-Type": "application/json"}


@pytest.fixture
def admin(client: TestClient) -> Iterator[dict[str, str]]:
    """The admin's header; the client itself is left with no key, like a browser."""
    header = {"Authorization": client.headers.pop("Authorization")}
    client.follow_redirects = False
    yield header
    client.cookies.clear()


def agent_with_key(client: TestClient, admin: dict[str, str], name: str, **fields: Any) -> tuple[int, str]:
    key = client.post("/api/v1/keys", json={"role": "agent", "name": f"{name}'s desk"}, headers=admin).json()
    agent = client.post(
        "/api/v1/agents",
        json={"name": name, "display_name": name.title(), "api_key_id": key["id"]} | fields,
        headers=admin,
    ).json()
    return int(agent["id"]), str(key["key"])


def signed_in(client: TestClient, key: str) -> TestClient:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, key)
    return client


def test_an_agents_key_opens_its_own_desk_and_no_other(
    client: TestClient, admin: dict[str, str], make_key: Any
) -> None:
    ana, ana_key = agent_with_key(client, admin, "ana", home_endpoint="PJSIP/1001", display_name="Ana Pérez")
    bob, _ = agent_with_key(client, admin, "bob")

    desk = signed_in(client, ana_key).get("/desk")
    assert desk.status_code == 200, desk.text
    assert f'data-agent-id="{ana}"' in desk.text and 'data-home-endpoint="PJSIP/1001"' in desk.text
    assert "Ana Pérez" in desk.text and "/static/pages/timeline.js" in desk.text
    assert ana_key not in desk.text
    assert client.get(f"/desk?agent={ana}").status_code == 200
    other = client.get(f"/desk?agent={bob}")
    assert other.status_code == 403 and f"may act only on its own agent, not agent {bob}" in other.text

    no_agent = signed_in(client, make_key(Role.AGENT)).get("/desk")
    assert no_agent.status_code == 200 and "No agent uses this key" in no_agent.text
    assert "data-agent-id" not in no_agent.text

    manager = signed_in(client, make_key(Role.MANAGER))
    listed = manager.get("/desk")
    assert f'href="/desk?agent={ana}"' in listed.text and f'href="/desk?agent={bob}"' in listed.text
    assert f'data-agent-id="{bob}"' in manager.get(f"/desk?agent={bob}").text
    missing = manager.get("/desk?agent=999999")
    assert missing.status_code == 404 and "There is no agent 999999." in missing.text

    integration = signed_in(client, make_key(Role.INTEGRATION)).get("/desk")
    assert integration.status_code == 403 and "agents:state" in integration.text

    client.cookies.clear()
    away = client.get(f"/desk?agent={ana}")
    assert away.status_code == 303 and away.headers["location"] == f"/sign-in?next=/desk%3Fagent%3D{ana}"


def test_the_desks_changes_are_the_apis_with_the_sessions_key(
    client: TestClient, admin: dict[str, str]
) -> None:
    ana, key = agent_with_key(client, admin, "ana", home_endpoint="PJSIP/1001")
    bob, _ = agent_with_key(client, admin, "bob", home_endpoint="PJSIP/1002")
    signed_in(client, key)

    logged_in = client.post(f"/api/v1/agents/{ana}/login", json={}, headers=PAGE)
    assert logged_in.status_code == 200, logged_in.text
    assert logged_in.json()["status"]["state"] == "ready"
    paused = client.post(f"/api/v1/agents/{ana}/pause", json={"reason": "lunch"}, headers=PAGE)
    assert (paused.json()["status"]["state"], paused.json()["status"]["reason"]) == ("paused", "lunch")
    history = client.get(f"/api/v1/agents/{ana}/history", headers=admin).json()
    assert [(h["state"], h["actor"]) for h in history] == [("paused", "ana's desk"), ("ready", "ana's desk")]

    # Refusals are the API's, word for word.
    taken = client.post(f"/api/v1/agents/{bob}/login", json={}, headers=PAGE)
    assert taken.status_code == 403 and taken.json()["detail"] == (
        f"this key may act only on its own agent, not agent {bob}"
    )
    empty = client.post(f"/api/v1/agents/{ana}/pause", json={"reason": ""}, headers=PAGE)
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"] == ["body", "reason"]
    client.post(f"/api/v1/agents/{ana}/logout", json={}, headers=PAGE)
    refused = client.post(f"/api/v1/agents/{ana}/pause", json={"reason": "lunch"}, headers=PAGE)
    assert refused.status_code == 409 and "cannot pause while logged out" in refused.json()["detail"]


def test_the_desk_changes_nothing_for_another_site_a_form_or_without_the_permission(
    client: TestClient, admin: dict[str, str]
) -> None:
    ana, key = agent_with_key(client, admin, "ana", home_endpoint="PJSIP/1001")
    signed_in(client, key)
    login = f"/api/v1/agents/{ana}/login"

    assert client.post(login, json={}).status_code == 401  # no Origin: not the desk's script
    elsewhere = client.post(login, json={}, headers=PAGE | {"Origin": "https://evil.example"})
    assert elsewhere.status_code == 401
    form = client.post(
        login, content=b"x=1", headers=PAGE | {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 401
    # From the page itself, the key's own permissions still decide: an agent creates no agents.
    assert client.post("/api/v1/agents", json={"name": "eve"}, headers=PAGE).status_code == 403
    client.cookies.clear()
    assert client.post(login, json={}, headers=PAGE).status_code == 401
    assert client.get(f"/api/v1/agents/{ana}", headers=admin).json()["status"]["state"] == "logged_out"
