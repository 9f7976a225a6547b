from fastapi.testclient import TestClient


def customer_with_interactions(client: TestClient, phone: str, n: int) -> tuple[int, list[int]]:
    customer = client.post(
        "/api/v1/customers", json={"identities": [{"kind": "phone", "value": phone}]}
    ).json()["id"]
    ids = [
        client.post(
            "/api/v1/interactions",
            json={
                "customer_id": customer,
                "channel": channel,
                "direction": "inbound",
                "started_at": f"2026-11-0{i + 1}T10:00:00Z",
            },
        ).json()["id"]
        for i, channel in enumerate(["voice", "sms", "email"][:n])
    ]
    return customer, ids


def test_a_case_groups_contacts_across_channels_until_resolved(client: TestClient) -> None:
    customer, (call, sms, email) = customer_with_interactions(client, "600111222", 3)
    case = client.post(
        "/api/v1/cases", json={"customer_id": customer, "subject": "Avería", "interaction_ids": [call]}
    )
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    assert (
        client.post(f"/api/v1/cases/{case_id}/interactions", json={"interaction_id": sms}).status_code == 200
    )
    in_case = client.post(
        "/api/v1/interactions",
        json={
            "customer_id": customer,
            "case_id": case_id,
            "channel": "whatsapp",
            "direction": "outbound",
            "started_at": "2026-11-05T10:00:00Z",
        },
    )
    assert in_case.json()["case_id"] == case_id
    timeline = client.get(f"/api/v1/customers/{customer}/timeline").json()["items"]
    assert {i["id"]: i["case_id"] for i in timeline} == {
        in_case.json()["id"]: case_id,
        email: None,
        sms: case_id,
        call: case_id,
    }
    pending = client.patch(f"/api/v1/cases/{case_id}", json={"status": "pending"}).json()
    assert pending["status"] == "pending"
    resolved = client.post(f"/api/v1/cases/{case_id}/resolve", json={"resolution": "técnico enviado"}).json()
    assert (
        resolved["status"] == "resolved"
        and resolved["resolved_at"]
        and resolved["resolution"] == "técnico enviado"
    )
    assert client.get("/api/v1/customers/lookup", params={"phone": "600111222"}).json()["open_cases"] == []
    reopened = client.post(f"/api/v1/cases/{case_id}/reopen").json()
    assert (reopened["status"], reopened["reopened_count"], reopened["resolved_at"]) == ("open", 1, None)
    listed = client.get(f"/api/v1/customers/{customer}/cases", params={"status": "open"}).json()
    assert [c["id"] for c in listed] == [case_id]


def test_case_state_changes_that_make_no_sense_are_refused(client: TestClient) -> None:
    customer, _ = customer_with_interactions(client, "600111222", 0)
    case_id = client.post("/api/v1/cases", json={"customer_id": customer}).json()["id"]
    assert client.post(f"/api/v1/cases/{case_id}/reopen").status_code == 409
    assert client.patch(f"/api/v1/cases/{case_id}", json={"status": "resolved"}).status_code == 422
    assert client.post(f"/api/v1/cases/{case_id}/resolve", json={}).status_code == 200
    assert client.post(f"/api/v1/cases/{case_id}/resolve", json={}).status_code == 409
    assert client.patch(f"/api/v1/cases/{case_id}", json={"status": "pending"}).status_code == 409
    assert client.get("/api/v1/cases/999999").status_code == 404
    assert client.post("/api/v1/cases", json={"customer_id": 999999}).status_code == 404


def test_a_case_takes_only_its_own_customers_contacts(client: TestClient) -> None:
    ana, _ = customer_with_interactions(client, "600111222", 0)
    _, (luis_call,) = customer_with_interactions(client, "600333444", 1)
    response = client.post("/api/v1/cases", json={"customer_id": ana, "interaction_ids": [luis_call]})
    assert response.status_code == 422
    assert "belongs to customer" in response.json()["detail"]
    assert client.get(f"/api/v1/customers/{ana}/cases").json() == []
    first = client.post("/api/v1/cases", json={"customer_id": ana}).json()["id"]
    _, (ana_call,) = customer_with_interactions(client, "600555666", 1)
    other = client.get("/api/v1/customers/lookup", params={"phone": "600555666"}).json()["customer"]["id"]
    case_b = client.post("/api/v1/cases", json={"customer_id": other, "interaction_ids": [ana_call]}).json()[
        "id"
    ]
    case_c = client.post("/api/v1/cases", json={"customer_id": other}).json()["id"]
    moved = client.post(f"/api/v1/cases/{case_c}/interactions", json={"interaction_id": ana_call})
    assert moved.status_code == 409 and f"already belongs to case {case_b}" in moved.json()["detail"]
    assert (
        client.post(f"/api/v1/cases/{first}/interactions", json={"interaction_id": 999999}).status_code == 404
    )
