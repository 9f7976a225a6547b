"""Agents send SMS, WhatsApp and email through POST /api/v1/messages: the real Twilio SDK talks to a
local Twilio, email goes to a real SMTP server; consents and the do-not-call list are honoured."""

from __future__ import annotations

from typing import Any

from fake_twilio_api import FakeTwilioApi
from fastapi.testclient import TestClient
from messaging_helpers import PUBLIC, count, customer
from smtp_server import SmtpServer

from centralita.container import Container
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.timeline.models import Interaction
from dialer.do_not_call_store import add_numbers

MESSAGES = "/api/v1/messages"


def send(api: TestClient, **body: Any) -> Any:
    return api.post(MESSAGES, json=body)


def test_an_agent_texts_a_customer_and_the_sms_is_on_their_open_case(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "600 111 222"))
    case_id = api.post("/api/v1/cases", json={"customer_id": ana, "subject": "Avería"}).json()["id"]

    answer = send(api, customer_id=ana, channel="sms", body="Mañana pasa el técnico.")

    assert answer.status_code == 201, answer.text
    sent = answer.json()
    assert twilio_api.sent() == [
        {
            "To": "+34600111222",
            "From": "+34911000000",
            "Body": "Mañana pasa el técnico.",
            "StatusCallback": f"{PUBLIC}/api/v1/webhooks/twilio/status",
        }
    ]
    assert (sent["channel"], sent["direction"], sent["case_id"], sent["agent"]) == (
        "sms",
        "outbound",
        case_id,
        "Marta",
    )
    assert sent["external_refs"][0]["kind"] == "twilio_sid" and sent["external_refs"][0]["value"].startswith(
        "SM"
    )
    assert sent["attributes"]["delivery_status"] == "queued" and sent["outcome"] is None


def test_whatsapp_goes_to_the_customers_whatsapp_number_from_the_whatsapp_sender(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"), (IdentityKind.WHATSAPP, "+34600999888"))
    assert send(api, customer_id=ana, channel="whatsapp", body="Hola").status_code == 201
    [posted] = twilio_api.sent()
    assert (posted["To"], posted["From"]) == ("whatsapp:+34600999888", "whatsapp:+14155238886")


def test_a_withdrawn_consent_is_refused_before_anything_is_sent(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"), consents={"sms": {"granted": False}})
    answer = send(api, customer_id=ana, channel="sms", body="Hola")
    assert answer.status_code == 409 and "withdrew consent to sms" in answer.json()["detail"]
    assert twilio_api.received == [] and count(wired, Interaction) == 0


def test_a_number_on_the_do_not_call_list_gets_no_text(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    with unit_of_work(wired.session_factory) as db:
        add_numbers(db=db, numbers=["600111222"], campaign_id=None, reason="asked", actor="test", region="ES")
    answer = send(api, customer_id=ana, channel="sms", body="Hola")
    assert answer.status_code == 409 and "do-not-call" in answer.json()["detail"]
    assert twilio_api.received == []


def test_twilio_refusing_the_number_is_a_422_and_nothing_is_recorded(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    twilio_api.errors["+34600111222"] = (
        400,
        21211,
        "The 'To' number +34600111222 is not a valid phone number.",
    )
    answer = send(api, customer_id=ana, channel="sms", body="Hola")
    assert answer.status_code == 422 and "(Twilio 21211)" in answer.json()["detail"]
    assert count(wired, Interaction) == 0


def test_twilio_unreachable_is_a_503_to_retry(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    twilio_api.errors["+34600111222"] = (503, 20503, "Service unavailable")
    answer = send(api, customer_id=ana, channel="sms", body="Hola")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "30"


def test_a_customer_without_the_channels_address_and_bad_requests_are_refused(
    api: TestClient, wired: Container
) -> None:
    ana = customer(wired, (IdentityKind.EMAIL, "ana@example.com"))
    no_phone = send(api, customer_id=ana, channel="sms", body="Hola")
    assert no_phone.status_code == 422 and "has no phone or WhatsApp number" in no_phone.json()["detail"]
    assert send(api, customer_id=ana, channel="voice", body="Hola").status_code == 422
    assert send(api, customer_id=ana, channel="sms", body="x" * 1601).status_code == 422
    assert send(api, customer_id=999, channel="email", body="x", subject="s").status_code == 404


def test_without_twilio_settings_texts_get_503_naming_the_settings(
    client: TestClient, container: Container
) -> None:
    ana = customer(container, (IdentityKind.PHONE, "+34600111222"))
    answer = client.post(MESSAGES, json={"customer_id": ana, "channel": "sms", "body": "Hola"})
    assert answer.status_code == 503 and "CENTRALITA_TWILIO_ACCOUNT_SID" in answer.json()["detail"]


def test_emails_on_a_case_thread_together_and_carry_the_case_tag(
    api: TestClient, wired: Container, smtp: SmtpServer
) -> None:
    ana = customer(wired, (IdentityKind.EMAIL, "Ana@Example.com"))
    case_id = api.post("/api/v1/cases", json={"customer_id": ana, "subject": "Tarjeta"}).json()["id"]

    first = send(
        api, customer_id=ana, channel="email", subject="Su tarjeta", body="Hola Ana", case_id=case_id
    )
    second = send(api, customer_id=ana, channel="email", body="¿Le llegó?", case_id=case_id)

    assert first.status_code == second.status_code == 201, second.text
    one, two = (a.message for a in smtp.accepted)
    assert one["Subject"] == f"Su tarjeta [case #{case_id}]" and one["To"] == "ana@example.com"
    assert two["Subject"] == f"Re: Su tarjeta [case #{case_id}]"
    assert two["In-Reply-To"] == one["Message-ID"] and two["References"] == one["Message-ID"]
    assert first.json()["external_refs"] == [
        {"kind": "email_message_id", "value": one["Message-ID"].strip("<>")}
    ]
    assert second.json()["case_id"] == case_id


def test_an_email_without_a_subject_and_nothing_to_answer_is_refused(
    api: TestClient, wired: Container, smtp: SmtpServer
) -> None:
    ana = customer(wired, (IdentityKind.EMAIL, "ana@example.com"))
    answer = send(api, customer_id=ana, channel="email", body="Hola")
    assert answer.status_code == 422 and "needs a subject" in answer.json()["detail"]
    assert smtp.accepted == []
