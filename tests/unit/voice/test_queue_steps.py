"""Queue nodes with the ACD's estimated wait (announce_wait, overflow), the schema and checks that go with
them, the prompts they add, and the runner's side: the forecast fed back, the queue's progress on the
timeline, what the IVR collected handed to the queue, and callbacks booked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing.ivr_queues import CallLine, IvrQueues
from routing.live_queues import FakeAgentConnector, FakeRoutingEvents, InboundCall, Joined, LiveQueues
from routing.wait_estimate import WaitEstimate
from voice.call_journal import InMemoryCallJournal, queue_touchpoint
from voice.ivr.actions import EnqueueCall, EstimateWait, OfferCallback, Play
from voice.ivr.call_runner import CallReport, CallRunner, WaitForecast, ivr_context
from voice.ivr.checks import check
from voice.ivr.engine import Awaiting, State, step
from voice.ivr.events import CallStarted, CustomerInfo, DigitsReceived, QueueWaitEstimated
from voice.ivr.loader import load_flows
from voice.ivr.schema import Flow
from voice.ivr.voice_port import CallInfo, FakeVoicePort, QueueContext, QueueProgress
from voice.ivr.wait_announcement import all_wait_texts, bucket, wait_text
from voice.prompts import flow_prompts, prompt_name
from voice.queue_wait import QueueWait

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
BANCO = FLOWS["banco_es"]
MADRID_MONDAY_10 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
CALL = CallInfo(
    call_id="1795537883.10", ref_kind="asterisk_linkedid", caller="+34600111222", called="900100200"
)

TINY = """\
name: tiny
languages: [en]
default_language: en
start: queue
nodes:
  queue:
    kind: queue
    queue: billing
    prompt:
      en: Putting you through.
    announce_wait: true
    overflow: offer
    on_failure: bye
  offer:
    kind: callback_offer
    queue: billing
    prompt: {en: "Press 1 for a call back, 2 to hold."}
    no_input_prompt: {en: Press 1 or 2.}
    no_match_prompt: {en: Press 1 or 2.}
    accepted: bye
    declined: queue
    on_failure: bye
  bye:
    kind: hangup
