from fastapi.testclient import TestClient

from core.auth.roles import Role


def test_requests_without_a_known_key_are_401(client: TestClient) -> None:
    for headers in (
        {"Authorization": ""},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer cnt_not-a-real-key"},
    ):
        response = client.get("/api/v1/customers/lookup", params={"phone": "600111222"}, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"


def test_keys_are_made_listed_and_revoked_through_the_api(client: TestClient) -> None:
    created = client.post("/api/v1/keys", json={"role": "agent", "name": "Marta (agent 12)"})
    assert created.status_code == 201
    key = created.json()["key"]
    agent = {"Authorization": f"Bearer {key}"}
    assert client.post("/api/v1/customers", json={"name": "X"}, headers=agent).status_code == 201
    assert client.get("/api/v1/keys", headers=agent).status_code == 403
    listed = client.get("/api/v1/keys").json()
    assert [k["name"] for k in listed if k["role"] == "agent"] == ["Marta (agent 12)"]
    assert all("key" not in k and k["prefix"].startswith("cnt_") for k in listed)
    assert client.delete(f"/api/v1/keys/{created.json()['id']}").json()["revoked_at"]
    assert client.post("/api/v1/customers", json={"name": "Y"}, headers=agent).status_code == 401
    audit = client.get("/api/v1/audit", params={"subject_type": "api_key"}).json()
    assert [a["action"] for a in audit] == ["key.revoked", "key.created"]
    assert client.post("/api/v1/keys", json={"role": "superuser", "name": "x"}).status_code == 422


def test_a_wrong_role_is_403_and_says_what_was_needed(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    integration = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    response = client.get("/api/v1/audit", headers=integration)
    assert response.status_code == 403
    assert response.json()["detail"] == "role integration may not do this (needs audit:read)"


def test_health_needs_no_key(client: TestClient) -> None:
    assert client.get("/health", headers={"Authorization": ""}).json() == {"status": "ok"}
