"""The AudioSocket server against AudioSocketCaller (Asterisk's side) over real sockets: audio both ways,
DTMF, hang-ups from either side, pacing and barge-in, and connections that go wrong."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from voice.audiosocket.client import AudioSocketCaller
from voice.audiosocket.port import AudioLink
from voice.audiosocket.protocol import FRAME_BYTES, AudioFrame, DtmfFrame, encode
from voice.audiosocket.server import (
    AudioLinkUnavailable,
    AudioSocketServer,
    AudioSocketTimeout,
    AudioSocketTimeouts,
    Pacing,
)

T = TypeVar("T")
FAST = AudioSocketTimeouts(uuid_seconds=0.5, idle_seconds=0.5, expect_seconds=2.0, write_seconds=1.0)


def with_server(body: Callable[[AudioSocketServer], Awaitable[T]], **options: Any) -> T:
    async def main() -> T:
        server = AudioSocketServer(port=0, **({"timeouts": FAST} | options))
        await server.start()
        try:
            return await asyncio.wait_for(body(server), 30)
        finally:
            await server.stop(grace_seconds=1.0)

    return asyncio.run(main())


def tone(frames: int, value: int) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (FRAME_BYTES // 2) * frames


async def read_until_silence_or_end(link: AudioLink) -> tuple[bytes, str]:
    """Caller audio up to the first silent frame, and the DTMF digits seen before it."""
    audio, digits = bytearray(), ""
    while (frame := await link.read()) is not None:
        if isinstance(frame, DtmfFrame):
            digits += frame.digit
        elif frame.pcm == bytes(len(frame.pcm)):
            if audio:
                break
        else:
            audio += frame.pcm
    return bytes(audio), digits


def test_audio_and_dtmf_go_both_ways_and_closing_the_link_ends_audiosocket_normally() -> None:
    call = uuid.uuid4()
    speech = tone(10, 1000) + tone(5, -2000)
    reply = tone(7, 300)[:-100]  # not a whole number of frames

    async def body(server: AudioSocketServer) -> tuple[bytes, str, bool, AudioSocketCaller, str]:
        pending = server.expect(call)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        assert link.uuid == call and server.active_links == 1

        async def speak() -> None:
            await caller.send_dtmf("12#", speed=10)
            await caller.send_audio(speech, speed=10)
            await caller.send_silence_until_closed(speed=10, limit_seconds=10)

        speaking = asyncio.create_task(speak())
        heard, digits = await read_until_silence_or_end(link)
        played = await link.write_audio(reply)
        await link.close()
        await speaking
        assert await caller.wait_closed(2)
        return heard, digits, played, caller, link.ended_by

    heard, digits, played, caller, ended_by = with_server(body)
    assert heard == speech and digits == "12#" and played
    assert caller.received_audio == reply + bytes(FRAME_BYTES * 7 - len(reply))
    assert caller.closed_by_server and caller.hangup_frame and caller.protocol_error is None
    assert ended_by == "server"


def test_the_server_paces_audio_at_real_time_with_a_small_lead() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[AudioSocketCaller, float, float]:
        pending = server.expect(call)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        line = asyncio.create_task(caller.send_silence_until_closed(limit_seconds=5))
        started = time.monotonic()
        assert await link.write_audio(tone(50, 500))  # one second
        took = time.monotonic() - started
        await asyncio.sleep(0.05)
        await link.close()
        await caller.wait_closed(2)
        await line
        return caller, started, took

    caller, started, took = with_server(body)
    assert 0.9 <= took <= 1.3
    audio = [arrival for arrival in caller.arrivals if isinstance(arrival.frame, AudioFrame)]
    assert len(audio) == 50
    # Never more than the lead (60 ms) plus scheduling slack ahead of real time.
    for index, arrival in enumerate(audio):
        assert arrival.at - started >= index * 0.020 - 0.060 - 0.025, index


def test_stop_audio_drops_the_rest_of_the_prompt_for_barge_in() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[bool, bool, int, bytes]:
        pending = server.expect(call)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        line = asyncio.create_task(caller.send_silence_until_closed(limit_seconds=5))
        prompt = asyncio.create_task(link.write_audio(tone(150, 700)))  # 3 s
        queued = asyncio.create_task(link.write_audio(tone(50, 900)))  # and 1 s after it
        await asyncio.sleep(0.3)
        await link.stop_audio()
        cut, dropped = await prompt, await queued
        assert await link.write_audio(tone(2, 100))  # audio written after the stop plays
        await asyncio.sleep(0.1)
        await link.close()
        await caller.wait_closed(2)
        await line
        return cut, dropped, len(caller.received_audio), caller.received_audio[-2 * FRAME_BYTES :]

    cut, dropped, received, tail = with_server(body)
    assert not cut and not dropped
    # 0.3 s elapsed, plus the 60 ms lead and slack: far less than the 4 s written.
    assert 0.25 * 16000 <= received - 2 * FRAME_BYTES <= 0.5 * 16000
    assert tail == tone(2, 100)


def test_when_the_caller_hangs_up_reads_end_and_writes_stop() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[list[object], bool, str]:
        pending = server.expect(call)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        await caller.send_audio(tone(3, 100), speed=float("inf"))
        frames: list[object] = [await link.read() for _ in range(3)]
        playing = asyncio.create_task(link.write_audio(tone(100, 400)))
        await asyncio.sleep(0.1)
        await caller.hang_up()
        frames.append(await link.read())
        played = await playing
        return frames, played, link.ended_by

    frames, played, ended_by = with_server(body)
    assert frames == [AudioFrame(tone(1, 100))] * 3 + [None]
    assert not played and ended_by == "caller"


def test_a_link_for_a_uuid_nobody_expects_is_closed_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    stranger = uuid.uuid4()

    async def body(server: AudioSocketServer) -> AudioSocketCaller:
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, stranger)
        await caller.wait_closed(2)
        return caller

    with caplog.at_level(logging.WARNING, "voice.audiosocket.server"):
        caller = with_server(body)
    assert caller.closed_by_server and caller.received_audio == b""
    assert f"AudioSocket {stranger}" in caplog.text and "nobody expects this UUID" in caplog.text


def test_asterisk_never_connecting_times_out_and_a_late_link_is_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[str, AudioSocketCaller]:
        with pytest.raises(AudioSocketTimeout, match=f"{call}.*0.1s") as raised:
            await server.expect(str(call), timeout=0.1)
        late = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        await late.wait_closed(2)
        again = server.expect(call, timeout=1)  # the UUID may be expected again
        with pytest.raises(ValueError, match="already expected"):
            server.expect(call)
        again.cancel()
        return str(raised.value), late

    with caplog.at_level(logging.WARNING, "voice.audiosocket.server"):
        _, late = with_server(body)
    assert late.closed_by_server and "nobody expects" in caplog.text


def test_peers_outside_the_allow_list_are_refused_before_a_byte_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def body(server: AudioSocketServer) -> tuple[bytes, bool]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(encode(AudioFrame(bytes(FRAME_BYTES))))
            data = await asyncio.wait_for(reader.read(100), 2)
        except ConnectionError:
            data = b""
        writer.close()
        return data, server.is_allowed("10.1.2.3") and not server.is_allowed("127.0.0.1")

    with caplog.at_level(logging.WARNING, "voice.audiosocket.server"):
        data, rules = with_server(body, allowed_peers=("10.0.0.0/8",))
    assert data == b"" and rules
    assert "refused: address not in the allow-list" in caplog.text


def test_garbage_is_refused_and_disturbs_no_other_link(caplog: pytest.LogCaptureFixture) -> None:
    good = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[bytes, object, str, AudioSocketCaller]:
        pending = server.expect(good)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, good)
        link = await pending
        # A stranger speaks HTTP; another sends a UUID of the wrong size.
        http = await AudioSocketCaller.connect("127.0.0.1", server.port, send_uuid=False)
        await http.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        short = await AudioSocketCaller.connect("127.0.0.1", server.port, send_uuid=False)
        await short.send_raw(b"\x01\x00\x04abcd")
        assert await http.wait_closed(2) and await short.wait_closed(2)
        # The good call goes on; then it sends garbage itself, mid-call.
        await caller.send_audio(tone(1, 50), speed=float("inf"))
        first = await link.read()
        await caller.send_raw(b"\x42\x00\x00")
        end = await link.read()
        await caller.wait_closed(2)
        assert isinstance(first, AudioFrame)
        return first.pcm, end, link.ended_by, caller

    with caplog.at_level(logging.WARNING, "voice.audiosocket.server"):
        first, end, ended_by, caller = with_server(body)
    assert first == tone(1, 50) and end is None and ended_by == "error"
    assert caller.hangup_frame  # told to end: AudioSocket() returns 0 and the call goes on
    assert "unknown frame kind 0x47" in caplog.text
    assert "a UUID frame carries 16 bytes, this one 4" in caplog.text
    assert "unknown frame kind 0x42" in caplog.text


def test_silent_connections_time_out_before_and_after_their_uuid(caplog: pytest.LogCaptureFixture) -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[object, str, float, bool]:
        mute = await AudioSocketCaller.connect("127.0.0.1", server.port, send_uuid=False)
        pending = server.expect(call)
        await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        started = time.monotonic()
        end = await link.read()  # the caller sends nothing: half-open
        waited = time.monotonic() - started
        return end, link.ended_by, waited, await mute.wait_closed(2)

    with caplog.at_level(logging.WARNING, "voice.audiosocket.server"):
        end, ended_by, waited, mute_closed = with_server(body)
    assert end is None and ended_by == "timeout" and 0.4 <= waited <= 1.5 and mute_closed
    assert "no UUID within 0.5s" in caplog.text and "nothing from Asterisk for 0.5s" in caplog.text


def test_unread_caller_audio_is_bounded_and_the_oldest_is_dropped() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> list[object]:
        pending = server.expect(call)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        for value in range(1, 11):
            await caller.send_audio(tone(1, value), speed=float("inf"))
        await caller.send_dtmf("7", gap_ms=0)
        await asyncio.sleep(0.2)
        await caller.hang_up()
        frames: list[object] = []
        while (frame := await link.read()) is not None:
            frames.append(frame)
        return frames

    frames = with_server(body, pacing=Pacing(max_buffered_seconds=0.1))  # 5 frames
    assert frames == [AudioFrame(tone(1, value)) for value in range(6, 11)] + [DtmfFrame("7")]


def test_fifty_concurrent_calls_each_get_their_own_audio() -> None:
    async def one(server: AudioSocketServer, number: int) -> tuple[bytes, bytes, bytes]:
        call = uuid.uuid4()
        pending = server.expect(call)
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        link = await pending
        said = tone(10, number + 1)

        async def listen_and_answer() -> bytes:
            heard, _ = await read_until_silence_or_end(link)
            await link.write_audio(tone(10, -(number + 1)))
            await link.close()
            return heard

        answering = asyncio.create_task(listen_and_answer())
        await caller.send_audio(said, speed=2)
        await caller.send_silence_until_closed(speed=2, limit_seconds=10)
        return said, await answering, caller.received_audio

    async def body(server: AudioSocketServer) -> list[tuple[bytes, bytes, bytes]]:
        return list(await asyncio.gather(*(one(server, number) for number in range(50))))

    results = with_server(body)
    for number, (said, heard, received) in enumerate(results):
        assert heard == said
        assert received == tone(10, -(number + 1)), number


def test_stopping_the_server_closes_open_links_after_the_grace_period() -> None:
    call = uuid.uuid4()

    async def main() -> tuple[bool, bool]:
        server = AudioSocketServer(port=0, timeouts=FAST)
        await server.start()
        pending = server.expect(call)
        never = server.expect(uuid.uuid4())
        caller = await AudioSocketCaller.connect("127.0.0.1", server.port, call)
        await pending
        talking = asyncio.create_task(caller.send_silence_until_closed(speed=1, limit_seconds=5))
        await server.stop(grace_seconds=0.2)
        closed = await caller.wait_closed(2)
        await talking
        with pytest.raises(AudioLinkUnavailable, match="stopped before"):
            await never
        with pytest.raises(AudioLinkUnavailable, match="not running"):
            server.expect(uuid.uuid4())
        return closed, caller.hangup_frame

    assert asyncio.run(main()) == (True, True)
