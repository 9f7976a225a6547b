"""The console caller's RECORD FILE, as Asterisk writes and answers it when the recordings directory is
shared: spoken words written as the file, keys that stop it (the rest typed ahead for GET DATA), silence,
a hang-up, a directory Asterisk cannot write; and an Asterisk without AudioSocket()."""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path

from voice.console_caller import CallResult, ConsolePhone, ScriptedKeypad, Speech

SHARED = "/var/spool/asterisk/centralita"
WORDS = b"\x10\x00" * 4000  # half a second of "speech"


class FixedVoice:
    def speak(self, speech: Speech) -> bytes:
        return WORDS


def phone(tmp_path: Path, keys: str, *, audiosocket: bool = True) -> tuple[ConsolePhone, CallResult]:
    result = CallResult(uniqueid="1795537883.10")
    made = ConsolePhone(
        keypad=ScriptedKeypad.parse(keys),
        result=result,
        caller="+34600111222",
        channel="PJSIP/console-00000001",
        say=lambda line: None,
        voice=FixedVoice(),
        recordings_dir=tmp_path,
        recordings_path=SHARED,
        audiosocket=audiosocket,
    )
    return made, result


def answers(console: ConsolePhone, *commands: str) -> list[list[str]]:
    async def main() -> list[list[str]]:
        return [await console.reply(command) for command in commands]

    return asyncio.run(main())


def test_words_are_written_as_the_recording_with_the_second_of_silence_asterisk_keeps(tmp_path: Path) -> None:
    (tmp_path / "speech").mkdir()
    console, result = phone(tmp_path, "say:billing")
    (reply,) = answers(console, f'RECORD FILE {SHARED}/speech/call-1 sln "0123456789*#" 14000 s=3')
    assert reply == ["200 result=0 (timeout) endpos=12000"]
    assert (tmp_path / "speech" / "call-1.sln").read_bytes() == WORDS + bytes(16000)
    assert result.said == ["billing"]


def test_voicemail_is_written_as_an_8_khz_wav(tmp_path: Path) -> None:
    (tmp_path / "voicemail").mkdir()
    console, _ = phone(tmp_path, "say:my router is down")
    (reply,) = answers(console, f'RECORD FILE {SHARED}/voicemail/support-1 wav "#" 60000 BEEP s=4')
    assert reply == ["200 result=0 (timeout) endpos=12000"]
    with wave.open(str(tmp_path / "voicemail" / "support-1.wav")) as written:
        assert (written.getnchannels(), written.getsampwidth(), written.getframerate()) == (1, 2, 8000)
        assert written.readframes(written.getnframes()) == WORDS + bytes(16000)


def test_a_key_stops_the_recording_and_the_keys_after_it_answer_get_data(tmp_path: Path) -> None:
    (tmp_path / "speech").mkdir()
    console, result = phone(tmp_path, "123")
    record, get_data = answers(
        console,
        f'RECORD FILE {SHARED}/speech/call-1 sln "0123456789*#" 14000 s=3',
        "GET DATA silence/1 3000 3",
    )
    assert record == ["200 result=49 (dtmf) endpos=0"] and get_data == ["200 result=23 (timeout)"]
    assert result.pressed == ["123", "23"]


def test_silence_a_hang_up_and_a_missing_directory(tmp_path: Path) -> None:
    (tmp_path / "speech").mkdir()
    console, _ = phone(tmp_path, "-")
    record = f'RECORD FILE {SHARED}/speech/call-1 sln "0123456789*#" 14000 s=3'
    assert answers(console, record, record) == [
        ["200 result=0 (timeout) endpos=8000"],
        ["200 result=-1 (hangup) endpos=0"],  # out of entries: the caller hangs up during it
    ]
    console, _ = phone(tmp_path, "say:billing")
    assert answers(console, f'RECORD FILE {SHARED}/nowhere/call-1 sln "#" 14000 s=3') == [
        ["200 result=-1 (writefile)"]
    ]


def test_a_recording_outside_the_shared_directory_is_a_message_left_as_before(tmp_path: Path) -> None:
    console, result = phone(tmp_path, "say:billing")
    assert answers(console, 'RECORD FILE centralita/recordings/support-1 wav "#" 60000 BEEP s=4') == [
        ["200 result=35 (dtmf) endpos=48000"]
    ]
    assert result.said == [] and not list(tmp_path.iterdir())


def test_an_asterisk_without_audiosocket_says_so_as_asterisk_does(tmp_path: Path) -> None:
    console, _ = phone(tmp_path, "say:billing", audiosocket=False)
    uuid = "0b7e3b8e-5c44-4d5f-9d7c-1c1f2b3a4d5e"
    assert answers(console, f"EXEC AudioSocket {uuid},127.0.0.1:9092") == [["200 result=-2"]]
