"""A caller at the console: plays Asterisk's side of one FastAGI call against a running server.

`centralita call <flow> --from +34600111222 --input 1,2,#` uses it. It connects over TCP as Asterisk's
`AGI(agi://host:port/<flow>)` does, sends an environment block like the one Asterisk 22 sends, and answers
every command in Asterisk's formats (see ../shared/fixtures/asterisk/). It prints what the caller hears —
prompt files turned back into their words through `voice.prompts` — and the keys the caller presses.

Answers come from a `Keypad`: a script (each entry answers the next request for input; "" is silence;
when the entries run out the caller hangs up) or the keyboard. Prompts play to the end: a scripted caller
never barges in, so each entry lands on the question it was meant for.

Speech: an entry `say:billing please` (or `say[en-gb]:billing please`, an espeak-ng voice) is spoken.
The IVR asks for speech with `EXEC AudioSocket <uuid>,<host:port>`: the console caller then connects
there as Asterisk's AudioSocket() does (`voice.audiosocket.client`), waits until the IVR's prompt on the
socket has finished, sends the next entry — generated speech (`voice.speech.generated_audio`, cached
under the user's cache directory), or keys as DTMF frames, or nothing — and then silence, as a phone
line does, until the IVR closes the socket; it answers the EXEC with `200 result=0`, as Asterisk does
when AudioSocket() ends normally (app_audiosocket.c returns 0 on the server's hang-up or close). Out of
entries, the caller hangs up during AudioSocket(): the socket closes and EXEC answers `200 result=-1`. A
spoken entry that meets a request for keys (GET DATA, WAIT FOR DIGIT) is not heard: keys time out.

Queues and transfers: by default an agent answers, the conversation happens, and the call ends with
the caller hanging up (`EXEC` answers `result=-1`, as Asterisk does when the bridged call ends); with
`handoffs_fail` the queue has nobody (QUEUESTATUS=JOINEMPTY) and the transfer target is unavailable
(DIALSTATUS=CHANUNAVAIL), so the flow's `on_failure` path runs.

Centralita's own queues: the caller waits on hold (`SET MUSIC on`; `CHANNEL STATUS` says the line is
up) until the IVR dials an agent's phone with `Dial(<endpoint>,<seconds>,mU(<context>^<call id>))`.
The agent answers: as Asterisk runs Dial's `U()` subroutine on the agent's leg, the console caller
connects to the server a second time as that leg, `AGI(agi://host:port/agent-answered,<call id>)`,
so the ACD hears of the answer as it would from Asterisk; then the caller talks to the agent and hangs
up (DIALSTATUS=ANSWER, `result=-1`). With `handoffs_fail` the agent's phone rings unanswered
(DIALSTATUS=NOANSWER) and the caller stays on hold.

Recordings: given the directory Asterisk records into (`recordings_dir`, named `recordings_path` as
Asterisk sees it), a RECORD FILE of a file under it takes the caller's next entry and writes it there as
Asterisk would — `sln` raw 8 kHz audio, `wav` with a WAV header; nothing when the directory is missing
(`200 result=-1 (writefile)`) — and answers as Asterisk does: spoken words, then the second of silence
that Asterisk's silence detection leaves in the file (`200 result=0 (timeout) endpos=<samples>`); keys, the
first one that is an escape digit ending the recording (`result=<its code> (dtmf)`; the keys after it
answer the next GET DATA); silence (`(timeout)`); out of entries, the caller hangs up during it
(`result=-1 (hangup)`). Other recordings (voicemail under Asterisk's sounds directory) are a message left
and `#` pressed, without taking an entry. `audiosocket=False` plays an Asterisk without AudioSocket()
(`EXEC AudioSocket` answers `200 result=-2`), so the IVR records its speech turns instead.

Without `say:` entries the console caller only presses keys, exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import re
import tempfile
import time
import uuid
import wave
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from voice.audiosocket.client import AudioSocketCaller

DTMF = frozenset("0123456789*#ABCD")
# What res_agi still runs once the channel has hung up; anything else gets 511.
_DEAD_CHANNEL_COMMANDS = frozenset(
    {"GET VARIABLE", "GET FULL VARIABLE", "SET VARIABLE", "VERBOSE", "NOOP", "ASYNCAGI BREAK"}
)
_VERBS = (
    "ANSWER",
    "STREAM FILE",
    "CONTROL STREAM FILE",
    "GET DATA",
    "GET OPTION",
    "WAIT FOR DIGIT",
    "EXEC",
    "HANGUP",
    "SET VARIABLE",
    "GET VARIABLE",
    "GET FULL VARIABLE",
    "VERBOSE",
    "NOOP",
    "CHANNEL STATUS",
    "RECORD FILE",
    "SAY DIGITS",
    "SAY NUMBER",
    "SAY ALPHA",
    "SET MUSIC",
)
_SILENT_FILES = ("silence/", "beep")
_SAMPLES_PER_CHARACTER = 640  # about 12.5 characters a second at 8 kHz: a plausible endpos
DEFAULT_VOICE = "en-us"
_SAY = re.compile(r"say(?:\[(?P<voice>[A-Za-z0-9_+-]+)\])?:(?P<words>.*)", re.DOTALL)
_QUIET_SECONDS = 0.4  # no prompt audio for this long: the IVR is listening, the caller may speak
# Dial's option running a subroutine on the called leg once it answers: U(<context>[^<arg>...]).
_ANSWER_SUBROUTINE = re.compile(r"U\((?P<context>[^)^]+)(?:\^(?P<args>[^)]*))?\)")
AGENT_ANSWERED_SCRIPT = "agent-answered"
RECORDINGS_PATH = "/var/spool/asterisk/centralita"  # CENTRALITA_ASTERISK_RECORDINGS_PATH's default
_RATE = 8000  # what Asterisk records sln and wav at


@dataclass(frozen=True)
class Speech:
    """Words the caller says, in an espeak-ng voice."""

    text: str
    voice: str = DEFAULT_VOICE


Answer = str | Speech  # keys ("" = nothing) or words


def parse_entry(text: str) -> Answer:
    """`"12#"` -> keys, `"-"` or `""` -> silence, `"say:billing please"` or `"say[en-gb]:billing"` ->
    speech. Raises ValueError for anything else."""
    entry = text.strip()
    said = _SAY.fullmatch(entry)
    if said:
        words = " ".join(said["words"].split())
        if not words:
            raise ValueError(f"{entry!r} says nothing: write the words after 'say:'")
        return Speech(words, said["voice"] or DEFAULT_VOICE)
    if entry == "-":
        return ""
    if set(entry) - DTMF:
        raise ValueError(f"{entry!r} is not a key sequence (keys: 0-9, *, #, A-D) nor speech (say:words)")
    return entry


class Keypad(Protocol):
    async def answer(self, max_digits: int, *, speech: bool) -> Answer | None:
        """The caller's next answer: keys ("" = nothing before the time-out) or, when `speech` (the IVR
        listens over AudioSocket), possibly words; None: the caller hangs up."""
        ...


@dataclass
class ScriptedKeypad:
    """Each entry answers one request for input; "" or "-" is silence. None after the last: hang up."""

    entries: Sequence[Answer]
    used: int = 0

    @classmethod
    def parse(cls, text: str) -> ScriptedKeypad:
        """`"1,,2#,-,say:billing"` -> "1", "", "2#", "", Speech("billing"). Raises ValueError for a key no
        phone has (a spoken entry cannot hold a comma: commas separate entries)."""
        return cls([parse_entry(entry) for entry in text.split(",")])

    async def answer(self, max_digits: int, *, speech: bool) -> Answer | None:
        if self.used >= len(self.entries):
            return None
        self.used += 1
        return self.entries[self.used - 1]

    async def keys(self, max_digits: int) -> str | None:
        """The next entry as keys (a spoken one is no keys: "")."""
        entry = await self.answer(max_digits, speech=False)
        return "" if isinstance(entry, Speech) else entry


@dataclass
class InteractiveKeypad:
    """Asks at the console. An empty line is silence; `q` or end of input hangs up. When the IVR listens
    for speech, words typed are spoken (`say[en-gb]:words` picks a voice)."""

    read_line: Callable[[str], Awaitable[str | None]]

    async def answer(self, max_digits: int, *, speech: bool) -> Answer | None:
        ask = (
            "say something, or keys (Enter: silence; q: hang up)> "
            if speech
            else f"keys (up to {max_digits}; Enter: silence; q: hang up)> "
        )
        while True:
            line = await self.read_line(ask)
            if line is None or line.strip().lower() in ("q", "quit", "hangup"):
                return None
            keys = line.strip().replace(" ", "")
            if not set(keys) - DTMF:
                return keys
            if speech:
                try:
                    return parse_entry(line if line.strip().startswith("say") else f"say:{line}")
                except ValueError:
                    continue

    async def keys(self, max_digits: int) -> str | None:
        entry = await self.answer(max_digits, speech=False)
        return "" if isinstance(entry, Speech) else entry


class CallerVoice(Protocol):
    def speak(self, speech: Speech) -> bytes:
        """The words as 8 kHz signed 16-bit little-endian PCM (blocking: run off the event loop)."""
        ...


class GeneratedVoice:
    """Speech made by espeak-ng and sox (`voice.speech.generated_audio`), cached on disk by content."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_speech_cache()
        self._audio: object | None = None

    def speak(self, speech: Speech) -> bytes:
        from voice.speech.generated_audio import GeneratedAudio

        if not isinstance(self._audio, GeneratedAudio):
            self._audio = GeneratedAudio(self.cache_dir)  # SynthesisError when sox is missing
        return self._audio.speech(speech.text, voice=speech.voice)


