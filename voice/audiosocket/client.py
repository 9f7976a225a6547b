"""Asterisk's side of an AudioSocket connection, for tests, the console caller and benchmarks.

    caller = await AudioSocketCaller.connect("127.0.0.1", 9092, call_uuid)
    await caller.send_audio(speech)                  # 20 ms frames at real time (speed=4: four times faster)
    await caller.send_dtmf("12#")
    await caller.send_silence_until_closed()         # as Asterisk does: the line never goes quiet
    caller.received_audio                            # what the server played
    caller.closed_by_server                          # True once the server closed or sent a hang-up

Like Asterisk (res_audiosocket.c): the UUID frame first, caller audio as 8 kHz 320-byte frames, DTMF as
one-digit frames, and a hang-up is the socket closing, without a hang-up frame. It reads the server all
the time and keeps what it receives, with arrival times, so tests can check the server's pacing.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from dataclasses import dataclass

from voice.audiosocket.protocol import (
    FRAME_BYTES,
    FRAME_MS,
    AudioFrame,
    AudioSocketProtocolError,
    DtmfFrame,
    Frame,
    FrameDecoder,
    HangupFrame,
    UuidFrame,
    audio_frames,
    encode,
)


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # time.monotonic()
    frame: Frame


class AudioSocketCaller:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call_uuid: uuid.UUID
    ) -> None:
        self.uuid = call_uuid
        self._reader = reader
        self._writer = writer
        self.arrivals: list[Arrival] = []
        self.received = bytearray()  # the audio the server sent
        self.last_sound_at: float | None = None  # when audio that is not silence last arrived
        self.closed_by_server = False
        self.hangup_frame = False  # the server ended with a hang-up frame (not only by closing)
        self.protocol_error: AudioSocketProtocolError | None = None
        self._next_send = 0.0  # when the next frame is due (time.monotonic())
        self._closed = asyncio.Event()
        self._reading = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        call_uuid: uuid.UUID | str | None = None,
        *,
        timeout: float = 2.0,  # Asterisk's own connect timeout (MAX_CONNECT_TIMEOUT_MSEC)
        send_uuid: bool = True,
    ) -> AudioSocketCaller:
        """Connect and, like Asterisk, send the UUID frame at once. Raises OSError when nothing listens."""
        key = (
            uuid.uuid4()
            if call_uuid is None
            else call_uuid
            if isinstance(call_uuid, uuid.UUID)
            else uuid.UUID(call_uuid)
        )
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        caller = cls(reader, writer, key)
        if send_uuid:
            await caller.send_raw(encode(UuidFrame(key)))
        return caller

    @property
    def received_audio(self) -> bytes:
        return bytes(self.received)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # --- sending ---------------------------------------------------------------------------------

    async def send_raw(self, data: bytes) -> bool:
        """Bytes as they are (for garbage tests). False when the server has gone."""
        if self._writer.is_closing():
            return False
        try:
            self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def send_audio(self, pcm: bytes, *, speed: float = 1.0) -> int:
        """`pcm` as 20 ms frames, one every 20 ms / `speed` (math.inf: all at once), stopping early when
        the server closes. The clock runs on across calls, so many short sends keep the same pace.
        Returns the number of frames sent."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        interval = 0.0 if math.isinf(speed) else FRAME_MS / 1000 / speed
        sent = 0
        for frame in audio_frames(pcm):
            if self.closed:
                break
            now = time.monotonic()
            if self._next_send < now - 0.1:
                self._next_send = now  # idle for a while: start the clock again from now
            if self._next_send > now:
                await asyncio.sleep(self._next_send - now)
            self._next_send += interval
            if not await self.send_raw(frame):
                break
            sent += 1
        return sent

    async def send_silence(self, milliseconds: int, *, speed: float = 1.0) -> int:
        return await self.send_audio(bytes(milliseconds * 16), speed=speed)

    async def send_dtmf(self, digits: str, *, gap_ms: int = 100, speed: float = 1.0) -> None:
        """Each digit as a DTMF frame, with `gap_ms` of silence before it, as a caller presses keys."""
        for digit in digits:
            frame = encode(DtmfFrame(digit.upper()))  # ValueError for a key no phone has
            await self.send_silence(gap_ms, speed=speed)
            if not await self.send_raw(frame):
                return

    async def send_silence_until_closed(self, *, speed: float = 1.0, limit_seconds: float = 60.0) -> bool:
        """Silence, 20 ms at a time, until the server closes (True) or `limit_seconds` pass (False)."""
        deadline = time.monotonic() + limit_seconds
        while not self.closed and time.monotonic() < deadline:
            await self.send_audio(bytes(FRAME_BYTES), speed=speed)
        return self.closed

    async def wait_closed(self, timeout: float | None = None) -> bool:
        """Until the server closes; False if it is still open after `timeout` seconds."""
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def hang_up(self) -> None:
        """The caller hangs up: Asterisk closes the socket."""
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reading
        self._closed.set()

    async def __aenter__(self) -> AudioSocketCaller:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.hang_up()

    # --- receiving -------------------------------------------------------------------------------

    async def _read(self) -> None:
        decoder = FrameDecoder()
        ended_by_server = False
        try:
            while not ended_by_server:
                data = await self._reader.read(65536)
                if data:
                    decoder.feed(data)
                else:
                    decoder.feed_eof()
                    ended_by_server = True
                now = time.monotonic()
                for frame in decoder.frames():
                    self.arrivals.append(Arrival(now, frame))
                    if isinstance(frame, AudioFrame):
                        self.received += frame.pcm
                        if frame.pcm.count(0) != len(frame.pcm):
                            self.last_sound_at = now
                    elif isinstance(frame, HangupFrame):
                        self.hangup_frame = ended_by_server = True  # AudioSocket() returns 0
                        break
                    else:
                        # Asterisk would log an error, end AudioSocket() with -1 and hang up the call.
                        raise AudioSocketProtocolError(f"the server sent a {type(frame).__name__}")
        except AudioSocketProtocolError as exc:
            self.protocol_error = exc
        except (ConnectionError, OSError):
            ended_by_server = True
        self.closed_by_server = ended_by_server
        self._closed.set()
        self._writer.close()
