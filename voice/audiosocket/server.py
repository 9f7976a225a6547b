"""The AudioSocket server: Asterisk's `AudioSocket(<uuid>,<host:port>)` (or chan_audiosocket, or ARI
`externalMedia` with encapsulation=audiosocket, transport=tcp, data=<uuid>) connects here, one call each.

The IVR asks for a call's audio by UUID before it tells Asterisk to connect:

    pending = server.expect(call_uuid, timeout=5)         # register first: Asterisk may connect at once
    exec_done = asyncio.create_task(agi.exec("AudioSocket", f"{call_uuid},{advertised_address}"))
    link = await pending                                  # AudioSocketTimeout: Asterisk never connected
    ...listen and play on the link...
    await link.close()                                    # AudioSocket() returns 0; EXEC answers result=0
    await exec_done

Per connection: refuse peers outside the allow-list before reading a byte; read the UUID frame within a
time limit; hand the link to whoever expects that UUID, or close it with a log line when nobody does;
then read the caller's frames for as long as the link lives. One process only: a UUID is expected in the
process that runs the call, so several workers must not share this port (no SO_REUSEPORT here; give
each worker a port of its own and advertise that one).

Facts about Asterisk behind the choices (read in Asterisk 22's apps/app_audiosocket.c,
res/res_audiosocket.c, see voice.audiosocket.protocol for the wire format):
- Asterisk writes every caller frame to the socket as it arrives (20 ms of audio; DTMF digits as they
  end) with a non-blocking write(); a failed or short write ends AudioSocket() with -1 and the call hangs
  up. So the server reads all the time, whether or not anyone reads the link: frames wait in a bounded
  queue (the oldest audio is dropped first when nobody reads for `max_buffered_seconds`).
- Asterisk does not buffer what it receives: each audio frame read from the socket is passed to
  `ast_write()` for the channel at once, so our timing becomes the RTP timing, and audio sent faster
  than real time arrives as a burst that the phone's jitter buffer (tens of ms) cannot absorb. The link
  therefore paces its writes at 20 ms a frame with a lead of `lead_seconds` (60 ms: enough to ride out
  event-loop hiccups, and it bounds how much of a prompt still plays after a barge-in, since audio
  already sent cannot be recalled).
- A hang-up frame (0x00) or closing the socket makes AudioSocket() return 0: the dialplan or the AGI
  script continues (EXEC answers `200 result=0`). Anything else the server sends but audio, or an
  empty audio frame, makes it return -1 and hang up the call. When the caller hangs up, Asterisk
  closes the socket (ast_read() fails) without a hang-up frame.
- AudioSocket() itself gives up after 2 s without activity on either side, and connects with a 2 s
  timeout: a server that is slow to accept loses the call's audio.
- A silent or half-open connection (no byte for `idle_seconds` while Asterisk normally sends 50 frames a
  second) is closed here; a link also ends after `max_link_seconds`, a safety net for a link nobody
  closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

from voice.audiosocket.protocol import (
    FRAME_BYTES,
    SAMPLE_RATE,
    AudioFrame,
    AudioSocketProtocolError,
    DtmfFrame,
    ErrorFrame,
    FrameDecoder,
    HangupFrame,
    UuidFrame,
    audio_frames,
    encode,
)
from voice.peer_addresses import LOOPBACK, PeerAllowList, bound_addresses, describe_address

logger = logging.getLogger(__name__)

DEFAULT_PORT = 9092
_READ_CHUNK = 65536


class AudioLinkUnavailable(RuntimeError):
    """No link for an expected UUID: the server is not running or stopped while waiting."""


class AudioSocketTimeout(AudioLinkUnavailable, TimeoutError):
    """Asterisk did not connect for an expected UUID in time."""


@dataclass(frozen=True)
class AudioSocketTimeouts:
    uuid_seconds: float = 5.0  # from accepting a connection to its UUID frame
    idle_seconds: float = 10.0  # no byte from Asterisk: the connection is dead or half-open
    expect_seconds: float = 10.0  # default wait in expect(): Asterisk never connected
    write_seconds: float = 5.0  # a write Asterisk does not take within this: the connection is stuck
    max_link_seconds: float = 900.0  # no call listens for 15 minutes: a link nobody closed


@dataclass(frozen=True)
class Pacing:
    lead_seconds: float = 0.06  # how far ahead of real time outgoing audio may go
    max_buffered_seconds: float = 10.0  # unread caller audio kept before the oldest is dropped


class SocketAudioLink:
    """One AudioSocket connection, from the server's side: the `AudioLink` port over a real socket."""

    def __init__(
        self,
        link_uuid: uuid.UUID,
        writer: asyncio.StreamWriter,
        *,
        peer: str,
        pacing: Pacing,
        write_seconds: float,
    ) -> None:
        self._uuid = link_uuid
        self._writer = writer
        self.peer = peer
        self._pacing = pacing
        self._write_seconds = write_seconds
        self._frames: deque[AudioFrame | DtmfFrame] = deque()
        self._buffered_audio = 0  # bytes of audio in _frames
        self._max_buffered = int(pacing.max_buffered_seconds * SAMPLE_RATE * 2)
        self._dropped = 0
        self._arrived = asyncio.Event()
        self._ended = asyncio.Event()
        self._closed = False
        self._write_lock = asyncio.Lock()
        self._generation = 0  # bumped by stop_audio(): writes of older generations stop
        self._play_until = 0.0  # monotonic time at which audio sent so far finishes playing
        self.ended_by = ""  # "server" (close()), "caller" (hang-up/socket closed), "error", "timeout"

    @property
    def uuid(self) -> uuid.UUID:
        return self._uuid

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return f"<AudioSocket link {self._uuid} from {self.peer}{' closed' if self._closed else ''}>"

    # --- the AudioLink port -----------------------------------------------------------------------

    async def read(self) -> AudioFrame | DtmfFrame | None:
        while not self._frames:
            if self._closed:
                return None
            self._arrived.clear()
            await self._arrived.wait()
        frame = self._frames.popleft()
        if isinstance(frame, AudioFrame):
            self._buffered_audio -= len(frame.pcm)
        return frame

    async def write_audio(self, pcm: bytes) -> bool:
        if len(pcm) % 2:
            raise ValueError(f"{len(pcm)} bytes of 16-bit audio is not a whole number of samples")
        generation = self._generation
        async with self._write_lock:
            for frame in audio_frames(pcm):
                if self._closed or generation != self._generation:
                    return False
                await self._pace(len(frame) - 3)
                if self._closed or generation != self._generation:
                    return False
                if not await self._send(frame):
                    return False
        return not self._closed and generation == self._generation

    async def stop_audio(self) -> None:
        self._generation += 1

    async def close(self) -> None:
        self._end("server", send_hangup=True)

    async def wait_closed(self) -> None:
        await self._ended.wait()

    # --- inside the server --------------------------------------------------------------------------

    def deliver(self, frame: AudioFrame | DtmfFrame) -> None:
        self._frames.append(frame)
        if isinstance(frame, AudioFrame):
            self._buffered_audio += len(frame.pcm)
            while self._buffered_audio > self._max_buffered:
                self._drop_oldest_audio()
        self._arrived.set()

    def _drop_oldest_audio(self) -> None:
        for index, queued in enumerate(self._frames):
            if isinstance(queued, AudioFrame):
                del self._frames[index]
                self._buffered_audio -= len(queued.pcm)
                if not self._dropped:
                    logger.warning(
                        "AudioSocket %s: nobody reads the caller's audio; dropping the oldest", self
                    )
                self._dropped += 1
                return

    def _end(self, by: str, *, send_hangup: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self.ended_by = by
        self._generation += 1
        self._arrived.set()
        if send_hangup and not self._writer.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                self._writer.write(encode(HangupFrame()))
        self._writer.close()
        self._ended.set()

    async def _pace(self, payload_bytes: int) -> None:
        now = time.monotonic()
        if self._play_until < now:
            self._play_until = now  # nothing queued at Asterisk's end: start from now
        ahead = self._play_until - now - self._pacing.lead_seconds
        if ahead > 0:
            await asyncio.sleep(ahead)
        self._play_until += payload_bytes / (2 * SAMPLE_RATE)

    async def _send(self, frame: bytes) -> bool:
        try:
            self._writer.write(frame)  # one write per frame: Asterisk misreads a header split in two
            await asyncio.wait_for(self._writer.drain(), self._write_seconds)
        except TimeoutError:
            logger.warning(
                "AudioSocket %s: Asterisk stopped taking audio for %gs; closing", self, self._write_seconds
            )
            self._end("timeout")
            return False
        except (ConnectionError, OSError):
            self._end("caller")
            return False
        return True


class PendingLink:
    """What `AudioSocketServer.expect()` returns: await it for the link. Cancelling it (or the task
    awaiting it) withdraws the expectation; a link that arrives afterwards is closed."""

    def __init__(self, server: AudioSocketServer, link_uuid: uuid.UUID, timeout: float) -> None:
        self.uuid = link_uuid
        self._server = server
        loop = asyncio.get_running_loop()
        self._future: asyncio.Future[SocketAudioLink] = loop.create_future()
        self._timer = loop.call_later(timeout, self._expire, timeout)
        self._future.add_done_callback(self._done)

    def __await__(self) -> Generator[Any, None, SocketAudioLink]:
        return self._future.__await__()

    @property
    def waiting(self) -> bool:
        return not self._future.done()

    def cancel(self) -> None:
        if self._future.done() and not self._future.cancelled() and self._future.exception() is None:
            self._future.result()._end("server", send_hangup=True)
        self._future.cancel()

    def _fail(self, error: AudioLinkUnavailable) -> None:
        if not self._future.done():
            self._future.set_exception(error)

    def _deliver(self, link: SocketAudioLink) -> bool:
        if self._future.done():
            return False
        self._future.set_result(link)
        return True

    def _expire(self, timeout: float) -> None:
        if not self._future.done():
            self._future.set_exception(
                AudioSocketTimeout(
                    f"Asterisk did not connect for AudioSocket {self.uuid} within {timeout:g}s"
                )
            )

    def _done(self, future: asyncio.Future[SocketAudioLink]) -> None:
        self._timer.cancel()
        self._server._forget(self)
        if not future.cancelled():
            future.exception()  # marks a timeout nobody awaited as retrieved


class AudioSocketServer:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        allowed_peers: Iterable[str] = LOOPBACK,
        timeouts: AudioSocketTimeouts = AudioSocketTimeouts(),
        pacing: Pacing = Pacing(),
        backlog: int = 1024,
    ) -> None:
        """`allowed_peers` holds addresses or networks ("10.0.0.5", "10.0.0.0/24") of the Asterisk hosts."""
        self._host = host
        self._port = port
        self._allowed = PeerAllowList(allowed_peers)
        self._timeouts = timeouts
        self._pacing = pacing
        # Like FastAGI: a burst of calls overflows asyncio's default accept queue (100), and Asterisk
        # gives up connecting after 2 s.
        self._backlog = backlog
        self._server: asyncio.Server | None = None
        self._expected: dict[uuid.UUID, PendingLink] = {}
        self._links: set[SocketAudioLink] = set()
        self._connections: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the AudioSocket server is already running")
        self._stopping = False
        self._server = await asyncio.start_server(
            self._on_connection, self._host, self._port, backlog=self._backlog
        )
        logger.info("AudioSocket server listening on %s", ", ".join(map(describe_address, self.addresses)))

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return bound_addresses(self._server)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port=0)."""
        if not self.addresses:
            raise RuntimeError("the AudioSocket server is not running")
        return self.addresses[0][1]

    @property
    def active_links(self) -> int:
        return len(self._links)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop accepting, let open links end for `grace_seconds`, then close the rest (their calls go
        on in the dialplan); withdraw every expectation."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        for expected in list(self._expected.values()):
            expected._fail(
                AudioLinkUnavailable(f"the AudioSocket server stopped before {expected.uuid} connected")
            )
        await asyncio.sleep(0)  # let connections accepted just now register (and see _stopping)
        connections = set(self._connections)
        if connections:
            logger.info(
                "AudioSocket server stopping: waiting up to %gs for %d links", grace_seconds, len(connections)
            )
            _, pending = await asyncio.wait(connections, timeout=grace_seconds)
            if pending:
                logger.warning("AudioSocket server stopping: closing %d links still open", len(pending))
                for link in list(self._links):
                    link._end("server", send_hangup=True)
                _, pending = await asyncio.wait(pending, timeout=1.0)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> AudioSocketServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    def expect(self, link_uuid: uuid.UUID | str, *, timeout: float | None = None) -> PendingLink:
        """Register interest in the connection for `link_uuid` (call this before Asterisk is told to
        connect) and return what to await for it: the link, or AudioSocketTimeout after `timeout` seconds,
        or AudioLinkUnavailable when the server stops first. Raises AudioLinkUnavailable at once when the
        server is not running, ValueError if that UUID is already expected."""
        key = link_uuid if isinstance(link_uuid, uuid.UUID) else uuid.UUID(link_uuid)
        if self._stopping or self._server is None:
            raise AudioLinkUnavailable("the AudioSocket server is not running")
        if key in self._expected:
            raise ValueError(f"AudioSocket {key} is already expected")
        pending = PendingLink(self, key, self._timeouts.expect_seconds if timeout is None else timeout)
        self._expected[key] = pending
        return pending

    def is_allowed(self, host: str) -> bool:
        return self._allowed.allows(host)

    def _forget(self, pending: PendingLink) -> None:
        if self._expected.get(pending.uuid) is pending:
            del self._expected[pending.uuid]

    # --- one connection ---------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else ""
        if self._stopping or not self.is_allowed(host):
            why = "server stopping" if self._stopping else "address not in the allow-list"
            logger.warning("AudioSocket connection from %s refused: %s", describe_address(peer), why)
            writer.transport.abort()  # at once, without reading or sending a byte
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer, describe_address(peer))
        except asyncio.CancelledError:
            # Our own stop() cancelled it. Ending quietly matters on Python 3.11, whose stream callback
            # reports a cancelled handler task as an error.
            if not self._stopping:
                raise
        except Exception:
            logger.exception("AudioSocket connection from %s failed", describe_address(peer))
        finally:
            writer.close()
            self._connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        decoder = FrameDecoder()
        first = await self._first_frame(reader, decoder, peer)
        if first is None:
            return
        pending = self._expected.get(first.uuid)
        if pending is None or not pending.waiting:
            logger.warning("AudioSocket %s from %s: nobody expects this UUID; closing", first.uuid, peer)
            return
        link = SocketAudioLink(
            first.uuid, writer, peer=peer, pacing=self._pacing, write_seconds=self._timeouts.write_seconds
        )
        if not pending._deliver(link):
            logger.warning("AudioSocket %s from %s: the wait for it ended; closing", first.uuid, peer)
            return
        self._links.add(link)
        logger.debug("AudioSocket %s connected from %s", first.uuid, peer)
        try:
            await self._read_frames(link, reader, decoder)
        finally:
            self._links.discard(link)
            link._end("caller")
            logger.debug("AudioSocket %s ended (%s)", link.uuid, link.ended_by)

    async def _first_frame(
        self, reader: asyncio.StreamReader, decoder: FrameDecoder, peer: str
    ) -> UuidFrame | None:
        deadline = time.monotonic() + self._timeouts.uuid_seconds
        try:
            while True:
                frame = decoder.next_frame()
                if frame is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(reader.read(_READ_CHUNK), left)
                if not data:
                    decoder.feed_eof()
                    if decoder.next_frame() is None:
                        logger.info("AudioSocket connection from %s closed before its UUID", peer)
                        return None
                decoder.feed(data)
        except TimeoutError:
            logger.warning(
                "AudioSocket connection from %s closed: no UUID within %gs", peer, self._timeouts.uuid_seconds
            )
            return None
        except AudioSocketProtocolError as exc:
            logger.warning("AudioSocket connection from %s closed: %s", peer, exc)
            return None
        except (ConnectionError, OSError) as exc:
            logger.info("AudioSocket connection from %s lost before its UUID: %s", peer, exc)
            return None
        if not isinstance(frame, UuidFrame):
            logger.warning(
                "AudioSocket connection from %s closed: it began with %s, not a UUID",
                peer,
                type(frame).__name__,
            )
            return None
        return frame

    async def _read_frames(
        self, link: SocketAudioLink, reader: asyncio.StreamReader, decoder: FrameDecoder
    ) -> None:
        """Until the caller hangs up, the link is closed here (our close() ends the transport, and the
        pending read then sees the end of the stream), or the connection goes quiet or breaks."""
        give_up = time.monotonic() + self._timeouts.max_link_seconds
        at_end = False
        while not link.closed:
            try:
                for frame in decoder.frames():  # the first pass: frames that came with the UUID
                    if not self._take(link, frame):
                        return
            except AudioSocketProtocolError as exc:
                logger.warning("AudioSocket %s: %s; closing", link, exc)
                link._end("error", send_hangup=True)
                return
            if at_end:
                return  # the caller hung up: Asterisk closed the socket
            left = give_up - time.monotonic()
            try:
                data = await asyncio.wait_for(
                    reader.read(_READ_CHUNK), min(self._timeouts.idle_seconds, left)
                )
            except TimeoutError:
                if time.monotonic() >= give_up:
                    logger.warning(
                        "AudioSocket %s: open for %gs; closing", link, self._timeouts.max_link_seconds
                    )
                else:
                    logger.warning(
                        "AudioSocket %s: nothing from Asterisk for %gs; closing",
                        link,
                        self._timeouts.idle_seconds,
                    )
                link._end("timeout", send_hangup=True)
                return
            except (ConnectionError, OSError) as exc:
                logger.info("AudioSocket %s: connection lost: %s", link, exc)
                return
            if data:
                decoder.feed(data)
            else:
                decoder.feed_eof()
                at_end = True

    @staticmethod
    def _take(link: SocketAudioLink, frame: object) -> bool:
        """Pass one caller frame on; False when the frame ends the link."""
        if link.closed:
            return False
        if isinstance(frame, (AudioFrame, DtmfFrame)):
            link.deliver(frame)
            return True
        if isinstance(frame, ErrorFrame):
            logger.warning("AudioSocket %s: Asterisk reports an error (%s)", link, frame.code)
        elif isinstance(frame, UuidFrame):
            logger.warning("AudioSocket %s: a second UUID frame; closing", link)
        return False  # a hang-up, an error or a second UUID: the link is over


__all__ = [
    "DEFAULT_PORT",
    "FRAME_BYTES",
    "AudioLinkUnavailable",
    "AudioSocketServer",
    "AudioSocketTimeout",
    "AudioSocketTimeouts",
    "Pacing",
    "PendingLink",
    "SocketAudioLink",
]
