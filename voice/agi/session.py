"""One FastAGI call: typed async commands over a transport, one at a time, each with a time limit.

Reply handling, as Asterisk 22 behaves (see the recorded transcripts):
- `511` -> `AgiChannelGone`. A `HANGUP` line sets `hung_up`; if the session did not already know the
  channel was gone, the command that was waiting raises `AgiChannelGone` (its reply attached), once.
  After that, commands Asterisk allows on a dead channel (GET/SET VARIABLE, VERBOSE, ...) work normally.
- `510` / `520` -> `AgiCommandError` (`usage` holds the 520 text).
- `result=-1` from a media command -> `AgiCommandFailed` (hang-up, or a prompt Asterisk does not have).
- No reply in time -> `AgiTimeout`; after a timeout, a cancellation, a protocol error or a closed socket
  the stream is out of step, so every later command raises `AgiConnectionLost` without sending anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from voice.agi.errors import (
    AgiApplicationNotFound,
    AgiChannelGone,
    AgiCommandError,
    AgiCommandFailed,
    AgiConnectionLost,
    AgiProtocolError,
    AgiTimeout,
)
from voice.agi.protocol import (
    AgiEnvironment,
    AgiReader,
    AgiReply,
    Argument,
    HangupNotice,
    Quoted,
    format_command,
)

# GET DATA answers with the digits themselves; `#` ends input and is not included.
_DTMF = frozenset("0123456789*#ABCDabcd")


class AgiTransport(Protocol):
    """The byte stream to Asterisk. `StreamTransport` is the real one; `FakeAsterisk` a scripted one."""

    async def read(self) -> bytes:
        """Some bytes from Asterisk; b"" once the connection is closed."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class StreamTransport:
    """An asyncio StreamReader/StreamWriter pair, e.g. from `asyncio.start_server`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(65536)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def close(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        # The peer may reset or be slow to acknowledge: the socket is closed on our side either way.
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), timeout=2.0)


@dataclass(frozen=True, slots=True)
class AgiTimeouts:
    """Seconds to wait for a reply. A silent or half-open Asterisk must never hold a call for ever."""

    environment: float = 5.0  # the agi_* block after connect
    command: float = 10.0  # ANSWER (about 0.5 s on a ringing channel), variables, HANGUP, ...
    media: float = 300.0  # STREAM FILE, SAY *, and the prompt part of GET DATA / RECORD FILE
    application: float = 4 * 3600.0  # EXEC: Dial or Queue last as long as the conversation


class Playback(NamedTuple):
    digit: str | None  # the escape digit that stopped the prompt, or None if it played to the end
    endpos: int  # sample offset where playback stopped


class Recording(NamedTuple):
    digit: str | None  # the escape digit that ended the recording, if one did
    endpos: int
    reason: str  # "dtmf", "timeout" (also: silence detected), "hangup"


class _Expiry:
    """The timer callback of one command's time-out: cancels the task waiting for the reply."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


