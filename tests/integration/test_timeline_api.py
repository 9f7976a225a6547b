from typing import Any

from fastapi.testclient import TestClient


def make_customer(client: TestClient, phone: str = "600111222") -> int:
    response = client.post(
        "/api/v1/customers", json={"name": "Ana", "identities": [{"kind": "phone", "value": phone}]}
    )
    return int(response.json()["id"])


def record(client: TestClient, **fields: Any) -> Any:
    body = {"channel": "voice", "direction": "inbound", "started_at": "2026-11-24T10:00:00Z"} | fields
    return client.post("/api/v1/interactions", json=body)


def test_interactions_from_three_channels_make_one_timeline_newest_first(client: TestClient) -> None:
    customer = make_customer(client)
    for channel, started in (
        ("sms", "2026-11-20T09:00:00+01:00"),
        ("voice", "2026-11-22T18:30:00Z"),
        ("email", "2026-11-21T12:00:00-05:00"),
    ):
        response = record(client, customer_id=customer, channel=channel, started_at=started)
        assert response.status_code == 201, response.text
        assert response.json()["id"] > 0
    page = client.get(f"/api/v1/customers/{customer}/timeline").json()
    assert [(i["channel"], i["started_at"]) for i in page["items"]] == [
        ("voice", "2026-11-22T18:30:00Z"),
        ("email", "2026-11-21T17:00:00Z"),
        ("sms", "2026-11-20T08:00:00Z"),
    ]
    assert page["next_cursor"] is None


def test_the_cursor_walks_every_interaction_once_even_with_equal_times(client: TestClient) -> None:
    customer = make_customer(client)
    made = [
        record(client, customer_id=customer, started_at=f"2026-11-{10 + i // 3}T10:00:00Z").json()["id"]
        for i in range(11)
    ]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/api/v1/customers/{customer}/timeline", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    assert seen == sorted(seen, key=lambda i: (made.index(i) // 3, i), reverse=True)


def test_the_timeline_filters_by_channel_and_time(client: TestClient) -> None:
    customer = make_customer(client)
    record(client, customer_id=customer, channel="sms", started_at="2026-11-01T10:00:00Z")
    record(client, customer_id=customer, channel="voice", started_at="2026-11-05T10:00:00Z")
    record(client, customer_id=customer, channel="whatsapp", started_at="2026-11-09T10:00:00Z")
    url = f"/api/v1/customers/{customer}/timeline"
    channels = client.get(url, params=[("channel", "sms"), ("channel", "whatsapp")]).json()["items"]
    assert [i["channel"] for i in channels] == ["whatsapp", "sms"]
    window = client.get(url, params={"since": "2026-11-02T00:00:00Z", "until": "2026-11-09T10:00:00Z"}).json()
    assert [i["channel"] for i in window["items"]] == ["voice"]
    assert client.get(url, params={"since": "2026-11-02T00:00:00"}).status_code == 422
    assert client.get(url, params={"channel": "fax"}).status_code == 422
    assert client.get(url, params={"cursor": "garbage"}).status_code == 422


