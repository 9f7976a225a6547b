"""Replay real Asterisk 22 FastAGI transcripts through a real FastAgiServer over TCP.

A scripted Asterisk sends the recorded `<<` bytes; the flow under test issues, through the typed session
API, the commands Asterisk received in the recording (`>>`). The server must send exactly those bytes,
decode every reply to the right value, and close the socket at the end (Asterisk never does).
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from voice.agi.errors import AgiApplicationNotFound, AgiChannelGone, AgiCommandError
from voice.agi.fake_asterisk import Exchange, FakeCall, call_server
from voice.agi.protocol import AgiEnvironment
from voice.agi.server import FastAgiServer, Handler
from voice.agi.session import AgiSession, Playback

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "asterisk"
_LINE = re.compile(r"\[\s*[\d.]+ ms\] (<<|>>|##) (.*)")

USAGE_OF_GET_DATA = (
    "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
    "Returns the digits received from the channel at the other end."
)


@dataclass
class Transcript:
    environment: list[bytes] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    parsed_environment: dict[str, str] = field(default_factory=dict)


def load(name: str) -> Transcript:
    path = FIXTURES / name
    if not path.is_file():
        pytest.fail(
            f"Asterisk transcript {path} is missing. The contract tests replay the recordings kept in "
            f"../shared/fixtures/asterisk next to the repository; restore that directory."
        )
    transcript = Transcript()
    command: bytes | None = None
    replies: list[bytes] = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _LINE.fullmatch(text)
        assert match, f"{name}:{number}: not a transcript line: {text!r}"
        direction, payload = match.groups()
        if direction == "##":
            if payload.startswith("parsed agi env: "):
                transcript.parsed_environment = json.loads(payload.removeprefix("parsed agi env: "))
            continue
        data = ast.literal_eval(payload)
        assert isinstance(data, bytes), f"{name}:{number}: not a bytes repr"
        if direction == ">>":
            if command is not None:
                transcript.exchanges.append(Exchange(command, tuple(replies)))
            command, replies = data, []
        elif command is None:
            transcript.environment.append(data)
        else:
            replies.append(data)
    if command is not None:
        transcript.exchanges.append(Exchange(command, tuple(replies)))
    return transcript


@dataclass(frozen=True)
class Raises:
    error: type[Exception]
    check: Callable[[Any], bool]

    def matches(self, outcome: object) -> bool:
        return type(outcome) is self.error and self.check(outcome)


Step = tuple[Callable[[AgiSession], Awaitable[object]], object]


async def hangup_state(session: AgiSession) -> tuple[bool, int]:
    """Not a command: what the session knows about the hang-up at this point."""
    return session.hung_up, session.hangup_notices


def ivr_steps(callerid_number: str, channel: str) -> list[Step]:
    return [
        (lambda s: s.answer(), None),
        (lambda s: s.get_variable("CALLERID(num)"), callerid_number),
        (lambda s: s.get_variable("CHANNEL"), channel),
        (lambda s: s.stream_file("hello-world", "#"), Playback(digit=None, endpos=11360)),
        (lambda s: s.get_data("beep", 2000, 4), ""),  # `200 result= (timeout)`: nothing pressed
        (lambda s: s.say_digits("123"), None),
        (lambda s: s.set_variable("FOO", "bar"), None),
        (lambda s: s.get_variable("FOO"), "bar"),
        (lambda s: s.get_full_variable("${FOO}-${CALLERID(num)}"), f"bar-{callerid_number}"),
        (lambda s: s.get_variable("DOES_NOT_EXIST"), None),
        (lambda s: s.exec_("Wait", "1"), 0),
        (lambda s: s.exec_("NoSuchApp", "x"), Raises(AgiApplicationNotFound, lambda e: e.reply.result == -2)),
        (lambda s: s.channel_status(), 6),
        (lambda s: s.command("FOO BAR"), Raises(AgiCommandError, lambda e: e.code == 510)),
        (
            lambda s: s.command("GET DATA"),
            Raises(AgiCommandError, lambda e: e.code == 520 and e.usage == USAGE_OF_GET_DATA),
        ),
        (hangup_state, (False, 0)),
        (lambda s: s.hangup(), None),
        (hangup_state, (True, 0)),
        (lambda s: s.get_variable("FOO"), "bar"),  # preceded by the `HANGUP` line, which we expected
        (hangup_state, (True, 1)),
        (lambda s: s.answer(), Raises(AgiChannelGone, lambda e: e.reply.code == 511)),
    ]


def dtmf_steps(channel: str) -> list[Step]:
    return [
        (lambda s: s.answer(), None),
        (lambda s: s.wait_for_digit(5000), "1"),  # result=49
        (lambda s: s.get_data("beep", 5000, 5), "23"),  # `23#`: the # ends input, not part of it
        (lambda s: s.stream_file("demo-congrats", "9#"), Playback(digit="9", endpos=19360)),
        (lambda s: s.wait_for_digit(15000), Raises(AgiChannelGone, lambda e: e.reply.result == -1)),
        (hangup_state, (True, 0)),
        (lambda s: s.get_variable("CHANNEL"), channel),  # `HANGUP` line first, then the value
        (hangup_state, (True, 1)),
    ]


@dataclass
class Replay:
    call: FakeCall
    environments: list[AgiEnvironment]
    outcomes: list[object]
    finished: bool


def replay(transcript: Transcript, steps: list[Step]) -> Replay:
    environments: list[AgiEnvironment] = []
    outcomes: list[object] = []
    finished = False

    async def flow(session: AgiSession) -> None:
        nonlocal finished
        for step, _ in steps:
            try:
                outcomes.append(await step(session))
            except Exception as exc:  # recorded and compared, so the test shows every difference
                outcomes.append(exc)
        finished = True

    def router(env: AgiEnvironment) -> Handler | None:
        environments.append(env)
        return flow

    async def main() -> FakeCall:
        server = FastAgiServer(router, host="127.0.0.1", port=0)
        await server.start()
        try:
            return await call_server(
                "127.0.0.1",
                server.port,
                transcript.exchanges,
                environment=transcript.environment,
                reply_timeout=3.0,
                close_timeout=3.0,
            )
        finally:
            await server.stop(grace_seconds=1.0)

    return Replay(asyncio.run(main()), environments, outcomes, finished)


def assert_replayed(transcript: Transcript, steps: list[Step], result: Replay) -> None:
    assert result.call.mismatch is None, result.call.mismatch
    assert result.call.received == [exchange.command for exchange in transcript.exchanges]
    assert result.finished
    wrong = [
        (index, outcome, expected)
        for index, (outcome, (_, expected)) in enumerate(zip(result.outcomes, steps, strict=True))
        if not (expected.matches(outcome) if isinstance(expected, Raises) else outcome == expected)
    ]
    assert not wrong, f"steps decoded wrongly (index, got, expected): {wrong}"
    assert result.call.extra == []
    assert result.call.closed_by_server, "the server must close the socket: Asterisk never does"
    [env] = result.environments
    assert env.variables == transcript.parsed_environment


@pytest.mark.parametrize(
    ("name", "callerid_number", "callerid_name"),
    [("fastagi_ivr_1.txt", "", None), ("fastagi_ivr_3.txt", "5551234", "Alice")],
)
def test_ivr_transcript_replays_byte_for_byte_with_typed_replies(
    name: str, callerid_number: str, callerid_name: str | None
) -> None:
    transcript = load(name)
    assert len(transcript.exchanges) == 18
    channel = transcript.parsed_environment["agi_channel"]
    steps = ivr_steps(callerid_number, channel)
    result = replay(transcript, steps)
    assert_replayed(transcript, steps, result)
    [env] = result.environments
    assert (env.flow, env.context, env.channel) == ("ivr", "ivr-test", channel)
    assert env.callerid == (callerid_number or None)  # `agi_callerid: unknown` when there is none
    assert env.calleridname == callerid_name


def test_dtmf_transcript_replays_digits_and_the_far_end_hangup() -> None:
    transcript = load("fastagi_dtmf_2.txt")
    assert len(transcript.exchanges) == 6
    channel = transcript.parsed_environment["agi_channel"]
    steps = dtmf_steps(channel)
    result = replay(transcript, steps)
    assert_replayed(transcript, steps, result)
    [env] = result.environments
    assert (env.flow, env.context, env.callerid) == ("dtmf", "ivr-dtmf", None)


def test_a_flow_that_strays_from_the_recording_is_caught() -> None:
    """The replay is a real check: one different command and the comparison fails."""
    transcript = load("fastagi_dtmf_2.txt")
    steps = dtmf_steps(transcript.parsed_environment["agi_channel"])
    steps[1] = (lambda s: s.wait_for_digit(4000), "1")
    result = replay(transcript, steps)
    assert result.call.mismatch is not None
    assert result.call.received[-1] == b"WAIT FOR DIGIT 4000\n"
    with pytest.raises(AssertionError):
        assert_replayed(transcript, steps, result)
