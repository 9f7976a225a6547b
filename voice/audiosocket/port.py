"""The audio link port: one call's two-way audio, as the IVR's listening turn uses it, and a fake of it.

    link = await server.expect(uuid)                  # voice.audiosocket.server
    playing = asyncio.create_task(link.write_audio(prompt))
    while (frame := await link.read()) is not None:   # caller audio and DTMF, 20 ms at a time
        if caller_started_speaking(frame):
            await link.stop_audio()                   # barge-in: the rest of the prompt is dropped
    ...
    await link.close()                                # AudioSocket() returns; the dialplan/AGI goes on

Reading and writing are independent: a prompt can be written while frames are read. `write_audio()`
returns when its audio has gone out (True) or was cut short by `stop_audio()`, `close()` or a hang-up
(False), so `await link.write_audio(prompt)` also tells when the prompt has finished playing.

`FakeAudioLink` plays a scripted caller for the code above, on a virtual clock: each tick delivers the
next scripted frame and plays the next 20 ms of written audio, so a barge-in cuts the prompt at a
predictable place and `played` holds exactly what the caller would have heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Literal, Protocol

from voice.audiosocket.protocol import FRAME_BYTES, AudioFrame, DtmfFrame

CallerFrame = AudioFrame | DtmfFrame


class AudioLink(Protocol):
    @property
    def uuid(self) -> uuid.UUID: ...

    @property
    def closed(self) -> bool:
        """True once the link has ended, from either side."""
        ...

    async def read(self) -> CallerFrame | None:
        """The caller's next frame (20 ms of 8 kHz audio, or a DTMF digit), None once the caller hung up,
        the socket closed or the link was closed here. Never raises for a broken connection."""
        ...

    async def write_audio(self, pcm: bytes) -> bool:
        """Play 8 kHz signed 16-bit little-endian PCM of any length to the caller, after audio written
        before it. True when all of it went out, False when stop_audio(), close() or a hang-up cut it."""
        ...

    async def stop_audio(self) -> None:
        """Drop every queued outgoing sample (barge-in). Audio already sent cannot be recalled."""
        ...

    async def close(self) -> None:
        """End the link: Asterisk's AudioSocket() returns 0 and the dialplan (or AGI) continues.
        Idempotent."""
        ...


class FakeAudioLink:
    """A scripted caller. `incoming` is what the caller sends, frame by frame; after it, `then`
    "silence" keeps sending silence (up to `max_silence_frames`, then hangs up) and "hangup" hangs up."""

    def __init__(
        self,
        incoming: Iterable[CallerFrame] = (),
        *,
        then: Literal["silence", "hangup"] = "silence",
        max_silence_frames: int = 3000,
        tick_seconds: float = 0.0,
        link_uuid: uuid.UUID | None = None,
    ) -> None:
        self._uuid = link_uuid or uuid.uuid4()
        self._script: deque[CallerFrame] = deque(incoming)
        self._then = then
        self._silence_left = max_silence_frames
        self._tick_seconds = tick_seconds
        self._inbox: deque[CallerFrame] = deque()
        self._outgoing: deque[tuple[int, bytes]] = deque()  # (write id, up to 20 ms of audio)
        self._next_write = 0
        self._caller_gone = False
        self._closed = False
        self._cut: set[int] = set()  # writes cut short by stop_audio() or close()
        self._changed = asyncio.Event()
        self._wanted = asyncio.Event()
        self._waiting = 0
        self._clock: asyncio.Task[None] | None = None
        self.written = bytearray()  # everything passed to write_audio()
        self.played = bytearray()  # what reached the caller's ear
        self.stops = 0
        self.ticks = 0

    @classmethod
    def speaking(cls, pcm: bytes, *, then: Literal["silence", "hangup"] = "silence") -> FakeAudioLink:
        """A caller who says `pcm` (8 kHz PCM) from the first frame on."""
        frames = [
            AudioFrame(pcm[i : i + FRAME_BYTES]) for i in range(0, len(pcm) - len(pcm) % 2, FRAME_BYTES)
        ]
        return cls(frames, then=then)

    @property
    def uuid(self) -> uuid.UUID:
        return self._uuid

    @property
    def closed(self) -> bool:
        return self._closed or self._caller_gone

    @property
    def frames_sent(self) -> int:
        """How many frames the caller has sent so far (the virtual time, in 20 ms steps)."""
        return self.ticks

    async def read(self) -> CallerFrame | None:
        while True:
            if self._inbox:
                return self._inbox.popleft()
            if self.closed:
                return None
            await self._wait()

    async def write_audio(self, pcm: bytes) -> bool:
        if len(pcm) % 2:
            raise ValueError(f"{len(pcm)} bytes of 16-bit audio is not a whole number of samples")
        self.written += pcm
        if self.closed:
            return False
        write = self._next_write
        self._next_write += 1
        for start in range(0, len(pcm), FRAME_BYTES):
            self._outgoing.append((write, pcm[start : start + FRAME_BYTES]))
        while any(queued == write for queued, _ in self._outgoing):
            if self.closed:
                return False
            await self._wait()
        return write not in self._cut

    async def stop_audio(self) -> None:
        self.stops += 1
        self._cut.update(queued for queued, _ in self._outgoing)
        self._outgoing.clear()
        self._notify()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._cut.update(queued for queued, _ in self._outgoing)
        self._outgoing.clear()
        self._notify()
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock

    # --- the virtual clock ----------------------------------------------------------------------

    async def _wait(self) -> None:
        """Until the next tick. The clock only runs while someone waits on the link, once per tick however
        many wait, so time stands still while the code under test works on a frame."""
        if self._clock is None:
            self._clock = asyncio.get_running_loop().create_task(self._run_clock())
        self._waiting += 1
        self._wanted.set()
        self._changed.clear()
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    def _notify(self) -> None:
        self._changed.set()

    async def _run_clock(self) -> None:
        while not self.closed:
            if not self._waiting:
                self._wanted.clear()
                await self._wanted.wait()
                continue
            self._tick()
            self._notify()
            await asyncio.sleep(self._tick_seconds)  # the woken tasks run before the next tick
        self._notify()

    def _tick(self) -> None:
        self.ticks += 1
        if self._outgoing:
            self.played += self._outgoing.popleft()[1]
        if self._script:
            self._inbox.append(self._script.popleft())
        elif self._then == "silence" and self._silence_left > 0:
            self._silence_left -= 1
            self._inbox.append(AudioFrame(bytes(FRAME_BYTES)))
        else:
            self._caller_gone = True
