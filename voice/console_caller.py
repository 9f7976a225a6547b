"""A caller at the console: plays Asterisk's side of one FastAGI call against a running server.

`centralita call <flow> --from +34600111222 --input 1,2,#` uses it. It connects over TCP as Asterisk's
`AGI(agi://host:port/<flow>)` does, sends an environment block like the one Asterisk 22 sends, and answers
every command in Asterisk's formats (see ../shared/fixtures/asterisk/). It prints what the caller hears —
prompt files turned back into their words through `voice.prompts` — and the keys the caller presses.

Keys come from a `Keypad`: a script (each entry answers the next request for keys: GET DATA or WAIT
FOR DIGIT; "" is silence; when the entries run out the caller hangs up) or the keyboard. Prompts play to
the end: a scripted caller never barges in, so each entry lands on the question it was meant for.

Queues and transfers: by default an agent answers, the conversation happens, and the call ends with
the caller hanging up (`EXEC` answers `result=-1`, as Asterisk does when the bridged call ends); with
`handoffs_fail` the queue has nobody (QUEUESTATUS=JOINEMPTY) and the transfer target is unavailable
(DIALSTATUS=CHANUNAVAIL), so the flow's `on_failure` path runs.

Speech is not simulated: the console caller only presses keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

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


class Keypad(Protocol):
    async def keys(self, max_digits: int) -> str | None:
        """The keys the caller presses ("" = nothing before the time-out), or None: the caller hangs up."""
        ...


@dataclass
class ScriptedKeypad:
    """Each entry answers one request for keys; "" or "-" is silence. None after the last: hang up."""

    entries: list[str]
    used: int = 0

    @classmethod
    def parse(cls, text: str) -> ScriptedKeypad:
        """`"1,,2#,-"` -> entries "1", "", "2#", "". Raises ValueError for a key no phone has."""
        entries = ["" if entry.strip() == "-" else entry.strip() for entry in text.split(",")]
        for entry in entries:
            bad = set(entry) - DTMF
            if bad:
                raise ValueError(f"{entry!r} is not a key sequence (keys: 0-9, *, #, A-D)")
        return cls(entries)

    async def keys(self, max_digits: int) -> str | None:
        if self.used >= len(self.entries):
            return None
        self.used += 1
        return self.entries[self.used - 1]


@dataclass
class InteractiveKeypad:
    """Asks at the console. An empty line is silence; `q` or end of input hangs up."""

    read_line: Callable[[str], Awaitable[str | None]]

    async def keys(self, max_digits: int) -> str | None:
        while True:
            line = await self.read_line(f"keys (up to {max_digits}; Enter: silence; q: hang up)> ")
            if line is None or line.strip().lower() in ("q", "quit", "hangup"):
                return None
            keys = line.strip().replace(" ", "")
            if not set(keys) - DTMF:
                return keys


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
) -> list[bytes]:
    """The agi_* block, in the order and form Asterisk 22.10 sends it (cf. fastagi_ivr_3.txt)."""
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
    ) -> None:
        self._keypad = keypad
        self._result = result
        self._prompts = prompts
        self._handoffs_fail = handoffs_fail
        self._say = say
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
        if verb in ("ANSWER", "NOOP", "SET MUSIC"):
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
            return self._exec(arguments)
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
            self._print(f"[recording {arguments[0] if arguments else ''}: you leave a message and press #]")
            return ["200 result=35 (dtmf) endpos=48000"]
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
        keys = await self._keypad.keys(max_digits)
        if keys is None:
            self._print("[you hang up]")
            self._result.ended_by = "caller"
            self.dead = True
            return None
        self._print(f"you: {keys}" if keys else "you: (nothing)")
        return keys

    def _exec(self, arguments: list[str]) -> list[str]:
        application = arguments[0] if arguments else ""
        options = arguments[1] if len(arguments) > 1 else ""
        if application.lower() == "queue":
            queue = options.split(",", 1)[0]
            if self._handoffs_fail:
                self._print(f"[queue {queue}: no agent is logged in]")
                self.variables["QUEUESTATUS"] = "JOINEMPTY"
                return ["200 result=0"]
            self._print(f"[queue {queue}: an agent answers; you talk, then hang up]")
            return self._handed_off()
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

    def _handed_off(self) -> list[str]:
        self._result.ended_by = "handoff"
        self.dead = True
        return ["200 result=-1"]


def _verb(words: list[str]) -> str | None:
    upper = [word.upper() for word in words]
    for size in (3, 2, 1):
        candidate = " ".join(upper[:size])
        if len(upper) >= size and candidate in _VERBS:
            return candidate
    return None


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
) -> CallResult:
    """Call `flow` on the FastAGI server at host:port and play the caller until the server hangs up.

    Raises OSError when nothing listens there. `closed_by_server` is False if the server left the
    socket open for `close_timeout` seconds after the call ended (Asterisk would wait for ever).
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
    )
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.writelines(
            environment(
                flow=flow,
                host=host,
                port=port,
                caller=caller,
                called=called,
                uniqueid=result.uniqueid,
                channel=channel,
            )
        )
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
    return result


def scripted(entries: Iterable[str]) -> ScriptedKeypad:
    return ScriptedKeypad(["" if entry == "-" else entry for entry in entries])
