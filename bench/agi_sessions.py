"""FastAGI calls per second on one core: Centralita's asyncio server against a pyst2-based one.

N simulated Asterisk connections at once, each a 10-command call with the replies a real Asterisk 22
gave (the transcripts in ../shared/fixtures/asterisk/): the agi_* block, then ANSWER, GET VARIABLE,
STREAM FILE, GET DATA, SET VARIABLE, SAY DIGITS, GET FULL VARIABLE, CHANNEL STATUS, VERBOSE, HANGUP;
then the server must close the socket. The servers under test:

- centralita: `voice.agi.server.FastAgiServer` and `AgiSession`, on uvloop as `centralita serve` runs it
  (`--loop asyncio` for the standard loop), with a handler that issues the 10 commands and checks what
  they return;
- pyst2: pyst2's `asterisk.agi.AGI` class, one thread per call under `socketserver.ThreadingTCPServer`,
  the same handler written for it;
- pyst2-fork: the same handler served the way pyst2's own `asterisk/fastagi.py` serves, a process per
  call (`socketserver.ForkingTCPServer`), with its Python 2 imports fixed and its cap of 40 calls at once
  lifted. Its server CPU and memory figures are the parent's only (each call runs in a child);
- floor: a bare asyncio Protocol that sends the 10 command lines and barely reads the replies. No server
  can do less per call, so its figures are what the load generator can drive (the check that it is not
  the bottleneck) and what the event loop itself costs.

Each server runs in a process of its own pinned to one core; the load generator (this process) is pinned
to the other core. A fresh server process per measurement, so peak memory is that measurement's.

Two load shapes, for each server and each N:
- saturation: Asterisk replies at once and starts a new call as soon as one ends, so N calls are always in
  progress and the server's core is always busy: calls/s and commands/s are its capacity, and command
  latency is mostly queueing (Little's law: about N / commands per second).
- paced: N calls in progress, but STREAM FILE, GET DATA and SAY DIGITS take --media-ms (+-50%) to answer,
  as a prompt being played does; the other commands are answered at once. This is "N concurrent calls"
  as Asterisk makes them, and the shape the 5 ms p99 target is about.

Command latency is measured by the simulated Asterisk: from writing a reply (or the agi_* block) to
having read the next command line. That is the delay the server adds to every step of a call: reading
and parsing the reply, the handler, formatting and sending the next command, plus any wait for its core.

    .venv/bin/python bench/agi_sessions.py                          # N = 100 and 1,000, about 3 minutes
    .venv/bin/python bench/agi_sessions.py --concurrency 5 --seconds 0.5 --warmup 0.2 --media-ms 20
    .venv/bin/python bench/agi_sessions.py --json                   # one JSON object on stdout, logs stderr
    .venv/bin/python bench/agi_sessions.py --servers centralita --modes saturation --profile-server /tmp/p

--profile-server runs the asyncio servers under cProfile (slower, and it charges time spent inside the
event loop's C code to the coroutine that resumed): good for counting calls and comparing functions. For
where the time really goes, sample the server process instead: `py-spy record -p <pid> --native`.

Exits 1 if any call failed (a wrong or missing command, a socket the server did not close), 0 otherwise
(missed targets are reported, not fatal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import importlib
import inspect
import io
import itertools
import json
import math
import os
import platform
import random
import signal
import socketserver
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

from voice.agi.fake_asterisk import environment_lines
from voice.agi.server import FastAgiServer
from voice.agi.session import AgiSession

SERVERS = ("centralita", "pyst2", "pyst2-fork", "floor")
MODES = ("saturation", "paced")
HOST = "127.0.0.1"
FAILURE_EXAMPLES = 5

CALLER = "5551234"
DIGITS = "23"
SUMMARY = f"{DIGITS}-{CALLER}"
CHANNEL_UP = 6

# The targets, for N = 1,000 on one core.
TARGET_P99_MS = 5.0
TARGET_RATIO = 5.0


@dataclass(frozen=True, slots=True)
class Step:
    verb: bytes  # what the command line must start with; arguments are quoted differently by each server
    reply: bytes  # as Asterisk 22.10 answered it in the recorded transcripts
    media: bool  # a prompt plays before the reply: the paced load holds the reply back

    def matches(self, line: bytes) -> bool:
        return line == self.verb or line.startswith(self.verb + b" ")


CALL = (
    Step(b"ANSWER", b"200 result=0\n", media=False),
    Step(b"GET VARIABLE", f"200 result=1 ({CALLER})\n".encode(), media=False),
    Step(b"STREAM FILE", b"200 result=0 endpos=11360\n", media=True),
    Step(b"GET DATA", f"200 result={DIGITS}\n".encode(), media=True),
    Step(b"SET VARIABLE", b"200 result=1\n", media=False),
    Step(b"SAY DIGITS", b"200 result=0\n", media=True),
    Step(b"GET FULL VARIABLE", f"200 result=1 ({SUMMARY})\n".encode(), media=False),
    Step(b"CHANNEL STATUS", f"200 result={CHANNEL_UP}\n".encode(), media=False),
    Step(b"VERBOSE", b"200 result=1\n", media=False),
    # Asterisk follows the reply to the script's own HANGUP with a `HANGUP` line (fastagi_ivr_3.txt).
    Step(b"HANGUP", b"200 result=1\nHANGUP\n", media=False),
)
COMMANDS_PER_CALL = len(CALL)
MEDIA_STEPS = sum(step.media for step in CALL)


def log(message: str) -> None:
    """Progress goes to stderr, so that --json leaves stdout to the one JSON object."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (p99 of 2,000 samples is the 1,980th)."""
    return values[max(0, math.ceil(fraction * len(values)) - 1)]


