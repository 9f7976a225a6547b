"""The console caller speaks: `say:` entries answer an IVR that listens over AudioSocket, as Asterisk's
AudioSocket() would carry them, over real sockets (FastAGI and AudioSocket)."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from voice.agi.server import FastAgiServer
from voice.agi.session import AgiSession
from voice.audiosocket.port import AudioLink
from voice.audiosocket.protocol import FRAME_BYTES, DtmfFrame
from voice.audiosocket.server import AudioSocketServer
from voice.console_caller import (
    CallerVoice,
    CallResult,
    ConsolePhone,
    GeneratedVoice,
    ScriptedKeypad,
    Speech,
    parse_entry,
    place_call,
)

T = TypeVar("T")
PROMPT = b"\x00\x10" * (FRAME_BYTES // 2) * 10  # 200 ms of the IVR talking


class ToneVoice:
    """Speech without espeak-ng: a tone whose level encodes the words' length."""

    def __init__(self) -> None:
        self.spoken: list[Speech] = []

    def speak(self, speech: Speech) -> bytes:
        self.spoken.append(speech)
        return (len(speech.text) * 100).to_bytes(2, "little") * (FRAME_BYTES // 2) * 12


def strip_silence(pcm: bytes) -> bytes:
    samples = [pcm[i : i + 2] for i in range(0, len(pcm), 2)]
    loud = [index for index, sample in enumerate(samples) if sample != b"\x00\x00"]
    return b"".join(samples[loud[0] : loud[-1] + 1]) if loud else b""


async def listen(link: AudioLink, *, prompt: bytes = PROMPT, quiet_frames: int = 15) -> tuple[bytes, str]:
    """What the IVR's listening turn does, roughly: play the prompt, then take the caller's audio and
    digits until `quiet_frames` of silence follow something said, then close the link."""
    playing = asyncio.create_task(link.write_audio(prompt))
    audio, digits, quiet, heard_something = bytearray(), "", 0, False
    while (frame := await link.read()) is not None:
        if isinstance(frame, DtmfFrame):
            digits += frame.digit
            heard_something, quiet = True, 0
            continue
        audio += frame.pcm
        if frame.pcm.count(0) == len(frame.pcm):
            quiet += 1
            if heard_something and quiet >= quiet_frames:
                break
        else:
            heard_something, quiet = True, 0
    await playing
    await link.close()
    return bytes(audio), digits


def with_audiosocket(body: Callable[[AudioSocketServer], Awaitable[T]]) -> T:
    async def main() -> T:
        async with AudioSocketServer(port=0) as server:
            return await asyncio.wait_for(body(server), 30)

    return asyncio.run(main())


def console(entries: str, voice: CallerVoice) -> tuple[ConsolePhone, CallResult]:
    result = CallResult(uniqueid="1795537883.11")
    phone = ConsolePhone(
        keypad=ScriptedKeypad.parse(entries),
        result=result,
        caller="+34600111222",
        channel="PJSIP/console-00000002",
        say=lambda line: None,
        voice=voice,
        audio_speed=4,
    )
    return phone, result


def test_entries_read_keys_silence_and_speech_with_a_voice() -> None:
    keypad = ScriptedKeypad.parse("1,-,say:billing   please,say[en-gb]:agent,")
    assert keypad.entries == ["1", "", Speech("billing please"), Speech("agent", "en-gb"), ""]
    with pytest.raises(ValueError, match="says nothing"):
        parse_entry("say:  ")
    with pytest.raises(ValueError, match="not a key sequence"):
        parse_entry("billing")


def test_a_spoken_entry_answers_audiosocket_and_exec_returns_zero_when_the_ivr_closes() -> None:
    call = uuid.uuid4()
    voice = ToneVoice()

    async def body(server: AudioSocketServer) -> tuple[list[str], bytes, str, CallResult, int]:
        phone, result = console("say:billing please", voice)
        pending = server.expect(call)
        asterisk = asyncio.create_task(phone.reply(f"EXEC AudioSocket {call},127.0.0.1:{server.port}"))
        link = await pending
        heard, digits = await listen(link)
        return await asterisk, heard, digits, result, len(voice.spoken)

    reply, heard, digits, result, spoken = with_audiosocket(body)
    assert reply == ["200 result=0"] and spoken == 1 and digits == ""
    assert strip_silence(heard) == ToneVoice().speak(Speech("billing please"))
    assert result.said == ["billing please"] and not result.ended_by


def test_the_caller_waits_for_the_prompt_to_end_before_speaking() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> bytes:
        phone, _ = console("say:agent", ToneVoice())
        pending = server.expect(call)
        asterisk = asyncio.create_task(phone.reply(f"EXEC AudioSocket {call},127.0.0.1:{server.port}"))
        heard, _ = await listen(await pending, prompt=PROMPT * 3)  # 600 ms
        await asterisk
        return heard

    heard = with_audiosocket(body)
    first_sound = next(index for index in range(0, len(heard), 2) if heard[index : index + 2] != b"\x00\x00")
    # The caller sends at 4x: the prompt (600 ms, arriving up to 60 ms early) and 400 ms of quiet after
    # it are some 3.5 s of its audio; speaking after 3 s of it means it did not talk over the prompt.
    assert first_sound >= 3.0 * 16000


def test_a_keys_entry_is_sent_as_dtmf_frames_over_the_socket() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[list[str], str, list[str]]:
        phone, result = console("12#", ToneVoice())
        pending = server.expect(call)
        asterisk = asyncio.create_task(phone.reply(f"EXEC AudioSocket {call},127.0.0.1:{server.port}"))
        _, digits = await listen(await pending)
        return await asterisk, digits, result.pressed

    assert with_audiosocket(body) == (["200 result=0"], "12#", ["12#"])


def test_out_of_entries_the_caller_hangs_up_during_audiosocket() -> None:
    call = uuid.uuid4()

    async def body(server: AudioSocketServer) -> tuple[list[str], object, bool, list[str]]:
        phone, _ = console("", ToneVoice())
        await phone.reply("GET DATA silence/1 100 1")  # the one entry: silence
        pending = server.expect(call)
        asterisk = asyncio.create_task(phone.reply(f"EXEC AudioSocket {call},127.0.0.1:{server.port}"))
        link = await pending
        end = await link.read()
        return await asterisk, end, phone.dead, await phone.reply("ANSWER")

    reply, end, dead, after = with_audiosocket(body)
    assert reply == ["200 result=-1"] and end is None and dead
    assert after == ["HANGUP", "511 Command Not Permitted on a dead channel or intercept routine"]


def test_audiosocket_failures_answer_minus_one_as_asterisk_does() -> None:
    async def main() -> list[list[str]]:
        phone, result = console("say:hello,say:hello", ToneVoice())
        closed = AudioSocketServer(port=0)
        await closed.start()
        port = closed.port
        await closed.stop()
        return [
            await phone.reply(f"EXEC AudioSocket not-a-uuid,127.0.0.1:{port}"),
            await phone.reply(f"EXEC AudioSocket {uuid.uuid4()},127.0.0.1:{port}"),
            await phone.reply("GET DATA silence/1 100 1"),
            result.transcript,
        ]

    bad, unreachable, keys, transcript = asyncio.run(main())
    assert bad == ["200 result=-1"] and unreachable == ["200 result=-1"]
    assert keys == ["200 result= (timeout)"]  # a spoken answer to a request for keys is not heard
    assert any("badly formed" in line for line in transcript)
    assert any("cannot reach 127.0.0.1" in line for line in transcript)
    assert "[the IVR listens for keys only: it does not hear you]" in transcript


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_a_call_over_fastagi_speaks_generated_speech_into_the_ivrs_audiosocket(tmp_path: Path) -> None:
    """The whole path the console takes: FastAGI asks for speech with EXEC AudioSocket, the console
    connects, speaks espeak-ng's words, the IVR hears exactly them, closes, and the call goes on."""
    voice = GeneratedVoice(tmp_path / "speech")
    heard: list[tuple[bytes, str, int]] = []

    async def main() -> CallResult:
        async with AudioSocketServer(port=0) as audio:

            async def ivr(session: AgiSession) -> None:
                await session.answer()
                for _ in range(2):
                    call = uuid.uuid4()
                    pending = audio.expect(call)
                    asterisk = asyncio.create_task(
                        session.exec_("AudioSocket", f"{call},127.0.0.1:{audio.port}")
                    )
                    pcm, digits = await listen(await pending)
                    heard.append((pcm, digits, await asterisk))
                await session.hangup()

            async with FastAgiServer(lambda env: ivr, port=0) as agi:
                return await asyncio.wait_for(
                    place_call(
                        "127.0.0.1",
                        agi.port,
                        "speech_test",
                        keypad=ScriptedKeypad.parse("say[en-gb]:billing please,7"),
                        say=lambda line: None,
                        voice=voice,
                        audio_speed=4,
                    ),
                    60,
                )

    result = asyncio.run(main())
    assert result.closed_by_server and result.ended_by == "ivr"
    assert result.said == ["billing please"] and result.pressed == ["7"]
    spoken = voice.speak(Speech("billing please", "en-gb"))
    assert len(spoken) > 8000  # at least half a second of words
    (pcm, digits, first_result), (_, more_digits, second_result) = heard
    assert strip_silence(pcm) == strip_silence(spoken) and digits == ""
    assert (more_digits, first_result, second_result) == ("7", 0, 0)
    assert any(path.suffix == ".sln" for path in (tmp_path / "speech").iterdir())  # cached on disk
