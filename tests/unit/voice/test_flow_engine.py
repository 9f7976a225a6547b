"""The IVR engine, node kind by node kind, on a small flow built here."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from voice.ivr.actions import (
    Action,
    CollectDigits,
    EnqueueCall,
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
    CallerHungUp,
    CallStarted,
    CustomerInfo,
    DigitsReceived,
    Event,
    LookupResult,
    NoInput,
    NoMatch,
    PromptFinished,
    SpeechRecognised,
)
from voice.ivr.loader import parse_flow
from voice.ivr.schema import Flow, LinkChannel, LookupBy, MenuNode

MONDAY_10_MADRID = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # 10:00 CET
SUNDAY_MADRID = datetime(2025, 3, 2, 11, 0, tzinfo=UTC)
EPIPHANY_MADRID = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)  # a Monday, but a holiday
CALLER = "+34600111222"
CARD = "4539578763621486"


def p(es: str, en: str) -> dict[str, str]:
    return {"es": es, "en": en}


def ask(es: str, en: str, on_failure: str = "adios", **fields: Any) -> dict[str, Any]:
    return {
        "prompt": p(es, en),
        "no_input_prompt": p(f"No le oigo. {es}", f"I can't hear you. {en}"),
        "no_match_prompt": p(f"No le entiendo. {es}", f"Sorry? {en}"),
        "on_failure": on_failure,
        **fields,
    }


BASE: dict[str, Any] = {
    "name": "prueba",
    "languages": ["es", "en"],
    "default_language": "es",
    "start": "identificar",
    "schedules": {
        "oficina": {
            "time_zone": "Europe/Madrid",
            "weekly": {day: ["08:00-20:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
            "holidays": ["2025-01-06"],
        }
    },
    "nodes": {
        "identificar": {"kind": "lookup", "by": "caller", "found": "idioma", "not_found": "bienvenida"},
        "idioma": {"kind": "set_language", "language": "customer", "next": "bienvenida"},
        "bienvenida": {"kind": "play", "prompt": p("Bienvenido", "Welcome"), "next": "horario"},
        "horario": {
            "kind": "condition",
            "rules": [
                {"holiday": "oficina", "next": "festivo"},
                {"business_hours": "oficina", "next": "segmento"},
            ],
            "default": "buzon",
        },
        "festivo": {"kind": "play", "prompt": p("Hoy es festivo", "It is a holiday"), "next": "buzon"},
        "segmento": {
            "kind": "condition",
            "rules": [
                {"vip": True, "next": "cola_vip"},
                {"open_case": True, "customer_language": "en", "next": "cola_casos_en"},
                {"open_case": True, "next": "cola_casos"},
            ],
            "default": "menu",
        },
        "menu": {
            "kind": "menu",
            **ask("Pulse 1 saldo, 2 facturación", "Press 1 balance, 2 billing", on_failure="cola_general"),
            "retries": 2,
            "timeout_ms": 4000,
            "confidence_threshold": 0.6,
            "confirm_prompt": p("¿Ha dicho {option}?", "Did you say {option}?"),
            "options": {
                1: {
                    "next": "tarjeta",
                    "phrases": {"es": ["saldo", "consultar saldo"], "en": ["balance"]},
                    "synonyms": {"es": ["cuánto dinero tengo"]},
                },
                2: {
                    "next": "cola_facturacion",
                    "phrases": {"es": ["facturación", "facturas"], "en": ["billing"]},
                    "synonyms": {"es": ["recibo", "cobro"], "en": ["bill"]},
                },
                3: {"next": "llamada"},
                4: {"next": "enlace"},
                5: {"next": "transferencia"},
                6: {"next": "buzon"},
                9: {"next": "ingles", "phrases": {"es": ["inglés"], "en": ["Spanish"]}},
            },
        },
        "ingles": {"kind": "set_language", "language": "en", "next": "menu"},
        "tarjeta": {
            "kind": "collect",
            **ask("Marque su tarjeta", "Key in your card", on_failure="cola_general"),
            "variable": "tarjeta",
            "min_length": 16,
            "max_length": 16,
            "terminator": "#",
            "validation": "luhn",
            "sensitive": True,
            "retries": 1,
            "next": "buscar",
        },
        "buscar": {
            "kind": "lookup",
            "by": "digits",
            "variable": "tarjeta",
            "found": "fecha",
            "not_found": "adios",
        },
        "fecha": {
            "kind": "collect",
            **ask("Fecha de nacimiento", "Date of birth"),
            "variable": "nacimiento",
            "min_length": 8,
            "max_length": 8,
            "terminator": None,
            "validation": "date_ddmmyyyy",
            "next": "enlace",
        },
        "enlace": {
            "kind": "send_link",
            "channel": "sms",
            "link": "balance",
            "template": p("Su saldo: {link}", "Your balance: {link}"),
            "prompt": p("Le enviamos un SMS", "We sent you a text"),
            "next": "adios",
            "on_failure": "buzon",
        },
        "llamada": {
            "kind": "callback_offer",
            **ask("¿Le llamamos?", "Shall we call you?", on_failure="cola_general"),
            "queue": "general",
            "retries": 0,
            "accepted": "adios",
            "declined": "cola_general",
        },
        "transferencia": {
            "kind": "transfer",
            "target": "+34900100200",
            "prompt": p("Le transferimos", "Transferring you"),
            "on_failure": "cola_general",
        },
        "buzon": {
            "kind": "record",
            "prompt": p("Deje su mensaje", "Leave a message"),
            "mailbox": "general",
            "max_seconds": 60,
            "next": "adios",
        },
        "cola_vip": {"kind": "queue", "queue": "vip", "priority": 9, "skills": ["banca_privada"]},
        "cola_casos": {"kind": "queue", "queue": "casos", "priority": 5},
        "cola_casos_en": {"kind": "queue", "queue": "casos", "priority": 5, "skills": ["english"]},
        "cola_facturacion": {
            "kind": "queue",
            "queue": "facturacion",
            "priority": 3,
            "skills": ["facturacion"],
            "prompt": p("Le pasamos con facturación", "Billing, please hold"),
            "on_failure": "buzon",
        },
        "cola_general": {"kind": "queue", "queue": "general"},
        "adios": {"kind": "hangup", "prompt": p("Adiós", "Goodbye")},
    },
}


def make_flow(changes: dict[str, Any] | None = None) -> Flow:
    """The flow above, with some nodes replaced (node id -> fields to update)."""
    data = copy.deepcopy(BASE)
    for node_id, fields in (changes or {}).items():
        data["nodes"][node_id].update(fields)
    flow, problems = parse_flow(
        yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode(), file="prueba.yaml"
    )
    assert not problems, problems
    assert flow is not None
    return flow


FLOW = make_flow()


def run(flow: Flow, events: list[Event], state: State | None = None) -> tuple[State, list[Action]]:
    state = state or State()
    actions: list[Action] = []
    for event in events:
        state, produced = step(flow, state, event)
        actions.extend(produced)
    return state, actions


def start(flow: Flow = FLOW, *, caller: str = CALLER, now: datetime = MONDAY_10_MADRID) -> CallStarted:
    return CallStarted(caller_number=caller, called_number="+34910000000", now=now)


def at_menu(flow: Flow = FLOW) -> State:
    """An unknown caller on a working day, listening to the menu."""
    state, _ = run(flow, [start(flow), LookupResult(customer=None), PromptFinished()])
    assert state.node == "menu" and state.awaiting is Awaiting.INPUT
    return state


def of(kind: type[Any], actions: list[Action]) -> list[Any]:
    return [action for action in actions if isinstance(action, kind)]


def visited(actions: list[Action]) -> list[str]:
    return [action.node for action in actions if isinstance(action, RecordStep) and action.input is None]


# --- starting, play, set_language, lookup, condition -------------------------------------------------


def test_call_started_looks_up_the_caller_first() -> None:
    state, actions = run(FLOW, [start()])
    assert state.node == "identificar" and state.awaiting is Awaiting.LOOKUP
    assert state.language == "es" and state.started_at == MONDAY_10_MADRID and state.caller == CALLER
    assert actions == [
        RecordStep(node="identificar", kind="lookup"),
        LookupCustomer(by=LookupBy.CALLER, value=CALLER),
    ]


@pytest.mark.parametrize("caller", ["", "anonymous", "  ", "+", "12"])
def test_withheld_caller_skips_the_lookup(caller: str) -> None:
    state, actions = run(FLOW, [start(caller=caller)])
    assert not of(LookupCustomer, actions)
    assert state.node == "bienvenida" and state.awaiting is Awaiting.PROMPT
    assert (
        RecordStep(node="identificar", kind="lookup", input="caller", result="nothing to look up") in actions
    )


def test_play_speaks_the_prompt_then_moves_on_when_it_finishes() -> None:
    state, actions = run(FLOW, [start(), LookupResult(customer=None)])
    assert actions[-1] == Play(text="Bienvenido", audio=None, language="es", barge_in=False)
    assert state.node == "bienvenida"
    state, actions = step(FLOW, state, PromptFinished())
    assert state.node == "menu"
    assert visited(actions) == ["horario", "segmento", "menu"]


def test_play_without_barge_in_ignores_keys_and_with_barge_in_skips() -> None:
    state, _ = run(FLOW, [start(), LookupResult(customer=None)])
    same, actions = step(FLOW, state, DigitsReceived(digits="1"))
    assert same is state and actions == []

    flow = make_flow({"bienvenida": {"barge_in": True}})
    state, _ = run(flow, [start(flow), LookupResult(customer=None)])
    assert of(Play, _)[-1].barge_in is True
    state, actions = step(flow, state, DigitsReceived(digits="5"))
    assert state.node == "menu"
    assert actions[0] == RecordStep(node="bienvenida", kind="play", input="5", result="barge-in")


def test_a_failed_prompt_does_not_strand_the_caller() -> None:
    state, _ = run(FLOW, [start(), LookupResult(customer=None)])
    state, actions = step(FLOW, state, ActionFailed(reason="no such file", action="play"))
    assert state.node == "menu"
    assert actions[0] == RecordStep(node="bienvenida", kind="play", result="failed: no such file")


def test_found_customer_is_kept_and_their_language_used() -> None:
    customer = CustomerInfo(customer_id=7, name="Ann", language="en")
    state, actions = run(FLOW, [LookupResult(customer=customer)], run(FLOW, [start()])[0])
    assert state.customer == customer and state.language == "en"
    assert actions[0] == RecordStep(
        node="identificar", kind="lookup", input="caller", text="7", result="found"
    )
    assert RecordStep(node="idioma", kind="set_language", result="en") in actions
    assert actions[-1] == Play(text="Welcome", audio=None, language="en", barge_in=False)


def test_customer_language_the_flow_lacks_keeps_the_default() -> None:
    state, actions = run(FLOW, [start(), LookupResult(customer=CustomerInfo(customer_id=7, language="fr"))])
    assert state.language == "es"
    assert of(Play, actions)[-1].text == "Bienvenido"


def test_failed_lookup_counts_as_not_found() -> None:
    state, _ = step(FLOW, State(), start())
    state, actions = step(FLOW, state, ActionFailed(reason="database down", action="lookup_customer"))
    assert state.node == "bienvenida" and state.customer is None
    assert actions[0] == RecordStep(node="identificar", kind="lookup", result="failed: database down")


@pytest.mark.parametrize(
    ("customer", "queue", "skills"),
    [
        (CustomerInfo(customer_id=1, vip=True, open_case_count=3), "vip", ["banca_privada"]),
        (CustomerInfo(customer_id=2, open_case_count=1, language="en"), "casos", ["english"]),
        (CustomerInfo(customer_id=3, open_case_count=1, language="es"), "casos", []),
    ],
)
def test_condition_routes_on_customer_data(customer: CustomerInfo, queue: str, skills: list[str]) -> None:
    state, actions = run(FLOW, [start(), LookupResult(customer=customer), PromptFinished()])
    assert state.finished and state.awaiting is Awaiting.HANDOFF
    (enqueue,) = of(EnqueueCall, actions)
    assert (enqueue.queue, enqueue.skills) == (queue, skills)


def test_condition_without_open_case_falls_to_default() -> None:
    customer = CustomerInfo(customer_id=4, open_case_count=0)
    state, actions = run(FLOW, [start(), LookupResult(customer=customer), PromptFinished()])
    assert state.node == "menu"
    assert RecordStep(node="segmento", kind="condition", result="default: menu") in actions


@pytest.mark.parametrize(
    ("now", "path"),
    [
        (MONDAY_10_MADRID, ["horario", "segmento", "menu"]),
        (SUNDAY_MADRID, ["horario", "buzon"]),
        (EPIPHANY_MADRID, ["horario", "festivo"]),
    ],
)
def test_condition_on_business_hours_uses_the_call_start_time(now: datetime, path: list[str]) -> None:
    state, _ = run(FLOW, [start(now=now), LookupResult(customer=None)])
    _, actions = step(FLOW, state, PromptFinished())
    assert visited(actions) == path


# --- menu: keys, speech, confirmation, retries -------------------------------------------------------


def test_menu_plays_with_barge_in_and_listens_for_keys_and_phrases() -> None:
    _, actions = run(FLOW, [start(), LookupResult(customer=None), PromptFinished()])
    assert actions[-3:] == [
        Play(text="Pulse 1 saldo, 2 facturación", audio=None, language="es", barge_in=True),
        CollectDigits(max_digits=1, min_digits=1, timeout_ms=4000, terminator=None),
        Listen(
            phrases={
                "1": ["saldo", "consultar saldo", "cuánto dinero tengo"],
                "2": ["facturación", "facturas", "recibo", "cobro"],
                "9": ["inglés"],
            },
            language="es",
            timeout_ms=4000,
        ),
    ]


def test_menu_key_goes_to_its_option() -> None:
    state, actions = step(FLOW, at_menu(), DigitsReceived(digits="2"))
    assert state.node == "cola_facturacion" and state.finished
    assert actions[0] == RecordStep(node="menu", kind="menu", input="2", result="option 2")
    assert actions[-1] == EnqueueCall(queue="facturacion", priority=3, skills=["facturacion"], language="es")


@pytest.mark.parametrize(
    ("said", "option"),
    [
        ("facturacion", "2"),
        ("Facturación", "2"),
        ("FACTURACIÓN.", "2"),
        ("¿facturación?", "2"),
        ("quiero hablar de mis facturas por favor", "2"),
        ("tengo un recibo que no entiendo", "2"),  # a synonym
        ("cuanto dinero tengo", "1"),
        ("consultar saldo de facturación", "1"),  # the longer phrase wins
        ("ingles", "9"),
    ],
)
def test_menu_speech_matches_folded_phrases_and_synonyms(said: str, option: str) -> None:
    _, actions = step(FLOW, at_menu(), SpeechRecognised(text=said, confidence=0.9))
    assert actions[0] == RecordStep(
        node="menu", kind="menu", input="speech", text=said, confidence=0.9, result=f"option {option}"
    )
    menu = FLOW.nodes["menu"]
    assert isinstance(menu, MenuNode)
    assert visited(actions)[0] == menu.options[option].next


@pytest.mark.parametrize(
    "said",
    [
        "factura",  # not a phrase: phrases match whole words only
        "facturacionx",
        "saldo y facturas",  # two options, equally long: ambiguous
        "buenos dias",
        "",
    ],
)
def test_menu_speech_that_matches_nothing_is_a_no_match(said: str) -> None:
    state, actions = step(FLOW, at_menu(), SpeechRecognised(text=said, confidence=0.95))
    assert state.node == "menu" and state.retries == 1
    assert of(Play, actions) == [
        Play(text="No le entiendo. Pulse 1 saldo, 2 facturación", audio=None, language="es", barge_in=True)
    ]
    assert of(RecordStep, actions)[0].result == "no-match; asking again"


def test_unsure_speech_is_confirmed_before_acting() -> None:
    state, actions = step(FLOW, at_menu(), SpeechRecognised(text="facturacion", confidence=0.4))
    assert state.node == "menu" and state.confirming == "2" and state.retries == 0
    assert actions == [
        RecordStep(
            node="menu",
            kind="menu",
            input="speech",
            text="facturacion",
            confidence=0.4,
            result="confirm option 2",
        ),
        Play(text="¿Ha dicho facturación?", audio=None, language="es", barge_in=True),
        CollectDigits(max_digits=1, min_digits=1, timeout_ms=4000, terminator=None),
        Listen(phrases=of(Listen, actions)[0].phrases, language="es", timeout_ms=4000),
    ]
    assert "sí" in of(Listen, actions)[0].phrases["yes"] and "no" in of(Listen, actions)[0].phrases["no"]


@pytest.mark.parametrize(
    ("answer", "confirmed"),
    [
        (DigitsReceived(digits="1"), True),
        (SpeechRecognised(text="Sí", confidence=0.5), True),
        (SpeechRecognised(text="si, correcto", confidence=0.8), True),
        (DigitsReceived(digits="2"), False),
        (SpeechRecognised(text="no", confidence=0.9), False),
        (SpeechRecognised(text="no es correcto", confidence=0.9), False),
        (DigitsReceived(digits="7"), False),
        (SpeechRecognised(text="pues no lo sé", confidence=0.9), False),
    ],
)
def test_confirmation_answer(answer: Event, confirmed: bool) -> None:
    state, _ = step(FLOW, at_menu(), SpeechRecognised(text="facturacion", confidence=0.4))
    state, actions = step(FLOW, state, answer)
    if confirmed:
        assert state.node == "cola_facturacion"
        assert of(RecordStep, actions)[0].result == "option 2 (confirmed)"
    else:
        assert state.node == "menu" and state.confirming is None and state.retries == 1
        assert of(Play, actions)[0].text == "No le entiendo. Pulse 1 saldo, 2 facturación"
        assert of(RecordStep, actions)[0].result == "no-match: not confirmed; asking again"


def test_confirmation_is_asked_in_english_with_the_english_phrase() -> None:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="9"))
    assert state.language == "en" and state.node == "menu"
    state, actions = step(FLOW, state, SpeechRecognised(text="billing", confidence=0.3))
    assert of(Play, actions)[0].text == "Did you say billing?"
    state, actions = step(FLOW, state, SpeechRecognised(text="yes please", confidence=0.7))
    assert state.node == "cola_facturacion"
    assert of(EnqueueCall, actions)[0].language == "en"


def test_unsure_speech_without_a_confirm_prompt_is_a_no_match() -> None:
    flow = make_flow({"menu": {"confirm_prompt": None}})
    state, actions = step(flow, at_menu(flow), SpeechRecognised(text="facturacion", confidence=0.4))
    assert state.node == "menu" and state.confirming is None and state.retries == 1
    assert of(RecordStep, actions)[0].result == "no-match: unsure of option 2; asking again"


def test_language_change_switches_prompts_and_phrases() -> None:
    state, actions = step(FLOW, at_menu(), DigitsReceived(digits="9"))
    assert visited(actions) == ["ingles", "menu"]
    assert of(Play, actions) == [
        Play(text="Press 1 balance, 2 billing", audio=None, language="en", barge_in=True)
    ]
    assert of(Listen, actions)[0].phrases == {"1": ["balance"], "2": ["billing", "bill"], "9": ["Spanish"]}
    state, _ = step(FLOW, state, SpeechRecognised(text="facturacion", confidence=0.99))
    assert state.node == "menu" and state.retries == 1  # Spanish words mean nothing in English


@pytest.mark.parametrize(
    ("failure", "prompt"),
    [
        (NoInput(), "No le oigo. Pulse 1 saldo, 2 facturación"),
        (NoMatch(), "No le entiendo. Pulse 1 saldo, 2 facturación"),
        (DigitsReceived(digits="8"), "No le entiendo. Pulse 1 saldo, 2 facturación"),
        (DigitsReceived(digits=""), "No le oigo. Pulse 1 saldo, 2 facturación"),
        (ActionFailed(reason="recogniser down", action="listen"), "No le oigo. Pulse 1 saldo, 2 facturación"),
    ],
)
def test_menu_retries_with_the_distinct_prompt_then_follows_on_failure(failure: Event, prompt: str) -> None:
    state = at_menu()
    for attempt in (1, 2):
        state, actions = step(FLOW, state, failure)
        assert state.node == "menu" and state.retries == attempt
        assert of(Play, actions) == [Play(text=prompt, audio=None, language="es", barge_in=True)]
        assert of(CollectDigits, actions) and of(Listen, actions)
    state, actions = step(FLOW, state, failure)
    assert state.node == "cola_general" and state.retries == 0
    assert of(RecordStep, actions)[0].result.endswith("giving up")
    assert of(EnqueueCall, actions) == [EnqueueCall(queue="general", priority=0, skills=[], language="es")]


def test_retries_are_counted_per_node() -> None:
    state, _ = step(FLOW, at_menu(), NoInput())
    state, _ = step(FLOW, state, NoInput())
    state, _ = step(FLOW, state, DigitsReceived(digits="1"))
    assert state.node == "tarjeta" and state.retries == 0
    state, _ = step(FLOW, state, NoInput())
    assert state.node == "tarjeta" and state.retries == 1


def test_menu_with_no_retries_gives_up_at_once() -> None:
    flow = make_flow({"menu": {"retries": 0}})
    state, _ = step(flow, at_menu(flow), NoMatch())
    assert state.node == "cola_general"


def test_events_a_node_does_not_wait_for_change_nothing() -> None:
    state = at_menu()
    for event in (PromptFinished(), LookupResult(customer=None), start()):
        same, actions = step(FLOW, state, event)
        assert same is state and actions == []


# --- collect -----------------------------------------------------------------------------------------


def at_card() -> State:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="1"))
    assert state.node == "tarjeta"
    return state


def test_collect_asks_for_digits_with_its_limits() -> None:
    _, actions = step(FLOW, at_menu(), DigitsReceived(digits="1"))
    assert actions[-2:] == [
        Play(text="Marque su tarjeta", audio=None, language="es", barge_in=True),
        CollectDigits(max_digits=16, min_digits=16, timeout_ms=5000, terminator="#"),
    ]


@pytest.mark.parametrize("digits", [CARD, CARD + "#"])
def test_collect_keeps_valid_digits_without_the_terminator(digits: str) -> None:
    state, actions = step(FLOW, at_card(), DigitsReceived(digits=digits))
    assert state.variables == {"tarjeta": CARD}
    assert state.node == "buscar"
    assert actions[-1] == LookupCustomer(by=LookupBy.DIGITS, value=CARD)


def test_sensitive_digits_reach_the_timeline_masked() -> None:
    _, actions = step(FLOW, at_card(), DigitsReceived(digits=CARD + "#"))
    assert actions[0] == RecordStep(
        node="tarjeta", kind="collect", input="************1486", result="tarjeta collected"
    )
    assert all(CARD not in (step_.input or "") for step_ in of(RecordStep, actions))


@pytest.mark.parametrize(
    ("digits", "why"),
    [
        ("4539578763621487", "fails the Luhn check"),
        ("453957876362148", "15 digits"),
        ("45395787636214861", "17 digits"),
        ("4539*78763621486", "not digits"),
    ],
)
def test_collect_refuses_bad_digits_and_asks_again(digits: str, why: str) -> None:
    state, actions = step(FLOW, at_card(), DigitsReceived(digits=digits))
    assert state.node == "tarjeta" and state.retries == 1 and state.variables == {}
    assert of(RecordStep, actions)[0].result == f"no-match: {why}; asking again"
    assert of(Play, actions)[0].text == "No le entiendo. Marque su tarjeta"
    state, _ = step(FLOW, state, DigitsReceived(digits=digits))
    assert state.node == "cola_general"  # retries: 1, then on_failure


def at_birth_date() -> State:
    state, _ = step(FLOW, at_card(), DigitsReceived(digits=CARD))
    state, _ = step(FLOW, state, LookupResult(customer=CustomerInfo(customer_id=9)))
    assert state.node == "fecha"
    return state


@pytest.mark.parametrize(
    ("digits", "accepted"),
    [("05031980", True), ("29022024", True), ("29022023", False), ("31041990", False), ("01131990", False)],
)
def test_collect_checks_a_ddmmyyyy_date(digits: str, accepted: bool) -> None:
    state, _ = step(FLOW, at_birth_date(), DigitsReceived(digits=digits))
    assert (state.node == "enlace") is accepted
    assert state.variables.get("nacimiento") == (digits if accepted else None)


def test_collect_takes_digits_said_aloud() -> None:
    state, actions = step(FLOW, at_birth_date(), SpeechRecognised(text="05 03 1980", confidence=0.8))
    assert state.variables["nacimiento"] == "05031980"
    assert of(RecordStep, actions)[0].input == "speech"


# --- send_link, callback_offer, transfer, record, queue, hangup ------------------------------------------


def test_send_link_texts_the_caller_and_says_so() -> None:
    state, actions = step(FLOW, at_menu(), DigitsReceived(digits="4"))
    assert state.node == "enlace" and state.awaiting is Awaiting.PROMPT
    assert actions[-2:] == [
        SendLink(channel=LinkChannel.SMS, to=CALLER, link="balance", text="Su saldo: {link}", language="es"),
        Play(text="Le enviamos un SMS", audio=None, language="es", barge_in=False),
    ]
    state, actions = step(FLOW, state, PromptFinished())
    assert state.node == "adios" and actions[-1] == Hangup()


def test_send_link_failure_follows_on_failure_but_a_failed_prompt_does_not() -> None:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="4"))
    failed, actions = step(FLOW, state, ActionFailed(reason="landline", action="send_link"))
    assert failed.node == "buzon"
    assert actions[0] == RecordStep(node="enlace", kind="send_link", result="failed: landline")
    unheard, _ = step(FLOW, state, ActionFailed(reason="tts down", action="play"))
    assert unheard.node == "adios"


def test_send_link_without_a_number_goes_to_on_failure() -> None:
    state, _ = run(FLOW, [start(caller="anonymous"), PromptFinished(), DigitsReceived(digits="4")])
    assert state.node == "buzon"


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        (DigitsReceived(digits="1"), True),
        (SpeechRecognised(text="Sí, por favor", confidence=0.9), True),
        (DigitsReceived(digits="2"), False),
        (SpeechRecognised(text="no, gracias", confidence=0.9), False),
    ],
)
def test_callback_offer(answer: Event, accepted: bool) -> None:
    state, actions = step(FLOW, at_menu(), DigitsReceived(digits="3"))
    assert state.node == "llamada" and state.awaiting is Awaiting.INPUT
    assert of(Listen, actions)[0].phrases.keys() == {"yes", "no"}
    state, actions = step(FLOW, state, answer)
    if accepted:
        assert of(OfferCallback, actions) == [OfferCallback(queue="general", number=CALLER, language="es")]
        assert state.node == "adios" and actions[-1] == Hangup()
    else:
        assert not of(OfferCallback, actions)
        assert state.node == "cola_general"


def test_callback_offer_unanswered_follows_on_failure() -> None:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="3"))
    state, _ = step(FLOW, state, NoInput())
    assert state.node == "cola_general"


def test_callback_is_not_offered_to_a_withheld_number() -> None:
    state, actions = run(FLOW, [start(caller=""), PromptFinished(), DigitsReceived(digits="3")])
    assert state.node == "cola_general"
    assert RecordStep(node="llamada", kind="callback_offer", result="no number to call back") in actions


def test_transfer_and_its_failure() -> None:
    state, actions = step(FLOW, at_menu(), DigitsReceived(digits="5"))
    assert state.finished and state.awaiting is Awaiting.HANDOFF
    assert actions[-2:] == [
        Play(text="Le transferimos", audio=None, language="es", barge_in=False),
        Transfer(target="+34900100200"),
    ]
    state, actions = step(FLOW, state, ActionFailed(reason="busy", action="transfer"))
    assert state.node == "cola_general" and of(EnqueueCall, actions)


def test_record_takes_a_voicemail_then_moves_on() -> None:
    state, actions = step(FLOW, at_menu(), DigitsReceived(digits="6"))
    assert actions[-2:] == [
        Play(text="Deje su mensaje", audio=None, language="es", barge_in=False),
        Record(mailbox="general", max_seconds=60, beep=True),
    ]
    for ending in (
        PromptFinished(),
        DigitsReceived(digits="#"),
        ActionFailed(reason="disk full", action="record"),
    ):
        after, actions = step(FLOW, state, ending)
        assert after.node == "adios" and after.finished and actions[-1] == Hangup()


def test_queue_refusal_follows_on_failure_or_hangs_up() -> None:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="2"))
    assert state.awaiting is Awaiting.HANDOFF
    state, actions = step(FLOW, state, ActionFailed(reason="queue full", action="enqueue_call"))
    assert state.node == "buzon" and not state.finished
    assert actions[0] == RecordStep(node="cola_facturacion", kind="queue", result="failed: queue full")

    state, _ = step(FLOW, at_menu(), NoInput())
    state, _ = run(FLOW, [NoInput(), NoInput()], state)
    assert state.node == "cola_general"
    state, actions = step(FLOW, state, ActionFailed(reason="no agents", action="enqueue_call"))
    assert state.finished and state.awaiting is Awaiting.NOTHING and actions[-1] == Hangup()


def test_queue_whose_announcement_failed_is_still_entered() -> None:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="2"))
    state, actions = step(FLOW, state, ActionFailed(reason="tts down", action="play"))
    assert actions == [EnqueueCall(queue="facturacion", priority=3, skills=["facturacion"], language="es")]
    assert state.finished and state.node == "cola_facturacion"


def test_hangup_says_goodbye_and_ends_the_call() -> None:
    state, _ = run(FLOW, [DigitsReceived(digits="4"), PromptFinished()], at_menu())
    assert state.node == "adios" and state.finished and state.awaiting is Awaiting.NOTHING
    for event in (PromptFinished(), DigitsReceived(digits="1"), ActionFailed(reason="x"), CallerHungUp()):
        same, actions = step(FLOW, state, event)
        assert same is state and actions == []


def test_caller_hanging_up_ends_the_flow_without_a_hangup_action() -> None:
    state, actions = step(FLOW, at_menu(), CallerHungUp())
    assert state.finished and state.awaiting is Awaiting.NOTHING
    assert actions == [RecordStep(node="menu", kind="menu", input="hangup")]
    assert step(FLOW, state, DigitsReceived(digits="1")) == (state, [])


def test_caller_hanging_up_in_a_queue_records_nothing_more() -> None:
    state, _ = step(FLOW, at_menu(), DigitsReceived(digits="2"))
    state, actions = step(FLOW, state, CallerHungUp())
    assert actions == [] and state.awaiting is Awaiting.NOTHING


# --- the engine as a function ------------------------------------------------------------------------


def test_events_before_the_call_starts_change_nothing() -> None:
    initial = State()
    assert step(FLOW, initial, DigitsReceived(digits="1")) == (initial, [])
    assert step(FLOW, initial, CallerHungUp()) == (initial, [])


def test_step_is_pure() -> None:
    state = at_menu()
    before = state.model_dump()
    first = step(FLOW, state, SpeechRecognised(text="facturacion", confidence=0.4))
    second = step(FLOW, state, SpeechRecognised(text="facturacion", confidence=0.4))
    assert first == second and state.model_dump() == before


def test_a_state_from_another_version_of_the_flow_ends_the_call() -> None:
    state = at_menu().model_copy(update={"node": "gone"})
    state, actions = step(FLOW, state, DigitsReceived(digits="1"))
    assert state.finished and actions == [Hangup()]


def test_every_node_entered_is_recorded_once() -> None:
    _, actions = run(
        FLOW,
        [
            start(),
            LookupResult(customer=None),
            PromptFinished(),
            DigitsReceived(digits="1"),
            DigitsReceived(digits=CARD),
            LookupResult(customer=CustomerInfo(customer_id=9)),
            DigitsReceived(digits="05031980"),
            PromptFinished(),
        ],
    )
    assert visited(actions) == [
        "identificar", "bienvenida", "horario", "segmento", "menu",
        "tarjeta", "buscar", "fecha", "enlace", "adios",
    ]  # fmt: skip
    inputs = [(s.node, s.input) for s in of(RecordStep, actions) if s.input is not None]
    assert inputs == [
        ("identificar", "caller"),
        ("menu", "1"),
        ("tarjeta", "************1486"),
        ("buscar", "digits"),
        ("fecha", "05031980"),
    ]