class CallCheckFailed(Exception):
    """A reply reached the handler with the wrong value: the server parsed it wrongly."""


def check_call(caller: str | None, digits: str, summary: str | None, status: int) -> None:
    got = (caller, digits, summary, status)
    if got != (CALLER, DIGITS, SUMMARY, CHANNEL_UP):
        raise CallCheckFailed(
            f"replies parsed as {got!r}, expected {(CALLER, DIGITS, SUMMARY, CHANNEL_UP)!r}"
        )


# --------------------------------------------------------------------------------------------
# The servers under test, each run by `--serve KIND` in a process of its own


async def centralita_call(session: AgiSession) -> None:
    """The 10-command call through the typed session API, as an IVR flow would issue it."""
    await session.answer()
    caller = await session.get_variable("CALLERID(num)")
    await session.stream_file("hello-world", "#")
    digits = await session.get_data("beep", 2000, 4)
    await session.set_variable("MENU_CHOICE", digits)
    await session.say_digits(digits)
    summary = await session.get_full_variable("${MENU_CHOICE}-${CALLERID(num)}")
    status = await session.channel_status()
    # Checked before the last two commands, so that a wrong value shows as an unfinished call.
    check_call(caller, digits, summary, status)
    await session.verbose(f"caller {caller} chose {digits}")
    await session.hangup()


async def serve_centralita(ready: Callable[[int], None]) -> None:
    server = FastAgiServer(lambda _env: centralita_call, host=HOST, port=0)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        ready(server.port)
        await stop.wait()


# The command lines the floor server sends: what FastAgiServer sends for the same call.
FLOOR_COMMANDS = (
    b"ANSWER\n",
    b"GET VARIABLE CALLERID(num)\n",
    b'STREAM FILE hello-world "#"\n',
    b"GET DATA beep 2000 4\n",
    b"SET VARIABLE MENU_CHOICE 23\n",
    b'SAY DIGITS 23 ""\n',
    b"GET FULL VARIABLE ${MENU_CHOICE}-${CALLERID(num)}\n",
    b"CHANNEL STATUS\n",
    b'VERBOSE "caller 5551234 chose 23" 1\n',
    b"HANGUP\n",
)


