from typing import Any

from fastapi.testclient import TestClient

from core.auth.roles import Role
from core.customers.schemas import Lookup
from core.timeline.schemas import TimelinePage

ANA = {
    "name": "Ana Pérez",
    "identities": [{"kind": "phone", "value": "600 111 222"}, {"kind": "email", "value": "Ana@Example.com"}],
}


def create(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_customer_is_created_with_normalised_identities(client: TestClient) -> None:
    customer = create(client, ANA)
    assert customer["id"] > 0
    assert customer["name"] == "Ana Pérez"
    assert [(i["kind"], i["value"]) for i in customer["identities"]] == [
        ("phone", "+34600111222"),
        ("email", "ana@example.com"),
    ]
    assert client.get(f"/api/v1/customers/{customer['id']}").json() == customer


def test_lookup_finds_the_customer_from_any_common_phone_format(client: TestClient) -> None:
    customer = create(client, ANA)
    for written in ("600 111 222", "+34600111222", "0034 600-111-222"):
        response = client.get("/api/v1/customers/lookup", params={"phone": written})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["customer"]["id"] == customer["id"]
        assert body["matched_identity"]["value"] == "+34600111222"
        assert body["open_cases"] == [] and body["recent_interactions"] == []


def test_lookup_by_email_ignores_case(client: TestClient) -> None:
    customer = create(client, ANA)
    body = client.get("/api/v1/customers/lookup", params={"email": "ANA@example.COM"}).json()
    assert body["customer"]["id"] == customer["id"]


def test_a_phone_lookup_also_finds_the_same_number_on_whatsapp(client: TestClient) -> None:
    customer = create(
        client, {"name": "Luis", "identities": [{"kind": "whatsapp", "value": "+34 611 000 111"}]}
    )
    body = client.get("/api/v1/customers/lookup", params={"phone": "611000111"}).json()
    assert body["customer"]["id"] == customer["id"]
    assert body["matched_identity"]["kind"] == "whatsapp"


def test_lookup_of_an_unknown_number_is_404_and_of_garbage_is_422(client: TestClient) -> None:
    assert client.get("/api/v1/customers/lookup", params={"phone": "+34 699 999 999"}).status_code == 404
    response = client.get("/api/v1/customers/lookup", params={"phone": "not a number"})
    assert response.status_code == 422
    assert "not a phone number" in response.json()["detail"]
    assert client.get("/api/v1/customers/lookup").status_code == 422


def test_lookup_shows_preferences_open_cases_and_recent_contacts(client: TestClient) -> None:
    customer = create(client, ANA | {"preferred_language": "es", "preferred_channel": "whatsapp"})
    for day in (1, 2, 3):
        client.post(
            "/api/v1/interactions",
            json={
                "customer_id": customer["id"],
                "channel": ["sms", "voice", "email"][day - 1],
                "direction": "inbound",
                "started_at": f"2026-11-0{day}T10:00:00Z",
            },
        )
    open_case = client.post(
        "/api/v1/cases", json={"customer_id": customer["id"], "subject": "factura"}
    ).json()
    closed = client.post("/api/v1/cases", json={"customer_id": customer["id"], "subject": "old"}).json()
    client.post(f"/api/v1/cases/{closed['id']}/resolve", json={})
    body = client.get("/api/v1/customers/lookup", params={"phone": "+34600111222", "recent": 2}).json()
    assert (body["preferred_language"], body["preferred_channel"]) == ("es", "whatsapp")
    assert [c["id"] for c in body["open_cases"]] == [open_case["id"]]
    assert [i["channel"] for i in body["recent_interactions"]] == ["email", "voice"]


def test_an_identity_belongs_to_one_customer_only(client: TestClient) -> None:
    first = create(client, ANA)
    response = client.post(
        "/api/v1/customers",
        json={"name": "Impostor", "identities": [{"kind": "phone", "value": "+34600111222"}]},
    )
    assert response.status_code == 409
    assert f"already belongs to customer {first['id']}" in response.json()["detail"]
    assert len(client.get("/api/v1/customers", params={"name": "impostor"}).json()["items"]) == 0


def test_the_same_identity_twice_in_one_request_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/v1/customers",
        json={
            "identities": [
                {"kind": "phone", "value": "600111222"},
                {"kind": "phone", "value": "+34600111222"},
            ]
        },
    )
    assert response.status_code == 422
    assert "listed twice" in response.json()["detail"]


def test_invalid_fields_are_refused_and_nothing_is_written(client: TestClient) -> None:
    for body in (
        {"name": "X", "identities": [{"kind": "phone", "value": "12"}]},
        {"name": "X", "identities": [{"kind": "fax", "value": "600111222"}]},
        {"name": "X", "preferred_language": "Spanish"},
        {"name": "X", "unknown_field": 1},
        {"name": ""},
    ):
        response = client.post("/api/v1/customers", json=body)
        assert response.status_code == 422, body
    assert client.get("/api/v1/customers", params={"name": "x"}).json()["items"] == []


