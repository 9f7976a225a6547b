"""Whatever arrives on the socket, the AGI reader raises only AgiProtocolError, and the server keeps every
other call going: garbage, silence and strangers are each confined to their own connection."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import re
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice.agi.errors import AgiProtocolError
from voice.agi.fake_asterisk import FakeCall, call_server, environment_lines, exchange
from voice.agi.protocol import AgiEnvironment, AgiReader, AgiReply, HangupNotice, parse_reply_line
from voice.agi.server import FastAgiServer, Handler
from voice.agi.session import AgiSession, AgiTimeouts

FAST = AgiTimeouts(environment=0.3, command=0.3, media=0.3, application=0.3)

# Pieces real replies are made of, so generated lines get deep into the parser, not only its first check.
FRAGMENTS = st.sampled_from(
    ["200", "510", "511", "520", "520-", " ", "result=", "-1", "0", "49", "(", ")", "timeout", " endpos=",
     "HANGUP", "agi_request: ", "agi_channel", ":", "\r", "", "\t", "x", "é", "\x00"]
)  # fmt: skip
NEAR_AGI_LINE = st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=8).map("".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def feed_all(reader: AgiReader, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        events += reader.feed(chunk)
    reader.feed_eof()
    return events


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), cuts=st.lists(st.integers(min_value=0), max_size=8), env=st.booleans())
def test_arbitrary_bytes_raise_nothing_but_protocol_errors(data: bytes, cuts: list[int], env: bool) -> None:
    with contextlib.suppress(AgiProtocolError):
        feed_all(AgiReader(expect_environment=env, max_line_bytes=512), chunked(data, cuts))


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(NEAR_AGI_LINE, max_size=12), cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_arbitrary_reply_lines_parse_the_same_however_they_are_chunked(
    lines: list[str], cuts: list[int]
) -> None:
    data = "".join(f"{line}\n" for line in lines).encode()
    try:
        whole = feed_all(AgiReader(expect_environment=False), [data])
    except AgiProtocolError:
        with pytest.raises(AgiProtocolError):
            feed_all(AgiReader(expect_environment=False), chunked(data, cuts))
        return
    assert feed_all(AgiReader(expect_environment=False), chunked(data, cuts)) == whole
    assert all(isinstance(event, AgiReply | HangupNotice) for event in whole)


@settings(max_examples=200, deadline=None)
@given(
    environment=st.dictionaries(
        st.from_regex(r"agi_[a-z0-9_]{1,12}", fullmatch=True),
        st.text(max_size=20).map(lambda t: t.strip("\r\n")),
        max_size=10,
    ),
    garbage=st.lists(NEAR_AGI_LINE, max_size=4),
)  # fmt: skip
def test_arbitrary_environment_blocks_yield_an_environment_or_a_protocol_error(
    environment: dict[str, str], garbage: list[str]
) -> None:
    text = "".join(f"{key}: {value.replace(chr(10), '')}\n" for key, value in environment.items())
    data = (text + "".join(f"{line}\n" for line in garbage) + "\n").encode()
    try:
        events = AgiReader().feed(data)
    except AgiProtocolError:
        return
    assert isinstance(events[0], AgiEnvironment)


@settings(max_examples=200, deadline=None)
@given(
    result=st.integers(min_value=-(2**31), max_value=2**31),
    data=st.none() | st.text(alphabet=st.characters(blacklist_characters="\n\r="), max_size=30),
    endpos=st.none() | st.integers(min_value=0, max_value=2**40),
)
def test_well_formed_200_replies_parse_back_to_their_parts(
    result: int, data: str | None, endpos: int | None
) -> None:
    line = f"200 result={result}" + (f" ({data})" if data is not None else "")
    line += f" endpos={endpos}" if endpos is not None else ""
    reply = parse_reply_line(line)
    assert reply == AgiReply(200, result=result, result_text=str(result), data=data, endpos=endpos)


# --- the server, under garbage, silence and strangers -------------------------------------------------


def recording_router(routed: list[AgiEnvironment]) -> Callable[[AgiEnvironment], Handler | None]:
    def router(env: AgiEnvironment) -> Handler | None:
        routed.append(env)
        return None

    return router


async def read_until_closed(reader: asyncio.StreamReader, limit: float = 3.0) -> bytes:
    try:
        async with asyncio.timeout(limit):
            return await reader.read()
    except ConnectionResetError:
        return b""


async def connect_and_send(port: int, payload: bytes, *, answer_commands_with: bytes | None = None) -> bytes:
    """A misbehaving client: send `payload`, maybe answer each command with junk; return what came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        try:
            writer.write(payload)
            await writer.drain()
        except ConnectionError:
            return b""  # closed on us while we were still sending: fine, that is the point
        if answer_commands_with is None:
            return await read_until_closed(reader)
        received = b""
        while line := await asyncio.wait_for(reader.readline(), 3.0):
            received += line
            writer.write(answer_commands_with)
            await writer.drain()
        return received
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def test_garbage_from_other_clients_does_not_disturb_a_concurrent_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    channel = "PJSIP/alice-00000001"
    results: list[object] = []

    async def main() -> tuple[FakeCall, list[bytes]]:
        garbage_done = asyncio.Event()

        async def good(session: AgiSession) -> None:
            await session.answer()
            await asyncio.wait_for(garbage_done.wait(), 3.0)  # every bad connection came and went meanwhile
            results.append(await session.get_variable("CHANNEL"))
            await session.hangup()

        async def answering(session: AgiSession) -> None:
            await session.answer()
            results.append("a garbage call got past ANSWER")

        flows: dict[str, Handler] = {"good": good, "ivr": answering}
        server = FastAgiServer(lambda env: flows.get(env.flow), port=0, timeouts=FAST)
        await server.start()
        script = [
            exchange("ANSWER", "200 result=0"),
            exchange("GET VARIABLE CHANNEL", f"200 result=1 ({channel})"),
            exchange("HANGUP", "200 result=1"),
        ]
        good_call = asyncio.create_task(
            call_server(
                "127.0.0.1", server.port, script, environment=environment_lines("good", channel=channel)
            )
        )
        noise = random.Random(20261124).randbytes(8192)
        try:
            bad = await asyncio.gather(
                connect_and_send(server.port, b"\xff\xfe not agi\n" + noise),
                connect_and_send(server.port, b"A" * 100_000),
                connect_and_send(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                connect_and_send(
                    server.port, b"".join(environment_lines("ivr")), answer_commands_with=b"\x00garbage\n"
                ),
                connect_and_send(
                    server.port, b"".join(environment_lines("ivr")), answer_commands_with=noise[:64] + b"\n"
                ),
            )
            garbage_done.set()
            return await good_call, list(bad)
        finally:
            await server.stop(grace_seconds=1.0)

    with caplog.at_level(logging.INFO, logger="voice.agi.server"):
        call, bad = asyncio.run(main())
    assert call.mismatch is None
    assert call.closed_by_server
    assert results == [channel]
    assert bad == [b"", b"", b"", b"ANSWER\n", b"ANSWER\n"]  # nothing but the one command each
    assert caplog.text.count("bad AGI environment") == 3
    assert caplog.text.count("AgiProtocolError") == 2


def test_a_client_that_never_sends_the_environment_is_timed_out(caplog: pytest.LogCaptureFixture) -> None:
    routed: list[AgiEnvironment] = []

    async def main() -> tuple[bytes, float]:
        server = FastAgiServer(recording_router(routed), port=0, timeouts=FAST)
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            started = asyncio.get_running_loop().time()
            writer.write(b"agi_network: yes\n")  # then nothing more
            data = await read_until_closed(reader)
            elapsed = asyncio.get_running_loop().time() - started
            writer.close()
            await writer.wait_closed()
            return data, elapsed
        finally:
            await server.stop(grace_seconds=1.0)

    with caplog.at_level(logging.WARNING, logger="voice.agi.server"):
        data, elapsed = asyncio.run(main())
    assert data == b""
    assert 0.25 <= elapsed < 2.0
    assert routed == []
    assert "no complete AGI environment within 0.3 s" in caplog.text


def test_an_asterisk_that_goes_silent_mid_call_is_timed_out_and_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def flow(session: AgiSession) -> None:
        await session.answer()

    async def main() -> FakeCall:
        server = FastAgiServer(lambda env: flow, port=0, timeouts=FAST)
        await server.start()
        try:
            return await call_server("127.0.0.1", server.port, [exchange("ANSWER")], close_timeout=2.0)
        finally:
            await server.stop(grace_seconds=1.0)

    with caplog.at_level(logging.WARNING, logger="voice.agi.server"):
        call = asyncio.run(main())
    assert call.received == [b"ANSWER\n"]
    assert call.closed_by_server
    assert re.search(r"AgiTimeout: 'ANSWER' got no reply within 0.3 s", caplog.text)
    assert "uniqueid 1795537810.0" in caplog.text


def test_a_client_outside_the_allow_list_is_refused_before_anything_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    routed: list[AgiEnvironment] = []

    async def main() -> bytes:
        server = FastAgiServer(
            recording_router(routed),
            port=0,
            allowed_peers=("10.20.30.40", "192.168.0.0/16"),
            timeouts=FAST,
        )
        await server.start()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            try:
                writer.write(b"".join(environment_lines()))
                await writer.drain()
            except ConnectionError:
                pass  # refused while we were still writing
            data = await read_until_closed(reader, limit=1.0)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            return data
        finally:
            await server.stop(grace_seconds=1.0)

    with caplog.at_level(logging.WARNING, logger="voice.agi.server"):
        data = asyncio.run(main())
    assert data == b""
    assert routed == []
    assert re.search(r"connection from 127\.0\.0\.1:\d+ refused: address not in the allow-list", caplog.text)