class AgiSession:
    """The typed commands an IVR needs, plus `command()` for any other."""

    def __init__(
        self,
        transport: AgiTransport,
        env: AgiEnvironment,
        *,
        timeouts: AgiTimeouts = AgiTimeouts(),
        reader: AgiReader | None = None,
        pending: tuple[AgiReply | HangupNotice, ...] = (),
    ) -> None:
        self.env = env
        self.timeouts = timeouts
        self.hung_up = False  # the channel is known to be gone
        self.hangup_notices = 0  # `HANGUP` lines received
        self._transport = transport
        self._reader = reader if reader is not None else AgiReader(expect_environment=False)
        self._pending: deque[AgiReply | HangupNotice] = deque(pending)
        self._lock = asyncio.Lock()
        self._unusable: str | None = None

    @classmethod
    async def open(cls, transport: AgiTransport, *, timeouts: AgiTimeouts = AgiTimeouts()) -> AgiSession:
        """Read the environment block Asterisk sends first (within `timeouts.environment` seconds)."""
        reader = AgiReader()
        pending: list[AgiReply | HangupNotice] = []
        env: AgiEnvironment | None = None
        try:
            async with asyncio.timeout(timeouts.environment):
                while env is None:
                    data = await _read(transport)
                    if not data:
                        raise AgiConnectionLost("connection closed before the AGI environment ended")
                    for event in reader.feed(data):
                        if isinstance(event, AgiEnvironment):
                            env = event
                        else:
                            pending.append(event)
        except TimeoutError:
            raise AgiTimeout(f"no complete AGI environment within {timeouts.environment:g} s") from None
        return cls(transport, env, timeouts=timeouts, reader=reader, pending=tuple(pending))

    @property
    def usable(self) -> bool:
        return self._unusable is None

    async def close(self) -> None:
        self._unusable = self._unusable or "the session was closed"
        await self._transport.close()

    # --- the generic command ----------------------------------------------------------------------

    async def command(self, verb: str, *arguments: Argument, timeout: float | None = None) -> AgiReply:
        """Send one command and return its 200 reply. Raises on 510/520, 511 and an unexpected hang-up."""
        line = format_command(verb, *arguments)  # refuses bad arguments before anything is sent
        return await self._execute(line, self.timeouts.command if timeout is None else timeout)

    async def _execute(self, line: bytes, timeout: float) -> AgiReply:
        command = line.decode().rstrip("\n")
        async with self._lock:
            if self._unusable is not None:
                raise AgiConnectionLost(f"cannot send {command!r}: {self._unusable}")
            if any(isinstance(event, AgiReply) for event in self._pending):
                # It would be taken for the answer to this command, and every later reply shifted by one.
                # Best effort: only a reply already read (e.g. in the same segment as the last) is seen.
                self._unusable = "Asterisk sent a reply to no command"
                raise AgiProtocolError(f"cannot send {command!r}: {self._unusable}")
            knew_hangup = self.hung_up
            notified = False
            # The time-out is one timer that cancels this task, not `asyncio.timeout()`: that context
            # manager cost 16% of a saturated server's time, this costs a third of it (decisions.md 21).
            task = asyncio.current_task()
            assert task is not None
            expiry = _Expiry(task)
            timer = asyncio.get_running_loop().call_later(timeout, expiry.fire)
            try:
                await self._write(line)
                while True:
                    event = await self._next_event()
                    if isinstance(event, HangupNotice):
                        notified = True
                        self._note_hangup_notice()
                        continue
                    reply = event
                    break
            except asyncio.CancelledError:
                if expiry.fired and task.uncancel() == 0:
                    self._unusable = f"{command!r} got no reply within {timeout:g} s"
                    raise AgiTimeout(self._unusable) from None
                self._unusable = f"{command!r} was interrupted (CancelledError)"
                raise
            except BaseException as exc:  # closed, garbage: the reply stream is out of step
                self._unusable = f"{command!r} was interrupted ({type(exc).__name__})"
                raise
            finally:
                timer.cancel()
        if reply.code == 511:
            self.hung_up = True
            raise AgiChannelGone(f"{command!r}: {reply.code} {reply.message}", reply)
        if notified and not knew_hangup:
            raise AgiChannelGone(f"the channel hung up (HANGUP before the reply to {command!r})", reply)
        if reply.code != 200:
            raise AgiCommandError(command, reply)
        return reply

    async def _write(self, line: bytes) -> None:
        try:
            await self._transport.write(line)
        except OSError as exc:
            raise AgiConnectionLost(f"cannot write to Asterisk: {exc}") from exc

    async def _next_event(self) -> AgiReply | HangupNotice:
        while not self._pending:
            data = await _read(self._transport)
            if not data:
                raise AgiConnectionLost("Asterisk closed the connection")
            for event in self._reader.feed(data):
                if isinstance(event, AgiEnvironment):  # cannot happen: the reader sends it once, in open()
                    raise AgiProtocolError("a second AGI environment")
                self._pending.append(event)
        return self._pending.popleft()

    def _note_hangup_notice(self) -> None:
        self.hangup_notices += 1
        self.hung_up = True

    # --- channel ----------------------------------------------------------------------------------

    async def answer(self, *, timeout: float | None = None) -> None:
        reply = await self.command("ANSWER", timeout=timeout)
        self._fail_if_negative("ANSWER", reply)

    async def hangup(self, channel: str | None = None, *, timeout: float | None = None) -> None:
        """Hang up this channel (or another one by name). Asterisk keeps the socket open: close it after."""
        arguments = () if channel is None else (channel,)
        reply = await self.command("HANGUP", *arguments, timeout=timeout)
        self._fail_if_negative("HANGUP", reply, "no such channel")
        if channel is None:
            self.hung_up = True

    async def channel_status(self, channel: str | None = None, *, timeout: float | None = None) -> int:
        """Asterisk channel state: 0 down ... 4 ring, 5 ringing, 6 up, 7 busy."""
        arguments = () if channel is None else (channel,)
        reply = await self.command("CHANNEL STATUS", *arguments, timeout=timeout)
        self._fail_if_negative("CHANNEL STATUS", reply, "no such channel")
        return _number(reply, "CHANNEL STATUS")

    # --- prompts and digits -----------------------------------------------------------------------

    async def stream_file(
        self,
        file: str,
        escape_digits: str = "",
        *,
        offset_samples: int | None = None,
        timeout: float | None = None,
    ) -> Playback:
        """Play a prompt; a key in `escape_digits` stops it. result=-1 (no such file, hang-up) raises."""
        arguments: list[Argument] = [file, Quoted(escape_digits)]
        if offset_samples is not None:
            arguments.append(offset_samples)
        reply = await self.command("STREAM FILE", *arguments, timeout=self._media(timeout))
        self._fail_if_negative("STREAM FILE", reply, "prompt missing or channel hung up")
        return Playback(_digit(reply, "STREAM FILE"), reply.endpos or 0)

    async def get_data(
        self,
        file: str,
        timeout_ms: int | None = None,
        max_digits: int | None = None,
        *,
        timeout: float | None = None,
    ) -> str:
        """Play a prompt and collect digits until `#`, `max_digits`, or `timeout_ms` without a key.

        Returns the digits, "" when nothing was pressed (`200 result= (timeout)`); digits typed before a
        timeout are returned too. `#` is never part of the result. result=-1 raises `AgiCommandFailed`.
        """
        arguments: list[Argument] = [file]
        if timeout_ms is not None or max_digits is not None:
            arguments.append(timeout_ms if timeout_ms is not None else 0)  # 0: Asterisk's default
        if max_digits is not None:
            arguments.append(max_digits)
        if timeout is None:
            waiting = (timeout_ms or 0) / 1000 * max(1, max_digits or 1)
            timeout = self.timeouts.media + waiting
        reply = await self.command("GET DATA", *arguments, timeout=timeout)
        digits = reply.result_text
        if digits == "-1":
            raise AgiCommandFailed(f"GET DATA {file}", reply, "prompt missing or channel hung up")
        if not _DTMF.issuperset(digits):
            raise AgiProtocolError(f"GET DATA returned {digits!r}, which are not DTMF digits")
        return digits

    async def wait_for_digit(self, timeout_ms: int, *, timeout: float | None = None) -> str | None:
        """One key within `timeout_ms` (-1: wait for ever), or None. result=-1 means the caller hung up."""
        if timeout is None:
            no_limit = timeout_ms < 0
            timeout = self.timeouts.application if no_limit else self.timeouts.command + timeout_ms / 1000
        reply = await self.command("WAIT FOR DIGIT", timeout_ms, timeout=timeout)
        if reply.result == -1:
            self.hung_up = True
            raise AgiChannelGone("the channel hung up during WAIT FOR DIGIT", reply)
        return _digit(reply, "WAIT FOR DIGIT")

    async def say_digits(
        self, digits: str | int, escape_digits: str = "", *, timeout: float | None = None
    ) -> str | None:
        """Say each digit; returns the escape digit pressed, if any."""
        reply = await self.command(
            "SAY DIGITS", str(digits), Quoted(escape_digits), timeout=self._media(timeout)
        )
        self._fail_if_negative("SAY DIGITS", reply)
        return _digit(reply, "SAY DIGITS")

    async def say_number(
        self,
        number: int,
        escape_digits: str = "",
        *,
        gender: str | None = None,
        timeout: float | None = None,
    ) -> str | None:
        """Say a whole number in the channel's language; `gender` is e.g. "f" or "m" where it matters."""
        arguments: list[Argument] = [number, Quoted(escape_digits)]
        if gender is not None:
            arguments.append(gender)
        reply = await self.command("SAY NUMBER", *arguments, timeout=self._media(timeout))
        self._fail_if_negative("SAY NUMBER", reply)
        return _digit(reply, "SAY NUMBER")

    async def record_file(
        self,
        file: str,
        file_format: str = "wav",
        escape_digits: str = "#",
        timeout_ms: int = -1,
        *,
        offset_samples: int | None = None,
        beep: bool = False,
        silence_seconds: int | None = None,
        timeout: float | None = None,
    ) -> Recording:
        """Record until an escape digit, `timeout_ms` (-1: no limit), silence, or hang-up.

        A hang-up returns `reason="hangup"` (the file holds what was said) and marks the session hung up.
        """
        arguments: list[Argument] = [file, file_format, Quoted(escape_digits), timeout_ms]
        if offset_samples is not None:
            arguments.append(offset_samples)
        if beep:
            arguments.append("BEEP")
        if silence_seconds is not None:
            arguments.append(f"s={silence_seconds}")
        if timeout is None:
            no_limit = timeout_ms < 0
            timeout = self.timeouts.application if no_limit else self.timeouts.media + timeout_ms / 1000
        reply = await self.command("RECORD FILE", *arguments, timeout=timeout)
        reason = reply.data or ""
        if reason == "hangup":
            self.hung_up = True
            return Recording(None, reply.endpos or 0, reason)
        self._fail_if_negative("RECORD FILE", reply, reason)
        digit = _digit(reply, "RECORD FILE") if reason == "dtmf" else None
        return Recording(digit, reply.endpos or 0, reason)

    async def set_music(
        self, on: bool = True, music_class: str | None = None, *, timeout: float | None = None
    ) -> None:
        """Music on hold on (from `music_class`, or the channel's default) or off."""
        arguments: list[Argument] = ["on" if on else "off"]
        if on and music_class is not None:
            arguments.append(music_class)
        await self.command("SET MUSIC", *arguments, timeout=timeout)

    # --- variables and applications ---------------------------------------------------------------

    async def set_variable(self, name: str, value: str, *, timeout: float | None = None) -> None:
        await self.command("SET VARIABLE", name, value, timeout=timeout)

    async def get_variable(self, name: str, *, timeout: float | None = None) -> str | None:
        """The value (maybe ""), or None when the variable is not set (`200 result=0`)."""
        reply = await self.command("GET VARIABLE", name, timeout=timeout)
        return _value(reply)

    async def get_full_variable(
        self, expression: str, channel: str | None = None, *, timeout: float | None = None
    ) -> str | None:
        """Expand an expression such as `${FOO}-${CALLERID(num)}` on this (or another) channel."""
        arguments: list[Argument] = [expression]
        if channel is not None:
            arguments.append(channel)
        reply = await self.command("GET FULL VARIABLE", *arguments, timeout=timeout)
        return _value(reply)

    async def exec_(
        self, application: str, options: str | None = None, *, timeout: float | None = None
    ) -> int:
        """Run a dialplan application; returns its result (usually 0, -1 when the channel hung up).

        `options` is the application's whole argument string ("PJSIP/100,30,tT"), sent as one word.
        An application Asterisk does not have raises `AgiApplicationNotFound` (`result=-2`).
        """
        arguments: list[Argument] = [application]
        if options is not None:
            arguments.append(options)
        reply = await self.command(
            "EXEC", *arguments, timeout=self.timeouts.application if timeout is None else timeout
        )
        result = _number(reply, "EXEC")
        if result == -2:
            raise AgiApplicationNotFound(f"EXEC {application}", reply)
        return result

    async def verbose(self, message: str, level: int = 1, *, timeout: float | None = None) -> None:
        """Write to the Asterisk console / log at verbosity `level`."""
        await self.command("VERBOSE", message, level, timeout=timeout)

    # --- helpers ----------------------------------------------------------------------------------

    def _media(self, timeout: float | None) -> float:
        return self.timeouts.media if timeout is None else timeout

    @staticmethod
    def _fail_if_negative(command: str, reply: AgiReply, why: str = "") -> None:
        if _number(reply, command) < 0:
            raise AgiCommandFailed(command, reply, why)


async def _read(transport: AgiTransport) -> bytes:
    try:
        return await transport.read()
    except OSError as exc:
        raise AgiConnectionLost(f"cannot read from Asterisk: {exc}") from exc


def _number(reply: AgiReply, command: str) -> int:
    if reply.result is None:
        raise AgiProtocolError(f"{command}: expected a number, got result={reply.result_text!r}")
    return reply.result


def _digit(reply: AgiReply, command: str) -> str | None:
    """0 means no key; otherwise the ASCII code of the key (49 -> "1")."""
    code = _number(reply, command)
    if code == 0:
        return None
    if not 0 < code < 128 or chr(code) not in _DTMF:
        raise AgiProtocolError(f"{command}: result={code} is not the code of a DTMF key")
    return chr(code)


def _value(reply: AgiReply) -> str | None:
    if reply.result == 1:
        return reply.data if reply.data is not None else ""
    return None
