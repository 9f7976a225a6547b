"""The voice port over AGI: the exact command lines, Asterisk's replies read the right way, and its
failures turned into the port's (gone, lost, not done); then a whole call on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from core.timeline.schemas import Outcome
from voice.agi.fake_asterisk import Exchange, FakeAsterisk, call_server, environment_lines, exchange
from voice.agi.ivr_port import AgiVoicePort, call_info, ivr_router
from voice.agi.server import FastAgiServer
from voice.agi.session import AgiTimeouts
from voice.call_journal import InMemoryCallJournal
from voice.ivr.call_runner import CallRunner
from voice.ivr.loader import load_flows
from voice.ivr.voice_port import ActionNotDone, CallerGone, CallLost
from voice.prompts import PromptAudio, prompt_name

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
FAST = AgiTimeouts(environment=0.5, command=0.3, media=0.3, application=0.3)
GONE = "511 Command Not Permitted on a dead channel or intercept routine"
T = TypeVar("T")


def with_port(script: list[Exchange], body: Callable[[AgiVoicePort], Awaitable[T]], **env: str) -> T:
    async def main() -> T:
        fake = FakeAsterisk(script, environment=environment_lines("banco_es", **env))
        session = await fake.session(FAST)
        result = await body(AgiVoicePort(session))
        fake.assert_finished()
        return result

    return asyncio.run(main())


def test_a_prompt_plays_with_every_key_as_escape_digit_and_returns_the_key_pressed() -> None:
    prompt = PromptAudio("centralita/es/0123456789abcdef", "Hola.", "es")
    script = [
        exchange('STREAM FILE centralita/es/0123456789abcdef "0123456789*#"', "200 result=50 endpos=8000")
    ]
    assert with_port(script, lambda port: port.play(prompt, escape_digits="0123456789*#")) == "2"
    script = [exchange('STREAM FILE centralita/es/0123456789abcdef ""', "200 result=0 endpos=16000")]
    assert with_port(script, lambda port: port.play(prompt)) is None


def test_a_missing_prompt_is_not_done_but_a_hang_up_is_the_caller_gone() -> None:
    prompt = PromptAudio("nope", None, "es")
    missing = [exchange('STREAM FILE nope ""', "200 result=-1"), exchange("CHANNEL STATUS", "200 result=6")]
    with pytest.raises(ActionNotDone, match="prompt nope"):
        with_port(missing, lambda port: port.play(prompt))
    hung_up = [exchange('STREAM FILE nope ""', "200 result=-1"), exchange("CHANNEL STATUS", "HANGUP", GONE)]
    with pytest.raises(CallerGone):
        with_port(hung_up, lambda port: port.play(prompt))


def test_digits_are_collected_with_get_data_over_silence() -> None:
    async def collect(port: AgiVoicePort) -> list[str]:
        return [
            await port.collect_digits(max_digits=4, timeout_ms=5000, terminator="#"),
            await port.collect_digits(max_digits=1, timeout_ms=6000, terminator=None),
            await port.collect_digits(max_digits=16, timeout_ms=15000, terminator="#"),
        ]

    script = [
        exchange("GET DATA silence/1 5000 4", "200 result=12 (timeout)"),
        exchange("GET DATA silence/1 6000 1", "200 result= (timeout)"),
        exchange("GET DATA silence/1 15000 16", "200 result=4539578763621486"),
    ]
    assert with_port(script, collect) == ["12", "", "4539578763621486"]


def test_a_queue_gets_language_priority_and_skills_and_a_refusal_is_not_done() -> None:
    setup = [
        exchange("SET VARIABLE CHANNEL(language) es", "200 result=1"),
        exchange("SET VARIABLE QUEUE_PRIO 3", "200 result=1"),
        exchange("SET VARIABLE CENTRALITA_SKILLS facturacion,vip", "200 result=1"),
    ]

    def enqueue(port: AgiVoicePort) -> Awaitable[None]:
        return port.enqueue(queue="facturacion", priority=3, skills=["facturacion", "vip"], language="es")

    # The agent answered; when the conversation ends Asterisk hangs the caller up: EXEC says -1.
    with pytest.raises(CallerGone, match="queue facturacion"):
        with_port([*setup, exchange("EXEC Queue facturacion", "200 result=-1")], enqueue)
    refused = [
        *setup,
        exchange("EXEC Queue facturacion", "200 result=0"),
        exchange("GET VARIABLE QUEUESTATUS", "200 result=1 (JOINEMPTY)"),
    ]
    with pytest.raises(ActionNotDone, match="queue facturacion: JOINEMPTY"):
        with_port(refused, enqueue)
    continued = [
        *setup,
        exchange("EXEC Queue facturacion", "200 result=0"),
        exchange("GET VARIABLE QUEUESTATUS", "200 result=1 (CONTINUE)"),
    ]
    with_port(continued, enqueue)
    no_app = [*setup, exchange("EXEC Queue facturacion", "200 result=-2")]
    with pytest.raises(ActionNotDone, match="no such application"):
        with_port(no_app, enqueue)


def test_a_number_is_dialled_through_the_transfer_context_and_a_dial_string_as_it_is() -> None:
    busy = [
        exchange("EXEC Dial Local/+34900100200@centralita-transfer,60", "200 result=0"),
        exchange("GET VARIABLE DIALSTATUS", "200 result=1 (BUSY)"),
    ]
    with pytest.raises(ActionNotDone, match=r"transfer to \+34900100200: BUSY"):
        with_port(busy, lambda port: port.transfer("+34900100200"))
    answered = [exchange("EXEC Dial PJSIP/sales,60", "200 result=-1")]
    with pytest.raises(CallerGone):
        with_port(answered, lambda port: port.transfer("PJSIP/sales"))


def test_voicemail_is_recorded_under_the_mailbox_and_call_id() -> None:
    script = [
        exchange(
            'RECORD FILE centralita/recordings/support-1795537810.0 wav "#" 180000 BEEP s=4',
            "200 result=0 (timeout) endpos=96000",
        )
    ]
    name = with_port(script, lambda port: port.record(mailbox="support", max_seconds=180, beep=True))
    assert name == "centralita/recordings/support-1795537810.0"
    hung_up = [
        exchange(
            'RECORD FILE centralita/recordings/support-1795537810.0 wav "#" 10000 s=4',
            "200 result=0 (hangup) endpos=4000",
        )
    ]
    assert with_port(hung_up, lambda port: port.record(mailbox="support", max_seconds=10, beep=False))


def test_a_silent_asterisk_is_a_lost_call() -> None:
    with pytest.raises(CallLost, match="no reply"):
        with_port([Exchange(b"ANSWER\n", ())], lambda port: port.answer())


def test_the_call_is_known_by_its_linkedid_and_else_its_uniqueid() -> None:
    async def ask(replies: tuple[str, ...], **env: str) -> tuple[str, str, str | None]:
        fake = FakeAsterisk(
            [exchange("GET VARIABLE CHANNEL(linkedid)", *replies)], environment=environment_lines("x", **env)
        )
        info = await call_info(await fake.session(FAST))
        return info.call_id, info.ref_kind, info.caller

    assert asyncio.run(ask(("200 result=1 (1795537800.3)",), callerid="5551234")) == (
        "1795537800.3",
        "asterisk_linkedid",
        "5551234",
    )
    assert asyncio.run(ask(("200 result=0",))) == ("1795537810.0", "asterisk_uniqueid", None)


# --- a whole call on the wire ---------------------------------------------------------------------------


def text_of(node: str) -> str:
    text = FLOWS["support_en"].nodes[node].prompts()[0][1]["en"].text
    assert text is not None
    return text


def test_an_out_of_hours_support_call_on_the_wire() -> None:
    """Sunday: the out-of-hours menu; 2 asks for a status text, which cannot be sent (no SMS sender
    yet), so the flow goes to voicemail; the caller leaves a message and presses #; goodbye."""
    journal = InMemoryCallJournal()
    sunday = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
    runner = CallRunner(journal, clock=lambda: sunday)
    menu = prompt_name("en", text_of("after_hours"))
    voicemail = prompt_name("en", text_of("voicemail"))
    goodbye = prompt_name("en", text_of("voicemail_goodbye"))
    script = [
        exchange("GET VARIABLE CHANNEL(linkedid)", "200 result=1 (1795537883.10)"),
        exchange("ANSWER", "200 result=0"),
        exchange('STREAM FILE northwind/en/welcome "0123456789*#"', "200 result=0 endpos=64000"),
        exchange(f'STREAM FILE {menu} "0123456789*#"', "200 result=0 endpos=64000"),
        exchange("GET DATA silence/1 5000 1", "200 result=2"),
        exchange(f'STREAM FILE {voicemail} ""', "200 result=0 endpos=64000"),
        exchange(
            'RECORD FILE centralita/recordings/support-1795537883.10 wav "#" 180000 BEEP s=4',
            "200 result=35 (dtmf) endpos=96000",
        ),
        exchange(f'STREAM FILE {goodbye} ""', "200 result=0 endpos=8000"),
        exchange("HANGUP", "200 result=1"),
    ]

    async def main() -> None:
        async with FastAgiServer(ivr_router(FLOWS.get, runner), port=0, timeouts=FAST) as server:
            call = await call_server(
                "127.0.0.1", server.port, script, environment=environment_lines("support_en")
            )
        assert call.mismatch is None, call.mismatch
        assert call.closed_by_server and not call.extra

    asyncio.run(main())
    entry = journal.only()
    assert entry.call.call_id == "1795537883.10" and entry.call.caller is None
    assert entry.outcome is Outcome.CONTAINED
    assert "recording" in entry.kinds()
