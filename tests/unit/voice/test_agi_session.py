"""AgiSession against the in-memory FakeAsterisk: typed results, errors, hang-up tracking, time limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from voice.agi.errors import (
    AgiApplicationNotFound,
    AgiArgumentError,
    AgiChannelGone,
    AgiCommandError,
    AgiCommandFailed,
    AgiConnectionLost,
    AgiProtocolError,
    AgiTimeout,
)
from voice.agi.fake_asterisk import FakeAsterisk, FakeAsteriskMismatch, environment_lines, exchange
from voice.agi.session import AgiSession, AgiTimeouts, Playback, Recording

FAST = AgiTimeouts(environment=0.2, command=0.2, media=0.2, application=0.2)


def run(fake: FakeAsterisk, flow: Callable[[AgiSession], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        session = await fake.session(FAST)
        return await flow(session)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("command", "reply", "call", "expected"),
    [
        ("ANSWER", "200 result=0", lambda s: s.answer(), None),
        ('STREAM FILE hello-world "#"', "200 result=0 endpos=11360",
         lambda s: s.stream_file("hello-world", "#"), Playback(None, 11360)),
        ('STREAM FILE demo-congrats "9#"', "200 result=57 endpos=19360",
         lambda s: s.stream_file("demo-congrats", "9#"), Playback("9", 19360)),
        ('STREAM FILE p "" 800', "200 result=0 endpos=1600", lambda s: s.stream_file("p", offset_samples=800),
         Playback(None, 1600)),
        ("GET DATA beep 2000 4", "200 result= (timeout)", lambda s: s.get_data("beep", 2000, 4), ""),
        ("GET DATA beep 2000 4", "200 result=12 (timeout)", lambda s: s.get_data("beep", 2000, 4), "12"),
        ("GET DATA beep 5000 5", "200 result=23", lambda s: s.get_data("beep", 5000, 5), "23"),
        ("GET DATA menu 0 1", "200 result=0", lambda s: s.get_data("menu", max_digits=1), "0"),
        ("GET DATA menu", "200 result=*07", lambda s: s.get_data("menu"), "*07"),
        ("WAIT FOR DIGIT 5000", "200 result=49", lambda s: s.wait_for_digit(5000), "1"),
        ("WAIT FOR DIGIT 100", "200 result=35", lambda s: s.wait_for_digit(100), "#"),
        ("WAIT FOR DIGIT 100", "200 result=0", lambda s: s.wait_for_digit(100), None),
        ('SAY DIGITS 123 ""', "200 result=0", lambda s: s.say_digits("123"), None),
        ('SAY DIGITS 42 "*"', "200 result=42", lambda s: s.say_digits(42, "*"), "*"),
        ('SAY NUMBER 21 "" f', "200 result=0", lambda s: s.say_number(21, gender="f"), None),
        ("SET VARIABLE FOO bar", "200 result=1", lambda s: s.set_variable("FOO", "bar"), None),
        ("GET VARIABLE FOO", "200 result=1 (bar)", lambda s: s.get_variable("FOO"), "bar"),
        ("GET VARIABLE CALLERID(num)", "200 result=1 ()", lambda s: s.get_variable("CALLERID(num)"), ""),
        ("GET VARIABLE NOPE", "200 result=0", lambda s: s.get_variable("NOPE"), None),
        ("GET FULL VARIABLE ${A} SIP/x", "200 result=1 (1)",
         lambda s: s.get_full_variable("${A}", "SIP/x"), "1"),
        ("EXEC Wait 1", "200 result=0", lambda s: s.exec_("Wait", "1"), 0),
        ('EXEC Playback "a&b, c"', "200 result=-1", lambda s: s.exec_("Playback", "a&b, c"), -1),
        ("CHANNEL STATUS", "200 result=6", lambda s: s.channel_status(), 6),
        ("SET MUSIC on queue", "200 result=0", lambda s: s.set_music(True, "queue"), None),
        ("SET MUSIC off", "200 result=0", lambda s: s.set_music(False), None),
        ('VERBOSE "IVR started" 3', "200 result=1", lambda s: s.verbose("IVR started", 3), None),
        ('RECORD FILE /tmp/vm wav "#" 30000 BEEP s=3', "200 result=35 (dtmf) endpos=48000",
         lambda s: s.record_file("/tmp/vm", "wav", "#", 30000, beep=True, silence_seconds=3),
         Recording("#", 48000, "dtmf")),
        ('RECORD FILE vm gsm "" 5000 0', "200 result=0 (timeout) endpos=40000",
         lambda s: s.record_file("vm", "gsm", "", 5000, offset_samples=0), Recording(None, 40000, "timeout")),
        ("HANGUP SIP/other", "200 result=1", lambda s: s.hangup("SIP/other"), None),
    ],
)  # fmt: skip
def test_typed_commands_send_the_exact_line_and_decode_the_reply(
    command: str, reply: str, call: Callable[[AgiSession], Awaitable[Any]], expected: object
) -> None:
    fake = FakeAsterisk([exchange(command, reply)])
    assert run(fake, call) == expected
    fake.assert_finished()


@pytest.mark.parametrize(
    ("command", "reply", "call", "error"),
    [
        ('STREAM FILE missing ""', "200 result=-1 endpos=0", lambda s: s.stream_file("missing"),
         AgiCommandFailed),
        ("GET DATA missing", "200 result=-1", lambda s: s.get_data("missing"), AgiCommandFailed),
        ("ANSWER", "200 result=-1", lambda s: s.answer(), AgiCommandFailed),
        ("HANGUP SIP/gone", "200 result=-1", lambda s: s.hangup("SIP/gone"), AgiCommandFailed),
        ('RECORD FILE /nope wav "#" -1', "200 result=-1 (writefile)", lambda s: s.record_file("/nope"),
         AgiCommandFailed),
        ("EXEC NoSuchApp x", "200 result=-2", lambda s: s.exec_("NoSuchApp", "x"), AgiApplicationNotFound),
        ("FOO BAR", "510 Invalid or unknown command", lambda s: s.command("FOO BAR"), AgiCommandError),
        ("ANSWER", "511 Command Not Permitted on a dead channel or intercept routine", lambda s: s.answer(),
         AgiChannelGone),
        ("WAIT FOR DIGIT 15000", "200 result=-1", lambda s: s.wait_for_digit(15000), AgiChannelGone),
        ("WAIT FOR DIGIT 100", "200 result=1234", lambda s: s.wait_for_digit(100), AgiProtocolError),
        ("GET DATA x", "200 result=12x", lambda s: s.get_data("x"), AgiProtocolError),
        ("CHANNEL STATUS", "200 result=up", lambda s: s.channel_status(), AgiProtocolError),
    ],
)  # fmt: skip
def test_failures_raise_their_own_error_type(
    command: str, reply: str, call: Callable[[AgiSession], Awaitable[Any]], error: type[Exception]
) -> None:
    fake = FakeAsterisk([exchange(command, reply)])
    with pytest.raises(error) as caught:
        run(fake, call)
    assert type(caught.value) is error
    fake.assert_finished()


def test_520_error_carries_the_usage_text() -> None:
    fake = FakeAsterisk(
        [
            exchange(
                "GET DATA", "520-Invalid command syntax.  Proper usage follows:", "Usage: GET DATA", "520 End"
            )
        ]
    )
    with pytest.raises(AgiCommandError) as caught:
        run(fake, lambda s: s.command("GET DATA"))
    assert caught.value.code == 520
    assert caught.value.usage == "Usage: GET DATA"


def test_an_unexpected_hangup_line_raises_once_with_the_reply_then_dead_safe_commands_work() -> None:
    fake = FakeAsterisk(
        [
            exchange("SET VARIABLE STEP 2", "HANGUP", "200 result=1"),
            exchange("GET VARIABLE STEP", "200 result=1 (2)"),
            exchange(
                'STREAM FILE menu ""', "511 Command Not Permitted on a dead channel or intercept routine"
            ),
        ]
    )

    async def flow(session: AgiSession) -> list[object]:
        seen: list[object] = [session.hung_up]
        with pytest.raises(AgiChannelGone) as gone:
            await session.set_variable("STEP", "2")
        assert gone.value.reply is not None
        seen += [gone.value.reply.result, session.hung_up, session.hangup_notices]
        seen.append(await session.get_variable("STEP"))
        with pytest.raises(AgiChannelGone) as dead:
            await session.stream_file("menu")
        assert dead.value.reply is not None
        seen.append(dead.value.reply.code)
        return seen

    assert run(fake, flow) == [False, 1, True, 1, "2", 511]
    fake.assert_finished()


def test_a_hangup_line_sent_while_idle_is_noticed_at_the_next_command() -> None:
    fake = FakeAsterisk([exchange("ANSWER", "200 result=0"), exchange("GET VARIABLE X", "200 result=0")])

    async def flow(session: AgiSession) -> None:
        await session.answer()
        fake.send(b"HANGUP\n")
        await asyncio.sleep(0)
        assert not session.hung_up  # nobody reads while no command runs
        with pytest.raises(AgiChannelGone):
            await session.get_variable("X")
        assert session.hung_up

    run(fake, flow)
    fake.assert_finished()


def test_after_our_own_hangup_the_hangup_line_is_expected_and_does_not_raise() -> None:
    fake = FakeAsterisk(
        [exchange("HANGUP", "200 result=1"), exchange("GET VARIABLE FOO", "HANGUP", "200 result=1 (bar)")]
    )

    async def flow(session: AgiSession) -> str | None:
        await session.hangup()
        assert session.hung_up
        return await session.get_variable("FOO")

    assert run(fake, flow) == "bar"
    fake.assert_finished()


def test_a_hangup_line_right_after_the_environment_is_kept_for_the_first_command() -> None:
    fake = FakeAsterisk([exchange("ANSWER", "200 result=0")], environment=[*environment_lines(), b"HANGUP\n"])
    with pytest.raises(AgiChannelGone):
        run(fake, lambda s: s.answer())


def test_a_reply_to_no_command_is_refused_rather_than_shifting_every_later_reply() -> None:
    fake = FakeAsterisk(
        [exchange("ANSWER", "200 result=0")], environment=[b"".join(environment_lines()) + b"200 result=0\n"]
    )

    async def flow(session: AgiSession) -> None:
        with pytest.raises(AgiProtocolError, match="reply to no command"):
            await session.answer()
        assert not session.usable

    run(fake, flow)
    assert fake.received == []


def test_a_recording_cut_by_hangup_is_returned_and_marks_the_session_hung_up() -> None:
    fake = FakeAsterisk([exchange('RECORD FILE vm wav "#" -1', "200 result=-1 (hangup) endpos=16000")])

    async def flow(session: AgiSession) -> tuple[Recording, bool]:
        return await session.record_file("vm"), session.hung_up

    assert run(fake, flow) == (Recording(None, 16000, "hangup"), True)


def test_a_silent_asterisk_times_out_and_the_session_refuses_further_commands() -> None:
    fake = FakeAsterisk([exchange("ANSWER")])  # Asterisk never answers

    async def flow(session: AgiSession) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(AgiTimeout, match="ANSWER"):
            await session.answer(timeout=0.05)
        assert loop.time() - started < 1.0
        assert not session.usable
        with pytest.raises(AgiConnectionLost, match="no reply"):
            await session.get_variable("X")

    run(fake, flow)
    assert fake.received == [b"ANSWER\n"]  # nothing sent after the timeout


def test_a_cancelled_command_leaves_the_session_unusable() -> None:
    fake = FakeAsterisk([exchange("WAIT FOR DIGIT 5000")])

    async def flow(session: AgiSession) -> None:
        task = asyncio.create_task(session.wait_for_digit(5000))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(AgiConnectionLost, match="interrupted"):
            await session.answer()

    run(fake, flow)


def test_asterisk_closing_the_socket_is_connection_lost() -> None:
    fake = FakeAsterisk([exchange("ANSWER")])

    async def flow(session: AgiSession) -> None:
        command = asyncio.create_task(session.answer())
        await asyncio.sleep(0.01)
        fake.disconnect()
        with pytest.raises(AgiConnectionLost, match="closed"):
            await command
        with pytest.raises(AgiConnectionLost):  # and nothing more can be sent
            await session.answer()

    run(fake, flow)


def test_garbage_instead_of_a_reply_is_a_protocol_error() -> None:
    fake = FakeAsterisk([exchange("ANSWER", "OK fine")])
    with pytest.raises(AgiProtocolError):
        run(fake, lambda s: s.answer())


def test_a_bad_argument_is_refused_before_anything_is_sent() -> None:
    fake = FakeAsterisk([])

    async def flow(session: AgiSession) -> None:
        with pytest.raises(AgiArgumentError):
            await session.set_variable("X", "1\nHANGUP")
        assert session.usable

    run(fake, flow)
    assert fake.received == []


def test_concurrent_commands_go_out_one_at_a_time_in_order() -> None:
    fake = FakeAsterisk(
        [exchange(f"GET VARIABLE V{i}", f"200 result=1 ({i})") for i in range(5)],
    )

    async def flow(session: AgiSession) -> list[str | None]:
        return list(await asyncio.gather(*(session.get_variable(f"V{i}") for i in range(5))))

    assert run(fake, flow) == ["0", "1", "2", "3", "4"]
    fake.assert_finished()


def test_environment_must_arrive_in_time_and_whole() -> None:
    async def open_with(environment: list[bytes], disconnect: bool) -> AgiSession:
        fake = FakeAsterisk([], environment=environment)
        if disconnect:
            fake.disconnect()
        return await fake.session(FAST)

    with pytest.raises(AgiTimeout, match="environment"):
        asyncio.run(open_with(environment_lines()[:-1], disconnect=False))
    with pytest.raises(AgiConnectionLost):
        asyncio.run(open_with(environment_lines()[:3], disconnect=True))
    with pytest.raises(AgiProtocolError):
        asyncio.run(open_with([b"SSH-2.0-OpenSSH_9.6\r\n"], disconnect=False))


def test_the_fake_reports_commands_it_did_not_expect() -> None:
    fake = FakeAsterisk([exchange("ANSWER", "200 result=0")])
    with pytest.raises(FakeAsteriskMismatch, match="expected b'ANSWER"):
        run(fake, lambda s: s.hangup())
    with pytest.raises(FakeAsteriskMismatch):
        fake.assert_finished()
    unfinished = FakeAsterisk([exchange("ANSWER", "200 result=0")])
    run(unfinished, lambda s: asyncio.sleep(0))
    with pytest.raises(FakeAsteriskMismatch, match="never sent"):
        unfinished.assert_finished()
