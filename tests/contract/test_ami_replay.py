"""Replay the real Asterisk 22 AMI transcript against the real AmiClient over TCP.

A scripted Asterisk on 127.0.0.1 (port 0) plays the recorded `<<` side, one TCP connection per recorded
connection. Every message the client sends must be the recorded `>>` one (same action and fields; the
ActionID values are the client's own, so the server maps recorded ids to the client's and answers with
them). Asterisk's messages go out in recorded order; one that carries an ActionID waits until the client
has sent that action, one without waits until the client has sent every action recorded before it (so
causality is as recorded, while the client is free to wait for the Login answer before sending more).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from voice.ami.client import AmiClient
from voice.ami.errors import AmiActionError, AmiLoginFailed
from voice.ami.events import (
    AGIExecEnd,
    AGIExecStart,
    AmiEvent,
    CoreShowChannel,
    FullyBooted,
    Hangup,
    Newexten,
    OriginateReason,
    OriginateResponse,
)
from voice.ami.protocol import AmiMessage, AmiReader

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "asterisk"
_LINE = re.compile(r"\[\s*[\d.]+ ms\] (<<|>>|##) ?(.*)")
T = TypeVar("T")


@dataclass
class Segment:
    """One recorded TCP connection."""

    banner: str = ""
    sent: list[AmiMessage] = field(default_factory=list)  # by the client, in order
    received: list[tuple[int, AmiMessage]] = field(default_factory=list)  # (client messages before, msg)
    server_closes: bool = False


def load_trace() -> list[Segment]:
    path = FIXTURES / "ami_trace.txt"
    if not path.is_file():
        pytest.fail(
            f"Asterisk transcript {path} is missing. The contract tests replay the recordings kept in "
            f"../shared/fixtures/asterisk next to the repository; restore that directory."
        )
    segments: list[Segment] = []
    lines: list[tuple[str, str]] | None = None
    direction_open = ""
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _LINE.fullmatch(text)
        assert match, f"ami_trace.txt:{number}: not a transcript line: {text!r}"
        direction, payload = match.groups()
        if direction == "##":
            if payload.startswith(("connect", "reconnect")):
                segments.append(Segment())
            elif payload.startswith("EOF"):
                segments[-1].server_closes = True
            continue
        segment = segments[-1]
        if direction == "<<" and not segment.banner:
            segment.banner = payload
            continue
        if direction == ">>" and payload == "----- sent -----":
            assert lines is None, f"ami_trace.txt:{number}: a new action inside a message"
            lines, direction_open = [], ">>"
            continue
        if lines is None:
            lines, direction_open = [], direction
        assert direction == direction_open, f"ami_trace.txt:{number}: messages interleave"
        if payload == "":
            message = AmiMessage(tuple((key, value) for key, value in lines))
            if direction == ">>":
                segment.sent.append(message)
            else:
                segment.received.append((len(segment.sent), message))
            lines = None
            continue
        key, _, value = payload.partition(":")
        lines.append((key, value.removeprefix(" ")))
    assert lines is None, "the transcript ends inside a message"
    return segments


def comparable(message: AmiMessage) -> list[tuple[str, str]]:
    """A sent action without its ActionID value and field order (AMI ignores both)."""
    return sorted((key.lower(), value) for key, value in message.fields if key.lower() != "actionid")


@dataclass
class ScriptedAsterisk:
    segments: list[Segment]
    connections: int = 0
    received: list[list[AmiMessage]] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)  # per connection: recorded replies never sent
    mismatch: str | None = None
    client_closed_first: list[bool] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        index = self.connections
        self.connections += 1
        segment = self.segments[index]
        got: list[AmiMessage] = []
        self.received.append(got)
        ids: dict[str, str] = {}  # recorded ActionID -> the client's
        parser = AmiReader(expect_banner=False)
        position = 0
        writer.write(segment.banner.encode() + b"\r\n")
        client_eof = False
        try:
            while True:
                while position < len(segment.received):
                    before, message = segment.received[position]
                    recorded_id = message.action_id
                    ready = recorded_id in ids if recorded_id is not None else before <= len(got)
                    if not ready:
                        break
                    fields = [(k, ids.get(v, v) if k == "ActionID" else v) for k, v in message.fields]
                    writer.write(b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\n")
                    position += 1
                await writer.drain()
                if position == len(segment.received) and len(got) == len(segment.sent):
                    break
                data = await reader.read(65536)
                if not data:
                    client_eof = True
                    break
                for item in parser.feed(data):
                    assert isinstance(item, AmiMessage)
                    if len(got) >= len(segment.sent):
                        self.mismatch = f"connection {index}: unexpected extra action {item.fields}"
                        return
                    expected = segment.sent[len(got)]
                    if comparable(item) != comparable(expected) or item.action_id is None:
                        self.mismatch = f"connection {index}: sent {item.fields}, recorded {expected.fields}"
                        return
                    if expected.action_id is not None:
                        ids[expected.action_id] = item.action_id
                    got.append(item)
        finally:
            self.unsent.append(len(segment.received) - position)
            if not client_eof and segment.server_closes:
                # Asterisk closes after a failed login (~1 s later) and after Logoff: the client should not
                # wait for that. b"" within 0.5 s means the client closed its side first.
                try:
                    self.client_closed_first.append(await asyncio.wait_for(reader.read(1), 0.5) == b"")
                except TimeoutError:
                    self.client_closed_first.append(False)
            writer.close()
            await writer.wait_closed()


def with_asterisk(body: Callable[[ScriptedAsterisk, int], Awaitable[T]]) -> tuple[ScriptedAsterisk, T]:
    script = ScriptedAsterisk(load_trace())

    async def main() -> T:
        server = await asyncio.start_server(script.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with asyncio.timeout(10):
                result = await body(script, port)
                await asyncio.gather(*script.tasks)  # the scripted side has finished too
                return result
        finally:
            server.close()
            await server.wait_closed()

    return script, asyncio.run(main())


def test_the_trace_holds_two_connections_as_recorded() -> None:
    first, second = load_trace()
    assert first.banner == second.banner == "Asterisk Call Manager/11.0.0"
    assert [m.get("Action") for m in first.sent] == ["Login"]
    assert [m.get("Action") for m in second.sent] == [
        "Login",
        "Ping",
        "Originate",
        "Originate",
        "Originate",
        "CoreShowChannels",
        "Logoff",
    ]
    assert first.server_closes and second.server_closes


def test_a_refused_login_raises_with_asterisks_message_and_the_client_hangs_up_first() -> None:
    async def body(script: ScriptedAsterisk, port: int) -> AmiLoginFailed:
        client = AmiClient(
            "127.0.0.1", port, username="centralita", secret="wrong", events=None, ping_interval=None
        )
        with pytest.raises(AmiLoginFailed) as refused:
            await client.connect()
        assert not client.connected
        await client.close()
        return refused.value

    script, error = with_asterisk(body)
    assert script.mismatch is None, script.mismatch
    assert (error.message, error.action) == ("Authentication failed", "Login")
    assert script.unsent == [0]
    assert script.client_closed_first == [True]  # Asterisk waits ~1 s before it closes


@dataclass
class Session:
    events: list[AmiEvent]
    answered: OriginateResponse
    no_context: OriginateResponse
    bad_technology: AmiActionError
    pong: AmiMessage
    channels: list[CoreShowChannel]


def test_the_whole_session_replays_with_typed_answers_and_events() -> None:
    async def body(script: ScriptedAsterisk, port: int) -> Session:
        # Connection 1: the refused login, as recorded; then connection 2.
        refused = AmiClient(
            "127.0.0.1", port, username="centralita", secret="wrong", events=None, ping_interval=None
        )
        with pytest.raises(AmiLoginFailed):
            await refused.connect()
        await refused.close()

        client = AmiClient("127.0.0.1", port, username="centralita", secret="secret", ping_interval=None)
        events: list[AmiEvent] = []
        client.subscribe(events.append)
        await client.connect()
        assert client.banner is not None and client.banner.version == "11.0.0"
        # As recorded: Ping and Originate go out together, before Asterisk's first events arrive.
        pong, answered = await asyncio.gather(
            client.ping(),
            client.originate(
                "Local/s@caller",
                context="ivr-test",
                exten="s",
                priority=1,
                caller_id='"Alice" <5551234>',
                timeout=30,
                variables={"APP_CALLID": "abc123"},
            ),
        )
        no_context = await client.originate(
            "Local/s@no-such-context", application="Wait", data="1", timeout=5
        )
        with pytest.raises(AmiActionError) as bad:
            # A synchronous Originate (no Async), as recorded: Asterisk refuses the action itself.
            await client.send_action("Originate", {"Channel": "Nope/123", "Application": "Wait", "Data": "1"})
        channels = await client.core_show_channels()  # an event list: Response, items, ...Complete
        await client.logoff()
        return Session(
            events=events,
            answered=answered,
            no_context=no_context,
            bad_technology=bad.value,
            pong=pong,
            channels=channels,
        )

    script, session = with_asterisk(body)
    assert script.mismatch is None, script.mismatch
    assert script.connections == 2
    assert script.unsent == [0, 0], "every recorded answer and event was sent"
    assert [len(sent) for sent in script.received] == [1, 7]
    assert script.client_closed_first == [True, True]  # after the refused login, after Goodbye
    second = script.segments[1]

    assert session.pong.get("Ping") == "Pong"

    answered = session.answered
    assert answered.success and answered.outcome is OriginateReason.ANSWERED
    assert answered.action_id == script.received[1][2].action_id  # matched by the client's own ActionID
    assert (answered.channel, answered.uniqueid) == ("Local/s@caller-00000005;1", "1795537883.10")
    assert (answered.caller_id_num, answered.caller_id_name) == ("5551234", "Alice")

    failed = session.no_context
    assert not failed.success and failed.outcome is OriginateReason.FAILED
    assert failed.uniqueid is None  # `Uniqueid: <unknown>`
    assert (failed.channel, failed.application, failed.data) == ("Local/s@no-such-context", "Wait", "1")

    assert session.bad_technology.message == "Originate failed"
    assert session.channels == []  # `ListItems: 0`

    # Every event Asterisk sent reached the subscribers, typed, in order; the list's Complete did not.
    recorded = [m.get("Event") for _, m in second.received if m.event is not None]
    assert recorded[-1] == "CoreShowChannelsComplete"
    assert [e.event for e in session.events] == recorded[:-1]
    assert isinstance(session.events[0], FullyBooted)
    first_call = [e for e in session.events if getattr(e, "linkedid", "") == "1795537883.10"]
    hangups = [e for e in first_call if isinstance(e, Hangup)]
    assert [(h.channel, h.cause, h.cause_txt) for h in hangups] == [
        ("Local/s@caller-00000005;1", 0, "Unknown"),
        ("Local/s@caller-00000005;2", 0, "Unknown"),
    ]
    commands = [e.command for e in first_call if type(e) is AGIExecStart]
    assert commands[:3] == ["ANSWER", "GET VARIABLE CALLERID(num)", "GET VARIABLE CHANNEL"]
    assert commands[-3:] == ["HANGUP", "GET VARIABLE FOO", "ANSWER"] and len(commands) == 18
    last = [e for e in first_call if isinstance(e, AGIExecEnd)][-1]
    assert (last.command, last.result_code) == ("ANSWER", 511)  # on the dead channel, as over FastAGI
    app_data = [e.app_data for e in first_call if isinstance(e, Newexten)]
    assert "agi://127.0.0.1:4573/ivr" in app_data  # a value with colons, kept whole
    originate_events = [e for e in session.events if isinstance(e, OriginateResponse)]
    assert originate_events == [session.answered, session.no_context]  # also broadcast