def test_a_retried_delivery_with_the_same_external_id_makes_no_duplicate(client: TestClient) -> None:
    customer = make_customer(client)
    body = {
        "customer_id": customer,
        "channel": "sms",
        "external_refs": [{"kind": "twilio_sid", "value": "SM123"}],
    }
    first = record(client, **body)
    again = record(client, **body | {"summary": "changed"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["summary"] is None
    assert len(client.get(f"/api/v1/customers/{customer}/timeline").json()["items"]) == 1
    assert first.json()["external_refs"] == [{"kind": "twilio_sid", "value": "SM123"}]


def test_a_call_is_keyed_by_its_asterisk_linkedid(client: TestClient) -> None:
    refs = [
        {"kind": "asterisk_linkedid", "value": "1732450000.17"},
        {"kind": "asterisk_uniqueid", "value": "1732450000.18"},
    ]
    first = record(client, identity={"kind": "phone", "value": "+34 600 111 222"}, external_refs=refs)
    again = record(client, identity={"kind": "phone", "value": "600111222"}, external_refs=refs[:1])
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_an_interaction_by_identity_finds_or_makes_the_customer(client: TestClient) -> None:
    customer = make_customer(client)
    known = record(client, identity={"kind": "phone", "value": "0034 600 111 222"}).json()
    assert known["customer_id"] == customer
    stranger = record(client, channel="email", identity={"kind": "email", "value": "New@Example.org"}).json()
    lookup = client.get("/api/v1/customers/lookup", params={"email": "new@example.org"}).json()
    assert lookup["customer"]["id"] == stranger["customer_id"] != customer
    anonymous = record(client).json()
    assert anonymous["customer_id"] is None


def test_bad_interactions_are_refused_with_the_reason(client: TestClient) -> None:
    customer = make_customer(client)
    cases = [
        ({"customer_id": 424242}, 404, "customer 424242 not found"),
        ({"customer_id": customer, "started_at": "2026-11-24T10:00:00"}, 422, "timezone"),
        ({"customer_id": customer, "channel": "pigeon"}, 422, "channel"),
        ({"customer_id": customer, "ended_at": "2026-11-24T09:00:00Z"}, 422, "before started_at"),
        ({"customer_id": customer, "identity": {"kind": "phone", "value": "600111222"}}, 422, "not both"),
        ({"customer_id": customer, "csat": 9}, 422, "csat"),
        ({"customer_id": customer, "case_id": 999999}, 404, "case 999999"),
    ]
    for fields, status, message in cases:
        response = record(client, **fields)
        assert response.status_code == status, (fields, response.text)
        assert message in response.text, (fields, response.text)
    assert client.get(f"/api/v1/customers/{customer}/timeline").json()["items"] == []


def test_an_interaction_is_closed_once_with_its_outcome(client: TestClient) -> None:
    interaction = record(client, customer_id=make_customer(client)).json()
    url = f"/api/v1/interactions/{interaction['id']}/close"
    closed = client.post(
        url,
        json={"outcome": "completed", "disposition": "sale", "csat": 5, "ended_at": "2026-11-24T10:05:00Z"},
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["outcome"] == "completed" and closed.json()["ended_at"] == "2026-11-24T10:05:00Z"
    assert client.post(url, json={"outcome": "abandoned"}).status_code == 409
    early = record(client).json()
    response = client.post(
        f"/api/v1/interactions/{early['id']}/close",
        json={"outcome": "completed", "ended_at": "2026-11-24T09:00:00Z"},
    )
    assert response.status_code == 422
    assert (
        client.post(url.replace(str(interaction["id"]), "999999"), json={"outcome": "completed"}).status_code
        == 404
    )


def test_touchpoints_are_numbered_in_order_and_shown_in_the_timeline(client: TestClient) -> None:
    customer = make_customer(client)
    interaction = record(client, customer_id=customer).json()
    steps = [
        {"kind": "ivr_node", "node": "bienvenida"},
        {"kind": "menu_choice", "node": "menu_principal", "input": "2"},
        {"kind": "speech", "node": "menu_principal", "text": "facturación", "confidence": 0.91},
        {"kind": "queue_enter", "node": "cola_facturacion"},
    ]
    url = f"/api/v1/interactions/{interaction['id']}/touchpoints"
    for step in steps:
        assert client.post(url, json=step).status_code == 201
    listed = client.get(url).json()
    assert [(t["seq"], t["kind"]) for t in listed] == [
        (1, "ivr_node"),
        (2, "menu_choice"),
        (3, "speech"),
        (4, "queue_enter"),
    ]
    assert listed[2]["confidence"] == 0.91
    page = client.get(f"/api/v1/customers/{customer}/timeline", params={"include": "touchpoints"}).json()
    assert [t["node"] for t in page["items"][0]["touchpoints"]] == [s["node"] for s in steps]
    assert client.get(f"/api/v1/customers/{customer}/timeline").json()["items"][0]["touchpoints"] is None
    assert client.post(url, json={"kind": "telepathy"}).status_code == 422
    assert client.post(url, json={"kind": "speech", "confidence": 1.5}).status_code == 422
    assert client.post("/api/v1/interactions/999999/touchpoints", json={"kind": "note"}).status_code == 404
