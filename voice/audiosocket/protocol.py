"""The AudioSocket wire format, as a pure codec: typed frames in, bytes out, and an incremental decoder.

A frame is 1 byte kind, 2 bytes payload length (big-endian, unsigned), then the payload. What we rely on,
and where it was read (Asterisk's upstream source and documentation, as of Asterisk 22/23):

- Kinds (include/asterisk/res_audiosocket.h, enum ast_audiosocket_msg_kind; docs.asterisk.org,
  Configuration/Channel-Drivers/AudioSocket): 0x00 hang-up, 0x01 UUID (16 bytes, the binary form of the
  UUID string given to `AudioSocket(uuid,host:port)`; res_audiosocket.c ast_audiosocket_init() sends it
  first, with `uuid_parse()`'s RFC 4122 byte order, the same as Python's `UUID.bytes`), 0x03 DTMF (one
  ASCII digit), 0x10 audio: signed linear 16-bit little-endian mono at 8 kHz, 0x11-0x18 the same at
  12, 16, 24, 32, 44.1, 48, 96 and 192 kHz (added to 20.x/21.x/22.x/23.x; sent only by chan_audiosocket
  when the channel's format is slin12...slin192: the `AudioSocket()` application forces slin, 8 kHz),
  0xff error, payload an optional application-specific code.
- Asterisk's error codes are one byte of bit flags: 0x01 hang-up of the calling party, 0x02 frame
  forwarding error, 0x04 memory (allocation) error (CyCoreSystems/audiosocket README, the protocol's
  origin). Asterisk 22's res_audiosocket.c never actually sends an error frame: its
  ast_audiosocket_send_frame() writes voice (0x10-0x18) and DTMF (0x03) frames only.
- From the server, Asterisk accepts hang-up and audio only (ast_audiosocket_receive_frame_with_hangup()):
  any other kind, or an audio frame with length 0, is logged as an error and makes `AudioSocket()` return
  -1, which hangs up the call. So a server must never send DTMF, UUID or error frames, nor empty audio.
- Asterisk reads a header with `read(fd, header, 3)` in a loop that restarts at header[0], so a header
  split across two TCP segments is misread: write each frame with one write (header and payload).

Asterisk's own limit on the payload is the 16-bit length; `max_payload` is ours, so that garbage on the
socket fails fast instead of waiting for 64 KiB that never come.
"""

from __future__ import annotations

import enum
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

HEADER = struct.Struct(">BH")
SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2  # 320: 20 ms of 8 kHz 16-bit audio
DEFAULT_MAX_PAYLOAD = 16_384  # 1 s at 8 kHz; Asterisk sends 320-byte frames (20 ms)
DTMF_DIGITS = frozenset("0123456789*#ABCD")


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # 8 kHz
    AUDIO_12K = 0x11
    AUDIO_16K = 0x12
    AUDIO_24K = 0x13
    AUDIO_32K = 0x14
    AUDIO_44K = 0x15
    AUDIO_48K = 0x16
    AUDIO_96K = 0x17
    AUDIO_192K = 0x18
    ERROR = 0xFF


AUDIO_RATES: dict[int, int] = {
    Kind.AUDIO: 8000,
    Kind.AUDIO_12K: 12000,
    Kind.AUDIO_16K: 16000,
    Kind.AUDIO_24K: 24000,
    Kind.AUDIO_32K: 32000,
    Kind.AUDIO_44K: 44100,
    Kind.AUDIO_48K: 48000,
    Kind.AUDIO_96K: 96000,
    Kind.AUDIO_192K: 192000,
}
_AUDIO_KINDS = {rate: kind for kind, rate in AUDIO_RATES.items()}
_KINDS = frozenset(kind.value for kind in Kind)


class ErrorCode(enum.IntFlag):
    """Asterisk's error bits (an error frame may carry several, or none)."""

    CALLER_HUNG_UP = 0x01
    FRAME_FORWARDING = 0x02
    MEMORY = 0x04


# --- frames ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HangupFrame:
    """Ends the AudioSocket session (closing the socket does the same)."""


@dataclass(frozen=True, slots=True)
class UuidFrame:
    uuid: uuid.UUID


@dataclass(frozen=True, slots=True)
class DtmfFrame:
    digit: str  # one of 0-9 * # A-D


@dataclass(frozen=True, slots=True)
class AudioFrame:
    pcm: bytes  # signed 16-bit little-endian mono
    sample_rate: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * self.sample_rate)


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    payload: bytes = b""

    @property
    def code(self) -> ErrorCode | None:
        return ErrorCode(self.payload[0]) if self.payload else None


Frame = HangupFrame | UuidFrame | DtmfFrame | AudioFrame | ErrorFrame


# --- errors ---------------------------------------------------------------------------------------


class AudioSocketProtocolError(Exception):
    """The byte stream is not AudioSocket. The stream cannot be resynchronised: drop the connection."""


class UnknownKind(AudioSocketProtocolError):
    pass


class OversizeFrame(AudioSocketProtocolError):
    pass


class TruncatedFrame(AudioSocketProtocolError):
    pass


class BadPayload(AudioSocketProtocolError):
    pass


# --- encoding -------------------------------------------------------------------------------------


