"""AmiClient over real sockets against a small scripted AMI server: reconnection with back-off, a refused
login, lost connections, time limits, the Ping keep-alive, event lists, multi-line output, and handlers
that send actions themselves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from voice.ami.client import AmiClient
from voice.ami.errors import AmiActionError, AmiConnectionLost, AmiLoginFailed, AmiTimeout
from voice.ami.events import AmiEvent, CoreShowChannel, Hangup
from voice.ami.protocol import AmiMessage, AmiReader
from voice.backoff import Backoff

T = TypeVar("T")
BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def wire(*pairs: tuple[str, str]) -> bytes:
    return b"".join(f"{key}: {value}\r\n".encode() for key, value in pairs) + b"\r\n"


Reply = Callable[[AmiMessage, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class MiniAsterisk:
    """Banner, Login (secret "secret"), Ping -> Pong; other actions from `replies` or `Response: Success`.
    `drop_after_login[n]`: connection n closes right after a successful login."""

    replies: dict[str, Reply] = field(default_factory=dict)
    drop_after_login: list[bool] = field(default_factory=list)
    answer_ping: bool = True
    close_after_failed_login: bool = False
    connections: int = 0
    actions: list[list[AmiMessage]] = field(default_factory=list)
    client_closed: list[asyncio.Event] = field(default_factory=list)
    held: list[bytes] = field(default_factory=list)  # sent before the answer to the next action

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = self.connections
        self.connections += 1
        got: list[AmiMessage] = []
        self.actions.append(got)
        closed = asyncio.Event()
        self.client_closed.append(closed)
        parser = AmiReader(expect_banner=False)
        writer.write(BANNER)
        try:
            while data := await reader.read(65536):
                for item in parser.feed(data):
                    assert isinstance(item, AmiMessage)
                    got.append(item)
                    if not await self._answer(index, item, writer):
                        return
            closed.set()
        except ConnectionError:
            closed.set()
        finally:
            writer.close()

    async def _answer(self, index: int, action: AmiMessage, writer: asyncio.StreamWriter) -> bool:
        name, action_id = action.get("Action") or "", action.action_id or ""
        while self.held:
            writer.write(self.held.pop(0))
        if name == "Login":
            if action.get("Secret") != "secret":
                writer.write(
                    wire(("Response", "Error"), ("ActionID", action_id), ("Message", "Authentication failed"))
                )
                return not self.close_after_failed_login
            writer.write(
                wire(("Response", "Success"), ("ActionID", action_id), ("Message", "Authentication accepted"))
            )
            writer.write(
                wire(("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"))
            )
            await writer.drain()
            drop = index < len(self.drop_after_login) and self.drop_after_login[index]
            return not drop
        if name == "Ping":
            if self.answer_ping:
                writer.write(wire(("Response", "Success"), ("ActionID", action_id), ("Ping", "Pong")))
            return True
        reply = self.replies.get(name)
        if reply is not None:
            await reply(action, writer)
        else:
            writer.write(wire(("Response", "Success"), ("ActionID", action_id)))
        await writer.drain()
        return True


def with_server(server: MiniAsterisk, body: Callable[[int], Awaitable[T]]) -> T:
    async def main() -> T:
        listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            async with asyncio.timeout(10):
                return await body(port)
        finally:
            listener.close()

    return asyncio.run(main())


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def client(port: int, **options: object) -> AmiClient:
    settings: dict[str, object] = {"username": "centralita", "secret": "secret", "ping_interval": None}
    settings.update(options)
    return AmiClient("127.0.0.1", port, **settings)  # type: ignore[arg-type]


def test_run_reconnects_after_a_drop_and_logs_in_again() -> None:
    server = MiniAsterisk(drop_after_login=[True, False])
    sleeps = Sleeps()

    async def body(port: int) -> tuple[int, list[str]]:
        logins: list[int] = []
        second = asyncio.Event()

        async def on_connect() -> None:
            logins.append(ami.connections)
            if len(logins) == 2:
                second.set()

        ami = client(port, on_connect=on_connect, sleep=sleeps, random_source=lambda: 0.0)
        booted: list[str] = []
        ami.subscribe(lambda event: booted.append(event.event), events=["FullyBooted"])
        task = asyncio.create_task(ami.run())
        await second.wait()
        assert (await ami.ping()).get("Ping") == "Pong"
        await ami.flush_events()
        await ami.logoff()
        await task
        return ami.connections, booted

    connections, booted = with_server(server, body)
    assert connections == 2 and server.connections == 2
    assert sleeps.delays == [0.5]
    assert booted == ["FullyBooted", "FullyBooted"]
    assert [m.get("Action") for m in server.actions[1]] == ["Login", "Ping", "Logoff"]


def test_run_stops_on_a_refused_login_and_hangs_up_without_waiting_for_asterisk() -> None:
    server = MiniAsterisk(close_after_failed_login=False)  # worse than Asterisk: it never closes
    sleeps = Sleeps()

    async def body(port: int) -> AmiLoginFailed:
        ami = client(port, secret="wrong", sleep=sleeps)
        with pytest.raises(AmiLoginFailed) as refused:
            await ami.run()
        await asyncio.wait_for(server.client_closed[0].wait(), 1.0)
        await ami.close()
        return refused.value

    error = with_server(server, body)
    assert error.message == "Authentication failed"
    assert server.connections == 1 and sleeps.delays == []


def test_an_action_in_flight_fails_when_the_connection_drops() -> None:
    async def hang_up(action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        writer.transport.abort()

    server = MiniAsterisk(replies={"Originate": hang_up})

    async def body(port: int) -> None:
        ami = client(port)
        await ami.connect()
        with pytest.raises(AmiConnectionLost):
            await ami.originate("PJSIP/100", context="default", exten="100", priority=1)
        assert not ami.connected
        with pytest.raises(AmiConnectionLost):
            await ami.ping()
        await ami.close()

    with_server(server, body)


def test_no_answer_in_time_raises_and_a_late_answer_is_ignored() -> None:
    server = MiniAsterisk()

    async def hold(action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        server.held.append(
            wire(("Response", "Success"), ("ActionID", action.action_id or ""), ("Value", "late"))
        )

    server.replies["Getvar"] = hold

    async def body(port: int) -> str | None:
        ami = client(port, action_timeout=0.1)
        await ami.connect()
        with pytest.raises(AmiTimeout):
            await ami.get_var("FOO", "PJSIP/1-1")
        pong = await ami.ping()  # the late Getvar answer arrives first: nobody waits for it any more
        await ami.close()
        return pong.get("Ping")

    assert with_server(server, body) == "Pong"
    assert server.held == []


def test_a_ping_without_answer_drops_the_link_and_run_reconnects() -> None:
    server = MiniAsterisk(answer_ping=False)
    sleeps = Sleeps()

    async def body(port: int) -> int:
        logins = 0
        again = asyncio.Event()

        async def on_connect() -> None:
            nonlocal logins
            logins += 1
            if logins == 2:
                again.set()

        ami = client(port, ping_interval=0.05, action_timeout=0.05, on_connect=on_connect, sleep=sleeps)
        task = asyncio.create_task(ami.run())
        await again.wait()
        await ami.close()
        await task
        return logins

    assert with_server(server, body) == 2
    assert len(sleeps.delays) >= 1
    assert [m.get("Action") for m in server.actions[0]] == ["Login", "Ping"]


def test_event_lists_collect_their_items_while_other_events_still_reach_subscribers() -> None:
    async def channels(action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        action_id = action.action_id or ""
        writer.write(wire(("Response", "Success"), ("ActionID", action_id), ("EventList", "start")))
        for number in (1, 2):
            writer.write(
                wire(
                    ("Event", "CoreShowChannel"),
                    ("ActionID", action_id),
                    ("Channel", f"PJSIP/10{number}-0000000{number}"),
                    ("Uniqueid", f"1795537883.{number}"),
                    ("CallerIDNum", "<unknown>"),
                    ("Application", "AGI"),
                    ("ApplicationData", "agi://127.0.0.1:4573/ivr"),
                    ("Duration", "00:00:07"),
                )
            )
            writer.write(wire(("Event", "Hangup"), ("Channel", "PJSIP/999-00000009"), ("Cause", "16")))
        writer.write(
            wire(
                ("Event", "CoreShowChannelsComplete"),
                ("ActionID", action_id),
                ("EventList", "Complete"),
                ("ListItems", "2"),
            )
        )

    server = MiniAsterisk(replies={"CoreShowChannels": channels})

    async def body(port: int) -> tuple[list[CoreShowChannel], list[AmiEvent]]:
        ami = client(port)
        events: list[AmiEvent] = []
        ami.subscribe(events.append)
        await ami.connect()
        items = await ami.core_show_channels()
        await ami.flush_events()
        await ami.close()
        return items, events

    items, events = with_server(server, body)
    assert [(c.channel, c.application_data, c.caller_id_num) for c in items] == [
        ("PJSIP/101-00000001", "agi://127.0.0.1:4573/ivr", None),
        ("PJSIP/102-00000002", "agi://127.0.0.1:4573/ivr", None),
    ]
    assert [e.event for e in events] == [
        "FullyBooted",
        "Hangup",
        "Hangup",
    ]  # the list items are not broadcast


def test_command_output_lines_come_back_as_text_and_errors_carry_the_message() -> None:
    async def command(action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        action_id = action.action_id or ""
        if action.get("Command") == "core show version":
            writer.write(
                wire(
                    ("Response", "Success"),
                    ("ActionID", action_id),
                    ("Message", "Command output follows"),
                    ("Output", "Asterisk 22.10.1 built by root @ host: on a x86_64"),
                    ("Output", "  second line: with colons"),
                )
            )
        else:
            writer.write(
                wire(("Response", "Error"), ("ActionID", action_id), ("Message", "Command output follows"))
            )

    server = MiniAsterisk(replies={"Command": command})

    async def body(port: int) -> tuple[str, AmiActionError]:
        ami = client(port)
        await ami.connect()
        text = await ami.command("core show version")
        with pytest.raises(AmiActionError) as failed:
            await ami.command("no such command")
        await ami.close()
        return text, failed.value

    text, error = with_server(server, body)
    assert text == "Asterisk 22.10.1 built by root @ host: on a x86_64\n  second line: with colons"
    assert (error.action, error.message) == ("Command", "Command output follows")


def test_a_handler_may_send_actions_and_await_them() -> None:
    async def hangup_event_then_ok(action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        writer.write(wire(("Response", "Success"), ("ActionID", action.action_id or "")))
        writer.write(wire(("Event", "Hangup"), ("Channel", "PJSIP/100-00000001"), ("Cause", "16")))

    async def getvar(action: AmiMessage, writer: asyncio.StreamWriter) -> None:
        writer.write(wire(("Response", "Success"), ("ActionID", action.action_id or ""), ("Value", "42")))

    server = MiniAsterisk(replies={"Hangup": hangup_event_then_ok, "Getvar": getvar})

    async def body(port: int) -> list[str | None]:
        ami = client(port)
        values: list[str | None] = []
        done = asyncio.Event()

        async def on_hangup(event: AmiEvent) -> None:
            assert isinstance(event, Hangup) and event.cause == 16
            values.append(await ami.get_var("CDR(billsec)", event.channel))
            done.set()

        ami.subscribe(on_hangup, events=["hangup"])
        await ami.connect()
        await ami.hangup("PJSIP/100-00000001", cause=16)
        await asyncio.wait_for(done.wait(), 2)
        await ami.close()
        return values

    assert with_server(server, body) == ["42"]
    hangup = server.actions[0][1]
    assert (hangup.get("Action"), hangup.get("Channel"), hangup.get("Cause")) == (
        "Hangup",
        "PJSIP/100-00000001",
        "16",
    )


def test_a_client_that_cannot_reach_asterisk_backs_off() -> None:
    async def main() -> list[float]:
        listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        listener.close()
        await listener.wait_closed()
        delays: list[float] = []
        ami: AmiClient

        async def sleep(seconds: float) -> None:
            delays.append(seconds)
            if len(delays) == 4:
                await ami.close()

        ami = client(port, sleep=sleep, random_source=lambda: 0.0, backoff=Backoff(initial=1.0, maximum=5.0))
        async with asyncio.timeout(5):
            await ami.run()
        return delays

    assert asyncio.run(main()) == [1.0, 2.0, 4.0, 5.0]
