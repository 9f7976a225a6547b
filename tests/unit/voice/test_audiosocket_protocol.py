"""The AudioSocket codec: frames as Asterisk writes and reads them, decoded from chunks of any size."""

from __future__ import annotations

import random
import uuid

import pytest

from voice.audiosocket.protocol import (
    FRAME_BYTES,
    AudioFrame,
    BadPayload,
    DtmfFrame,
    ErrorCode,
    ErrorFrame,
    Frame,
    FrameDecoder,
    HangupFrame,
    OversizeFrame,
    TruncatedFrame,
    UnknownKind,
    UuidFrame,
    audio_frames,
    decode,
    encode,
    encode_all,
)

CALL = uuid.UUID("40325ec2-5efd-4bd3-805f-53576e581d13")


def test_frames_are_encoded_as_asterisk_writes_them() -> None:
    # res_audiosocket.c ast_audiosocket_init(): kind 0x01, length 0x0010, uuid_parse()'s 16 bytes.
    assert encode(UuidFrame(CALL)) == bytes.fromhex("010010") + bytes.fromhex(
        "40325ec25efd4bd3805f53576e581d13"
    )
    assert encode(HangupFrame()) == b"\x00\x00\x00"
    assert encode(DtmfFrame("#")) == b"\x03\x00\x01#"
    assert encode(AudioFrame(b"\x01\x00\xff\x7f")) == b"\x10\x00\x04\x01\x00\xff\x7f"
    assert encode(AudioFrame(bytes(640), sample_rate=16000))[:3] == b"\x12\x02\x80"
    assert encode(ErrorFrame(b"\x01")) == b"\xff\x00\x01\x01"


@pytest.mark.parametrize(
    "frame",
    [DtmfFrame("x"), AudioFrame(b""), AudioFrame(b"\x00"), AudioFrame(bytes(4), sample_rate=11025)],
)
def test_frames_asterisk_would_reject_cannot_be_encoded(frame: Frame) -> None:
    with pytest.raises(ValueError):
        encode(frame)


def test_audio_of_any_length_becomes_whole_20ms_frames_padded_with_silence() -> None:
    pcm = bytes(range(256)) * 3  # 768 bytes: 2 full frames and 128 bytes
    frames = decode(b"".join(audio_frames(pcm)))
    assert [len(f.pcm) for f in frames if isinstance(f, AudioFrame)] == [FRAME_BYTES] * 3
    joined = b"".join(f.pcm for f in frames if isinstance(f, AudioFrame))
    assert joined[: len(pcm)] == pcm and joined[len(pcm) :] == bytes(3 * FRAME_BYTES - len(pcm))
    assert list(audio_frames(b"")) == []
    with pytest.raises(ValueError, match="whole number of samples"):
        list(audio_frames(b"\x00\x00\x00"))


def a_call() -> list[Frame]:
    return [
        UuidFrame(CALL),
        AudioFrame(bytes(range(160)) * 2),
        DtmfFrame("5"),
        AudioFrame(bytes(FRAME_BYTES)),
        AudioFrame(bytes(640), sample_rate=16000),
        ErrorFrame(b"\x03"),
        HangupFrame(),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_frames_split_and_coalesced_in_any_chunks_decode_the_same(seed: int) -> None:
    stream = encode_all(a_call())
    chance = random.Random(seed)
    decoder = FrameDecoder()
    got: list[Frame] = []
    position = 0
    while position < len(stream):
        size = chance.choice([1, 2, 3, 5, 64, 400, 1000])
        decoder.feed(stream[position : position + size])
        position += size
        got.extend(decoder.frames())
    decoder.feed_eof()
    got.extend(decoder.frames())
    assert got == a_call()
    assert decoder.buffered == 0


def test_one_byte_at_a_time_yields_each_frame_as_soon_as_it_is_whole() -> None:
    stream = encode(UuidFrame(CALL)) + encode(DtmfFrame("9"))
    decoder = FrameDecoder()
    whole_at = []
    for index, byte in enumerate(stream):
        decoder.feed(bytes([byte]))
        if list(decoder.frames()):
            whole_at.append(index + 1)
    assert whole_at == [19, 23]


def test_error_frames_carry_asterisks_bit_flags() -> None:
    assert ErrorFrame(b"\x05").code == ErrorCode.CALLER_HUNG_UP | ErrorCode.MEMORY
    assert ErrorFrame().code is None


def test_lowercase_dtmf_letters_are_read_as_the_keys() -> None:
    assert decode(b"\x03\x00\x01a") == [DtmfFrame("A")]


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"\x02\x00\x00", UnknownKind, "unknown frame kind 0x02"),
        (b"GET / HTTP/1.1\r\n", UnknownKind, "0x47"),
        (b"\x10\xff\xff", OversizeFrame, "65535 bytes"),
        (b"\x10\x01", TruncatedFrame, "frame header (2 of 3 bytes)"),
        (b"\x10\x01\x40" + bytes(100), TruncatedFrame, "AUDIO frame (100 of 320 bytes)"),
        (b"\x01\x00\x04abcd", BadPayload, "16 bytes, this one 4"),
        (b"\x01\x00\x11" + bytes(17), BadPayload, "this one 17"),
        (b"\x03\x00\x02" + b"12", BadPayload, "one digit"),
        (b"\x03\x00\x01" + b"x", BadPayload, "one digit"),
        (b"\x10\x00\x03" + bytes(3), BadPayload, "whole 16-bit samples"),
        (b"\x10\x00\x00", BadPayload, "whole 16-bit samples"),
    ],
)
def test_bad_streams_raise_a_clear_error(data: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        decode(data)


def test_a_failed_decoder_keeps_failing_and_frames_before_the_fault_are_kept() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode(UuidFrame(CALL)) + b"\x42\x00\x00" + encode(HangupFrame()))
    frames = decoder.frames()
    assert next(frames) == UuidFrame(CALL)
    with pytest.raises(UnknownKind):
        next(frames)
    with pytest.raises(UnknownKind):
        decoder.next_frame()


def test_the_payload_limit_is_configurable() -> None:
    with pytest.raises(OversizeFrame):
        decode(encode(AudioFrame(bytes(FRAME_BYTES))), max_payload=100)
    assert len(decode(encode(AudioFrame(bytes(60000))), max_payload=65535)) == 1


def test_a_long_stream_does_not_keep_consumed_bytes() -> None:
    decoder = FrameDecoder()
    frame = encode(AudioFrame(bytes(FRAME_BYTES)))
    for _ in range(2000):  # 40 s of audio, fed and read frame by frame
        decoder.feed(frame)
        assert len(list(decoder.frames())) == 1
    assert len(decoder._buffer) < 200_000