def encode(frame: Frame) -> bytes:
    """One frame as bytes. Raises ValueError for a frame Asterisk would reject on reading it."""
    if isinstance(frame, HangupFrame):
        return HEADER.pack(Kind.HANGUP, 0)
    if isinstance(frame, UuidFrame):
        return HEADER.pack(Kind.UUID, 16) + frame.uuid.bytes
    if isinstance(frame, DtmfFrame):
        if frame.digit not in DTMF_DIGITS:
            raise ValueError(f"{frame.digit!r} is not a DTMF digit (0-9, *, #, A-D)")
        return HEADER.pack(Kind.DTMF, 1) + frame.digit.encode("ascii")
    if isinstance(frame, AudioFrame):
        kind = _AUDIO_KINDS.get(frame.sample_rate)
        if kind is None:
            raise ValueError(f"AudioSocket has no kind for {frame.sample_rate} Hz audio")
        if not frame.pcm or len(frame.pcm) % 2 or len(frame.pcm) > 0xFFFF:
            raise ValueError(f"audio payload of {len(frame.pcm)} bytes: whole samples, 2-65534 bytes")
        return HEADER.pack(kind, len(frame.pcm)) + frame.pcm
    if len(frame.payload) > 0xFFFF:
        raise ValueError("error payload longer than 65535 bytes")
    return HEADER.pack(Kind.ERROR, len(frame.payload)) + frame.payload


def audio_frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> Iterator[bytes]:
    """8 kHz PCM of any length as encoded 20 ms audio frames; the last one padded with silence, because
    Asterisk turns each frame into one RTP packet and a short one is a glitch to some phones."""
    if len(pcm) % 2:
        raise ValueError(f"{len(pcm)} bytes of 16-bit audio is not a whole number of samples")
    for start in range(0, len(pcm), frame_bytes):
        chunk = pcm[start : start + frame_bytes]
        if len(chunk) < frame_bytes:
            chunk += bytes(frame_bytes - len(chunk))
        yield HEADER.pack(Kind.AUDIO, frame_bytes) + chunk


# --- decoding -------------------------------------------------------------------------------------


class FrameDecoder:
    """Feed it bytes as they arrive, in chunks of any size; take whole frames out.

        decoder.feed(chunk)
        for frame in decoder.frames(): ...
        decoder.feed_eof()   # then frames() raises TruncatedFrame if a frame was cut off

    After an error the decoder is spent: every later call raises the same error.
    """

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self._start = 0  # consumed bytes at the front of _buffer, dropped in batches
        self._eof = False
        self._failed: AudioSocketProtocolError | None = None
        self._max_payload = max_payload

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._start

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise AudioSocketProtocolError("data fed after the end of the stream")
        self._buffer += data

    def feed_eof(self) -> None:
        self._eof = True

    def frames(self) -> Iterator[Frame]:
        while (frame := self.next_frame()) is not None:
            yield frame

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None until more bytes arrive (or at a clean end of stream)."""
        if self._failed is not None:
            raise self._failed
        try:
            return self._next()
        except AudioSocketProtocolError as exc:
            self._failed = exc
            raise

    def _next(self) -> Frame | None:
        available = len(self._buffer) - self._start
        if available < HEADER.size:
            if self._eof and available:
                raise TruncatedFrame(f"the stream ended inside a frame header ({available} of 3 bytes)")
            return None
        kind, length = HEADER.unpack_from(self._buffer, self._start)
        if kind not in _KINDS:
            raise UnknownKind(f"unknown frame kind 0x{kind:02x} (length {length})")
        if length > self._max_payload:
            raise OversizeFrame(
                f"{Kind(kind).name} frame of {length} bytes (the limit is {self._max_payload})"
            )
        if available < HEADER.size + length:
            if self._eof:
                got = available - HEADER.size
                raise TruncatedFrame(
                    f"the stream ended inside a {Kind(kind).name} frame ({got} of {length} bytes)"
                )
            return None
        begin = self._start + HEADER.size
        payload = bytes(self._buffer[begin : begin + length])
        self._start = begin + length
        if self._start > 65536 and self._start * 2 > len(self._buffer):
            del self._buffer[: self._start]
            self._start = 0
        return _frame(Kind(kind), payload)


def _frame(kind: Kind, payload: bytes) -> Frame:
    if kind is Kind.HANGUP:
        return HangupFrame()
    if kind is Kind.UUID:
        if len(payload) != 16:
            raise BadPayload(f"a UUID frame carries 16 bytes, this one {len(payload)}")
        return UuidFrame(uuid.UUID(bytes=payload))
    if kind is Kind.DTMF:
        digit = payload.decode("ascii", errors="replace").upper()
        if len(payload) != 1 or digit not in DTMF_DIGITS:
            raise BadPayload(f"a DTMF frame carries one digit (0-9, *, #, A-D), this one {payload!r}")
        return DtmfFrame(digit)
    if kind is Kind.ERROR:
        return ErrorFrame(payload)
    if not payload or len(payload) % 2:
        raise BadPayload(f"an audio frame carries whole 16-bit samples, this one {len(payload)} bytes")
    return AudioFrame(payload, AUDIO_RATES[kind])


def decode(data: bytes, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[Frame]:
    """Every frame of a complete byte string; raises for a frame cut off at the end."""
    decoder = FrameDecoder(max_payload=max_payload)
    decoder.feed(data)
    decoder.feed_eof()
    return list(decoder.frames())


def encode_all(frames: Iterable[Frame]) -> bytes:
    return b"".join(encode(frame) for frame in frames)
