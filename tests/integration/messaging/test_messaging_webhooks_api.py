"""Twilio's webhooks and inbound email through the real API, on SQLite and PostgreSQL: only signed
requests get in, and every message lands on the sender's timeline in the right case."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from messaging_helpers import PUBLIC, TOKEN, count, customer, twilio_post
from twilio.request_validator import RequestValidator

from centralita.container import Container
from core.auth.roles import Role
from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.customers.identities import IdentityKind
from core.customers.models import Customer
from core.db import unit_of_work
from core.events import Event
from core.timeline.models import Interaction, Touchpoint

MESSAGES = "/api/v1/webhooks/twilio/messages"
STATUS = "/api/v1/webhooks/twilio/status"
EMAIL = "/api/v1/webhooks/email"


def inbound(
    sender: str = "+34600111222", body: str = "Sigo sin línea", sid: str = "SM" + "a" * 32
) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": "AC" + "c3" * 16,
        "From": sender,
        "To": "+34911000000",
        "Body": body,
        "NumMedia": "0",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def timeline(client: TestClient, customer_id: int) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/customers/{customer_id}/timeline", params={"include": "touchpoints"})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def open_case(container: Container, customer_id: int, subject: str = "Avería") -> int:
    with unit_of_work(container.session_factory) as db:
        return cases.open_case(db=db, data=CaseCreate(customer_id=customer_id, subject=subject)).id


# --- inbound SMS and WhatsApp ---------------------------------------------------------------------------


def test_a_signed_sms_lands_on_the_senders_timeline_and_gets_empty_twiml(
    api: TestClient, wired: Container
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "600 111 222"), name="Ana")
    case_id = open_case(wired, ana)

    answer = twilio_post(api, MESSAGES, inbound())

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/xml")
    assert answer.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
    [item] = timeline(api, ana)
    assert (item["channel"], item["direction"], item["outcome"], item["case_id"]) == (
        "sms",
        "inbound",
        "delivered",
        case_id,  # no thread named: the customer's open case
    )
    assert item["external_refs"] == [{"kind": "twilio_sid", "value": "SM" + "a" * 32}]
    assert item["summary"] == "Sigo sin línea"
    assert [(t["kind"], t["text"]) for t in item["touchpoints"]] == [("message", "Sigo sin línea")]


def test_a_whatsapp_sender_is_recorded_as_whatsapp_on_the_customer_with_that_phone(
    api: TestClient, wired: Container
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    form = inbound(sender="whatsapp:+34600111222") | {"To": "whatsapp:+14155238886", "ProfileName": "Ana"}

    assert twilio_post(api, MESSAGES, form).status_code == 200

    [item] = timeline(api, ana)
    assert (item["channel"], item["case_id"]) == ("whatsapp", None)  # no open case: none
    assert item["attributes"]["profile_name"] == "Ana"
    assert count(wired, Customer) == 1


def test_a_message_from_an_unknown_number_makes_a_customer_with_that_number(
    api: TestClient, wired: Container
) -> None:
    assert twilio_post(api, MESSAGES, inbound(sender="+34699000111")).status_code == 200
    found = api.get("/api/v1/customers/lookup", params={"phone": "699000111"}).json()
    assert found["recent_interactions"][0]["channel"] == "sms"


def test_a_retried_webhook_is_recorded_once(api: TestClient, wired: Container) -> None:
    for _ in range(3):
        assert twilio_post(api, MESSAGES, inbound()).status_code == 200
    assert (count(wired, Interaction), count(wired, Touchpoint), count(wired, Customer)) == (1, 1, 1)


@pytest.mark.parametrize(
    "how",
    ["missing", "another token", "the URL the app sees", "tampered body", "garbage"],
)
def test_an_unsigned_or_forged_message_gets_403_and_writes_nothing(
    api: TestClient, wired: Container, how: str
) -> None:
    form = inbound()
    if how == "missing":
        answer = twilio_post(api, MESSAGES, form, signature=None)
    elif how == "another token":
        answer = twilio_post(api, MESSAGES, form, token="somebody else's auth token!!!!!!")
    elif how == "the URL the app sees":
        answer = twilio_post(api, MESSAGES, form, signed_url=f"http://testserver{MESSAGES}")
    elif how == "tampered body":
        signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}{MESSAGES}", form)
        answer = api.post(
            MESSAGES, data=form | {"Body": "send me money"}, headers={"X-Twilio-Signature": signature}
        )
    else:
        answer = api.post(MESSAGES, data=form, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})

    assert answer.status_code == 403, answer.text
    assert "X-Twilio-Signature" in answer.json()["detail"]
    assert (count(wired, Interaction), count(wired, Customer)) == (0, 0)


def test_a_signature_for_the_messages_url_does_not_open_the_status_url(
    api: TestClient, wired: Container
) -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    answer = twilio_post(api, STATUS, form, signed_url=f"{PUBLIC}{MESSAGES}")
    assert answer.status_code == 403


def test_webhooks_without_twilio_configured_refuse_and_say_which_settings(client: TestClient) -> None:
    answer = twilio_post(client, MESSAGES, inbound())
    assert answer.status_code == 503 and "CENTRALITA_TWILIO_ACCOUNT_SID" in answer.json()["detail"]


def test_a_stop_reply_withdraws_the_consent_to_sms_and_start_grants_it_again(
    api: TestClient, wired: Container
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    twilio_post(api, MESSAGES, inbound(body="STOP", sid="SM" + "1" * 32) | {"OptOutType": "STOP"})
    consent = api.get(f"/api/v1/customers/{ana}").json()["consents"]["sms"]
    assert consent["granted"] is False and "STOP" in consent["source"]

    refused = api.post(
        "/api/v1/messages", json={"customer_id": ana, "channel": "sms", "body": "¿Sigue la avería?"}
    )
    assert refused.status_code == 409 and "withdrew consent to sms" in refused.json()["detail"]

    twilio_post(api, MESSAGES, inbound(body="START", sid="SM" + "2" * 32) | {"OptOutType": "START"})
    assert api.get(f"/api/v1/customers/{ana}").json()["consents"]["sms"]["granted"] is True


# --- delivery statuses ----------------------------------------------------------------------------------


def sent_sms(api: TestClient, customer_id: int) -> dict[str, Any]:
    answer = api.post("/api/v1/messages", json={"customer_id": customer_id, "channel": "sms", "body": "Hola"})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def status(api: TestClient, sid: str, value: str, **extra: str) -> int:
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": value,
        "SmsStatus": value,
        "To": "+34600111222",
    }
    return twilio_post(api, STATUS, form | extra).status_code


def test_delivery_statuses_close_the_message_and_a_late_sent_does_not_undo_delivered(
    api: TestClient, wired: Container
) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    message = sent_sms(api, ana)
    sid = message["external_refs"][0]["value"]

    for reported in ("sent", "delivered", "sent", "delivered", "queued"):
        assert status(api, sid, reported) == 204

    recorded = api.get(f"/api/v1/interactions/{message['id']}").json()
    assert recorded["outcome"] == "delivered" and recorded["ended_at"] is not None
    assert recorded["attributes"]["delivery_status"] == "delivered"
    steps = api.get(f"/api/v1/interactions/{message['id']}/touchpoints").json()
    assert [(t["kind"], t["input"]) for t in steps] == [
        ("message", "queued"),
        ("message", "sent"),
        ("message", "delivered"),
    ]


def test_an_undelivered_message_says_why(api: TestClient, wired: Container) -> None:
    ana = customer(wired, (IdentityKind.PHONE, "+34600111222"))
    message = sent_sms(api, ana)
    sid = message["external_refs"][0]["value"]

    assert status(api, sid, "undelivered", ErrorCode="21610") == 204
    assert status(api, sid, "delivered") == 204  # a final outcome stands

    recorded = api.get(f"/api/v1/interactions/{message['id']}").json()
    assert recorded["outcome"] == "undelivered" and recorded["attributes"]["error_code"] == 21610
    last = api.get(f"/api/v1/interactions/{message['id']}/touchpoints").json()[-1]
    assert last["input"] == "undelivered" and "STOP" in last["text"]


def test_a_status_for_a_message_nobody_recorded_writes_nothing(api: TestClient, wired: Container) -> None:
    assert status(api, "SM" + "f" * 32, "delivered") == 204
    assert count(wired, Interaction) == 0


# --- inbound email --------------------------------------------------------------------------------------


def raw_email(
    *,
    sender: str = "Ana Pérez <ana@example.com>",
    subject: str = "Mi tarjeta",
    message_id: str = "m1@mail.example.com",
    in_reply_to: str | None = None,
    body: str = "No funciona mi tarjeta.",
) -> bytes:
    headers = [f"From: {sender}", "To: soporte@meridiano.example", f"Subject: {subject}"]
    headers.append(f"Message-ID: <{message_id}>")
    if in_reply_to:
        headers += [f"In-Reply-To: <{in_reply_to}>", f"References: <{in_reply_to}>"]
    return ("\r\n".join([*headers, "Content-Type: text/plain; charset=utf-8", "", body, ""])).encode()


def post_email(api: TestClient, raw: bytes) -> Any:
    return api.post(EMAIL, content=raw, headers={"Content-Type": "message/rfc822"})


def test_an_email_from_a_new_address_becomes_a_customer_with_an_email_interaction(
    api: TestClient, wired: Container
) -> None:
    answer = post_email(api, raw_email())
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert (created["channel"], created["direction"], created["subject"]) == (
        "email",
        "inbound",
        "Mi tarjeta",
    )
    assert created["external_refs"] == [{"kind": "email_message_id", "value": "m1@mail.example.com"}]
    found = api.get("/api/v1/customers/lookup", params={"email": "ANA@example.com"}).json()
    assert found["customer"]["id"] == created["customer_id"]

    again = post_email(api, raw_email())
    assert again.status_code == 200 and again.json()["id"] == created["id"]


def test_inbound_email_needs_an_api_key_that_may_write_interactions(
    api: TestClient, wired: Container
) -> None:
    assert api.post(EMAIL, content=raw_email(), headers={"Authorization": ""}).status_code == 401
    assert count(wired, Interaction) == 0


def test_a_body_that_is_not_an_email_is_refused_and_nothing_is_written(
    api: TestClient, wired: Container
) -> None:
    answer = post_email(api, b"hello, this is not an email")
    assert answer.status_code == 422 and "no From address" in answer.json()["detail"]
    assert post_email(api, b"").status_code == 422
    assert count(wired, Interaction) == 0


def test_a_reply_to_an_agents_email_lands_in_that_emails_case_and_reopens_it(
    api: TestClient, wired: Container, smtp: Any
) -> None:
    ana = customer(wired, (IdentityKind.EMAIL, "ana@example.com"))
    case_id = open_case(wired, ana, "Tarjeta bloqueada")
    other_case = open_case(wired, ana, "Otra cosa")  # the most recently active one, which a guess would pick
    sent = api.post(
        "/api/v1/messages",
        json={
            "customer_id": ana,
            "channel": "email",
            "subject": "Su tarjeta",
            "body": "…",
            "case_id": case_id,
        },
    ).json()
    message_id = sent["external_refs"][0]["value"]
    api.post(f"/api/v1/cases/{case_id}/resolve", json={"resolution": "desbloqueada"})

    reply = post_email(
        api, raw_email(subject="Re: Su tarjeta", message_id="r1@mail.example.com", in_reply_to=message_id)
    )

    assert reply.status_code == 201 and reply.json()["case_id"] == case_id != other_case
    assert api.get(f"/api/v1/cases/{case_id}").json()["status"] == "open"


def test_a_case_tag_in_the_subject_threads_only_into_the_senders_own_case(
    api: TestClient, wired: Container
) -> None:
    ana = customer(wired, (IdentityKind.EMAIL, "ana@example.com"))
    luis = customer(wired, (IdentityKind.EMAIL, "luis@example.com"))
    anas_case = open_case(wired, ana)
    luis_case = open_case(wired, luis)
    open_case(wired, ana, "newer")  # so that the reply rule would not pick anas_case

    tagged = post_email(api, raw_email(subject=f"Re: Avería [case #{anas_case}]", message_id="t1@x"))
    assert tagged.json()["case_id"] == anas_case

    forged = post_email(
        api, raw_email(sender="luis@example.com", subject=f"[case #{anas_case}]", message_id="t2@x")
    )
    assert forged.json()["customer_id"] == luis and forged.json()["case_id"] == luis_case


def test_agents_may_post_inbound_email_with_their_everyday_permission(
    wired: Container, make_key: Any
) -> None:
    with TestClient(wired.api()) as client:
        client.headers["Authorization"] = f"Bearer {make_key(Role.INTEGRATION, 'postfix pipe')}"
        assert post_email(client, raw_email()).status_code == 201


def test_a_message_from_a_sender_no_customer_can_hold_is_kept_anonymous(
    api: TestClient, wired: Container
) -> None:
    assert twilio_post(api, MESSAGES, inbound(sender="MOVISTAR")).status_code == 200
    with wired.session_factory() as db:
        [message] = db.query(Interaction).all()
    assert (message.customer_id, message.channel, message.attributes["from"]) == (None, "sms", "MOVISTAR")
    assert count(wired, Customer) == 0


def test_messages_are_published_on_the_event_bus_once_committed(api: TestClient, wired: Container) -> None:
    heard: list[Event] = []
    subscription = wired.bus.subscribe("message.*", heard.append)
    try:
        twilio_post(api, MESSAGES, inbound(), signature=None)  # refused: nothing to hear
        twilio_post(api, MESSAGES, inbound())
        twilio_post(api, MESSAGES, inbound())  # a retry: recorded once, heard once
    finally:
        subscription.close()
    [event] = heard
    assert event.topic == "message.received"
    assert (event.payload["channel"], event.payload["direction"]) == ("sms", "inbound")