def default_speech_cache() -> Path:
    """$XDG_CACHE_HOME/centralita/caller-speech (~/.cache/... by default), or a temporary directory
    when that cannot be written."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = base / "centralita" / "caller-speech"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return directory
    except OSError:
        return Path(tempfile.gettempdir()) / "centralita-caller-speech"


def split_command(line: str) -> list[str]:
    """The words of a command line as res_agi's parse_args() reads them: spaces separate, double quotes
    group, a backslash escapes the next character."""
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = started = False
    for char in line:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = started = True
        elif char == '"':
            quoted = not quoted
            started = True
        elif char in " \t" and not quoted:
            if started:
                words.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
    if started:
        words.append("".join(current))
    return words


def environment(
    *,
    flow: str,
    host: str,
    port: int,
    caller: str | None,
    called: str | None,
    uniqueid: str,
    channel: str,
    language: str = "en",
    arguments: Sequence[str] = (),
) -> list[bytes]:
    """The agi_* block, in the order and form Asterisk 22.10 sends it (cf. fastagi_ivr_3.txt); the
    script's `arguments` (`AGI(url,a,b)`) come last as agi_arg_1, agi_arg_2, ..."""
    known = caller not in (None, "", "unknown", "anonymous")
    variables = {
        "agi_network": "yes",
        "agi_network_script": flow,
        "agi_request": f"agi://{host}:{port}/{flow}",
        "agi_channel": channel,
        "agi_language": language,
        "agi_type": channel.split("/", 1)[0],
        "agi_uniqueid": uniqueid,
        "agi_version": "22.10.1",
        "agi_callerid": caller if known and caller else "unknown",
        "agi_calleridname": "Console" if known else "unknown",
        "agi_callingpres": "0" if known else "67",
        "agi_callingani2": "0",
        "agi_callington": "0",
        "agi_callingtns": "0",
        "agi_dnid": called or "unknown",
        "agi_rdnis": "unknown",
        "agi_context": "centralita-inbound",
        "agi_extension": called or "s",
        "agi_priority": "2",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": str(random.randrange(10**14, 10**15)),
    }
    variables.update({f"agi_arg_{n}": argument for n, argument in enumerate(arguments, start=1)})
    return [f"{key}: {value}\n".encode() for key, value in variables.items()] + [b"\n"]


