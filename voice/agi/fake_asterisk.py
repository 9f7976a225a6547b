"""A scripted Asterisk, for tests of the code above the AGI adapter (IVR engine, flows, server).

- `FakeAsterisk` is an in-memory `AgiTransport`: `session = await FakeAsterisk(script).session()`.
- `call_server()` plays Asterisk over a real TCP socket against a running `FastAgiServer`.

A script is a list of `Exchange`s: the exact command line the code must send, and the lines Asterisk
answers with (a `HANGUP` line may come first, as real Asterisk does after a hang-up).

    fake = FakeAsterisk([exchange("ANSWER", "200 result=0"), exchange("HANGUP", "200 result=1")])
    await my_flow(await fake.session())
    fake.assert_finished()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from voice.agi.session import AgiSession, AgiTimeouts

# What Asterisk 22.10 sent for `AGI(agi://127.0.0.1:4573/ivr)` on a Local channel without caller id.
ASTERISK_22_ENVIRONMENT: dict[str, str] = {
    "agi_network": "yes",
    "agi_network_script": "ivr",
    "agi_request": "agi://127.0.0.1:4573/ivr",
    "agi_channel": "Local/s@caller-00000000;1",
    "agi_language": "en",
    "agi_type": "Local",
    "agi_uniqueid": "1795537810.0",
    "agi_version": "22.10.1",
    "agi_callerid": "unknown",
    "agi_calleridname": "unknown",
    "agi_callingpres": "67",
    "agi_callingani2": "0",
    "agi_callington": "0",
    "agi_callingtns": "0",
    "agi_dnid": "unknown",
    "agi_rdnis": "unknown",
    "agi_context": "ivr-test",
    "agi_extension": "s",
    "agi_priority": "2",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140414811326144",
}


def environment_lines(flow: str = "ivr", **overrides: str) -> list[bytes]:
    """The agi_* block for a call into `flow`, one bytes object per line as Asterisk writes them.

    `overrides` use the names without the prefix: `environment_lines("sales", callerid="5551234")`.
    """
    variables = dict(ASTERISK_22_ENVIRONMENT)
    variables["agi_network_script"] = flow
    variables["agi_request"] = f"agi://127.0.0.1:4573/{flow}"
    for key, value in overrides.items():
        variables[f"agi_{key}"] = value
    return [f"{key}: {value}\n".encode() for key, value in variables.items()] + [b"\n"]


@dataclass(frozen=True, slots=True)
class Exchange:
    command: bytes  # the exact line expected, with its b"\n"
    replies: tuple[bytes, ...]  # what Asterisk sends back, one write each


def exchange(command: str, *replies: str) -> Exchange:
    """`exchange("GET VARIABLE FOO", "200 result=1 (bar)")`: newlines are added."""
    return Exchange(f"{command}\n".encode(), tuple(f"{reply}\n".encode() for reply in replies))


class FakeAsteriskMismatch(AssertionError):
    """The code under test sent a command the script did not expect."""


class FakeAsterisk:
    """An in-memory Asterisk peer implementing `AgiTransport`. It stays silent when the script says nothing,
    like a real one, so command time limits can be tested too."""

    def __init__(
        self,
        script: Iterable[Exchange],
        *,
        environment: Sequence[bytes] | None = None,
    ) -> None:
        self.received: list[bytes] = []
        self.mismatches: list[str] = []
        self.closed = False  # closed by the code under test
        self._script = deque(script)
        self._outbox: deque[bytes] = deque(environment if environment is not None else environment_lines())
        self._partial = b""
        self._disconnected = False
        self._wakeup = asyncio.Event()

    async def session(self, timeouts: AgiTimeouts = AgiTimeouts()) -> AgiSession:
        return await AgiSession.open(self, timeouts=timeouts)

    # --- AgiTransport -----------------------------------------------------------------------------

    async def read(self) -> bytes:
        while not self._outbox and not (self.closed or self._disconnected):
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._outbox.popleft() if self._outbox else b""

    async def write(self, data: bytes) -> None:
        if self.closed or self._disconnected:
            raise BrokenPipeError("the fake Asterisk connection is closed")
        self._partial += data
        while b"\n" in self._partial:
            line, self._partial = self._partial.split(b"\n", 1)
            self._command(line + b"\n")

    async def close(self) -> None:
        self.closed = True
        self._wakeup.set()

    # --- driving it from a test -------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Send bytes unasked, e.g. a `HANGUP` line while no command is running."""
        self._outbox.append(data)
        self._wakeup.set()

    def disconnect(self) -> None:
        """Asterisk closes the socket (it does with AGIEXITONHANGUP=yes, or when it restarts)."""
        self._disconnected = True
        self._wakeup.set()

    def assert_finished(self) -> None:
        if self.mismatches:
            raise FakeAsteriskMismatch("; ".join(self.mismatches))
        if self._script:
            left = [step.command for step in self._script]
            raise FakeAsteriskMismatch(f"{len(left)} expected commands never sent: {left!r}")

    def _command(self, line: bytes) -> None:
        self.received.append(line)
        if not self._script:
            self._mismatch(f"unexpected command {line!r} after the end of the script")
        expected = self._script.popleft()
        if line != expected.command:
            self._mismatch(f"expected {expected.command!r}, got {line!r}")
        self._outbox.extend(expected.replies)
        self._wakeup.set()

    def _mismatch(self, message: str) -> None:
        self.mismatches.append(message)
        raise FakeAsteriskMismatch(message)


@dataclass
class FakeCall:
    """What a scripted Asterisk saw of one call to a FastAGI server."""

    received: list[bytes] = field(default_factory=list)  # command lines, in order
    extra: list[bytes] = field(default_factory=list)  # lines sent after the script ended
    closed_by_server: bool = False  # the server closed the socket (it must, Asterisk never does)
    mismatch: str | None = None


async def call_server(
    host: str,
    port: int,
    script: Sequence[Exchange],
    *,
    environment: Sequence[bytes] | None = None,
    reply_timeout: float = 5.0,
    close_timeout: float = 5.0,
) -> FakeCall:
    """Connect like Asterisk's AGI(agi://host:port/flow), play `script`, then wait for the server to close.

    Stops at the first command that differs from the script (see `FakeCall.mismatch`).
    """
    call = FakeCall()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for chunk in environment if environment is not None else environment_lines():
            writer.write(chunk)
            await writer.drain()
        for step in script:
            try:
                line = await asyncio.wait_for(reader.readline(), reply_timeout)
            except TimeoutError:
                call.mismatch = f"no command within {reply_timeout:g} s while expecting {step.command!r}"
                return call
            if not line:
                call.closed_by_server = True
                call.mismatch = f"connection closed while expecting {step.command!r}"
                return call
            call.received.append(line)
            if line != step.command:
                call.mismatch = f"expected {step.command!r}, got {line!r}"
                return call
            for chunk in step.replies:
                writer.write(chunk)
                await writer.drain()
        try:
            async with asyncio.timeout(close_timeout):
                while line := await reader.readline():
                    call.extra.append(line)
            call.closed_by_server = True
        except TimeoutError:
            call.closed_by_server = False
    except ConnectionError:
        call.closed_by_server = True
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return call
