"""The IVR runner over a scripted caller (FakeVoicePort) and an in-memory timeline: every action kind,
barge-in, hang-ups, failures of prompts, queues, the timeline and the engine itself."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.timeline.schemas import Outcome, TouchpointCreate
from voice.call_journal import InMemoryCallJournal
from voice.ivr.actions import SendLink
from voice.ivr.call_runner import CallReport, CallRunner
from voice.ivr.events import CustomerInfo
from voice.ivr.loader import load_flows
from voice.ivr.schema import Flow, LinkChannel, LookupBy
from voice.ivr.voice_port import ActionNotDone, Barge, CallInfo, FakeVoicePort, Say
from voice.prompts import audio_name, flow_prompts, prompt_name

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
BANCO = FLOWS["banco_es"]
SUPPORT = FLOWS["support_en"]

MADRID_MONDAY_10 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SUNDAY = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
LONDON_TUESDAY_11 = datetime(2025, 3, 4, 11, 0, tzinfo=UTC)
CALLER = "+34600111222"
CARD = "4539578763621486"


def info(caller: str | None = CALLER, call_id: str = "1795537883.10") -> CallInfo:
    return CallInfo(
        call_id=call_id, ref_kind="asterisk_linkedid", caller=caller, called="900100200", channel="PJSIP/t-1"
    )


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[SendLink, CallInfo]] = []

    async def send_link(self, link: SendLink, call: CallInfo) -> None:
        self.sent.append((link, call))


def run(
    flow: Flow,
    port: FakeVoicePort,
    journal: InMemoryCallJournal | None = None,
    *,
    now: datetime = MADRID_MONDAY_10,
    call: CallInfo | None = None,
    **options: Any,
) -> tuple[CallReport, InMemoryCallJournal]:
    journal = journal if journal is not None else InMemoryCallJournal()

    async def main() -> CallReport:
        runner = CallRunner(journal, clock=lambda: now, **options)
        report = await runner.run(flow, port, call or info())
        await runner.drain()
        return report

    return asyncio.run(main()), journal


def steps(journal: InMemoryCallJournal) -> list[tuple[str, str | None, str | None]]:
    return [(step.kind.value, step.node, step.input) for step in journal.only().steps]


def step_at(journal: InMemoryCallJournal, kind: str, node: str | None = None) -> TouchpointCreate:
    return next(s for s in journal.only().steps if s.kind.value == kind and (node is None or s.node == node))


def files(port: FakeVoicePort) -> list[str]:
    return [prompt.file for prompt in port.played]


# --- whole calls --------------------------------------------------------------------------------------


def test_a_known_vip_caller_is_recognised_and_queued_for_private_banking() -> None:
    journal = InMemoryCallJournal(
        customers={CALLER: CustomerInfo(customer_id=7, name="Ana", language="en", vip=True)}
    )
    port = FakeVoicePort()
    report, _ = run(BANCO, port, journal)

    assert port.commands() == ["answer", "play", "play", "enqueue"]
    assert port.calls[-1] == ("enqueue", "banca_privada", 9, ("banca_privada",), "en")
    assert files(port) == [
        "meridiano/en/welcome",
        prompt_name("en", "Welcome. Putting you through to your private banking team."),
    ]
    entry = journal.only()
    assert (entry.customer_id, entry.flow, entry.flow_version) == (7, "banco_es", BANCO.version)
    assert entry.outcome is Outcome.TRANSFERRED and report.outcome is Outcome.TRANSFERRED
    assert journal.lookups == [(LookupBy.CALLER, CALLER)]
    assert [kind for kind, _, _ in steps(journal)] == [
        "ivr_node", "lookup", "language_set", "ivr_node", "ivr_node", "ivr_node", "ivr_node", "queue_enter",
    ]  # fmt: skip
    assert step_at(journal, "lookup").attributes["result"] == "found"
    assert step_at(journal, "language_set").attributes["result"] == "en"
    assert step_at(journal, "queue_enter").attributes == {
        "queue": "banca_privada",
        "priority": 9,
        "skills": ["banca_privada"],
        "language": "en",
    }


def test_an_unknown_caller_presses_2_for_billing() -> None:
    port = FakeVoicePort(moves=["2"])
    report, journal = run(BANCO, port)
    assert port.calls[-3] == ("collect_digits", 1, 6000, None)
    assert port.calls[-1][:2] == ("enqueue", "facturacion")
    assert report.outcome is Outcome.TRANSFERRED
    choice = step_at(journal, "menu_choice")
    assert (choice.node, choice.input, choice.attributes["result"]) == ("menu_principal", "2", "option 2")
    assert choice.duration_ms is not None and choice.duration_ms >= 0
    assert journal.only().customer_id is None


def test_every_prompt_played_is_one_the_prompt_builder_lists() -> None:
    listed = {prompt.file for flow in (BANCO, SUPPORT) for prompt in flow_prompts(flow)}
    ports = [
        (BANCO, FakeVoicePort(moves=["7", "9", "1", "123#"]), MADRID_MONDAY_10),
        (BANCO, FakeVoicePort(moves=["", "", ""]), SUNDAY),
        (SUPPORT, FakeVoicePort(moves=["3", "12345678#"]), LONDON_TUESDAY_11),
    ]
    for flow, port, now in ports:
        run(flow, port, now=now)
        assert set(files(port)) <= listed
    assert audio_name("meridiano/es/bienvenida.wav") == "meridiano/es/bienvenida"


def test_keys_pressed_during_prompts_skip_the_welcome_and_choose_from_the_menu() -> None:
    port = FakeVoicePort(moves=[Barge("1"), Barge("2")])
    report, journal = run(BANCO, port)
    assert report.outcome is Outcome.TRANSFERRED
    assert "collect_digits" not in port.commands()
    assert port.calls[1] == ("play", "meridiano/es/bienvenida", "0123456789*#")
    assert port.calls[-1][:2] == ("enqueue", "facturacion")
    barged = step_at(journal, "dtmf", "bienvenida")
    assert (barged.input, barged.attributes["result"]) == ("1", "barge-in")
    assert step_at(journal, "menu_choice").input == "2"


def test_a_card_number_typed_over_the_prompt_is_collected_with_the_rest_and_looked_up() -> None:
    sender = RecordingSender()
    journal = InMemoryCallJournal(customers={CARD: CustomerInfo(customer_id=3)})
    port = FakeVoicePort(moves=["1", Barge("4"), CARD[1:] + "#", "05031980"])
    report, _ = run(BANCO, port, journal, link_sender=sender)

    assert ("collect_digits", 15, 15000, "#") in port.calls
    assert journal.lookups[-1] == (LookupBy.DIGITS, CARD)
    card = step_at(journal, "dtmf", "pedir_tarjeta")
    assert card.input == "************1486" and CARD not in str(journal.only().steps)
    assert step_at(journal, "lookup", "buscar_tarjeta").attributes["result"] == "found"
    (link, call), = sender.sent  # fmt: skip
    assert (link.channel, link.link, link.to, call.call_id) == (
        LinkChannel.SMS,
        "balance",
        CALLER,
        "1795537883.10",
    )
    sent = step_at(journal, "link_sent")
    assert sent.attributes == {"channel": "sms", "link": "balance", "to": CALLER}
    assert sent.text is not None and "{link}" in sent.text
    assert port.commands()[-2:] == ["play", "hangup"]
    assert report.outcome is Outcome.CONTAINED


def test_without_a_message_sender_the_link_node_takes_its_failure_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = InMemoryCallJournal(customers={CARD: CustomerInfo(customer_id=3)})
    port = FakeVoicePort(moves=["1", CARD + "#", "05031980"])
    with caplog.at_level(logging.WARNING):
        report, _ = run(BANCO, port, journal)
    assert port.calls[-1][:2] == ("enqueue", "atencion_general")
    assert "no sms sender is configured" in caplog.text
    failed = [s for s in journal.only().steps if s.node == "enviar_saldo" and "result" in s.attributes]
    assert failed[0].attributes["result"].startswith("failed: no sms sender")
    assert report.outcome is Outcome.TRANSFERRED


def test_a_caller_hanging_up_during_the_menu_abandons_the_call_and_nothing_more_is_sent() -> None:
    port = FakeVoicePort(hang_up_during=("play", 2))
    report, journal = run(BANCO, port)
    assert port.commands() == ["answer", "play", "play"]
    assert steps(journal)[-1] == ("ivr_node", "menu_principal", "hangup")
    assert report.outcome is Outcome.ABANDONED and journal.only().outcome is Outcome.ABANDONED


def test_a_caller_gone_before_the_answer_is_an_abandoned_call() -> None:
    port = FakeVoicePort(hang_up_during=("answer", 1))
    report, journal = run(SUPPORT, port, now=LONDON_TUESDAY_11)
    assert port.commands() == ["answer"]
    assert steps(journal) == [("ivr_node", "welcome", None), ("ivr_node", "welcome", "hangup")]
    assert report.outcome is Outcome.ABANDONED


def test_hanging_up_during_the_goodbye_still_counts_as_finished_by_the_ivr() -> None:
    port = FakeVoicePort(moves=["", "", ""], hang_up_during=("play", 5))
    report, journal = run(BANCO, port, now=SUNDAY)  # out of hours: three silences, then goodbye
    assert port.commands()[-1] == "play" and "hangup" not in port.commands()
    assert report.outcome is Outcome.CONTAINED and journal.only().outcome is Outcome.CONTAINED


def test_a_missing_menu_prompt_is_skipped_and_the_keys_still_count(caplog: pytest.LogCaptureFixture) -> None:
    port = FakeVoicePort(moves=["2"], missing={"meridiano/es/menu_principal"})
    with caplog.at_level(logging.WARNING):
        report, _ = run(BANCO, port)
    assert port.calls[-1][:2] == ("enqueue", "facturacion") and report.outcome is Outcome.TRANSFERRED
    assert "call 1795537883.10 (banco_es): play failed: prompt meridiano/es/menu_principal" in caplog.text


def test_a_missing_last_prompt_is_reported_and_the_flow_moves_on() -> None:
    port = FakeVoicePort(moves=["2"], missing={"meridiano/es/bienvenida"})
    report, journal = run(BANCO, port)
    welcome = [s for s in journal.only().steps if s.node == "bienvenida"]
    assert welcome[-1].attributes["result"].startswith("failed: prompt meridiano/es/bienvenida")
    assert report.outcome is Outcome.TRANSFERRED


def test_a_queue_that_refuses_the_call_leads_to_a_callback_offer_that_is_accepted() -> None:
    port = FakeVoicePort(moves=["1", "2", "1"], queue="refused")
    report, journal = run(SUPPORT, port, now=LONDON_TUESDAY_11)
    assert [c[1] for c in port.calls if c[0] == "enqueue"] == ["technical"]
    assert steps(journal)[-7:] == [
        ("ivr_node", "tech_queue", None),
        ("queue_enter", "tech_queue", None),
        ("ivr_node", "tech_queue", None),
        ("callback_offered", "callback_offer", None),
        ("menu_choice", "callback_offer", "1"),
        ("callback_accepted", "callback_offer", None),
        ("ivr_node", "callback_goodbye", None),
    ]
    refused = [s for s in journal.only().steps if s.node == "tech_queue" and "result" in s.attributes]
    assert refused[0].attributes["result"] == "failed: queue technical: FULL"
    accepted = step_at(journal, "callback_accepted")
    assert accepted.attributes == {"queue": "support", "number": CALLER, "language": "en"}
    assert step_at(journal, "menu_choice", "callback_offer").attributes["result"] == "accepted"
    assert port.commands()[-1] == "hangup"
    assert report.outcome is Outcome.CALLBACK_REQUESTED


@pytest.mark.parametrize(("result", "then"), [("answered", None), ("refused", "cola_averias")])
def test_lost_cards_are_transferred_to_the_blocking_centre(result: Any, then: str | None) -> None:
    port = FakeVoicePort(moves=["3", "1"], transfer_result=result)
    report, journal = run(BANCO, port)
    assert ("transfer", "+34900100200") in port.calls
    assert step_at(journal, "transfer").attributes == {"target": "+34900100200"}
    if then is None:
        assert report.outcome is Outcome.TRANSFERRED and port.commands()[-1] == "transfer"
    else:
        assert port.calls[-1][:2] == ("enqueue", "averias") and report.state.node == then


def test_out_of_hours_callers_leave_a_voicemail() -> None:
    port = FakeVoicePort(moves=["1"])
    report, journal = run(SUPPORT, port, now=SUNDAY, call=info(caller=None))
    assert ("record", "support", 180, True) in port.calls
    recording = step_at(journal, "recording")
    assert (recording.node, recording.input) == ("voicemail", "recorded")
    assert recording.attributes["recording"] == "recordings/support-1"
    assert port.commands()[-2:] == ["play", "hangup"]
    assert report.outcome is Outcome.CONTAINED


# --- failures --------------------------------------------------------------------------------------------


def test_an_engine_failure_hangs_up_that_call_and_the_other_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = BANCO.model_copy(update={"start": "nowhere"})  # a flow that fails inside the engine
    journal = InMemoryCallJournal()
    bad, good = FakeVoicePort(), FakeVoicePort(moves=["2"])

    async def main() -> list[CallReport]:
        runner = CallRunner(journal, clock=lambda: MADRID_MONDAY_10)
        reports = await asyncio.gather(
            runner.run(broken, bad, info(call_id="bad.1")), runner.run(BANCO, good, info(call_id="good.2"))
        )
        await runner.drain()
        return list(reports)

    with caplog.at_level(logging.ERROR):
        bad_report, good_report = asyncio.run(main())
    assert bad.commands() == ["hangup"]
    assert bad_report.outcome is Outcome.FAILED and journal.by_call("bad.1").outcome is Outcome.FAILED
    assert "call bad.1 (banco_es): the IVR failed; hanging up" in caplog.text
    assert good.calls[-1][:2] == ("enqueue", "facturacion")
    assert good_report.outcome is Outcome.TRANSFERRED


def test_an_unexpected_error_in_an_action_takes_the_flows_failure_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = FakeVoicePort(moves=["2"], failures={"collect_digits": RuntimeError("boom")})
    with caplog.at_level(logging.ERROR):
        report, journal = run(BANCO, port)
    assert "call 1795537883.10 (banco_es): collect_digits failed unexpectedly" in caplog.text
    retried = [s for s in journal.only().steps if s.node == "menu_principal" and s.input]
    assert retried[0].attributes["result"].startswith("no-input: failed: internal error (RuntimeError)")
    assert port.calls[-1][:2] == ("enqueue", "facturacion")
    assert report.outcome is Outcome.TRANSFERRED


def test_a_timeline_that_cannot_be_written_never_stops_the_call(caplog: pytest.LogCaptureFixture) -> None:
    down = InMemoryCallJournal(failures={"open": ConnectionError("database down")})
    port = FakeVoicePort(moves=["2"])
    with caplog.at_level(logging.ERROR):
        report, _ = run(BANCO, port, down)
    assert port.calls[-1][:2] == ("enqueue", "facturacion") and report.outcome is Outcome.TRANSFERRED
    assert not down.entries and "could not record the call on the timeline" in caplog.text

    flaky = InMemoryCallJournal(failures={"add_step": ConnectionError("timeout")})
    report, _ = run(BANCO, FakeVoicePort(moves=["2"]), flaky)
    assert report.outcome is Outcome.TRANSFERRED
    assert flaky.only().steps == [] and flaky.only().outcome is Outcome.TRANSFERRED


def test_a_failed_lookup_goes_the_not_found_way() -> None:
    journal = InMemoryCallJournal(failures={"lookup": ConnectionError("database down")})
    port = FakeVoicePort(moves=["2"])
    report, _ = run(BANCO, port, journal)
    step = step_at(journal, "ivr_node", "identificar_llamante")
    assert step.attributes.get("result") is None
    failed = [
        s for s in journal.only().steps if s.node == "identificar_llamante" and "result" in s.attributes
    ]
    assert failed[0].attributes["result"] == "failed: internal error (ConnectionError)"
    assert report.outcome is Outcome.TRANSFERRED


def test_a_port_refusing_the_hangup_is_harmless() -> None:
    port = FakeVoicePort(moves=["", "", ""], failures={"hangup": ActionNotDone("no")})
    report, _ = run(BANCO, port, now=SUNDAY)
    assert port.commands()[-1] == "hangup" and report.outcome is Outcome.CONTAINED


def test_a_flow_that_would_never_end_is_cut_off() -> None:
    port = FakeVoicePort(moves=["", "", "", "", ""])
    report, _ = run(BANCO, port, max_events=3)
    assert port.commands()[-1] == "hangup"
    assert report.outcome is Outcome.FAILED


def test_a_call_cancelled_while_queued_is_closed_as_transferred() -> None:
    journal = InMemoryCallJournal()

    async def main() -> None:
        port = FakeVoicePort(moves=["2"], hold=asyncio.Event())
        runner = CallRunner(journal, clock=lambda: MADRID_MONDAY_10)
        task = asyncio.create_task(runner.run(BANCO, port, info()))
        while "enqueue" not in port.commands():
            await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await runner.drain()

    asyncio.run(main())
    assert journal.only().outcome is Outcome.TRANSFERRED


def test_a_call_cancelled_in_the_ivr_is_closed_as_failed() -> None:
    journal = InMemoryCallJournal()

    class Stuck(FakeVoicePort):
        async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
            await asyncio.Event().wait()
            return ""

    async def main() -> None:
        port = Stuck()
        runner = CallRunner(journal, clock=lambda: MADRID_MONDAY_10)
        task = asyncio.create_task(runner.run(BANCO, port, info()))
        while len(port.played) < 2:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await runner.drain()

    asyncio.run(main())
    assert journal.only().outcome is Outcome.FAILED


# --- speech -------------------------------------------------------------------------------------------


def test_a_caller_says_billing_and_the_step_records_what_was_heard_by_which_engine() -> None:
    port = FakeVoicePort(moves=[Say("billing please", 0.8, "pocketsphinx-en", 140)], speech_languages={"en"})
    report, journal = run(SUPPORT, port, now=LONDON_TUESDAY_11)
    asked = [call for call in port.calls if call[0] == "ask"]
    assert len(asked) == 1 and asked[0][2] == "en"
    assert "collect_digits" not in port.commands()  # the question listened for keys and speech at once
    assert port.calls[-1][:2] == ("enqueue", "billing")
    assert report.outcome is Outcome.TRANSFERRED
    choice = step_at(journal, "speech", "main_menu")
    assert (choice.text, choice.confidence, choice.attributes["result"]) == (
        "billing please",
        0.8,
        "option 2",
    )
    assert choice.attributes["engine"] == "pocketsphinx-en"
    assert choice.attributes["latency_ms"] == 140


def test_keys_still_answer_a_question_asked_by_voice() -> None:
    port = FakeVoicePort(moves=["2"], speech_languages={"en"})
    _, journal = run(SUPPORT, port, now=LONDON_TUESDAY_11)
    assert port.calls[-1][:2] == ("enqueue", "billing")
    assert step_at(journal, "menu_choice", "main_menu").input == "2"


def test_speech_outside_the_grammar_is_a_no_match_and_the_menu_asks_again() -> None:
    port = FakeVoicePort(moves=[Say(""), Say("sales")], speech_languages={"en"})
    run(SUPPORT, port, now=LONDON_TUESDAY_11)
    asked = [call for call in port.calls if call[0] == "ask"]
    assert len(asked) == 2
    assert any("didn" in (prompt.text or "") for prompt in port.played)  # the no-match prompt
    assert port.calls[-1][:2] == ("transfer", SUPPORT.nodes["sales_transfer"].target)  # type: ignore[union-attr]


def test_unsure_speech_is_confirmed_by_voice_before_it_counts() -> None:
    port = FakeVoicePort(moves=[Say("billing", 0.3), Say("yes")], speech_languages={"en"})
    _, journal = run(SUPPORT, port, now=LONDON_TUESDAY_11)
    assert port.calls[-1][:2] == ("enqueue", "billing")
    results = [step.attributes.get("result") for step in journal.only().steps if step.node == "main_menu"]
    assert "confirm option 2" in results and "option 2 (confirmed)" in results


def test_a_port_without_the_callers_language_asks_with_keys_only() -> None:
    port = FakeVoicePort(moves=["2"], speech_languages={"es"})
    run(SUPPORT, port, now=LONDON_TUESDAY_11)
    assert "ask" not in port.commands() and "collect_digits" in port.commands()


def test_a_question_that_cannot_be_heard_is_asked_again_with_keys(caplog: pytest.LogCaptureFixture) -> None:
    port = FakeVoicePort(
        moves=["2"], speech_languages={"en"}, failures={"ask": ActionNotDone("AudioSocket() did not connect")}
    )
    run(SUPPORT, port, now=LONDON_TUESDAY_11)
    after = port.commands()[port.commands().index("ask") + 1 :]
    assert after[:2] == ["play", "collect_digits"]  # the same prompt, then the keypad
    assert port.calls[-1][:2] == ("enqueue", "billing")
    assert "asking with keys only" in caplog.text
