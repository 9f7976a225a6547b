"""Whole IVR calls over real TCP: the console caller plays Asterisk against a real FastAgiServer running the
shipped flows with the real runner and the real timeline journal, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from ivr_call_records import (
    CALLER,
    CARD,
    LONDON_TUESDAY_11,
    MADRID_MONDAY_10,
    SUNDAY,
    Sender,
    new_customer,
    recorded,
)
from sqlalchemy import select

from centralita.container import Container
from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.timeline.models import Interaction
from voice.agi.ivr_port import ivr_router
from voice.agi.server import FastAgiServer
from voice.console_caller import CallResult, ScriptedKeypad, place_call
from voice.ivr.call_runner import CallRunner
from voice.prompts import prompt_texts


def call(
    container: Container,
    flow: str,
    keys: list[str],
    *,
    caller: str | None = CALLER,
    now: datetime = MADRID_MONDAY_10,
    handoffs_fail: bool = False,
    sender: Sender | None = None,
    uniqueid: str | None = None,
) -> CallResult:
    prompts = prompt_texts(container.flows().flows.values())

    async def main() -> CallResult:
        runner = container.call_runner(clock=lambda: now, link_sender=sender)
        async with container.agi_server(runner=runner, port=0) as server:
            result = await place_call(
                "127.0.0.1",
                server.port,
                flow,
                keypad=ScriptedKeypad(list(keys)),
                caller=caller,
                prompts=prompts,
                handoffs_fail=handoffs_fail,
                uniqueid=uniqueid,
                say=lambda line: None,
            )
        await runner.drain(timeout=10)
        return result

    result = asyncio.run(main())
    assert result.closed_by_server, result.transcript
    return result


# --- banco_es ------------------------------------------------------------------------------------------


def test_a_known_customer_presses_2_and_is_queued_for_billing(container: Container) -> None:
    ana = new_customer(
        container, (IdentityKind.PHONE, "600 111 222"), name="Ana Pérez", preferred_language="es"
    )
    result = call(container, "banco_es", ["2"])

    assert result.heard[0].startswith("Bienvenido a Banco Meridiano.")
    assert result.heard[-1] == "Le pasamos con el departamento de facturación."
    assert result.pressed == ["2"] and result.ended_by == "handoff"
    assert "EXEC Queue facturacion" in result.commands

    call_record = recorded(container, result.uniqueid)
    interaction = call_record.interaction
    assert (interaction.channel, interaction.direction, interaction.customer_id) == ("voice", "inbound", ana)
    assert interaction.external_refs == [{"kind": "asterisk_linkedid", "value": result.uniqueid}]
    banco = container.flows().flows["banco_es"]
    assert interaction.attributes["flow"] == "banco_es"
    assert interaction.attributes["flow_version"] == banco.version
    assert interaction.outcome == "transferred" and interaction.ended_at is not None
    assert call_record.nodes() == [
        "identificar_llamante", "idioma_cliente", "bienvenida", "horario", "prioridad", "menu_principal",
        "cola_facturacion",
    ]  # fmt: skip
    assert call_record.steps()[1] == ("lookup", "identificar_llamante", "caller")
    assert call_record.touchpoints[1].attributes["result"] == "found"
    assert call_record.touchpoints[1].text == str(ana)
    assert ("menu_choice", "menu_principal", "2") in call_record.steps()
    assert call_record.steps()[-1] == ("queue_enter", "cola_facturacion", None)
    assert call_record.touchpoints[-1].attributes["queue"] == "facturacion"


def test_a_balance_request_looks_the_card_up_and_sends_the_link(container: Container) -> None:
    ana = new_customer(container, (IdentityKind.CRM, CARD), name="Ana")
    sender = Sender()
    result = call(container, "banco_es", ["1", CARD + "#", "05031980"], caller="+34699000111", sender=sender)

    assert [link.link for link in sender.sent] == ["balance"] and sender.sent[0].to == "+34699000111"
    assert result.ended_by == "ivr"
    assert result.heard[-1].startswith("Gracias por llamar")
    call_record = recorded(container, result.uniqueid)
    assert call_record.interaction.outcome == "contained"
    card = next(t for t in call_record.touchpoints if t.node == "pedir_tarjeta" and t.input)
    assert card.kind == "dtmf" and card.input == "************1486"
    lookup = next(t for t in call_record.touchpoints if t.kind == "lookup" and t.node == "buscar_tarjeta")
    assert (lookup.attributes["result"], lookup.text) == ("found", str(ana))
    assert "link_sent" in [t.kind for t in call_record.touchpoints]


def test_a_new_number_becomes_a_customer_whom_the_ivr_knows_from_the_second_call(
    container: Container,
) -> None:
    first = call(container, "banco_es", ["2"], caller="611222333")
    first_record = recorded(container, first.uniqueid)
    assert first_record.interaction.customer_id is not None
    assert first_record.touchpoints[1].attributes["result"] == "not found"

    second = call(container, "banco_es", ["2"], caller="+34611222333")
    second_record = recorded(container, second.uniqueid)
    assert second_record.interaction.customer_id == first_record.interaction.customer_id
    assert second_record.touchpoints[1].attributes["result"] == "found"


@pytest.mark.parametrize("caller", [None, "anonymous", "12"])
def test_a_withheld_or_unusable_number_is_an_anonymous_call_that_goes_on(
    container: Container, caller: str | None
) -> None:
    result = call(container, "banco_es", ["0", "2"], caller=caller)
    call_record = recorded(container, result.uniqueid)
    assert call_record.interaction.customer_id is None
    assert call_record.interaction.outcome == "transferred"
    # No number to call back: the offer is skipped and the caller goes to the general queue.
    assert "EXEC Queue atencion_general" in result.commands


def test_a_refused_queue_ends_in_voicemail(container: Container) -> None:
    result = call(container, "banco_es", ["2", "2"], handoffs_fail=True)
    call_record = recorded(container, result.uniqueid)
    assert "ofrecer_llamada_facturacion" in call_record.nodes() and "buzon" in call_record.nodes()
    assert any(
        t.node == "cola_facturacion" and t.attributes.get("result") == "failed: queue facturacion: JOINEMPTY"
        for t in call_record.touchpoints
    )
    assert "recording" in [t.kind for t in call_record.touchpoints]
    assert call_record.interaction.outcome == "contained"


# --- support_en -------------------------------------------------------------------------------------------


def test_a_customer_with_an_open_case_is_sent_to_its_team(container: Container) -> None:
    bob = new_customer(container, (IdentityKind.PHONE, "+447700900123"), name="Bob")
    with unit_of_work(container.session_factory) as db:
        cases.open_case(db=db, data=CaseFactory.fault(bob))
    result = call(container, "support_en", ["1"], caller="+447700900123", now=LONDON_TUESDAY_11)
    assert result.heard[1].startswith("Welcome back. You have an open support case with us.")
    assert "EXEC Queue technical" in result.commands
    call_record = recorded(container, result.uniqueid)
    assert call_record.interaction.customer_id == bob
    assert call_record.steps()[-1] == ("queue_enter", "case_queue", None)
    assert call_record.touchpoints[-1].attributes["skills"] == ["case_followup"]


def test_an_anonymous_caller_leaves_a_voicemail_out_of_hours(container: Container) -> None:
    result = call(container, "support_en", ["1"], caller=None, now=SUNDAY)
    assert any(line.startswith("[recording centralita/recordings/support-") for line in result.transcript)
    assert result.ended_by == "ivr"
    call_record = recorded(container, result.uniqueid)
    assert call_record.interaction.customer_id is None and call_record.interaction.outcome == "contained"
    recording = next(t for t in call_record.touchpoints if t.kind == "recording")
    assert recording.attributes["recording"] == f"centralita/recordings/support-{result.uniqueid}"


def test_a_caller_who_hangs_up_in_a_menu_is_an_abandoned_call(container: Container) -> None:
    result = call(container, "support_en", ["1"], now=LONDON_TUESDAY_11)  # no second key: hangs up
    assert result.ended_by == "caller"
    call_record = recorded(container, result.uniqueid)
    assert call_record.interaction.outcome == "abandoned"
    assert call_record.steps()[-1] == ("ivr_node", "tech_menu", "hangup")


def test_the_timeline_shows_the_call_to_whoever_looks_the_number_up(
    container: Container, client: TestClient
) -> None:
    result = call(container, "support_en", ["2"], caller="+34600111222", now=LONDON_TUESDAY_11)
    found = client.get("/api/v1/customers/lookup", params={"phone": "600 111 222"})
    assert found.status_code == 200, found.text
    customer_id = found.json()["customer"]["id"]
    page = client.get(f"/api/v1/customers/{customer_id}/timeline", params={"include": "touchpoints"}).json()
    (item,) = page["items"]
    assert (item["channel"], item["outcome"]) == ("voice", "transferred")
    assert item["external_refs"] == [{"kind": "asterisk_linkedid", "value": result.uniqueid}]
    kinds = [t["kind"] for t in item["touchpoints"]]
    assert kinds[0] == "ivr_node" and "menu_choice" in kinds and kinds[-1] == "queue_enter"


def test_a_second_agi_for_the_same_call_continues_its_interaction(container: Container) -> None:
    first = call(container, "support_en", ["2"], now=LONDON_TUESDAY_11, uniqueid="1795537000.7")
    second = call(container, "support_en", ["3"], now=LONDON_TUESDAY_11, uniqueid="1795537000.7")
    assert first.uniqueid == second.uniqueid
    call_record = recorded(container, "1795537000.7")
    assert [t.node for t in call_record.touchpoints].count("welcome") == 2
    assert call_record.interaction.outcome == "transferred"


# --- isolation and the fallback -----------------------------------------------------------------------------


def test_two_calls_at_once_one_crashing_do_not_disturb_each_other(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    banco = container.flows().flows["banco_es"]
    broken = banco.model_copy(update={"name": "broken", "start": "nowhere"})
    flows = {"banco_es": banco, "broken": broken}
    prompts = prompt_texts([banco])

    async def main() -> tuple[CallResult, CallResult]:
        runner = CallRunner(container.call_journal(), clock=lambda: MADRID_MONDAY_10)
        async with FastAgiServer(ivr_router(flows.get, runner), port=0) as server:

            def dial(flow: str, keys: list[str]) -> asyncio.Task[CallResult]:
                return asyncio.create_task(
                    place_call(
                        "127.0.0.1",
                        server.port,
                        flow,
                        keypad=ScriptedKeypad(keys),
                        caller=CALLER,
                        prompts=prompts,
                        say=lambda line: None,
                    )
                )

            crashing, fine = dial("broken", []), dial("banco_es", ["2"])
            results = await asyncio.gather(crashing, fine)
        await runner.drain(timeout=10)
        return results[0], results[1]

    with caplog.at_level(logging.ERROR, logger="voice.ivr.call_runner"):
        crashed, fine = asyncio.run(main())
    assert crashed.commands == ["GET VARIABLE CHANNEL(linkedid)", "HANGUP"] and crashed.closed_by_server
    assert f"call {crashed.uniqueid} (broken): the IVR failed; hanging up" in caplog.text
    assert recorded(container, crashed.uniqueid).interaction.outcome == "failed"
    assert fine.ended_by == "handoff" and "EXEC Queue facturacion" in fine.commands
    assert recorded(container, fine.uniqueid).interaction.outcome == "transferred"


def test_an_unknown_flow_gets_the_fallback_and_no_timeline(container: Container) -> None:
    result = call(container, "no_such_flow", ["1"])
    assert result.commands == ["HANGUP"] and result.ended_by == "ivr"
    with container.session_factory() as db:
        assert db.scalars(select(Interaction)).all() == []


class CaseFactory:
    @staticmethod
    def fault(customer_id: int) -> CaseCreate:
        return CaseCreate(customer_id=customer_id, subject="No broadband since Monday")