_channels = itertools.count(1)


def fresh_uniqueid() -> str:
    """An id in Asterisk's form: `<epoch seconds>.<sequence>`."""
    return f"{int(time.time())}.{random.randrange(1, 10**6)}"


@dataclass
class CallResult:
    uniqueid: str
    transcript: list[str] = field(default_factory=list)  # what was printed, in order
    commands: list[str] = field(default_factory=list)  # every command line the server sent
    ended_by: str = ""  # "ivr" (HANGUP), "caller", "handoff" (the call ended after a queue/transfer), ""
    closed_by_server: bool = False

    @property
    def heard(self) -> list[str]:
        return [line.removeprefix("IVR: ") for line in self.transcript if line.startswith("IVR: ")]

    @property
    def pressed(self) -> list[str]:
        return [line.removeprefix("you: ") for line in self.transcript if line.startswith("you: ")]

    @property
    def said(self) -> list[str]:
        return [line.removeprefix("you say: ") for line in self.transcript if line.startswith("you say: ")]


class ConsolePhone:
    """Asterisk's side of the call: one command line in, the reply lines out (without newlines)."""

    def __init__(
        self,
        *,
        keypad: Keypad,
        result: CallResult,
        caller: str | None,
        channel: str,
        prompts: Mapping[str, str] = {},
        handoffs_fail: bool = False,
        say: Callable[[str], None] = print,
        voice: CallerVoice | None = None,
        audio_speed: float = 1.0,
        listen_limit: float = 60.0,
        server: tuple[str, int] | None = None,
        recordings_dir: Path | None = None,
        recordings_path: str = RECORDINGS_PATH,
        audiosocket: bool = True,
    ) -> None:
        """`voice` speaks `say:` entries (default: espeak-ng, made when first needed); `audio_speed` > 1
        sends the caller's audio faster than real time; after `listen_limit` seconds on an AudioSocket
        the IVR has not closed, the caller hangs up. `recordings_dir`: where this "Asterisk" writes the
        files it records under `recordings_path`; `audiosocket` False: it has no AudioSocket()."""
        self._keypad = keypad
        self._voice = voice
        self._audio_speed = audio_speed
        self._listen_limit = listen_limit
        self._result = result
        self._prompts = prompts
        self._handoffs_fail = handoffs_fail
        self._say = say
        self._server = server  # where Dial's U() subroutine on an agent's leg connects back to
        self._recordings_dir = recordings_dir
        self._recordings_path = recordings_path.rstrip("/")
        self._has_audiosocket = audiosocket
        self._typed_ahead = ""  # keys after the one that ended a recording: they answer the next GET DATA
        self.on_hold = False
        self.dead = False
        self._told_hangup = False
        self.variables: dict[str, str] = {
            "CHANNEL": channel,
            "CHANNEL(linkedid)": result.uniqueid,
            "CHANNEL(uniqueid)": result.uniqueid,
            "CALLERID(num)": caller or "",
            "UNIQUEID": result.uniqueid,
        }

    def _print(self, line: str) -> None:
        self._result.transcript.append(line)
        self._say(line)

    async def reply(self, line: str) -> list[str]:
        words = split_command(line)
        verb = _verb(words)
        arguments = words[len(verb.split()) :] if verb else []
        prefix: list[str] = []
        if self.dead and not self._told_hangup:
            prefix, self._told_hangup = ["HANGUP"], True
        if verb is None:
            return [*prefix, "510 Invalid or unknown command"]
        if self.dead and verb not in _DEAD_CHANNEL_COMMANDS:
            return [*prefix, "511 Command Not Permitted on a dead channel or intercept routine"]
        return [*prefix, *await self._run(verb, arguments)]

    async def _run(self, verb: str, arguments: list[str]) -> list[str]:
        if verb == "SET MUSIC":
            hold = bool(arguments) and arguments[0].lower() == "on"
            if hold and not self.on_hold:
                self._print("[on hold: music]")
            self.on_hold = hold
            return ["200 result=0"]
        if verb in ("ANSWER", "NOOP"):
            return ["200 result=0"]
        if verb in ("STREAM FILE", "CONTROL STREAM FILE"):
            return [f"200 result=0 endpos={self._hear(arguments[0] if arguments else '')}"]
        if verb in ("GET DATA", "GET OPTION"):
            return await self._get_data(arguments)
        if verb == "WAIT FOR DIGIT":
            keys = await self._keys(1)
            if keys is None:
                return ["200 result=-1"]
            return [f"200 result={ord(keys[0]) if keys else 0}"]
        if verb == "EXEC":
            return await self._exec(arguments)
        if verb == "HANGUP":
            self._print("[the IVR hangs up]")
            self._result.ended_by = self._result.ended_by or "ivr"
            self.dead, self._told_hangup = True, True  # it knows: no HANGUP line for it
            return ["200 result=1"]
        if verb == "SET VARIABLE":
            if len(arguments) >= 2:
                self.variables[arguments[0]] = arguments[1]
            return ["200 result=1"]
        if verb == "GET VARIABLE":
            value = self.variables.get(arguments[0]) if arguments else None
            return ["200 result=0"] if value is None else [f"200 result=1 ({value})"]
        if verb == "GET FULL VARIABLE":
            expression = arguments[0] if arguments else ""
            for name, value in self.variables.items():
                expression = expression.replace("${" + name + "}", value)
            return [f"200 result=1 ({expression})"]
        if verb == "VERBOSE":
            return ["200 result=1"]
        if verb == "CHANNEL STATUS":
            return ["200 result=6"]
        if verb == "RECORD FILE":
            return await self._record(arguments)
        if verb.startswith("SAY "):
            self._print(f"IVR: {' '.join(arguments[:1])}")
            return ["200 result=0"]
        return ["510 Invalid or unknown command"]

    def _hear(self, file: str) -> int:
        if file.startswith(_SILENT_FILES):
            return 8000
        text = self._prompts.get(file)
        self._print(f"IVR: {text}" if text else f"IVR: [plays {file}]")
        return _SAMPLES_PER_CHARACTER * len(text or file)

    async def _get_data(self, arguments: list[str]) -> list[str]:
        if arguments:
            self._hear(arguments[0])
        max_digits = int(arguments[2]) if len(arguments) > 2 and arguments[2].isdigit() else 1024
        keys = await self._keys(max(max_digits, 1))
        if keys is None:
            return ["200 result=-1"]
        digits, ended = keys.split("#", 1)[0], "#" in keys
        if len(digits) >= max_digits:
            return [f"200 result={digits[:max_digits]}"]
        return [f"200 result={digits}" if ended else f"200 result={digits} (timeout)"]

    async def _keys(self, max_digits: int) -> str | None:
        if self._typed_ahead:
            keys, self._typed_ahead = self._typed_ahead, ""
            self._print(f"you: {keys}")
            return keys
        answer = await self._keypad.answer(max_digits, speech=False)
        if answer is None:
            self._hang_up()
            return None
        if isinstance(answer, Speech):
            self._print(f"you say: {answer.text}")
            self._print("[the IVR listens for keys only: it does not hear you]")
            answer = ""
        self._print(f"you: {answer}" if answer else "you: (nothing)")
        return answer

    async def _record(self, arguments: list[str]) -> list[str]:
        """RECORD FILE <file> <format> <escape digits> <ms> [BEEP] [s=<silence>]; see the module docstring."""
        file = arguments[0] if arguments else ""
        file_format = arguments[1].lower() if len(arguments) > 1 else ""
        escape = arguments[2] if len(arguments) > 2 else ""
        target = self._recording_target(file, file_format)
        if target is None:
            self._print(f"[recording {file}: you leave a message and press #]")
            return ["200 result=35 (dtmf) endpos=48000"]
        if any(argument.upper() == "BEEP" for argument in arguments[4:]):
            self._print("[beep]")
        self._print(f"[recording {file}]")
        answer = await self._keypad.answer(1024, speech=True)
        pcm, reply = b"", ""
        if answer is None:
            self._hang_up()
            reply = "200 result=-1 (hangup) endpos=0"
        elif isinstance(answer, Speech):
            self._print(f"you say: {answer.text}")
            pcm = await self._speak(answer) + bytes(2 * _RATE)  # the second of silence Asterisk keeps
        else:
            self._print(f"you: {answer}" if answer else "you: (nothing)")
            stop = next((index for index, key in enumerate(answer) if key in escape), None)
            if stop is not None:
                self._typed_ahead = answer[stop + 1 :]
                reply = f"200 result={ord(answer[stop])} (dtmf) endpos=0"
            else:
                pcm = bytes(2 * _RATE)  # keys that do not stop it are no sound: silence ends it
        if not target.parent.is_dir():
            self._print(f"[Asterisk cannot write {target}: no such directory]")
            return ["200 result=-1 (writefile)"]
        _write_recording(target, file_format, pcm)
        return [reply or f"200 result=0 (timeout) endpos={len(pcm) // 2}"]

    def _recording_target(self, file: str, file_format: str) -> Path | None:
        """Where the file Asterisk records as `file` lands here; None when it is not under the shared
        directory, or in a format this console does not write."""
        prefix = self._recordings_path + "/"
        if self._recordings_dir is None or not file.startswith(prefix) or file_format not in ("sln", "wav"):
            return None
        relative = Path(file[len(prefix) :])
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            return None
        return (self._recordings_dir / relative).with_name(f"{relative.name}.{file_format}")

    def _hang_up(self) -> None:
        self._print("[you hang up]")
        self._result.ended_by = "caller"
        self.dead = True

    async def _audiosocket(self, options: str) -> list[str]:
        """AudioSocket(<uuid>,<host:port>) run as Asterisk would, with the caller's next answer."""
        try:
            call_uuid, host, port = _audiosocket_arguments(options)
        except ValueError as exc:
            self._print(f"[AudioSocket({options}) fails: {exc}]")
            return ["200 result=-1"]
        answer = await self._keypad.answer(1024, speech=True)
        try:
            caller = await AudioSocketCaller.connect(host, port, call_uuid)
        except (OSError, TimeoutError) as exc:
            self._print(f"[AudioSocket cannot reach {host}:{port}: {exc or type(exc).__name__}]")
            if answer is None:
                self._hang_up()
            return ["200 result=-1"]
        try:
            if answer is None:
                self._hang_up()
                return ["200 result=-1"]
            await self._wait_for_quiet(caller)
            if isinstance(answer, Speech):
                self._print(f"you say: {answer.text}")
                await caller.send_audio(await self._speak(answer), speed=self._audio_speed)
            elif answer:
                self._print(f"you: {answer}")
                await caller.send_dtmf(answer, speed=self._audio_speed)
            else:
                self._print("you: (nothing)")
            closed = await caller.send_silence_until_closed(
                speed=self._audio_speed, limit_seconds=self._listen_limit
            )
        finally:
            await caller.hang_up()
        if caller.protocol_error is not None:
            self._print(f"[AudioSocket fails: {caller.protocol_error}; Asterisk hangs up]")
            self._result.ended_by = "ivr"
            self.dead = True
            return ["200 result=-1"]
        if not closed:
            self._print(f"[the IVR kept listening for {self._listen_limit:g}s]")
            self._hang_up()
            return ["200 result=-1"]
        return ["200 result=0"]

    async def _wait_for_quiet(self, caller: AudioSocketCaller, limit_seconds: float = 30.0) -> None:
        """Silence until the IVR's prompt on the socket has ended, so that the caller does not barge in."""
        started = time.monotonic()
        while not caller.closed and time.monotonic() - started < limit_seconds:
            last = caller.last_sound_at or started
            if time.monotonic() - last >= _QUIET_SECONDS:
                return
            await caller.send_silence(20, speed=self._audio_speed)

    async def _speak(self, speech: Speech) -> bytes:
        if self._voice is None:
            self._voice = GeneratedVoice()
        try:
            return await asyncio.to_thread(self._voice.speak, speech)
        except Exception as exc:  # no espeak-ng or sox, an unknown voice: the line stays silent
            self._print(f"[you cannot be heard: {exc}]")
            return b""

    async def _exec(self, arguments: list[str]) -> list[str]:
        application = arguments[0] if arguments else ""
        options = arguments[1] if len(arguments) > 1 else ""
        if application.lower() == "audiosocket" and not self._has_audiosocket:
            self._print("[this Asterisk has no AudioSocket()]")
            return ["200 result=-2"]
        if application.lower() == "audiosocket":
            return await self._audiosocket(options)
        if application.lower() == "queue":
            queue = options.split(",", 1)[0]
            if self._handoffs_fail:
                self._print(f"[queue {queue}: no agent is logged in]")
                self.variables["QUEUESTATUS"] = "JOINEMPTY"
                return ["200 result=0"]
            self._print(f"[queue {queue}: an agent answers; you talk, then hang up]")
            return self._handed_off()
        if application.lower() == "dial" and _ANSWER_SUBROUTINE.search(options):
            return await self._ring_agent(options)
        if application.lower() == "dial":
            target = options.split(",", 1)[0]
            if self._handoffs_fail:
                self._print(f"[transfer to {target}: unavailable]")
                self.variables["DIALSTATUS"] = "CHANUNAVAIL"
                return ["200 result=0"]
            self._print(f"[transfer to {target}: answered; you talk, then hang up]")
            return self._handed_off()
        self._print(f"[{application}({options})]")
        return ["200 result=0"]

    async def _ring_agent(self, options: str) -> list[str]:
        """Dial to an agent's phone from one of Centralita's queues; see the module docstring."""
        target = options.split(",", 1)[0]
        if self._handoffs_fail:
            self._print(f"[{target} rings: nobody answers]")
            self.variables["DIALSTATUS"] = "NOANSWER"
            return ["200 result=0"]
        found = _ANSWER_SUBROUTINE.search(options)
        arguments = (found["args"] or "").split("^") if found and found["args"] else []
        if self._server is not None and found is not None:
            leg = await agent_leg(self._server, target, arguments)
            if leg.variables.get("GOSUB_RESULT"):
                self._print(f"[{target} answers, but the call is no longer waiting: the agent is hung up]")
                self.variables["DIALSTATUS"] = "CANCEL"
                return ["200 result=0"]
        self._print(f"[{target} answers: you talk to the agent, then hang up]")
        self.variables["DIALSTATUS"] = "ANSWER"
        self._result.ended_by = "handoff"
        self.dead = True
        return ["200 result=-1"]

    def _handed_off(self) -> list[str]:
        self._result.ended_by = "handoff"
        self.dead = True
        return ["200 result=-1"]


