"""POST /api/v1/callbacks and its siblings, on SQLite and PostgreSQL: bookings, refusals, the timeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from centralita.container import Container
from core.auth.roles import Role
from core.cases.models import Case
from core.timeline.models import Interaction, Touchpoint
from dialer.calling_window import ANY_TIME, WeeklyHours
from routing.callback_models import Callback

PHONE = "+34600111222"


@pytest.fixture
def any_time(container: Container) -> Iterator[None]:
    """Callbacks may be made at any hour: "now" must mean now whenever the suite runs."""
    desk = container.callbacks()
    kept = desk.rules
    desk.rules = replace(kept, hours=ANY_TIME)
    yield
    desk.rules = kept


@pytest.fixture
def general(client: TestClient) -> None:
    assert client.post("/api/v1/queues", json={"name": "general"}).status_code == 201


@pytest.mark.usefixtures("any_time", "general")
def test_a_web_page_asks_for_a_call_now_and_gets_its_id(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    web = {"Authorization": f"Bearer {make_key(Role.INTEGRATION, 'www.example.com')}"}
    response = client.post("/api/v1/callbacks", json={"phone": PHONE}, headers=web)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "status", "queue", "due_at", "note"}  # nothing about the customer
    assert (body["status"], body["queue"], body["note"]) == ("waiting", "general", None)
    read = client.get(f"/api/v1/callbacks/{body['id']}").json()
    assert (read["phone"], read["source"], read["attempts"], read["max_attempts"]) == (PHONE, "web", 0, 3)
    assert read["next_attempt_at"] == read["due_at"]
    # The same page submitted twice: the same callback, answered 200.
    again = client.post("/api/v1/callbacks", json={"phone": "600 111 222"}, headers=web)
    assert (again.status_code, again.json()["id"]) == (200, body["id"])


@pytest.mark.usefixtures("any_time", "general")
def test_a_web_callback_lands_on_the_customers_timeline_with_its_page_context_on_the_case(
    client: TestClient, container: Container
) -> None:
    context = {"url": "https://www.example.com/tarifas", "chat_transcript": "T-991"}
    made = client.post("/api/v1/callbacks", json={"phone": PHONE, "name": "Ana Pérez", "context": context})
    assert made.status_code == 201, made.text
    callback = client.get(f"/api/v1/callbacks/{made.json()['id']}").json()
    with container.session_factory() as db:
        web = db.get(Interaction, callback["interaction_id"])
        assert web is not None
        assert (web.channel, web.direction, web.outcome, web.case_id) == (
            "web", "inbound", "callback_requested", callback["case_id"]
        )  # fmt: skip
        assert web.attributes["callback_request"] == context
        (step,) = db.scalars(select(Touchpoint).where(Touchpoint.interaction_id == web.id)).all()
        assert step.kind == "callback_accepted" and step.attributes["callback_id"] == callback["id"]
        case = db.get(Case, callback["case_id"])
        assert case is not None and case.attributes["callbacks"][0]["context"] == context
    customer = client.get(f"/api/v1/customers/{callback['customer_id']}").json()
    assert customer["name"] == "Ana Pérez"


@pytest.mark.usefixtures("any_time", "general")
def test_a_callback_goes_to_the_customers_open_case(client: TestClient) -> None:
    customer = client.post(
        "/api/v1/customers", json={"identities": [{"kind": "phone", "value": PHONE}]}
    ).json()
    case = client.post("/api/v1/cases", json={"customer_id": customer["id"], "subject": "router down"}).json()
    made = client.post("/api/v1/callbacks", json={"phone": PHONE}).json()
    callback = client.get(f"/api/v1/callbacks/{made['id']}").json()
    assert (callback["customer_id"], callback["case_id"]) == (customer["id"], case["id"])


@pytest.mark.usefixtures("general")
def test_a_callback_at_a_time_is_requested_until_then(client: TestClient) -> None:
    madrid = ZoneInfo("Europe/Madrid")
    tomorrow = (datetime.now(madrid) + timedelta(days=1)).replace(hour=17, minute=0, second=0, microsecond=0)
    made = client.post("/api/v1/callbacks", json={"phone": "+34915550123", "at": tomorrow.isoformat()})
    assert made.status_code == 201, made.text
    assert made.json()["status"] == "requested"
    assert datetime.fromisoformat(made.json()["due_at"]) == tomorrow
    listed = client.get("/api/v1/callbacks", params={"status": "requested"}).json()["items"]
    assert [c["id"] for c in listed] == [made.json()["id"]]
    assert client.get("/api/v1/callbacks", params={"status": "waiting"}).json()["items"] == []


@pytest.mark.usefixtures("any_time", "general")
def test_bad_requests_get_a_422_saying_why_and_write_nothing(
    client: TestClient, container: Container
) -> None:
    assert client.post("/api/v1/do-not-call", json={"numbers": ["+34600999000"]}).status_code == 200
    madrid = ZoneInfo("Europe/Madrid")
    night = (datetime.now(madrid) + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
    with container.session_factory() as db:
        interactions_before = len(db.scalars(select(Interaction.id)).all())
    desk = container.callbacks()
    desk.rules = replace(desk.rules, hours=WeeklyHours.every_day(time(9), time(21)))
    cases = [
        ({"phone": "12345"}, "phone", "malformed_number"),
        ({"phone": "+34 600 11"}, "phone", "malformed_number"),
        ({"phone": "+34600999000"}, "phone", "global_do_not_call"),
        ({"phone": PHONE, "at": "2020-01-01T10:00:00+01:00"}, "at", "in_the_past"),
        ({"phone": "+34915550123", "at": night.isoformat()}, "at", "outside_hours"),
        ({"phone": PHONE, "queue": "sales"}, "queue", "unknown_queue"),
    ]
    for body, field, rule in cases:
        response = client.post("/api/v1/callbacks", json=body)
        assert response.status_code == 422, (body, response.text)
        (violation,) = response.json()["violations"]
        assert (violation["field"], violation["rule"]) == (field, rule), response.json()
        assert response.json()["detail"] == violation["message"]
    dnc = client.post("/api/v1/callbacks", json={"phone": "+34600999000"}).json()["detail"]
    assert dnc == "cannot call back: +34600999000 is on the global do-not-call list"
    naive = client.post("/api/v1/callbacks", json={"phone": PHONE, "at": "2030-01-01T10:00:00"})
    assert naive.status_code == 422  # a time without its offset: which 10:00?
    with container.session_factory() as db:
        assert db.scalars(select(Callback)).all() == []
        assert len(db.scalars(select(Interaction.id)).all()) == interactions_before


@pytest.mark.usefixtures("any_time", "general")
def test_a_customer_who_withdrew_consent_to_calls_is_not_called_back(client: TestClient) -> None:
    client.post(
        "/api/v1/customers",
        json={"identities": [{"kind": "phone", "value": PHONE}], "consents": {"calls": {"granted": False}}},
    )
    refused = client.post("/api/v1/callbacks", json={"phone": PHONE})
    assert refused.status_code == 422
    assert refused.json()["violations"][0]["rule"] == "consent_withdrawn"


@pytest.mark.usefixtures("any_time", "general")
def test_a_pending_callback_can_be_cancelled_once(client: TestClient, container: Container) -> None:
    made = client.post("/api/v1/callbacks", json={"phone": PHONE}).json()
    cancelled = client.post(f"/api/v1/callbacks/{made['id']}/cancel", json={"reason": "solved by email"})
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["status_reason"]) == ("cancelled", "solved by email")
    assert cancelled.json()["next_attempt_at"] is None
    again = client.post(f"/api/v1/callbacks/{made['id']}/cancel")
    assert again.status_code == 409 and "only a pending callback" in again.json()["detail"]
    with container.session_factory() as db:
        notes = db.scalars(select(Touchpoint).where(Touchpoint.kind == "note")).all()
        assert [n.text for n in notes] == ["callback cancelled: solved by email"]
    # Cancelled, the number may ask again: a new callback.
    assert client.post("/api/v1/callbacks", json={"phone": PHONE}).status_code == 201
    assert client.get("/api/v1/callbacks/999999").status_code == 404


def test_who_may_book_and_read_callbacks(client: TestClient, make_key) -> None:  # type: ignore[no-untyped-def]
    anonymous = client.post("/api/v1/callbacks", json={"phone": PHONE}, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    for role in Role:
        headers = {"Authorization": f"Bearer {make_key(role)}"}
        listed = client.get("/api/v1/callbacks", headers=headers)
        assert listed.status_code == 200, role
