from fastapi.testclient import TestClient

from core.auth.roles import Role


def setup_duplicates(client: TestClient) -> tuple[int, int]:
    target = client.post(
        "/api/v1/customers",
        json={
            "name": "Ana Pérez",
            "identities": [{"kind": "phone", "value": "600111222"}],
            "consents": {"sms": {"granted": True, "recorded_at": "2026-01-01T00:00:00Z"}},
        },
    ).json()["id"]
    source = client.post(
        "/api/v1/customers",
        json={
            "name": "A. Perez",
            "preferred_language": "es",
            "identities": [
                {"kind": "email", "value": "ana@example.com"},
                {"kind": "whatsapp", "value": "+34600999888"},
            ],
            "consents": {"sms": {"granted": False, "recorded_at": "2026-06-01T00:00:00Z"}},
        },
    ).json()["id"]
    for owner, channel in ((target, "voice"), (source, "email"), (source, "whatsapp")):
        client.post(
            "/api/v1/interactions",
            json={
                "customer_id": owner,
                "channel": channel,
                "direction": "inbound",
                "started_at": "2026-11-01T10:00:00Z",
            },
        )
    client.post("/api/v1/cases", json={"customer_id": source, "subject": "email thread"})
    return target, source


def test_merge_moves_everything_and_loses_nothing(client: TestClient) -> None:
    target, source = setup_duplicates(client)
    response = client.post(f"/api/v1/customers/{target}/merge", json={"source_id": source})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["moved"] == {"identities": 2, "interactions": 2, "cases": 1}
    merged = body["customer"]
    assert merged["name"] == "Ana Pérez" and merged["preferred_language"] == "es"
    assert sorted(i["kind"] for i in merged["identities"]) == ["email", "phone", "whatsapp"]
    assert merged["consents"]["sms"]["granted"] is False, "the later withdrawal must survive the merge"
    timeline = client.get(f"/api/v1/customers/{target}/timeline").json()["items"]
    assert sorted(i["channel"] for i in timeline) == ["email", "voice", "whatsapp"]
    assert len(client.get(f"/api/v1/customers/{target}/cases").json()) == 1
    assert (
        client.get("/api/v1/customers/lookup", params={"email": "ana@example.com"}).json()["customer"]["id"]
        == target
    )
    gone = client.get(f"/api/v1/customers/{source}")
    assert gone.status_code == 404 and f"merged into customer {target}" in gone.json()["detail"]
    audit = client.get("/api/v1/audit", params={"subject_type": "customer", "subject_id": target}).json()
    assert [(a["action"], a["details"]["source_id"]) for a in audit] == [("customer.merged", source)]


def test_a_merge_that_cannot_be_done_changes_nothing(client: TestClient) -> None:
    target, source = setup_duplicates(client)
    before = client.get(f"/api/v1/customers/{target}").json()
    same = client.post(f"/api/v1/customers/{target}/merge", json={"source_id": target})
    assert same.status_code == 422 and "itself" in same.json()["detail"]
    missing = client.post(f"/api/v1/customers/{target}/merge", json={"source_id": 999999})
    assert missing.status_code == 404
    assert client.get(f"/api/v1/customers/{target}").json() == before
    assert client.get(f"/api/v1/customers/{source}").status_code == 200


def test_only_managers_and_admins_merge(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    target, source = setup_duplicates(client)
    agent = {"Authorization": f"Bearer {make_key(Role.AGENT)}"}
    response = client.post(f"/api/v1/customers/{target}/merge", json={"source_id": source}, headers=agent)
    assert response.status_code == 403 and "customers:merge" in response.json()["detail"]
    manager = {"Authorization": f"Bearer {make_key(Role.MANAGER)}"}
    assert (
        client.post(
            f"/api/v1/customers/{target}/merge", json={"source_id": source}, headers=manager
        ).status_code
        == 200
    )


def test_export_holds_everything_about_the_customer_and_is_audited(client: TestClient) -> None:
    target, source = setup_duplicates(client)
    client.post(f"/api/v1/customers/{target}/merge", json={"source_id": source})
    call = client.get(f"/api/v1/customers/{target}/timeline").json()["items"][0]["id"]
    client.post(f"/api/v1/interactions/{call}/touchpoints", json={"kind": "speech", "text": "mi factura"})
    response = client.get(f"/api/v1/customers/{target}/export")
    assert response.status_code == 200
    document = response.json()
    assert document["customer"]["id"] == target
    assert document["merged_from_customer_ids"] == [source]
    assert len(document["interactions"]) == 3 and len(document["cases"]) == 1
    assert any(t["text"] == "mi factura" for i in document["interactions"] for t in i["touchpoints"])
    assert [a["action"] for a in document["audit"]] == ["customer.merged"]
    audit = client.get("/api/v1/audit", params={"subject_id": target}).json()
    assert [a["action"] for a in audit] == ["customer.exported", "customer.merged"]


def test_erasure_removes_personal_data_and_keeps_the_counts(client: TestClient) -> None:
    target, _ = setup_duplicates(client)
    call = client.get(f"/api/v1/customers/{target}/timeline").json()["items"][0]["id"]
    client.post(f"/api/v1/interactions/{call}/touchpoints", json={"kind": "speech", "text": "mi DNI es 1234"})
    response = client.delete(f"/api/v1/customers/{target}")
    assert response.status_code == 200, response.text
    assert response.json()["erased"]["identities"] == 1 and response.json()["erased"]["touchpoints"] == 1
    assert client.get(f"/api/v1/customers/{target}").status_code == 404
    assert client.get("/api/v1/customers/lookup", params={"phone": "600111222"}).status_code == 404
    assert client.get("/api/v1/customers", params={"name": "ana"}).json()["items"] == []
    interaction = client.get(f"/api/v1/interactions/{call}").json()
    assert interaction["channel"] == "voice" and interaction["customer_id"] == target
    assert [t["text"] for t in client.get(f"/api/v1/interactions/{call}/touchpoints").json()] == [None]
    assert (
        client.post(
            "/api/v1/customers", json={"identities": [{"kind": "phone", "value": "600111222"}]}
        ).status_code
        == 201
    )
    audit = client.get("/api/v1/audit", params={"subject_id": target}).json()
    assert audit[0]["action"] == "customer.erased" and "Ana" not in str(audit[0]["details"])
    assert client.delete(f"/api/v1/customers/{target}").status_code == 404


def test_privacy_rights_are_for_admins_only(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    target, _ = setup_duplicates(client)
    for role in (Role.MANAGER, Role.AGENT, Role.INTEGRATION):
        headers = {"Authorization": f"Bearer {make_key(role)}"}
        assert client.get(f"/api/v1/customers/{target}/export", headers=headers).status_code == 403
        assert client.delete(f"/api/v1/customers/{target}", headers=headers).status_code == 403
    assert client.get(f"/api/v1/customers/{target}").status_code == 200