def _write_recording(target: Path, file_format: str, pcm: bytes) -> None:
    if file_format == "wav":
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(_RATE)
            wav.writeframes(pcm)
    else:
        target.write_bytes(pcm)


def _audiosocket_arguments(options: str) -> tuple[uuid.UUID, str, int]:
    """`"<uuid>,host:port"` or `"<uuid>,[::1]:port"`, as app_audiosocket.c reads them."""
    text, _, service = options.partition(",")
    call_uuid = uuid.UUID(text.strip())  # ValueError: "badly formed hexadecimal UUID string"
    host, _, port = service.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{service!r} is not host:port")
    return call_uuid, host.removeprefix("[").removesuffix("]"), int(port)


def _verb(words: list[str]) -> str | None:
    upper = [word.upper() for word in words]
    for size in (3, 2, 1):
        candidate = " ".join(upper[:size])
        if len(upper) >= size and candidate in _VERBS:
            return candidate
    return None


@dataclass
class AgentLeg:
    """What became of the agent's leg of a Dial: the variables the server set on it (GOSUB_RESULT)."""

    variables: dict[str, str]
    transcript: list[str]


async def agent_leg(server: tuple[str, int], endpoint: str, arguments: Sequence[str]) -> AgentLeg:
    """Dial's U() subroutine on the agent's leg, as Asterisk runs it: `AGI(agi://…/agent-answered,<args>)`
    on a channel of `endpoint`. A server that cannot be reached is noted, and the call goes on (in
    Asterisk the subroutine would return all the same)."""
    host, port = server
    result = CallResult(uniqueid=fresh_uniqueid())
    channel = f"{endpoint}-{next(_channels):08x}"
    phone = ConsolePhone(
        keypad=ScriptedKeypad([]), result=result, caller=None, channel=channel, say=lambda _: None
    )
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        return AgentLeg({}, [f"[the agent's leg cannot reach {host}:{port}: {exc}]"])
    lines = environment(
        flow=AGENT_ANSWERED_SCRIPT,
        host=host,
        port=port,
        caller=None,
        called=None,
        uniqueid=result.uniqueid,
        channel=channel,
        arguments=arguments,
    )
    await _converse(reader, writer, lines, phone, result, close_timeout=5.0)
    return AgentLeg(phone.variables, result.transcript)