"""


def tiny(text: str = TINY) -> Flow:
    """The flow as the schema reads it (the whole-flow checks are for the tests to run)."""
    return Flow.model_validate(yaml.safe_load(text))


def start(flow: Flow) -> tuple[State, list[Any]]:
    return step(flow, State(), CallStarted(caller_number="+34600111222", now=MADRID_MONDAY_10))


# --- the words -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        (0, None),
        (1, "Your estimated wait is about one minute."),
        (4, "Your estimated wait is about 4 minutes."),
        (6, "Your estimated wait is about 10 minutes."),  # rounded up to the next bucket
        (30, "Your estimated wait is about 30 minutes."),
        (31, "Your estimated wait is more than 30 minutes."),
    ],
)
def test_the_wait_is_said_in_minute_buckets_rounded_up(minutes: int, said: str | None) -> None:
    assert wait_text("en-GB", minutes) == said


def test_every_bucket_has_a_text_in_spanish_and_english_and_none_elsewhere() -> None:
    assert bucket(11) == 15 and bucket(45) is None
    assert wait_text("es", 2) == "El tiempo de espera estimado es de unos 2 minutos."
    assert len(all_wait_texts("es")) == len(set(all_wait_texts("es"))) == 10
    assert all_wait_texts("fr") == [] and wait_text("fr", 3) is None


def test_prompts_build_lists_every_wait_text_of_a_queue_that_announces_it() -> None:
    listed = {(p.node, p.language, p.text) for p in flow_prompts(BANCO) if p.field == "announce_wait"}
    nodes = {"cola_facturacion", "cola_averias", "cola_incidencias", "cola_general"}
    assert {node for node, _, _ in listed} == nodes
    assert len(listed) == len(nodes) * 2 * 10
    for prompt in flow_prompts(BANCO):
        if prompt.field == "announce_wait" and prompt.text:
            assert prompt.file == prompt_name(prompt.language, prompt.text)


# --- the schema and the checks ---------------------------------------------------------------------------


def test_overflow_is_an_edge_and_must_lead_somewhere_real() -> None:
    assert ("overflow", "offer") in tiny().nodes["queue"].edges()
    broken = tiny(TINY.replace("overflow: offer", "overflow: nowhere"))
    assert [str(p) for p in check(broken, file="tiny.yaml")] == [
        "tiny.yaml: node 'queue', field 'overflow': unknown node 'nowhere'"
    ]
    to_itself = tiny(TINY.replace("overflow: offer", "overflow: queue"))
    assert any("another node" in str(p) for p in check(to_itself, file="tiny.yaml"))
    assert check(tiny(), file="tiny.yaml") == []


def test_announcing_the_wait_in_a_language_without_texts_is_a_problem() -> None:
    french = tiny(
        TINY.replace("languages: [en]", "languages: [en, fr]").replace(
            "en: Putting", "fr: Un moment.\n      en: Putting"
        )
    )
    problems = [str(p) for p in check(french, file="tiny.yaml")]
    wanted = "no estimated-wait texts in 'fr' (there are for es and en)"
    assert f"tiny.yaml: node 'queue', field 'announce_wait': {wanted}" in problems


def test_the_shipped_flows_stay_valid() -> None:
    for flow in FLOWS.values():
        assert check(flow, file=f"{flow.name}.yaml") == []


# --- the engine ------------------------------------------------------------------------------------------


def test_the_engine_asks_for_the_estimate_then_announces_it_and_joins() -> None:
    flow = tiny()
    state, actions = start(flow)
    assert state.awaiting is Awaiting.ESTIMATE and not state.finished
    assert actions[-1] == EstimateWait(queue="billing")
    state, actions = step(flow, state, QueueWaitEstimated(routed=True, minutes=3, overflow=False))
    plays = [a.text for a in actions if isinstance(a, Play)]
    assert plays == ["Putting you through.", "Your estimated wait is about 3 minutes."]
    assert isinstance(actions[-1], EnqueueCall) and state.awaiting is Awaiting.HANDOFF
    assert actions[0].result == "estimated wait 3 min"  # type: ignore[union-attr]


def test_overflow_goes_to_the_offer_once_and_a_caller_who_declines_joins() -> None:
    flow = tiny()
    state, _ = start(flow)
    busy = QueueWaitEstimated(routed=True, minutes=25, overflow=True, reason="long_wait")
    state, actions = step(flow, state, busy)
    assert state.node == "offer" and state.overflowed == ("queue",)
    assert not any(isinstance(a, EnqueueCall) for a in actions)
    state, actions = step(flow, state, DigitsReceived(digits="2"))  # declines: holds
    assert state.node == "queue" and actions[-1] == EstimateWait(queue="billing")
    state, actions = step(flow, state, busy)
    assert isinstance(actions[-1], EnqueueCall)
    assert "Your estimated wait is about 30 minutes." in [a.text for a in actions if isinstance(a, Play)]


def test_a_queue_the_acd_does_not_route_or_a_failed_estimate_joins_without_announcement() -> None:
    flow = tiny()
    for answer in (QueueWaitEstimated(routed=False), QueueWaitEstimated(routed=True, minutes=None)):
        state, _ = start(flow)
        state, actions = step(flow, state, answer)
        assert [a.text for a in actions if isinstance(a, Play)] == ["Putting you through."]
        assert isinstance(actions[-1], EnqueueCall)


# --- the runner ------------------------------------------------------------------------------------------


class Forecasts:
    def __init__(self, forecast: WaitForecast | None) -> None:
        self.forecast_given = forecast
        self.asked: list[str] = []

    def forecast(self, queue: str) -> WaitForecast | None:
        self.asked.append(queue)
        return self.forecast_given


class Booker:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.booked: list[tuple[OfferCallback, CallInfo, dict[str, str]]] = []

    async def book_callback(
        self, action: OfferCallback, call: CallInfo, *, context: Mapping[str, str]
    ) -> None:
        if self.fail:
            raise RuntimeError("the callbacks table is on fire")
        self.booked.append((action, call, dict(context)))


class QueuedPort(FakeVoicePort):
    """Reports an agent answering through the queue's progress callback, as the AGI port does."""

    async def enqueue(self, **kwargs: Any) -> None:
        context: QueueContext | None = kwargs.get("context")
        if context is not None and context.progress is not None:
            context.progress(QueueProgress("left", kwargs["queue"], 12.5, agent="luis", result="answered"))
            context.progress(QueueProgress("agent_connected", kwargs["queue"], 12.5, agent="luis"))
        await super().enqueue(**kwargs)


def run(port: FakeVoicePort, **options: Any) -> tuple[CallReport, InMemoryCallJournal]:
    journal = InMemoryCallJournal()

    async def main() -> CallReport:
        runner = CallRunner(journal, clock=lambda: MADRID_MONDAY_10, **options)
        report = await runner.run(BANCO, port, CALL)
        await runner.drain()
        return report

    return asyncio.run(main()), journal


