"""FastAgiServer: routing by flow, the fallback, crash isolation, socket closing, and a draining stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from voice.agi.fake_asterisk import FakeCall, call_server, environment_lines, exchange
from voice.agi.protocol import AgiEnvironment
from voice.agi.server import FastAgiServer, Handler, Router
from voice.agi.session import AgiSession, AgiTimeouts

FAST = AgiTimeouts(environment=0.3, command=0.3, media=0.3, application=0.3)
T = TypeVar("T")


def with_server(router: Router, body: Callable[[FastAgiServer], Awaitable[T]], **options: object) -> T:
    async def main() -> T:
        server = FastAgiServer(router, port=0, timeouts=FAST, **options)  # type: ignore[arg-type]
        await server.start()
        try:
            return await body(server)
        finally:
            await server.stop(grace_seconds=1.0)

    return asyncio.run(main())


def test_each_flow_name_reaches_its_handler_and_the_socket_is_closed_after() -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []

    def handler_for(name: str) -> Handler:
        async def handler(session: AgiSession) -> None:
            seen.append((name, session.env.arguments))
            await session.answer()

        return handler

    flows = {"sales": handler_for("sales"), "support": handler_for("support")}

    async def body(server: FastAgiServer) -> list[FakeCall]:
        script = [exchange("ANSWER", "200 result=0")]
        return list(
            await asyncio.gather(
                call_server(
                    "127.0.0.1", server.port, script, environment=environment_lines("sales", arg_1="vip")
                ),
                call_server("127.0.0.1", server.port, script, environment=environment_lines("support/")),
            )
        )

    calls = with_server(lambda env: flows.get(env.flow), body)
    assert sorted(seen) == [("sales", ("vip",)), ("support", ())]
    assert all(call.mismatch is None and call.closed_by_server and not call.extra for call in calls)


def test_an_unknown_flow_is_logged_and_hung_up_politely(caplog: pytest.LogCaptureFixture) -> None:
    async def body(server: FastAgiServer) -> FakeCall:
        script = [exchange("HANGUP", "200 result=1")]
        return await call_server(
            "127.0.0.1", server.port, script, environment=environment_lines("nosuchflow")
        )

    with caplog.at_level(logging.WARNING, logger="voice.agi.server"):
        call = with_server(lambda env: None, body)
    assert call.received == [b"HANGUP\n"]
    assert call.closed_by_server
    assert "no handler for flow 'nosuchflow'" in caplog.text


def test_the_fallback_handler_is_configurable() -> None:
    async def apologise(session: AgiSession) -> None:
        await session.stream_file("sorry")
        await session.hangup()

    async def body(server: FastAgiServer) -> FakeCall:
        script = [
            exchange('STREAM FILE sorry ""', "200 result=0 endpos=100"),
            exchange("HANGUP", "200 result=1"),
        ]
        return await call_server("127.0.0.1", server.port, script)

    call = with_server(lambda env: None, body, fallback=apologise)
    assert call.mismatch is None and call.closed_by_server


def test_a_crashing_call_is_logged_with_its_channel_and_does_not_disturb_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    other_finished: list[str | None] = []

    async def crashing(session: AgiSession) -> None:
        await session.answer()
        raise RuntimeError("bug in the flow")

    async def steady(session: AgiSession) -> None:
        await session.answer()
        await asyncio.sleep(0.1)  # the crash happens meanwhile
        other_finished.append(await session.get_variable("X"))

    flows = {"crash": crashing, "steady": steady}

    async def body(server: FastAgiServer) -> list[FakeCall]:
        answer = exchange("ANSWER", "200 result=0")
        crash_env = environment_lines("crash", channel="PJSIP/bob-0000002a", uniqueid="1795537999.42")
        return list(
            await asyncio.gather(
                call_server(
                    "127.0.0.1",
                    server.port,
                    [answer, exchange("GET VARIABLE X", "200 result=1 (ok)")],
                    environment=environment_lines("steady"),
                ),
                call_server("127.0.0.1", server.port, [answer], environment=crash_env),
            )
        )

    with caplog.at_level(logging.ERROR, logger="voice.agi.server"):
        steady_call, crash_call = with_server(lambda env: flows.get(env.flow), body)
    assert other_finished == ["ok"]
    assert steady_call.closed_by_server and crash_call.closed_by_server
    [record] = [r for r in caplog.records if r.exc_info]
    assert "channel PJSIP/bob-0000002a, uniqueid 1795537999.42" in record.getMessage()
    assert "bug in the flow" in caplog.text


def test_a_failing_router_falls_back_instead_of_dropping_the_call(caplog: pytest.LogCaptureFixture) -> None:
    def router(env: AgiEnvironment) -> Handler | None:
        raise KeyError(env.flow)

    async def body(server: FastAgiServer) -> FakeCall:
        return await call_server("127.0.0.1", server.port, [exchange("HANGUP", "200 result=1")])

    with caplog.at_level(logging.ERROR, logger="voice.agi.server"):
        call = with_server(router, body)
    assert call.received == [b"HANGUP\n"] and call.closed_by_server
    assert "router failed" in caplog.text


def test_stop_lets_short_calls_finish_and_cancels_stuck_ones_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes: list[str] = []

    async def short(session: AgiSession) -> None:
        await asyncio.sleep(0.1)
        await session.answer()
        outcomes.append("short finished")

    async def stuck(session: AgiSession) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            outcomes.append("stuck cancelled")
            raise

    flows = {"short": short, "stuck": stuck}

    async def main() -> tuple[list[FakeCall], float, bool]:
        server = FastAgiServer(lambda env: flows.get(env.flow), port=0, timeouts=FAST)
        await server.start()
        port = server.port
        answer = [exchange("ANSWER", "200 result=0")]
        calls = asyncio.gather(
            call_server("127.0.0.1", port, answer, environment=environment_lines("short")),
            call_server("127.0.0.1", port, [], environment=environment_lines("stuck")),
        )
        while server.active_calls < 2:
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.stop(grace_seconds=0.4)
        took = loop.time() - started
        try:
            await asyncio.open_connection("127.0.0.1", port)
            refused = False
        except OSError:
            refused = True
        return list(await calls), took, refused

    with caplog.at_level(logging.WARNING, logger="voice.agi.server"):
        calls, took, refused = asyncio.run(main())
    assert sorted(outcomes) == ["short finished", "stuck cancelled"]
    assert 0.35 <= took < 2.0
    assert all(call.closed_by_server for call in calls)
    assert refused
    assert "cancelled 1 calls" in caplog.text


@pytest.mark.parametrize(
    ("allowed", "peer", "expected"),
    [
        (("127.0.0.1", "::1"), "127.0.0.1", True),
        (("127.0.0.1", "::1"), "::1", True),
        (("127.0.0.1", "::1"), "::ffff:127.0.0.1", True),  # IPv4 peer on a dual-stack socket
        (("127.0.0.1", "::1"), "127.0.0.2", False),
        (("10.0.0.0/24",), "10.0.0.77", True),
        (("10.0.0.0/24",), "10.0.1.1", False),
        (("fe80::/64",), "fe80::1%eth0", True),
        (("127.0.0.1",), "", False),
        (("127.0.0.1",), "localhost", False),
    ],
)
def test_allow_list_matches_addresses_and_networks(
    allowed: tuple[str, ...], peer: str, expected: bool
) -> None:
    assert FastAgiServer(lambda env: None, allowed_peers=allowed).is_allowed(peer) is expected
