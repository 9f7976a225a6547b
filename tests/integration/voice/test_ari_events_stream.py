"""The ARI event WebSocket over real sockets: a local websockets server plays Asterisk, sending the recorded
events; it drops the connection, the stream reconnects with back-off, and delivery goes on."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from voice.ari.errors import AriUnauthorized
from voice.ari.events import AriEvent
from voice.ari.events_stream import AriEventStream
from voice.ari.router import AriRouter
from voice.backoff import Backoff

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "asterisk"
T = TypeVar("T")
AUTH = "Basic Y2VudHJhbGl0YTpzZWNyZXQ="  # centralita:secret


def recorded_events() -> list[dict[str, Any]]:
    path = FIXTURES / "ari_events.jsonl"
    if not path.is_file():
        pytest.fail(
            f"ARI recording {path} is missing: restore ../shared/fixtures/asterisk next to the repository"
        )
    with path.open() as lines:
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class FakeAsteriskWs:
    """Connection n sends `batches[n]`, then drops the socket (abruptly) unless it is the last batch."""

    batches: list[list[str]]
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    refuse_with: int | None = None

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse_with is not None:
            return connection.respond(HTTPStatus(self.refuse_with), '{"message":"Authentication required"}')
        return None

    async def handler(self, connection: ServerConnection) -> None:
        index = len(self.requests)
        headers: Headers = connection.request.headers if connection.request else Headers()
        self.requests.append(
            (connection.request.path if connection.request else "", headers.get("Authorization"))
        )
        batch = self.batches[index] if index < len(self.batches) else []
        for message in batch:
            await connection.send(message)
        if index < len(self.batches) - 1:
            connection.transport.abort()  # a crash, not a clean close
            return
        await connection.wait_closed()


def with_server(fake: FakeAsteriskWs, body: Callable[[str], Awaitable[T]]) -> T:
    async def main() -> T:
        async with serve(fake.handler, "127.0.0.1", 0, process_request=fake.process_request) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with asyncio.timeout(10):
                return await body(f"http://127.0.0.1:{port}")

    return asyncio.run(main())


class Sleeps:
    """An injected sleep: records the back-off delays, sleeps only a tick."""

    def __init__(self, on_sleep: Callable[[int], None] | None = None) -> None:
        self.delays: list[float] = []
        self._on_sleep = on_sleep

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep(len(self.delays))
        await asyncio.sleep(0)


def test_the_stream_reconnects_after_a_drop_and_delivers_every_recorded_event_once() -> None:
    raw = recorded_events()
    messages = [json.dumps(item) for item in raw]
    fake = FakeAsteriskWs([messages[:20], messages[20:]])
    router = AriRouter()
    received: list[AriEvent] = []
    router.subscribe(received.append, application="ccapp")
    sleeps = Sleeps()
    connects: list[int] = []

    async def body(url: str) -> AriEventStream:
        all_in = asyncio.Event()

        def collect(event: AriEvent) -> None:
            if len(received) == len(raw):
                all_in.set()

        router.subscribe(collect)

        async def on_connect() -> None:
            connects.append(stream.connections)

        stream = AriEventStream(
            url,
            ["ccapp"],
            "centralita",
            "secret",
            router,
            on_connect=on_connect,
            sleep=sleeps,
            random_source=lambda: 0.0,
        )
        task = asyncio.create_task(stream.run())
        await all_in.wait()
        await stream.stop()
        await task
        return stream

    stream = with_server(fake, body)
    assert [e.type for e in received] == [item["type"] for item in raw]
    assert stream.connections == 2 and connects == [1, 2]
    assert sleeps.delays == [0.5]  # one outage: the first step of the schedule
    assert fake.requests == [("/ari/events?app=ccapp", AUTH)] * 2
    assert not stream.connected


def test_credentials_can_go_in_the_query_as_in_the_recording() -> None:
    fake = FakeAsteriskWs([[json.dumps(recorded_events()[0])]])
    router = AriRouter()
    got: list[AriEvent] = []

    async def body(url: str) -> None:
        first = asyncio.Event()

        def collect(event: AriEvent) -> None:
            got.append(event)
            first.set()

        router.subscribe(collect)
        stream = AriEventStream(url, ["ccapp"], "centralita", "secret", router, credentials_in_query=True)
        task = asyncio.create_task(stream.run())
        await first.wait()
        await stream.stop()
        await task

    with_server(fake, body)
    assert fake.requests == [("/ari/events?app=ccapp&api_key=centralita:secret", None)]
    assert [e.type for e in got] == ["StasisStart"]


def test_refused_credentials_end_the_stream_with_ari_unauthorized() -> None:
    fake = FakeAsteriskWs([[]], refuse_with=401)
    sleeps = Sleeps()

    async def body(url: str) -> None:
        stream = AriEventStream(url, ["ccapp"], "centralita", "wrong", AriRouter(), sleep=sleeps)
        with pytest.raises(AriUnauthorized) as refused:
            await stream.run()
        assert refused.value.status == 401

    with_server(fake, body)
    assert sleeps.delays == []  # no retry: configuration, not an outage


def test_garbage_and_a_failing_handler_do_not_stop_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    raw = recorded_events()
    fake = FakeAsteriskWs([["not json", "[1, 2]", '{"no": "type"}', json.dumps(raw[0]), json.dumps(raw[1])]])
    router = AriRouter()
    got: list[str] = []

    def broken(event: AriEvent) -> None:
        raise ValueError("handler bug")

    async def body(url: str) -> None:
        done = asyncio.Event()

        def collect(event: AriEvent) -> None:
            got.append(event.type)
            if len(got) == 2:
                done.set()

        router.subscribe(broken)
        router.subscribe(collect)
        stream = AriEventStream(url, ["ccapp"], "centralita", "secret", router)
        task = asyncio.create_task(stream.run())
        await done.wait()
        await stream.stop()
        await task

    with_server(fake, body)
    assert got == ["StasisStart", "ChannelStateChange"]
    assert router.failures == 2
    assert "not JSON" in caplog.text and "not a JSON object" in caplog.text and "handler bug" in caplog.text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_while_asterisk_is_down_the_delays_grow_to_the_cap_with_jitter() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens: every connect is refused at once

    async def main() -> list[float]:
        stream: AriEventStream

        def stop_after_eight(count: int) -> None:
            if count == 8:
                asyncio.get_running_loop().create_task(stream.stop())

        sleeps = Sleeps(stop_after_eight)
        stream = AriEventStream(
            url,
            ["ccapp"],
            "centralita",
            "secret",
            AriRouter(),
            backoff=Backoff(initial=0.5, factor=2.0, maximum=30.0, jitter=0.5),
            random_source=lambda: 0.5,  # each delay loses a quarter
            sleep=sleeps,
        )
        async with asyncio.timeout(10):
            await stream.run()
        return sleeps.delays

    delays = asyncio.run(main())
    assert delays == [0.375, 0.75, 1.5, 3.0, 6.0, 12.0, 22.5, 22.5]


def test_stop_during_the_back_off_returns_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"

    async def main() -> None:
        sleeping = asyncio.Event()

        async def forever(seconds: float) -> None:
            sleeping.set()
            await asyncio.Event().wait()

        stream = AriEventStream(url, ["ccapp"], "centralita", "secret", AriRouter(), sleep=forever)
        task = asyncio.create_task(stream.run())
        async with asyncio.timeout(5):
            await sleeping.wait()
            await stream.stop()
            await task

    asyncio.run(main())