def test_the_runner_announces_the_forecast_and_hands_the_queue_the_ivr_context() -> None:
    port = QueuedPort(moves=["2"])
    report, journal = run(port, queues=Forecasts(WaitForecast(minutes=4, overflow=False)))
    assert report.outcome.value == "transferred"
    texts = [prompt.text for prompt in port.played]
    assert texts[-2:] == [
        "Le pasamos con el departamento de facturación.",
        "El tiempo de espera estimado es de unos 4 minutos.",
    ]
    (context,) = port.queue_contexts
    assert context is not None and context.interaction_id == report.interaction_id
    assert context.collected["flow"] == "banco_es" and context.collected["node"] == "cola_facturacion"
    kinds = [step.kind.value for step in journal.only().steps]
    assert kinds[-3:] == ["queue_enter", "queue_leave", "agent_connect"]
    connect = journal.only().steps[-1]
    assert connect.attributes == {"queue": "facturacion", "waited_seconds": 12.5, "agent": "luis"}


def test_overflow_offers_the_callback_and_an_accepted_one_is_booked_with_the_context() -> None:
    port = FakeVoicePort(moves=["2", "1"])
    booker = Booker()
    forecast = WaitForecast(minutes=None, overflow=True, reason="no_agents")
    report, journal = run(port, queues=Forecasts(forecast), callback_booker=booker)
    assert "enqueue" not in port.commands()
    assert report.outcome.value == "callback_requested"
    ((action, call, context),) = booker.booked
    assert action.queue == "facturacion" and action.number == "+34600111222" and call is CALL
    assert context["flow"] == "banco_es" and context["node"] == "ofrecer_llamada_facturacion"
    assert any(step.kind.value == "callback_accepted" for step in journal.only().steps)


def test_a_booking_that_fails_is_logged_with_the_call_and_the_flow_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = FakeVoicePort(moves=["2", "1"])
    forecast = WaitForecast(minutes=None, overflow=True, reason="no_agents")
    with caplog.at_level(logging.ERROR):
        report, journal = run(port, queues=Forecasts(forecast), callback_booker=Booker(fail=True))
    assert "call 1795537883.10 (banco_es): the callback to +34600111222 could not be booked" in caplog.text
    assert port.played[-1].text is not None and port.played[-1].text.startswith("De acuerdo, le llamaremos")
    assert report.outcome.value == "contained"
    assert not any(step.kind.value == "callback_accepted" for step in journal.only().steps)


def test_a_caller_who_hangs_up_waiting_in_centralitas_queue_abandoned_the_call() -> None:
    class HangsUpOnHold(FakeVoicePort):
        async def enqueue(self, **kwargs: Any) -> None:
            context: QueueContext = kwargs["context"]
            assert context.progress is not None
            context.progress(QueueProgress("left", kwargs["queue"], 40.0, result="caller hung up"))
            self._hang_up()

    report, journal = run(HangsUpOnHold(moves=["2"]), queues=Forecasts(WaitForecast(2, False)))
    assert report.outcome.value == "abandoned"
    assert journal.only().steps[-1].attributes["result"] == "caller hung up"


def test_the_ivr_context_masks_sensitive_digits_and_adds_the_customer() -> None:
    state = State(
        flow="banco_es",
        node="cola_general",
        language="es",
        variables={"tarjeta": "4539578763621486", "fecha_nacimiento": "05031980"},
        customer=CustomerInfo(customer_id=7, name="Ana", vip=True, open_case_count=2),
    )
    context = ivr_context(BANCO, state)
    assert context["tarjeta"] == "************1486"
    assert context["customer_id"] == "7" and context["vip"] == "yes" and context["open_cases"] == "2"
    assert context["node"] == "cola_general" and context["customer_name"] == "Ana"


def test_the_queue_leave_step_says_the_calls_priority_and_that_an_open_case_raised_it() -> None:
    reported: list[QueueProgress] = []
    queues = IvrQueues(LiveQueues(FakeAgentConnector(), FakeRoutingEvents()), fallback=FakeAgentConnector())
    call = InboundCall("c1", "facturacion", customer_id=4, priority=5)
    wait = QueueWait(queues, CallLine("c1"), call, QueueContext(progress=reported.append))
    wait.report(QueueProgress("left", "facturacion", 1.0, result="caller hung up"))  # before joining
    estimate = WaitEstimate(position=1, seconds=30.0, overflow=False, reason=None)
    wait.joined = Joined("c1", 1, estimate, priority=6, open_case_raised_from=5)
    wait.report(QueueProgress("left", "facturacion", 3.0, agent="luis", result="answered"))

    first, second = (queue_touchpoint(p, node="cola", occurred_at=MADRID_MONDAY_10) for p in reported)
    assert first.attributes == {"queue": "facturacion", "waited_seconds": 1.0, "result": "caller hung up"}
    assert second.attributes == {
        "queue": "facturacion",
        "waited_seconds": 3.0,
        "agent": "luis",
        "result": "answered",
        "priority": 6,
        "open_case_priority_from": 5,
    }
