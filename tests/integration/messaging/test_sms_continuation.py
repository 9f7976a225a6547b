"""The IVR's SMS continuation end to end: a real FastAGI call through the shipped banco_es flow, the
real runner and timeline journal, the link sender on the real Twilio SDK talking to a local Twilio;
then the customer's reply through the signed webhook. The call, the SMS and the reply share a case."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

from fake_twilio_api import FakeTwilioApi
from fastapi.testclient import TestClient
from ivr_call_records import CARD, MADRID_MONDAY_10, SUNDAY, new_customer, recorded
from messaging_helpers import PUBLIC, twilio_post
from sqlalchemy import select

from centralita.container import Container
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.timeline.models import Interaction
from messaging.continuation import LinkTokens
from voice.console_caller import CallResult, ScriptedKeypad, place_call
from voice.prompts import prompt_texts

CALLER = "+34699000111"
BALANCE = ["1", CARD + "#", "05031980"]  # banco_es: balance, card number, date of birth
ABOUT_SOMETHING_ELSE = ["2"]  # to "you have an open case: calling about it?"


def call(container: Container, keys: list[str], now: datetime = MADRID_MONDAY_10) -> CallResult:
    prompts = prompt_texts(container.flows().flows.values())

    async def main() -> CallResult:
        runner = container.call_runner(clock=lambda: now)
        async with container.agi_server(runner=runner, port=0) as server:
            result = await place_call(
                "127.0.0.1",
                server.port,
                "banco_es",
                keypad=ScriptedKeypad(list(keys)),
                caller=CALLER,
                prompts=prompts,
                say=lambda line: None,
            )
        await runner.drain(timeout=10)
        return result

    result = asyncio.run(main())
    assert result.closed_by_server, result.transcript
    return result


def outbound_texts(container: Container) -> list[Interaction]:
    with container.session_factory() as db:
        query = select(Interaction).where(Interaction.direction == "outbound").order_by(Interaction.id)
        return list(db.scalars(query))


def test_the_sms_continuation_and_its_reply_land_in_the_calls_case(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = new_customer(wired, (IdentityKind.PHONE, CALLER), (IdentityKind.CRM, CARD), name="Ana")
    case_id = api.post("/api/v1/cases", json={"customer_id": ana, "subject": "Cargo no reconocido"}).json()[
        "id"
    ]

    result = call(wired, ABOUT_SOMETHING_ELSE + BALANCE)

    [posted] = twilio_api.sent()
    assert posted["To"] == CALLER and posted["From"] == "+34911000000"
    assert posted["StatusCallback"] == f"{PUBLIC}/api/v1/webhooks/twilio/status"
    link = re.search(r"https://cc\.example\.com/l/([A-Za-z0-9_-]+)", posted["Body"])
    assert link is not None and posted["Body"].startswith("Banco Meridiano: siga con su consulta")
    grant = LinkTokens(wired.settings.link_secret.get_secret_value().encode()).read(link.group(1))  # type: ignore[union-attr]
    assert (grant.case_id, grant.link) == (case_id, "balance")

    the_call = recorded(wired, result.uniqueid)
    assert the_call.interaction.case_id == case_id and "link_sent" in [t.kind for t in the_call.touchpoints]
    [sms] = outbound_texts(wired)
    assert (sms.channel, sms.customer_id, sms.case_id, sms.language) == ("sms", ana, case_id, "es")
    assert (
        sms.attributes["call_interaction_id"] == the_call.interaction.id
        and sms.attributes["link"] == "balance"
    )
    sid = sms.external_refs[0]["value"]

    delivered = {"MessageSid": sid, "MessageStatus": "delivered", "To": CALLER}
    assert twilio_post(api, "/api/v1/webhooks/twilio/status", delivered).status_code == 204
    reply = {
        "MessageSid": "SM" + "9" * 32,
        "From": CALLER,
        "To": "+34911000000",
        "Body": "No me abre el enlace",
    }
    assert twilio_post(api, "/api/v1/webhooks/twilio/messages", reply).status_code == 200

    case_items = [
        i for i in api.get(f"/api/v1/customers/{ana}/timeline").json()["items"] if i["case_id"] == case_id
    ]
    assert sorted((i["channel"], i["direction"], i["outcome"]) for i in case_items) == [
        ("sms", "inbound", "delivered"),
        ("sms", "outbound", "delivered"),
        ("voice", "inbound", "contained"),
    ]


def test_a_caller_without_an_open_case_gets_one_holding_the_call_and_the_sms(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    new_customer(wired, (IdentityKind.CRM, CARD), name="Ana")  # the card's holder; the number is new

    result = call(wired, BALANCE)

    the_call = recorded(wired, result.uniqueid)
    [sms] = outbound_texts(wired)
    assert the_call.interaction.case_id is not None and sms.case_id == the_call.interaction.case_id
    assert sms.customer_id == the_call.interaction.customer_id
    case = api.get(f"/api/v1/cases/{sms.case_id}").json()
    assert case["subject"] == "Continued by sms: balance" and case["attributes"]["opened_by"] == "ivr"


def test_a_refused_sms_sends_the_caller_down_the_flows_failure_path_and_records_no_message(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    new_customer(wired, (IdentityKind.PHONE, CALLER), (IdentityKind.CRM, CARD), name="Ana")
    twilio_api.errors[CALLER] = (400, 21610, "Attempt to send to unsubscribed recipient")

    result = call(wired, BALANCE)

    the_call = recorded(wired, result.uniqueid)
    assert the_call.interaction.outcome == "transferred"  # on_failure: the general queue
    assert "link_sent" not in [t.kind for t in the_call.touchpoints]
    assert outbound_texts(wired) == []
    with unit_of_work(wired.session_factory) as db:  # the call still sits on its case for the agent
        assert db.get(Interaction, the_call.interaction.id).case_id is not None  # type: ignore[union-attr]


def test_out_of_hours_the_caller_continues_on_whatsapp_from_the_whatsapp_sender(
    api: TestClient, wired: Container, twilio_api: FakeTwilioApi
) -> None:
    ana = new_customer(wired, (IdentityKind.PHONE, CALLER), name="Ana")

    result = call(wired, ["2"], now=SUNDAY)  # closed: "to continue on WhatsApp, press 2"

    [posted] = twilio_api.sent()
    assert (posted["To"], posted["From"]) == (f"whatsapp:{CALLER}", "whatsapp:+14155238886")
    [message] = outbound_texts(wired)
    assert (message.channel, message.customer_id) == ("whatsapp", ana)
    assert message.case_id == recorded(wired, result.uniqueid).interaction.case_id is not None