async def _converse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    env: list[bytes],
    phone: ConsolePhone,
    result: CallResult,
    *,
    close_timeout: float,
) -> None:
    """Sends the environment, then answers each command until the server closes the socket (or leaves
    it open `close_timeout` seconds after the call ended)."""
    try:
        writer.writelines(env)
        await writer.drain()
        while True:
            try:
                if phone.dead:
                    line = await asyncio.wait_for(reader.readline(), close_timeout)
                else:
                    line = await reader.readline()
            except TimeoutError:
                break
            if not line:
                result.closed_by_server = True
                break
            command = line.decode("utf-8", errors="replace").rstrip("\r\n")
            result.commands.append(command)
            replies = await phone.reply(command)
            writer.writelines(f"{reply}\n".encode() for reply in replies)
            await writer.drain()
    except ConnectionError:
        result.closed_by_server = True
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def place_call(
    host: str,
    port: int,
    flow: str,
    *,
    keypad: Keypad,
    caller: str | None = None,
    called: str | None = None,
    prompts: Mapping[str, str] = {},
    handoffs_fail: bool = False,
    uniqueid: str | None = None,
    say: Callable[[str], None] = print,
    close_timeout: float = 5.0,
    voice: CallerVoice | None = None,
    audio_speed: float = 1.0,
    recordings_dir: Path | None = None,
    recordings_path: str = RECORDINGS_PATH,
    audiosocket: bool = True,
) -> CallResult:
    """Call `flow` on the FastAGI server at host:port and play the caller until the server hangs up.

    Raises OSError when nothing listens there. `closed_by_server` is False if the server left the
    socket open for `close_timeout` seconds after the call ended (Asterisk would wait for ever).
    `recordings_dir`, `recordings_path`, `audiosocket`: see `ConsolePhone`.
    """
    result = CallResult(uniqueid=uniqueid or fresh_uniqueid())
    channel = f"PJSIP/console-{next(_channels):08x}"
    phone = ConsolePhone(
        keypad=keypad,
        result=result,
        caller=caller,
        channel=channel,
        prompts=prompts,
        handoffs_fail=handoffs_fail,
        say=say,
        voice=voice,
        audio_speed=audio_speed,
        server=(host, port),
        recordings_dir=recordings_dir,
        recordings_path=recordings_path,
        audiosocket=audiosocket,
    )
    reader, writer = await asyncio.open_connection(host, port)
    env = environment(
        flow=flow,
        host=host,
        port=port,
        caller=caller,
        called=called,
        uniqueid=result.uniqueid,
        channel=channel,
    )
    await _converse(reader, writer, env, phone, result, close_timeout=close_timeout)
    return result


def scripted(entries: Iterable[str]) -> ScriptedKeypad:
    return ScriptedKeypad([parse_entry(entry) for entry in entries])
