"""Whole calls through the shipped flows (ivr_flows/*.yaml), fed event by event as a runner would."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from voice.ivr.actions import (
    Action,
    EnqueueCall,
    EstimateWait,
    Hangup,
    Listen,
    LookupCustomer,
    OfferCallback,
    Play,
    Record,
    RecordStep,
    SendLink,
    Transfer,
)
from voice.ivr.engine import Awaiting, State, step
from voice.ivr.events import (
    ActionFailed,
    CallStarted,
    CustomerInfo,
    DigitsReceived,
    Event,
    LookupResult,
    NoInput,
    PromptFinished,
    QueueWaitEstimated,
    SpeechRecognised,
)
from voice.ivr.loader import load_flows
from voice.ivr.schema import Flow, LinkChannel, LookupBy

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
BANCO = FLOWS["banco_es"]
SUPPORT = FLOWS["support_en"]

MADRID_MONDAY_10 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
MADRID_SUNDAY = datetime(2025, 3, 2, 10, 0, tzinfo=UTC)
MADRID_EPIPHANY = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
LONDON_TUESDAY_11 = datetime(2025, 3, 4, 11, 0, tzinfo=UTC)
LONDON_BOXING_DAY = datetime(2025, 12, 26, 11, 0, tzinfo=UTC)
CALLER = "+34600111222"
CARD = "4539578763621486"


class Call:
    """The runner's view: send an event, get the actions, look at the state.

    A queue node asking for the estimated wait is answered with `acd` at once (by default as a runner
    without Centralita's ACD answers: not routed), so the actions sent back include what followed it."""

    def __init__(
        self,
        flow: Flow,
        *,
        caller: str = CALLER,
        now: datetime = MADRID_MONDAY_10,
        acd: QueueWaitEstimated | None = None,
    ) -> None:
        self.flow = flow
        self.state = State()
        self.actions: list[Action] = []
        self.acd = acd or QueueWaitEstimated(routed=False)
        self.send(CallStarted(caller_number=caller, called_number="+34910000000", now=now))

    def send(self, event: Event) -> list[Action]:
        self.state, actions = step(self.flow, self.state, event)
        while self.state.awaiting is Awaiting.ESTIMATE:
            assert isinstance(actions[-1], EstimateWait)
            self.state, more = step(self.flow, self.state, self.acd)
            actions = [*actions, *more]
        self.actions.extend(actions)
        return actions

    def path(self) -> list[str]:
        """The nodes entered so far, in order."""
        return [a.node for a in self.actions if isinstance(a, RecordStep) and a.input is None]


def of(kind: type[Any], actions: list[Action]) -> list[Any]:
    return [action for action in actions if isinstance(action, kind)]


def unknown_caller_at_main_menu(now: datetime = MADRID_MONDAY_10) -> Call:
    call = Call(BANCO, now=now)
    assert call.actions[-1] == LookupCustomer(by=LookupBy.CALLER, value=CALLER)
    call.send(LookupResult(customer=None))
    call.send(PromptFinished())
    assert call.state.node == "menu_principal" and call.state.awaiting is Awaiting.INPUT
    return call


# --- banco_es ---------------------------------------------------------------------------------------


def test_banco_caller_presses_2_and_reaches_the_billing_queue() -> None:
    call = unknown_caller_at_main_menu()
    actions = call.send(DigitsReceived(digits="2"))
    assert actions[-1] == EnqueueCall(queue="facturacion", priority=3, skills=["facturacion"], language="es")
    assert of(Play, actions)[-1].text == "Le pasamos con el departamento de facturación."
    assert call.state.finished and call.state.awaiting is Awaiting.HANDOFF
    assert call.path() == [
        "identificar_llamante", "bienvenida", "horario", "prioridad", "menu_principal", "cola_facturacion",
    ]  # fmt: skip


def test_banco_welcome_plays_the_recording_with_its_text() -> None:
    call = Call(BANCO)
    (welcome,) = of(Play, call.send(LookupResult(customer=None)))
    assert welcome.audio == "meridiano/es/bienvenida.wav"
    assert welcome.text.startswith("Bienvenido a Banco Meridiano.") and welcome.barge_in


@pytest.mark.parametrize(
    ("said", "confidence", "queue"),
    [
        ("Facturación", 0.92, "facturacion"),
        ("quiero hablar de un cargo en mi cuenta", 0.81, "facturacion"),
        ("tengo una avería en el cajero", 0.9, None),  # to the faults menu
    ],
)
def test_banco_speech_in_the_main_menu(said: str, confidence: float, queue: str | None) -> None:
    call = unknown_caller_at_main_menu()
    actions = call.send(SpeechRecognised(text=said, confidence=confidence))
    if queue:
        assert of(EnqueueCall, actions)[0].queue == queue
    else:
        assert call.state.node == "averias"


def test_banco_unsure_speech_is_confirmed_and_then_routed() -> None:
    call = unknown_caller_at_main_menu()
    actions = call.send(SpeechRecognised(text="facturacion", confidence=0.35))
    assert of(Play, actions)[0].text == "¿Ha dicho facturación? Pulse 1 o diga sí; pulse 2 o diga no."
    actions = call.send(SpeechRecognised(text="sí", confidence=0.8))
    assert of(EnqueueCall, actions)[0].queue == "facturacion"


def test_banco_balance_by_card_and_birth_date_is_sent_by_sms() -> None:
    call = unknown_caller_at_main_menu()
    call.send(DigitsReceived(digits="1"))
    assert call.state.node == "pedir_tarjeta"
    call.send(DigitsReceived(digits="4539578763621487#"))  # a typo: the Luhn check catches it
    assert call.state.node == "pedir_tarjeta" and call.state.retries == 1
    actions = call.send(DigitsReceived(digits=CARD + "#"))
    assert actions[-1] == LookupCustomer(by=LookupBy.DIGITS, value=CARD)
    call.send(LookupResult(customer=CustomerInfo(customer_id=42, name="María Pérez")))
    assert call.state.node == "pedir_fecha"
    actions = call.send(DigitsReceived(digits="05031980"))
    (link,) = of(SendLink, actions)
    assert link == SendLink(
        channel=LinkChannel.SMS,
        to=CALLER,
        link="balance",
        text="Banco Meridiano: siga con su consulta en este enlace seguro, válido 7 días: {link}",
        language="es",
    )
    actions = call.send(PromptFinished())
    assert actions[-1] == Hangup() and call.state.finished
    assert all(
        CARD not in (a.input or "") and "05031980" not in (a.input or "")
        for a in of(RecordStep, call.actions)
    )


def test_banco_unknown_card_goes_to_an_agent() -> None:
    call = unknown_caller_at_main_menu()
    call.send(DigitsReceived(digits="1"))
    call.send(DigitsReceived(digits=CARD))
    call.send(LookupResult(customer=None))
    assert call.state.node == "tarjeta_no_encontrada"
    actions = call.send(PromptFinished())
    assert of(EnqueueCall, actions)[0].queue == "atencion_general"


def test_banco_english_speaking_vip_is_welcomed_in_english_and_goes_to_private_banking() -> None:
    call = Call(BANCO)
    actions = call.send(LookupResult(customer=CustomerInfo(customer_id=7, language="en", vip=True)))
    assert of(Play, actions)[0].text.startswith("Welcome to Banco Meridiano.")
    actions = call.send(PromptFinished())
    assert actions[-1] == EnqueueCall(
        queue="banca_privada", priority=9, skills=["banca_privada"], language="en"
    )


def test_banco_customer_with_an_open_case_is_asked_about_it() -> None:
    call = Call(BANCO)
    call.send(LookupResult(customer=CustomerInfo(customer_id=8, language="es", open_case_count=2)))
    call.send(PromptFinished())
    assert call.state.node == "caso_abierto"
    actions = call.send(SpeechRecognised(text="sí, por la incidencia", confidence=0.9))
    assert of(EnqueueCall, actions)[0].queue == "incidencias"


def test_banco_nine_switches_between_spanish_and_english() -> None:
    call = unknown_caller_at_main_menu()
    actions = call.send(DigitsReceived(digits="9"))
    assert call.state.language == "en" and call.state.node == "menu_principal"
    assert of(Play, actions)[0].text.startswith("To check your balance, press 1")
    assert of(Listen, actions)[0].phrases["2"][:3] == ["billing", "bills", "bill"]
    call.send(SpeechRecognised(text="Spanish", confidence=0.9))
    assert call.state.language == "es"
    actions = call.send(DigitsReceived(digits="2"))
    assert of(EnqueueCall, actions)[0].language == "es"


def test_banco_silent_caller_reaches_an_agent_after_the_retries() -> None:
    call = unknown_caller_at_main_menu()
    prompts = [of(Play, call.send(NoInput()))[0].text for _ in range(2)]
    again = (
        "No le he oído. Pulse 1 para saldo, 2 para facturación, 3 para averías o 0 para hablar con un agente."
    )
    assert prompts == [again, again]
    actions = call.send(NoInput())
    assert of(EnqueueCall, actions)[0].queue == "atencion_general"


def test_banco_lost_card_is_transferred_and_falls_back_to_the_faults_queue() -> None:
    call = unknown_caller_at_main_menu()
    call.send(DigitsReceived(digits="3"))
    actions = call.send(
        SpeechRecognised(text="me han robado la tarjeta, quiero bloquear la tarjeta", confidence=0.9)
    )
    assert actions[-1] == Transfer(target="+34900100200")
    actions = call.send(ActionFailed(reason="congestion", action="transfer"))
    assert of(EnqueueCall, actions)[0].queue == "averias"


def test_banco_agent_request_offers_a_callback() -> None:
    call = unknown_caller_at_main_menu()
    call.send(SpeechRecognised(text="quiero hablar con una persona", confidence=0.88))
    assert call.state.node == "ofrecer_llamada"
    actions = call.send(SpeechRecognised(text="sí", confidence=0.9))
    assert of(OfferCallback, actions) == [
        OfferCallback(queue="atencion_general", number=CALLER, language="es")
    ]
    assert actions[-1] == Hangup()


def test_banco_after_hours_voicemail() -> None:
    call = Call(BANCO, now=MADRID_SUNDAY)
    call.send(LookupResult(customer=None))
    call.send(PromptFinished())
    assert call.state.node == "fuera_de_horario"
    actions = call.send(DigitsReceived(digits="1"))
    assert actions[-1] == Record(mailbox="atencion_cliente", max_seconds=120, beep=True)
    actions = call.send(PromptFinished())
    assert of(Play, actions)[0].text == "Gracias. Le llamaremos el próximo día laborable. Adiós."
    assert actions[-1] == Hangup()


def test_banco_holiday_is_announced_and_whatsapp_offered() -> None:
    call = Call(BANCO, now=MADRID_EPIPHANY)
    call.send(LookupResult(customer=None))
    call.send(PromptFinished())
    assert call.state.node == "festivo"
    call.send(PromptFinished())
    actions = call.send(DigitsReceived(digits="2"))
    assert of(SendLink, actions)[0].channel is LinkChannel.WHATSAPP
    actions = call.send(ActionFailed(reason="not on WhatsApp", action="send_link"))
    assert call.state.node == "buzon" and of(Record, actions)


@pytest.mark.parametrize(
    ("now", "node"),
    [
        (datetime(2025, 3, 28, 6, 30, tzinfo=UTC), "fuera_de_horario"),  # Fri 07:30 CET
        (datetime(2025, 3, 31, 6, 30, tzinfo=UTC), "menu_principal"),  # Mon 08:30 CEST
    ],
)
def test_banco_business_hours_across_the_clock_change(now: datetime, node: str) -> None:
    call = Call(BANCO, now=now)
    call.send(LookupResult(customer=None))
    call.send(PromptFinished())
    assert call.state.node == node


# --- support_en -------------------------------------------------------------------------------------


def support_main_menu(**customer: Any) -> Call:
    call = Call(SUPPORT, caller="+447700900123", now=LONDON_TUESDAY_11)
    assert call.state.node == "welcome"
    call.send(PromptFinished())
    call.send(LookupResult(customer=CustomerInfo(customer_id=5, **customer) if customer else None))
    return call


def test_support_order_tracking_by_order_number() -> None:
    call = support_main_menu()
    assert call.state.node == "main_menu"
    call.send(DigitsReceived(digits="3"))
    actions = call.send(DigitsReceived(digits="41234567#"))
    assert actions[-1] == LookupCustomer(by=LookupBy.DIGITS, value="41234567")
    actions = call.send(LookupResult(customer=CustomerInfo(customer_id=5)))
    assert of(SendLink, actions) == [
        SendLink(
            channel=LinkChannel.WHATSAPP,
            to="+447700900123",
            link="order_tracking",
            text="Northwind: track your order and manage your installation appointment here: {link}",
            language="en",
        )
    ]
    actions = call.send(PromptFinished())
    assert (
        of(Play, actions)[0].text == "Thanks for calling Northwind Broadband. Goodbye."
        and actions[-1] == Hangup()
    )


def test_support_outage_by_speech_texts_status_then_queues_for_an_engineer() -> None:
    call = support_main_menu()
    call.send(SpeechRecognised(text="My internet keeps going off", confidence=0.9))
    assert call.state.node == "tech_menu"
    actions = call.send(SpeechRecognised(text="the internet is down", confidence=0.9))
    assert of(SendLink, actions)[0].link == "service_status"
    actions = call.send(PromptFinished())
    assert actions[-1] == EnqueueCall(queue="technical", priority=4, skills=["broadband"], language="en")


def test_support_open_case_goes_back_to_its_team() -> None:
    call = support_main_menu(open_case_count=1)
    assert call.state.node == "case_menu"
    actions = call.send(DigitsReceived(digits="1"))
    assert actions[-1] == EnqueueCall(queue="technical", priority=6, skills=["case_followup"], language="en")


def test_support_billing_queue_refusal_offers_a_callback_then_holds_in_general() -> None:
    call = support_main_menu()
    call.send(DigitsReceived(digits="2"))
    call.send(ActionFailed(reason="queue closed", action="enqueue_call"))
    assert call.state.node == "callback_offer" and not call.state.finished
    actions = call.send(SpeechRecognised(text="no thanks", confidence=0.9))
    assert of(EnqueueCall, actions)[0].queue == "support"


def test_support_sales_is_a_transfer() -> None:
    call = support_main_menu()
    actions = call.send(SpeechRecognised(text="I'm moving home", confidence=0.3))
    assert of(Play, actions)[0].text == "Did you say sales? Press 1 or say yes; press 2 or say no."
    actions = call.send(DigitsReceived(digits="1"))
    assert actions[-1] == Transfer(target="PJSIP/sales")


def test_support_bank_holiday_goes_to_voicemail() -> None:
    call = Call(SUPPORT, caller="+447700900123", now=LONDON_BOXING_DAY)
    call.send(PromptFinished())
    call.send(LookupResult(customer=None))
    assert call.state.node == "holiday_message"
    call.send(PromptFinished())
    actions = call.send(SpeechRecognised(text="I'd like to leave a message", confidence=0.9))
    assert actions[-1] == Record(mailbox="support", max_seconds=180, beep=True)
    actions = call.send(DigitsReceived(digits="#"))
    assert actions[-1] == Hangup()
    assert call.path()[-4:] == ["holiday_message", "after_hours", "voicemail", "voicemail_goodbye"]