def test_search_by_name_ignores_accents_and_case_and_by_phone_or_email(client: TestClient) -> None:
    ana = create(client, ANA)
    create(client, {"name": "Pedro Pérez Núñez"})
    by_name = client.get("/api/v1/customers", params={"name": "PEREZ"}).json()["items"]
    assert len(by_name) == 2
    assert [
        c["id"] for c in client.get("/api/v1/customers", params={"name": "ana perez"}).json()["items"]
    ] == [ana["id"]]
    assert [
        c["id"] for c in client.get("/api/v1/customers", params={"phone": "600-111-222"}).json()["items"]
    ] == [ana["id"]]
    assert [
        c["id"] for c in client.get("/api/v1/customers", params={"email": "ana@example.com"}).json()["items"]
    ] == [ana["id"]]
    assert client.get("/api/v1/customers").status_code == 422
    assert client.get("/api/v1/customers", params={"name": "100%_"}).json()["items"] == []


def test_update_changes_only_the_fields_sent_and_merges_consents(client: TestClient) -> None:
    customer = create(
        client,
        ANA
        | {
            "consents": {
                "sms": {"granted": True, "legal_basis": "consent", "recorded_at": "2026-01-01T00:00:00Z"}
            }
        },
    )
    response = client.patch(
        f"/api/v1/customers/{customer['id']}",
        json={"preferred_language": "en", "consents": {"calls": {"granted": False}}},
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["name"] == "Ana Pérez" and updated["preferred_language"] == "en"
    assert updated["consents"]["sms"]["granted"] is True
    assert updated["consents"]["sms"]["legal_basis"] == "consent"
    assert updated["consents"]["calls"]["granted"] is False
    assert updated["consents"]["calls"]["recorded_at"]


def test_identities_can_be_added_and_removed(client: TestClient) -> None:
    customer = create(client, ANA)
    added = client.post(
        f"/api/v1/customers/{customer['id']}/identities", json={"kind": "crm", "value": "SF-001"}
    ).json()
    assert client.get("/api/v1/customers/lookup", params={"crm": "SF-001"}).status_code == 200
    assert client.delete(f"/api/v1/customers/{customer['id']}/identities/{added['id']}").status_code == 204
    assert client.get("/api/v1/customers/lookup", params={"crm": "SF-001"}).status_code == 404
    assert client.delete(f"/api/v1/customers/{customer['id']}/identities/{added['id']}").status_code == 404


def test_unknown_customer_ids_are_404_with_the_id(client: TestClient) -> None:
    response = client.get("/api/v1/customers/987654")
    assert response.status_code == 404
    assert "customer 987654 not found" in response.json()["detail"]
    assert client.patch("/api/v1/customers/987654", json={"name": "x"}).status_code == 404
    assert client.get("/api/v1/customers/987654/timeline").status_code == 404


def test_agents_and_integrations_work_with_customers(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    for role in (Role.AGENT, Role.INTEGRATION, Role.MANAGER):
        headers = {"Authorization": f"Bearer {make_key(role)}"}
        response = client.post(
            "/api/v1/customers", json={"name": role.value, "identities": []}, headers=headers
        )
        assert response.status_code == 201, role


def test_screen_pop_and_timeline_answers_are_exactly_their_documented_schemas(client: TestClient) -> None:
    customer = create(
        client,
        ANA
        | {
            "preferred_language": "es",
            "attributes": {"vip": True, "segment": "oro"},
            "consents": {"sms": {"granted": True, "legal_basis": "consent"}},
        },
    )
    call = client.post(
        "/api/v1/interactions",
        json={"customer_id": customer["id"], "channel": "voice", "direction": "inbound",
              "started_at": "2026-11-24T10:00:00.123456+01:00", "csat": 4, "attributes": {"flow": "banco_es"},
              "external_refs": [{"kind": "asterisk_linkedid", "value": "1732450000.1"}]},
    ).json()  # fmt: skip
    client.post(f"/api/v1/interactions/{call['id']}/touchpoints", json={"kind": "speech", "confidence": 0.5})
    client.post("/api/v1/cases", json={"customer_id": customer["id"], "interaction_ids": [call["id"]]})
    body = client.get("/api/v1/customers/lookup", params={"phone": "600111222"}).json()
    assert Lookup.model_validate(body).model_dump(mode="json") == body
    assert body["recent_interactions"][0]["started_at"] == "2026-11-24T09:00:00.123456Z"
    page = client.get(
        f"/api/v1/customers/{customer['id']}/timeline", params={"include": "touchpoints"}
    ).json()
    assert TimelinePage.model_validate(page).model_dump(mode="json") == page
    assert page["items"][0] | {"touchpoints": None} == body["recent_interactions"][0] | {"touchpoints": None}
