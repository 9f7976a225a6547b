"""The console caller answers like Asterisk 22: the same reply formats as the recorded transcripts, read
back by our own AGI parser to the values the session expects."""

from __future__ import annotations

import asyncio

import pytest

from voice.agi.protocol import AgiReply, parse_environment, parse_reply_line
from voice.console_caller import CallResult, ConsolePhone, ScriptedKeypad, environment, split_command

GONE = "511 Command Not Permitted on a dead channel or intercept routine"


def phone(
    keys: str = "", *, prompts: dict[str, str] | None = None, handoffs_fail: bool = False
) -> tuple[ConsolePhone, CallResult]:
    result = CallResult(uniqueid="1795537883.10")
    keypad = ScriptedKeypad.parse(keys) if keys else ScriptedKeypad([])
    made = ConsolePhone(
        keypad=keypad,
        result=result,
        caller="+34600111222",
        channel="PJSIP/console-00000001",
        prompts=prompts or {},
        handoffs_fail=handoffs_fail,
        say=lambda line: None,
    )
    return made, result


def answers(console: ConsolePhone, *commands: str) -> list[list[str]]:
    async def main() -> list[list[str]]:
        return [await console.reply(command) for command in commands]

    return asyncio.run(main())


def parsed(line: str) -> AgiReply:
    reply = parse_reply_line(line)
    assert isinstance(reply, AgiReply)
    return reply


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('STREAM FILE hello-world "#"', ["STREAM", "FILE", "hello-world", "#"]),
        ('SAY DIGITS 123 ""', ["SAY", "DIGITS", "123", ""]),
        (r'SET VARIABLE X "a \"b\" c"', ["SET", "VARIABLE", "X", 'a "b" c']),
        ("GET DATA  silence/1 5000 1", ["GET", "DATA", "silence/1", "5000", "1"]),
    ],
)
def test_command_lines_are_split_as_res_agi_does(line: str, words: list[str]) -> None:
    assert split_command(line) == words


def test_prompts_are_heard_as_words_and_digits_come_back_as_asterisk_sends_them() -> None:
    console, result = phone("12#,,1234,12", prompts={"centralita/es/abc": "Pulse 1."})
    replies = answers(
        console,
        "ANSWER",
        'STREAM FILE centralita/es/abc "0123456789*#"',
        'STREAM FILE meridiano/es/x ""',
        "GET DATA silence/1 5000 4",
        "GET DATA silence/1 5000 4",
        "GET DATA silence/1 5000 4",
        "GET DATA silence/1 5000 4",
    )
    assert replies[0] == ["200 result=0"]
    assert replies[1][0].startswith("200 result=0 endpos=")
    assert [r[0] for r in replies[3:]] == [
        "200 result=12",
        "200 result= (timeout)",
        "200 result=1234",
        "200 result=12 (timeout)",
    ]
    assert [parsed(r[0]).result_text for r in replies[3:]] == ["12", "", "1234", "12"]
    assert result.heard == ["Pulse 1.", "[plays meridiano/es/x]"]
    assert result.pressed == ["12#", "(nothing)", "1234", "12"]


def test_when_the_keys_run_out_the_caller_hangs_up_and_the_channel_is_dead() -> None:
    console, result = phone("1")
    replies = answers(
        console,
        "WAIT FOR DIGIT 5000",
        "GET DATA silence/1 5000 1",
        "CHANNEL STATUS",
        "GET VARIABLE CHANNEL(linkedid)",
        "ANSWER",
    )
    assert replies == [
        ["200 result=49"],
        ["200 result=-1"],
        ["HANGUP", GONE],
        ["200 result=1 (1795537883.10)"],
        [GONE],
    ]
    assert result.ended_by == "caller"


def test_queues_answer_and_end_the_call_or_refuse_it() -> None:
    console, result = phone()
    assert answers(console, "EXEC Queue facturacion") == [["200 result=-1"]]
    assert result.ended_by == "handoff" and console.dead
    console, _ = phone(handoffs_fail=True)
    assert answers(console, "EXEC Queue ventas", "GET VARIABLE QUEUESTATUS", "EXEC Dial PJSIP/x,60") == [
        ["200 result=0"],
        ["200 result=1 (JOINEMPTY)"],
        ["200 result=0"],
    ]
    assert answers(console, "GET VARIABLE DIALSTATUS") == [["200 result=1 (CHANUNAVAIL)"]]


def test_variables_hang_up_recording_and_unknown_commands() -> None:
    console, result = phone()
    replies = answers(
        console,
        "SET VARIABLE QUEUE_PRIO 3",
        "GET VARIABLE QUEUE_PRIO",
        "GET VARIABLE NOPE",
        "GET FULL VARIABLE ${QUEUE_PRIO}-${CALLERID(num)}",
        "VERBOSE hello 1",
        'RECORD FILE centralita/recordings/x wav "#" 1000 BEEP s=4',
        "FOO BAR",
        "HANGUP",
        "ANSWER",
    )
    assert replies == [
        ["200 result=1"],
        ["200 result=1 (3)"],
        ["200 result=0"],
        ["200 result=1 (3-+34600111222)"],
        ["200 result=1"],
        ["200 result=35 (dtmf) endpos=48000"],
        ["510 Invalid or unknown command"],
        ["200 result=1"],
        [GONE],
    ]
    assert parsed(replies[5][0]).data == "dtmf"
    assert result.ended_by == "ivr"


def test_the_environment_is_the_one_asterisk_sends() -> None:
    env = parse_environment(
        line.decode().rstrip("\n")
        for line in environment(
            flow="banco_es",
            host="127.0.0.1",
            port=4573,
            caller="+34600111222",
            called="900100200",
            uniqueid="1795537883.10",
            channel="PJSIP/console-00000001",
        )[:-1]
    )
    assert (env.flow, env.callerid, env.dnid, env.uniqueid) == (
        "banco_es",
        "+34600111222",
        "900100200",
        "1795537883.10",
    )
    assert env.request == "agi://127.0.0.1:4573/banco_es" and env.linkedid is None
    withheld = environment(
        flow="x", host="h", port=1, caller=None, called=None, uniqueid="1.1", channel="PJSIP/c-1"
    )
    assert b"agi_callerid: unknown\n" in withheld and b"agi_callingpres: 67\n" in withheld


def test_key_scripts_read_silence_and_refuse_what_no_phone_has() -> None:
    assert ScriptedKeypad.parse("1,,-,2#").entries == ["1", "", "", "2#"]
    with pytest.raises(ValueError, match="not a key sequence"):
        ScriptedKeypad.parse("1,x")