class FloorCall(asyncio.Protocol):
    """The least a FastAGI server can do: skip to the blank line, then one command per `200` line."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._in_environment = True
        self._step = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0:
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            if self._in_environment:
                if line:
                    continue
                self._in_environment = False
            elif not line.startswith(b"200 "):
                self._transport.abort()
                return
            else:
                self._step += 1
            if self._step == len(FLOOR_COMMANDS):
                self._transport.close()
                return
            self._transport.write(FLOOR_COMMANDS[self._step])


async def serve_floor(ready: Callable[[int], None]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorCall, HOST, 0, backlog=listen_backlog())
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        ready(server.sockets[0].getsockname()[1])
        await stop.wait()


def listen_backlog() -> int:
    """The accept queue FastAgiServer asks for (asyncio.start_server's default, 100, if it does not say),
    so that the other servers face a burst of connections with the same queue."""
    parameter = inspect.signature(FastAgiServer).parameters.get("backlog")
    if parameter is not None and isinstance(parameter.default, int):
        return parameter.default
    return 100


class Discard:
    """pyst2 writes a debug trace of every call to `stderr` (the env block, each command, each reply):
    it goes nowhere here, as it would on a server in production. pyst2 still formats it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def load_pyst2() -> Any:
    """`asterisk.agi` from the installed pyst2 package, never from a directory of this repository.

    The repo's `asterisk/` (Asterisk config, no __init__.py) could only ever be a namespace package, and
    a regular package anywhere on sys.path wins over one: still, check that the right one was found.
    """
    try:
        module: Any = importlib.import_module("asterisk.agi")
    except ImportError as exc:
        raise SystemExit(f"pyst2 is not installed ({exc}): pip install -e '.[dev]'") from None
    origin = Path(module.__file__ or "").resolve()
    if "site-packages" not in origin.parts and "dist-packages" not in origin.parts:
        raise SystemExit(f"`asterisk.agi` resolved to {origin}, not to the installed pyst2 package")
    # pyst2's AGI() installs a SIGHUP handler with signal.signal(), which raises ValueError in any thread
    # but the main one, i.e. in every call of a threaded server. The least invasive way round it is to
    # give pyst2's module (only it) a `signal` whose signal() does nothing: pyst2 itself and the process
    # are untouched, and nothing is lost, since Asterisk sends SIGHUP only to an AGI script it forked; a
    # FastAGI server hears of a hang-up on the socket (the `HANGUP` line, 511, or the socket closing).
    module.signal = types.SimpleNamespace(SIGHUP=signal.SIGHUP, signal=lambda _signum, _handler: None)
    return module


def serve_pyst2(ready: Callable[[int], None], *, forking: bool = False) -> None:
    agi_class = load_pyst2().AGI

    class Pyst2Call(socketserver.StreamRequestHandler):
        disable_nagle_algorithm = True  # as asyncio does for every TCP socket
        timeout = 10.0  # a silent Asterisk must not hold a thread for ever (pyst2's own FastAGI uses 5 s)

        def handle(self) -> None:
            # pyst2 writes str and flushes after each command; the socket file takes bytes.
            stdout = io.TextIOWrapper(cast(Any, self.wfile), encoding="utf-8", write_through=True)
            try:
                agi = agi_class(stdin=self.rfile, stdout=stdout, stderr=Discard())
                agi.answer()
                caller = agi.get_variable("CALLERID(num)")
                agi.stream_file("hello-world", "#")
                digits = agi.get_data("beep", 2000, 4)
                agi.set_variable("MENU_CHOICE", digits)
                agi.say_digits(digits)
                summary = agi.get_full_variable("${MENU_CHOICE}-${CALLERID(num)}")
                status = agi.channel_status()
                check_call(caller, digits, summary, status)
                agi.verbose(f"caller {caller} chose {digits}")
                agi.hangup()
            finally:
                stdout.detach()  # StreamRequestHandler.finish() flushes and closes the socket file

    base: type[socketserver.TCPServer] = (
        socketserver.ForkingTCPServer if forking else socketserver.ThreadingTCPServer
    )

    class Pyst2Server(base):  # type: ignore[valid-type,misc]
        allow_reuse_address = True
        daemon_threads = True
        request_queue_size = listen_backlog()  # the default, 5, would drop most of a burst of calls
        # ForkingMixIn stops accepting while 40 children run (pyst2's fastagi.py keeps that default):
        # lifted, so that 1,000 calls can be in progress and only the process per call is measured.
        max_children = 1_000_000

    with Pyst2Server((HOST, 0), Pyst2Call) as server:
        ready(server.server_address[1])
        server.serve_forever()


def serve(kind: str, core: int, loop: str, profile_to: str | None) -> int:
    """The `--serve` entry point: pin to `core`, listen on a free port, print `READY <port>`, serve
    until SIGTERM."""
    os.sched_setaffinity(0, {core})

    def ready(port: int) -> None:
        print(f"READY {port}", flush=True)

    if kind.startswith("pyst2"):
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with contextlib.suppress(SystemExit):
            serve_pyst2(ready, forking=kind == "pyst2-fork")
        return 0
    main = serve_centralita if kind == "centralita" else serve_floor
    profiler = cProfile.Profile() if profile_to else None
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        if profiler is not None:
            profiler.enable()
        runner.run(main(ready))
        if profiler is not None and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
    return 0


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if loop == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


def default_loop() -> str:
    """uvloop when installed, as `centralita serve` (uvicorn's loop factory) picks it."""
    try:
        importlib.import_module("uvloop")
    except ImportError:
        return "asyncio"
    return "uvloop"


# --------------------------------------------------------------------------------------------
# The load generator: simulated Asterisk connections


@dataclass
class Tally:
    """What one measurement saw. Rates and latencies count only the measured window."""

    window_start: float
    window_end: float
    # Seconds, of the commands read in the window, one list per step of the call (ANSWER first).
    latencies: list[list[float]] = field(default_factory=lambda: [[] for _ in CALL])
    connects: list[float] = field(default_factory=list)  # seconds, connect() of calls started in it
    commands_in_window: int = 0
    calls_in_window: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    failure_examples: list[str] = field(default_factory=list)

    def in_window(self, moment: float) -> bool:
        return self.window_start <= moment < self.window_end

    def finished(self, moment: float, error: str | None) -> None:
        if error is None:
            self.completed += 1
            if self.in_window(moment):
                self.calls_in_window += 1
            return
        self.failed += 1
        if len(self.failure_examples) < FAILURE_EXAMPLES:
            self.failure_examples.append(error)


class SimulatedCall(asyncio.Protocol):
    """One call as Asterisk makes it: the agi_* block, a reply per expected command, then wait for the
    server to close the socket (Asterisk never does). Any other command, or a close before HANGUP's reply
    was sent, fails the call."""

    def __init__(
        self,
        tally: Tally,
        environment: bytes,
        media_seconds: float,
        done: asyncio.Future[str | None],
        open_calls: set[SimulatedCall],
    ) -> None:
        self._tally = tally
        self._environment = environment
        self._media_seconds = media_seconds
        self._done = done
        self._open_calls = open_calls
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._step = 0
        self._sent_at = 0.0
        self._hung_up = False  # HANGUP's reply is sent: the server's close is the end of the call

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self._open_calls.add(self)
        self._sent_at = time.perf_counter()
        self._transport.write(self._environment)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\n")) >= 0 and not self._done.done():
            line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
            self._command(line)

    def _command(self, line: bytes) -> None:
        now = time.perf_counter()
        if self._step >= COMMANDS_PER_CALL:
            self.fail(f"command {line[:60]!r} after HANGUP")
            return
        step = CALL[self._step]
        if not step.matches(line):
            self.fail(f"command {self._step + 1}: expected {step.verb.decode()}, got {line[:60]!r}")
            return
        if self._tally.in_window(now):
            self._tally.commands_in_window += 1
            self._tally.latencies[self._step].append(now - self._sent_at)
        self._step += 1
        if step.media and self._media_seconds:
            asyncio.get_running_loop().call_later(
                random.uniform(0.5, 1.5) * self._media_seconds, self._reply, step.reply
            )
        else:
            self._reply(step.reply)

    def _reply(self, reply: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._sent_at = time.perf_counter()
        self._transport.write(reply)
        if self._step == COMMANDS_PER_CALL:
            self._hung_up = True

    def eof_received(self) -> bool:
        self._end(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        # After HANGUP's reply, a reset is a close too: the server closed with our `HANGUP` line unread.
        self._end(exc)
        self._open_calls.discard(self)

    def _end(self, exc: Exception | None) -> None:
        if self._hung_up:
            self._finish(None)
        else:
            why = f": {type(exc).__name__}: {exc}" if exc else ""
            self._finish(f"server closed the connection after {self._step} commands{why}")

    def fail(self, error: str) -> None:
        self._finish(error)
        if self._transport is not None:
            self._transport.abort()

    def _finish(self, error: str | None) -> None:
        if not self._done.done():
            self._done.set_result(error)


@dataclass(frozen=True)
class Load:
    mode: str
    concurrency: int
    seconds: float
    warmup: float
    media_seconds: float  # 0 for the saturation load
    drain_seconds: float

    @property
    def ramp(self) -> float:
        """Paced calls start spread over one call's length, so their prompts do not end in step."""
        return MEDIA_STEPS * self.media_seconds


def environment_template() -> tuple[bytes, bytes]:
    """The agi_* block of a call from "Alice" <5551234>, split where each call's uniqueid goes."""
    lines = environment_lines("ivr", callerid=CALLER, calleridname="Alice", uniqueid="\0")
    head, tail = b"".join(lines).split(b"\0")
    return head, tail


async def caller(
    port: int,
    load: Load,
    tally: Tally,
    open_calls: set[SimulatedCall],
    ids: itertools.count[int],
    delay: float,
) -> None:
    """One of the N lines: a call, and as soon as it ends the next, until the window closes."""
    loop = asyncio.get_running_loop()
    head, tail = environment_template()
    await asyncio.sleep(delay)
    while time.perf_counter() < tally.window_end:
        environment = head + f"1795537883.{next(ids)}".encode() + tail
        done: asyncio.Future[str | None] = loop.create_future()
        protocol = functools.partial(SimulatedCall, tally, environment, load.media_seconds, done, open_calls)
        tally.started += 1
        started = time.perf_counter()
        try:
            await loop.create_connection(protocol, HOST, port)
        except OSError as exc:
            tally.finished(time.perf_counter(), f"connect: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.01)  # a refusing server must not turn this into a busy loop
            continue
        if tally.in_window(started):
            tally.connects.append(time.perf_counter() - started)
        tally.finished(time.perf_counter(), await done)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU a process (all its threads) has used so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def core_ticks(core: int) -> tuple[int, int] | None:
    """(busy, total) ticks of one core since boot, whoever used them (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith(f"cpu{core} "):
                    ticks = [int(t) for t in line.split()[1:]]
                    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)
    except OSError:
        pass
    return None


def listen_overflows() -> int | None:
    """Connections the kernel dropped because a listening socket's accept queue was full (machine-wide)."""
    try:
        with open("/proc/net/netstat") as netstat:
            lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
        return int(lines[1][lines[0].index("ListenOverflows")])
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class Cpu:
    """CPU over the measured window, as fractions of one core."""

    server: float | None = None  # the server process (all its threads)
    generator: float | None = None  # this process
    # Other processes on the two cores: on a shared machine, what the figures were disturbed by.
    others_on_server_core: float | None = None
    others_on_generator_core: float | None = None


def others(before: tuple[int, int] | None, after: tuple[int, int] | None, ours: float | None) -> float | None:
    if before is None or after is None or ours is None or after[1] == before[1]:
        return None
    return round(max(0.0, (after[0] - before[0]) / (after[1] - before[1]) - ours), 3)


async def meter(pid: int, cores: tuple[int, int], tally: Tally, cpu: Cpu) -> None:
    await asyncio.sleep(max(0.0, tally.window_start - time.perf_counter()))
    server_before, generator_before = cpu_seconds(pid), time.process_time()
    cores_before = core_ticks(cores[0]), core_ticks(cores[1])
    await asyncio.sleep(max(0.0, tally.window_end - time.perf_counter()))
    server_after, generator_after = cpu_seconds(pid), time.process_time()
    cores_after = core_ticks(cores[0]), core_ticks(cores[1])
    span = tally.window_end - tally.window_start
    if server_before is not None and server_after is not None:
        cpu.server = round((server_after - server_before) / span, 3)
    cpu.generator = round((generator_after - generator_before) / span, 3)
    if cores[0] != cores[1]:
        cpu.others_on_server_core = others(cores_before[0], cores_after[0], cpu.server)
        cpu.others_on_generator_core = others(cores_before[1], cores_after[1], cpu.generator)


async def drive(
    port: int, load: Load, server_pid: int | None = None, cores: tuple[int, int] = (0, 0)
) -> tuple[Tally, Cpu]:
    """Run `load` against a FastAGI server on `port`: N callers, a warm-up, the measured window, then
    the calls in progress run to their end (or fail after `drain_seconds`)."""
    now = time.perf_counter()
    window_start = now + load.ramp + load.warmup
    tally = Tally(window_start=window_start, window_end=window_start + load.seconds)
    open_calls: set[SimulatedCall] = set()
    ids = itertools.count(1)
    cpu = Cpu()
    metering = asyncio.create_task(meter(server_pid, cores, tally, cpu)) if server_pid else None
    callers = [
        asyncio.create_task(caller(port, load, tally, open_calls, ids, load.ramp * i / load.concurrency))
        for i in range(load.concurrency)
    ]
    await asyncio.sleep(max(0.0, tally.window_end - time.perf_counter()))
    _, pending = await asyncio.wait(callers, timeout=load.drain_seconds + 2 * load.media_seconds)
    if pending:
        for call in list(open_calls):
            call.fail(f"no end within {load.drain_seconds:g} s of the end of the window")
        await asyncio.wait(pending, timeout=5)
    for task in callers:
        if not task.done():
            task.cancel()
            tally.failed += 1
    await asyncio.gather(*callers, return_exceptions=True)
    if metering is not None:
        await metering
    return tally, cpu


# --------------------------------------------------------------------------------------------
# One measurement: a server process, a load, the figures


@dataclass
class Run:
    server: str
    mode: str
    concurrency: int
    calls_per_s: float
    commands_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    latency_p99_ms_by_step: list[float | None]  # in the order of `settings.steps`: where the tail is
    connect_p99_ms: float | None
    calls_started: int
    calls_completed: int
    calls_failed: int
    failure_examples: list[str]
    server_cpu_busy: float | None  # of its one core
    generator_cpu_busy: float | None  # of its one core
    others_on_server_core: float | None  # CPU other processes took from the server's core
    others_on_generator_core: float | None
    listen_overflows: int | None  # accept-queue overflows during the run (machine-wide counter)
    server_peak_rss_mb: float | None
    window_seconds: float
    latency_samples: int


class ServerProcess:
    """`bench/agi_sessions.py --serve KIND` as a child process pinned to one core."""

    def __init__(self, kind: str, core: int, loop: str, profile_to: str | None) -> None:
        command = [sys.executable, __file__, "--serve", kind, "--server-core", str(core), "--loop", loop]
        if profile_to:
            command += ["--profile-to", profile_to]
        # Its logs join ours on stderr; its stdout carries only the READY line.
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sys.stderr)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"the {kind} server did not start (exit code {self.process.returncode})")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(
    runner: asyncio.Runner,
    kind: str,
    load: Load,
    *,
    cores: tuple[int, int],
    loop: str,
    profile_dir: str | None,
) -> Run:
    profile_to = None
    if profile_dir and not kind.startswith("pyst2"):  # cProfile sees one thread or one process
        profile_to = str(Path(profile_dir) / f"{kind}-{load.mode}-{load.concurrency}.pstats")
    server = ServerProcess(kind, cores[0], loop, profile_to)
    overflows_before = listen_overflows()
    try:
        tally, cpu = runner.run(drive(server.port, load, server.process.pid, cores))
        rss = peak_rss_mb(server.process.pid)
    finally:
        server.stop()
    overflows_after = listen_overflows()
    overflows = None
    if overflows_before is not None and overflows_after is not None:
        overflows = overflows_after - overflows_before
    if profile_to:
        log(f"  profile: {profile_to}")
    latencies = sorted(itertools.chain.from_iterable(tally.latencies))
    connects = sorted(tally.connects)

    def ms(values: list[float], fraction: float) -> float | None:
        return round(percentile(values, fraction) * 1000, 3) if values else None

    return Run(
        server=kind,
        mode=load.mode,
        concurrency=load.concurrency,
        calls_per_s=round(tally.calls_in_window / load.seconds, 1),
        commands_per_s=round(tally.commands_in_window / load.seconds, 1),
        latency_p50_ms=ms(latencies, 0.50),
        latency_p99_ms=ms(latencies, 0.99),
        latency_max_ms=ms(latencies, 1.0),
        latency_p99_ms_by_step=[ms(sorted(step), 0.99) for step in tally.latencies],
        connect_p99_ms=ms(connects, 0.99),
        calls_started=tally.started,
        calls_completed=tally.completed,
        calls_failed=tally.failed,
        failure_examples=tally.failure_examples,
        server_cpu_busy=cpu.server,
        generator_cpu_busy=cpu.generator,
        others_on_server_core=cpu.others_on_server_core,
        others_on_generator_core=cpu.others_on_generator_core,
        listen_overflows=overflows,
        server_peak_rss_mb=rss,
        window_seconds=load.seconds,
        latency_samples=len(latencies),
    )


# --------------------------------------------------------------------------------------------
# Report


def find(runs: Sequence[Run], server: str, mode: str, concurrency: int) -> Run | None:
    return next((r for r in runs if (r.server, r.mode, r.concurrency) == (server, mode, concurrency)), None)


def targets(runs: Sequence[Run], concurrency: int = 1000) -> dict[str, Any]:
    """The issue's targets at N = 1,000 (None when that measurement was not made)."""
    paced = find(runs, "centralita", "paced", concurrency)
    ours = find(runs, "centralita", "saturation", concurrency)
    p99 = paced.latency_p99_ms if paced else None

    def ratio_to(server: str) -> float | None:
        theirs = find(runs, server, "saturation", concurrency)
        if ours and theirs and theirs.calls_per_s:
            return round(ours.calls_per_s / theirs.calls_per_s, 2)
        return None

    ratio, fork_ratio = ratio_to("pyst2"), ratio_to("pyst2-fork")
    return {
        "concurrency": concurrency,
        "paced_p99_ms": p99,
        "paced_p99_target_ms": TARGET_P99_MS,
        "paced_p99_met": None if p99 is None else p99 <= TARGET_P99_MS,
        # pyst2's AGI class with a thread per call (a harness of ours, kinder to it than its own).
        "throughput_ratio_vs_pyst2": ratio,
        "throughput_ratio_target": TARGET_RATIO,
        "throughput_ratio_met": None if ratio is None else ratio >= TARGET_RATIO,
        # pyst2 served as its own fastagi.py does: a process per call.
        "throughput_ratio_vs_pyst2_fork": fork_ratio,
        "throughput_ratio_vs_pyst2_fork_met": None if fork_ratio is None else fork_ratio >= TARGET_RATIO,
    }


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def print_table(results: dict[str, Any]) -> None:
    settings = results["settings"]
    print(
        f"\nFastAGI benchmark: {COMMANDS_PER_CALL} commands a call; server on core {settings['server_core']}"
        f" ({settings['loop']} for asyncio servers), generator on core {settings['generator_core']}\n"
        f"machine: {results['machine']['cores']} cores, {results['machine']['cpu']}, "
        f"Python {results['machine']['python']}\n"
        f"window {settings['seconds']:g} s per measurement after {settings['warmup']:g} s of warm-up; "
        f"paced: media commands answered after {settings['media_ms']:g} ms +-50%; "
        f"listen backlog {settings['listen_backlog']}\n"
        "latency: from Asterisk writing a reply to reading the next command; CPU: fractions of one core;\n"
        "others: CPU other processes took on that core; overflows: connects dropped by a full accept queue\n"
    )

    def fmt(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    header = ("load", "N", "server", "calls/s", "cmds/s", "p50 ms", "p99 ms", "max ms", "connect p99",
              "srv CPU", "others", "gen CPU", "others", "overflows", "srv MB", "failed")  # fmt: skip
    rows = [
        (
            r.mode,
            f"{r.concurrency:,}",
            r.server,
            fmt(r.calls_per_s, ",.0f"),
            fmt(r.commands_per_s, ",.0f"),
            fmt(r.latency_p50_ms, ".2f"),
            fmt(r.latency_p99_ms, ".2f"),
            fmt(r.latency_max_ms, ".1f"),
            fmt(r.connect_p99_ms, ".2f"),
            fmt(r.server_cpu_busy, ".0%"),
            fmt(r.others_on_server_core, ".0%"),
            fmt(r.generator_cpu_busy, ".0%"),
            fmt(r.others_on_generator_core, ".0%"),
            fmt(r.listen_overflows, ","),
            fmt(r.server_peak_rss_mb, ".0f"),
            f"{r.calls_failed}/{r.calls_started}",
        )
        for r in (Run(**run) for run in results["runs"])
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print(
            "  ".join(
                cell.ljust(w) if i < 3 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for run in results["runs"]:
        if run["server"] == "floor":
            print(
                f"\ngenerator check (N = {run['concurrency']:,}): against the floor server it drove "
                f"{run['calls_per_s']:,.0f} calls/s with {fmt(run['generator_cpu_busy'], '.0%')} of its core"
            )
    target = results["targets"]
    print(f"\ntargets at N = {target['concurrency']:,}:")
    verdicts = {True: "ok", False: "MISSED", None: "not measured"}
    print(
        f"  paced p99 {fmt(target['paced_p99_ms'], '.2f')} ms, target <= {TARGET_P99_MS:g} ms: "
        f"{verdicts[target['paced_p99_met']]}"
    )
    print(
        f"  calls/s vs pyst2, a thread per call (saturation) "
        f"x{fmt(target['throughput_ratio_vs_pyst2'], '.2f')}, target >= x{TARGET_RATIO:g}: "
        f"{verdicts[target['throughput_ratio_met']]}"
    )
    print(
        f"  calls/s vs pyst2, a process per call as its fastagi.py serves (saturation) "
        f"x{fmt(target['throughput_ratio_vs_pyst2_fork'], '.2f')}, target >= x{TARGET_RATIO:g}: "
        f"{verdicts[target['throughput_ratio_vs_pyst2_fork_met']]}"
    )
    for run in results["runs"]:
        for example in run["failure_examples"]:
            print(f"  failed call ({run['server']}, {run['mode']}, N={run['concurrency']}): {example}")


# --------------------------------------------------------------------------------------------
# Main


def csv(kind: type[Any], allowed: Sequence[str] | None = None) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        items = [kind(item.strip()) for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError("give at least one value")
        if allowed is not None and (unknown := set(items) - set(allowed)):
            raise argparse.ArgumentTypeError(
                f"unknown: {', '.join(sorted(unknown))}; use {', '.join(allowed)}"
            )
        return items

    return parse


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    cores = sorted(os.sched_getaffinity(0))
    parser.add_argument("--json", action="store_true", help="print only one JSON object on stdout")
    parser.add_argument("--concurrency", type=csv(int), default=[100, 1000], help="N values [100,1000]")
    parser.add_argument("--servers", type=csv(str, SERVERS), default=list(SERVERS), help="[%(default)s]")
    parser.add_argument("--modes", type=csv(str, MODES), default=list(MODES), help="[%(default)s]")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run [%(default)s]")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the window [%(default)s]")
    parser.add_argument(
        "--media-ms", type=float, default=1000.0, help="paced: STREAM FILE/GET DATA/SAY DIGITS [%(default)s]"
    )
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="for calls after the window")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default=default_loop(), help="[%(default)s]")
    parser.add_argument("--server-core", type=int, default=cores[0], help="[%(default)s]")
    parser.add_argument("--generator-core", type=int, default=cores[-1], help="[%(default)s]")
    parser.add_argument("--profile-server", metavar="DIR", help="cProfile the asyncio servers into DIR")
    # Internal: how the benchmark starts the server under test in a process of its own.
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is None:
        if min(args.concurrency) < 1 or args.seconds <= 0 or args.warmup < 0 or args.media_ms < 0:
            parser.error("--concurrency must be >= 1, --seconds > 0, --warmup and --media-ms >= 0")
        if args.server_core == args.generator_core:
            log(f"warning: server and generator share core {args.server_core}: figures are NOT of the server")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {args.generator_core})
    if any(kind.startswith("pyst2") for kind in args.servers):
        load_pyst2()  # fail early, in this process, if pyst2 is missing or shadowed
    if args.profile_server:
        Path(args.profile_server).mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    with asyncio.Runner(loop_factory=loop_factory(default_loop())) as runner:
        for mode in args.modes:
            for concurrency in args.concurrency:
                for kind in args.servers:
                    if kind == "floor" and mode == "paced":
                        continue  # the floor is a capacity check; paced load does not probe it
                    load = Load(
                        mode=mode,
                        concurrency=concurrency,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        media_seconds=args.media_ms / 1000 if mode == "paced" else 0.0,
                        drain_seconds=args.drain_seconds,
                    )
                    log(f"{mode}, N = {concurrency:,}, {kind}…")
                    result = measure(
                        runner,
                        kind,
                        load,
                        cores=(args.server_core, args.generator_core),
                        loop=args.loop,
                        profile_dir=args.profile_server,
                    )
                    log(
                        f"  {result.calls_per_s:,.0f} calls/s, {result.commands_per_s:,.0f} commands/s, "
                        f"p50 {result.latency_p50_ms} ms, p99 {result.latency_p99_ms} ms, "
                        f"server CPU {result.server_cpu_busy}, generator CPU {result.generator_cpu_busy}, "
                        f"failed {result.calls_failed}/{result.calls_started}"
                    )
                    runs.append(result)
    return {
        "machine": machine(),
        "settings": {
            "concurrency": args.concurrency,
            "servers": args.servers,
            "modes": args.modes,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "media_ms": args.media_ms,
            "loop": args.loop,
            "server_core": args.server_core,
            "generator_core": args.generator_core,
            "commands_per_call": COMMANDS_PER_CALL,
            "steps": [step.verb.decode() for step in CALL],
            "listen_backlog": listen_backlog(),
            "latency": "simulated Asterisk: reply (or agi_* block) written -> next command line read",
        },
        "runs": [asdict(r) for r in runs],
        "targets": targets(runs, max(args.concurrency)),
        "failed_calls": sum(r.calls_failed for r in runs),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.server_core, args.loop, args.profile_to)
    results = run(args)
    if args.json:
        print(json.dumps(results))
    else:
        print_table(results)
    if results["failed_calls"]:
        log(f"{results['failed_calls']} calls failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
