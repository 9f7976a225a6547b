"""The `centralita` command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from centralita.asterisk_cli import asterisk_app
from centralita.container import Container, build
from centralita.demo_cli import demo_app
from centralita.models_cli import models_app
from centralita.prompts_cli import prompts_app
from centralita.recordings_cli import recordings_app
from centralita.settings_loading import settings_or_exit
from core import migrate
from core.auth import service as keys
from core.auth.roles import Role
from core.db import unit_of_work
from core.errors import DomainError
from core.settings import Settings
from voice.flows import flow_directories, load_catalogue
from voice.ivr.checks import FlowProblem
from voice.ivr.loader import FlowError, check_directory, load_flow
from voice.speech.recognition import RecognitionError

if TYPE_CHECKING:
    import uvicorn

    from centralita.container import AriServices, SpeechServices
    from dialer.supervisor import DialerSupervisor
    from routing.recording_retention import RetentionSchedule
    from voice.agi.server import FastAgiServer
    from voice.ivr.call_runner import CallRunner

app = typer.Typer(no_args_is_help=True, help="Centralita: a voice-first contact center.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys.")
flows_app = typer.Typer(no_args_is_help=True, help="IVR flows.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(flows_app, name="flows")
app.add_typer(prompts_app, name="prompts")
app.add_typer(models_app, name="models")
app.add_typer(asterisk_app, name="asterisk")
app.add_typer(demo_app, name="demo")
app.add_typer(recordings_app, name="recordings")

# How long `serve` lets running calls finish after Ctrl-C / SIGTERM before cutting them off.
DRAIN_SECONDS = 10.0


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # APScheduler logs every run of every job at INFO: two lines a second per running campaign.
    logging.getLogger("apscheduler.executors.default").setLevel(
        max(logging.WARNING, logging.getLogger().level)
    )


def _settings() -> Settings:
    return settings_or_exit()


def _container() -> Container:
    return build(_settings())


@contextlib.contextmanager
def _database() -> Iterator[Container]:
    """A container whose schema is up to date (unless CENTRALITA_AUTO_MIGRATE is off), closed after
    use; a domain error (an unknown key id, say) ends the command with its message, not a traceback."""
    container = _container()
    try:
        if container.settings.auto_migrate:
            container.migrate()
        yield container
    except DomainError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on [default: CENTRALITA_HOST or 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port [default: CENTRALITA_PORT or 8000]")] = None,
    agi_port: Annotated[
        int | None, typer.Option(help="FastAGI port [default: CENTRALITA_AGI_PORT or 4573]")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="processes, one per core [default: CENTRALITA_WORKERS or 1]"),
    ] = None,
) -> None:
    """Run the API (OpenAPI docs at /docs) and the FastAGI server that runs the IVR flows, in one
    process or, with --workers N, in N processes sharing both ports. Brings the database schema up
    to date first. Ctrl-C or SIGTERM stops them, letting calls in progress finish for a few seconds."""
    container = _container()
    settings = container.settings
    _configure_logging(settings)
    if settings.auto_migrate:
        container.migrate()  # once, before any worker starts
    processes = workers or settings.workers
    if processes == 1:
        _run_worker(container, host=host, port=port, agi_port=agi_port, reuse_port=False, ari=True)
        return
    # Each worker has its own live ACD (README, "Queues, agents and callbacks"): an agent's phone
    # answering a queued call may reach a worker that does not hold the call.
    logging.getLogger("centralita").warning(
        "serving with %d workers: each has its own live ACD, so calls in Centralita's queues and the "
        "agents' states are per worker; run one worker where Centralita routes calls to agents",
        processes,
    )
    container.close()  # each worker builds its own: connections must not cross processes
    raise typer.Exit(_supervise(processes, host=host, port=port, agi_port=agi_port))


def _run_worker(
    container: Container,
    *,
    host: str | None,
    port: int | None,
    agi_port: int | None,
    reuse_port: bool,
    ari: bool,
    worker: int = 0,
) -> None:
    """`worker`: this process's number (its AudioSocket port is the setting's plus it).
    `ari`: this process also runs the IVR over ARI (when CENTRALITA_ASTERISK_ARI_URL is set) and the
    dialer (CENTRALITA_DIALER_NETWORK). Only one process may: Asterisk keeps one event WebSocket per
    application (a second one replaces the first), and two dialers would dial the same contacts."""
    import uvicorn

    settings = container.settings
    log = logging.getLogger("centralita")
    catalogue = container.flows()
    for problem in catalogue.problems:
        log.error("IVR flow not served: %s", problem)
    log.info("IVR flows: %s", ", ".join(sorted(catalogue.flows)) or "none")
    api = container.api()
    config = uvicorn.Config(
        api,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    sockets = [_shared_socket(config.host, config.port)] if reuse_port else None
    runner = container.call_runner()
    try:
        speech = container.speech(worker=worker)
    except RecognitionError as exc:
        typer.echo(f"error: speech recognition: {exc}", err=True)
        raise typer.Exit(1) from None
    if speech is None:
        log.info("speech recognition: off (menus take keys only)")
    agi = container.agi_server(runner=runner, port=agi_port, reuse_port=reuse_port, speech=speech)
    ari_services = container.ari(runner=runner, speech=speech) if ari else None
    if ari_services is not None:
        log.info(
            "IVR over ARI: Stasis application %r at %s", settings.asterisk_ari_app, ari_services.stream.url
        )
    dialer = container.dialer(ari_services) if ari else None
    api.state.dialer = dialer  # the campaign stats read the live figures of the campaigns it runs
    if dialer is not None:
        log.info("dialer: %s network", settings.dialer_network)
    try:
        # uvicorn's loop factory: uvloop when installed, for the API and the FastAGI server alike.
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as event_loop:
            retention = container.recording_retention() if ari else None  # one process deletes
            event_loop.run(
                _serve(_api_server(config), agi, runner, sockets, ari_services, dialer, speech, retention)
            )
    except OSError as exc:
        typer.echo(f"error: cannot listen for FastAGI or AudioSocket calls: {exc}", err=True)
        raise typer.Exit(1) from None
    except RecognitionError as exc:
        typer.echo(f"error: speech recognition: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()


def _shared_socket(host: str, port: int) -> socket.socket:
    """A listening address that every worker binds (SO_REUSEPORT): the kernel spreads connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str | None, port: int | None, agi_port: int | None, index: int) -> None:
    """One of `serve --workers N`'s processes (started by multiprocessing, so at module level)."""
    os.setpgrp()  # a terminal's Ctrl-C reaches the supervisor alone, which stops each worker once
    settings = _settings()
    _configure_logging(settings)
    _run_worker(
        build(settings),
        host=host,
        port=port,
        agi_port=agi_port,
        reuse_port=True,
        ari=index == 0,
        worker=index,
    )


def _supervise(processes: int, *, host: str | None, port: int | None, agi_port: int | None) -> int:
    """Starts the workers and waits. Ctrl-C or SIGTERM is passed on once, as SIGTERM, so each worker
    drains its calls; a worker that dies on its own stops the others, and the exit code says so
    (a service manager restarts the whole)."""
    log = logging.getLogger("centralita")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker, args=(host, port, agi_port, i), name=f"centralita-worker-{i}")
        for i in range(processes)
    ]
    for process in workers:
        process.start()
    log.info("serving with %d worker processes: %s", processes, ", ".join(str(p.pid) for p in workers))
    stopping = threading.Event()

    def stop_all(*_: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        for process in workers:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    failed = False
    while any(process.is_alive() for process in workers):
        for process in workers:
            process.join(timeout=0.2)
            if process.exitcode is not None and not stopping.is_set():
                log.error(
                    "worker %s (pid %s) exited with %s; stopping", process.name, process.pid, process.exitcode
                )
                failed = True
                stop_all()
    # A worker still starting when the SIGTERM came ends by it (exit code -15): that is the stop we asked for.
    clean = (0, -signal.SIGTERM)
    return 1 if failed or any(process.exitcode not in clean for process in workers) else 0


def _api_server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn

    class ApiServer(uvicorn.Server):
        """uvicorn, minus its signal handling: `_serve` stops the API and the FastAGI server together."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return ApiServer(config)


async def _serve(
    api: uvicorn.Server,
    agi: FastAgiServer,
    runner: CallRunner,
    sockets: list[socket.socket] | None = None,
    ari: AriServices | None = None,
    dialer: DialerSupervisor | None = None,
    speech: SpeechServices | None = None,
    retention: RetentionSchedule | None = None,
) -> None:
    """The servers on one event loop (and the IVR over ARI, if any). The first Ctrl-C/SIGTERM stops new
    calls and requests and lets calls in progress finish for DRAIN_SECONDS; a second one stops the API
    at once."""
    loop = asyncio.get_running_loop()
    if speech is not None:
        await speech.start()  # before FastAGI: a call must never ask a listener that is not there
        log = logging.getLogger("centralita")
        where = "no AudioSocket"
        if speech.audiosocket is not None:
            where = f"AudioSocket at {speech.listener.address}"
        if speech.listener.recorded is not None:
            where += f"; recorded turns in {speech.listener.recorded.mount.local_dir}"
        log.info("speech recognition: %s; %s", speech.pool.spec.name, where)
    await agi.start()  # first, so a taken AGI port fails before the API says it is up
    events = await ari.start() if ari is not None else None
    if events is not None:
        events.add_done_callback(_ari_stream_ended)
    if dialer is not None:
        await dialer.start()
    if retention is not None:
        retention.start()  # the recording retention job, once a day
    stopping: list[asyncio.Task[None]] = []

    async def stop_calls() -> None:
        if dialer is not None:
            await dialer.stop()  # no new campaign calls; those in progress finish
        await asyncio.gather(
            agi.stop(grace_seconds=DRAIN_SECONDS), *([ari.stop(DRAIN_SECONDS)] if ari is not None else [])
        )
        if speech is not None:
            await speech.stop(grace_seconds=1.0)  # the calls that listened have ended with FastAGI's

    def on_signal() -> None:
        if stopping:
            api.force_exit = True
            return
        api.should_exit = True
        stopping.append(asyncio.create_task(stop_calls()))

    handled = [sig for sig in (signal.SIGINT, signal.SIGTERM) if _add_signal_handler(loop, sig, on_signal)]
    try:
        await api.serve(sockets=sockets)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if stopping:
            await stopping[0]
        else:
            await stop_calls()
        if events is not None:
            await asyncio.gather(events, return_exceptions=True)
        await runner.drain(timeout=DRAIN_SECONDS)
        if retention is not None:
            await retention.stop()


def _ari_stream_ended(task: asyncio.Task[None]) -> None:
    """The event stream ends only when stopped, or when Asterisk refuses the credentials: then the IVR
    over ARI takes no calls (Stasis() fails and the dialplan's fallback runs) while FastAGI goes on."""
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("centralita").error("IVR over ARI stopped: %s", task.exception())


def _add_signal_handler(
    loop: asyncio.AbstractEventLoop, sig: signal.Signals, handler: Callable[[], None]
) -> bool:
    try:
        loop.add_signal_handler(sig, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no such support
        return False
    return True


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply schema migrations to CENTRALITA_DATABASE_URL."""
    container = _container()
    migrate.upgrade(container.engine, revision)
    typer.echo(
        f"database at revision {revision}: {container.engine.url.render_as_string(hide_password=True)}"
    )
    container.close()


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="what the key may do")],
    name: Annotated[str | None, typer.Option(help="who or what uses it [default: the role]")] = None,
) -> None:
    """Make an API key. The key is printed once, alone on the last line; only its hash is kept."""
    with _database() as container, unit_of_work(container.session_factory) as db:
        key, plain = keys.create_key(db=db, role=role, name=name or f"{role.value} key")
        typer.echo(f"created key {key.id} ({key.role}, {key.name!r}); store it now, it is not shown again:")
    typer.echo(plain)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never the keys themselves)."""
    with _database() as container, container.session_factory() as db:
        for key in keys.list_keys(db=db):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            typer.echo(f"{key.id}\t{key.prefix}…\t{key.role}\t{state}\t{key.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke an API key (other running nodes stop accepting it within CENTRALITA_API_KEY_CACHE_SECONDS)."""
    with _database() as container, unit_of_work(container.session_factory) as db:
        keys.revoke_key(db=db, key_id=key_id)
    typer.echo(f"revoked key {key_id}")


@flows_app.command("list")
def flows_list() -> None:
    """The IVR flows this installation serves, one a line: name, version, languages, file."""
    settings = _settings()
    catalogue = load_catalogue(flow_directories(settings.flows_dir, settings.extra_flows_dirs))
    for name in sorted(catalogue.flows):
        flow = catalogue.flows[name]
        typer.echo(f"{name}\t{flow.version}\t{','.join(flow.languages)}\t{catalogue.paths[name]}")
    for problem in catalogue.problems:
        typer.echo(f"warning: not served: {problem}", err=True)


@flows_app.command("validate")
def flows_validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="flow files or directories [default: the configured flow directories]"),
    ] = None,
) -> None:
    """Check flow files; print every problem (file, node, field) and exit 1 if there is any."""
    if not paths:
        settings = _settings()
        paths = flow_directories(settings.flows_dir, settings.extra_flows_dirs)
    problems: list[FlowProblem] = []
    checked = 0
    for path in paths:
        if path.is_dir():
            flows, found = check_directory(path)
            checked += len(flows)
            problems += found
        else:
            try:
                load_flow(path)
                checked += 1
            except FlowError as exc:
                problems += exc.problems
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{checked} flows, no problems")


@app.command()
def call(
    flow: Annotated[str, typer.Argument(help="the flow to call, as in agi://host:port/<flow>")],
    caller: Annotated[
        str | None, typer.Option("--from", help="the caller's number [default: withheld]")
    ] = None,
    called: Annotated[str | None, typer.Option("--to", help="the number dialled")] = None,
    keys: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="keys or words, one entry per question: '1,say:billing please,#' ('-' or empty: "
            "silence; 'say[en-gb]:...' picks an espeak-ng voice); the caller hangs up after the last. "
            "Without it, asks at the console.",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="FastAGI server [default: CENTRALITA_AGI_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="FastAGI port [default: CENTRALITA_AGI_PORT]")] = None,
    handoffs_fail: Annotated[
        bool, typer.Option("--handoffs-fail", help="queues have no agents and transfers fail")
    ] = False,
) -> None:
    """Call an IVR flow from the console, the way Asterisk calls the FastAGI server, and hear it."""
    from voice.console_caller import InteractiveKeypad, Keypad, ScriptedKeypad, place_call
    from voice.prompts import prompt_texts

    settings = _settings()
    keypad: Keypad
    if keys is not None:
        try:
            keypad = ScriptedKeypad.parse(keys)
        except ValueError as exc:
            typer.echo(f"error: --input: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        keypad = InteractiveKeypad(_read_line)
    catalogue = load_catalogue(flow_directories(settings.flows_dir, settings.extra_flows_dirs))
    target_host = host or settings.agi_host
    if target_host in ("0.0.0.0", "::", ""):
        target_host = "127.0.0.1"
    target_port = settings.agi_port if port is None else port
    typer.echo(f"calling {flow} at {target_host}:{target_port} from {caller or 'a withheld number'}")
    try:
        result = asyncio.run(
            place_call(
                target_host,
                target_port,
                flow,
                keypad=keypad,
                caller=caller,
                called=called,
                prompts=prompt_texts(catalogue.flows.values()),
                handoffs_fail=handoffs_fail,
                say=typer.echo,
            )
        )
    except OSError as exc:
        typer.echo(f"error: cannot reach the FastAGI server at {target_host}:{target_port}: {exc}", err=True)
        raise typer.Exit(1) from None
    if not result.closed_by_server:
        typer.echo("error: the call ended but the server left the connection open", err=True)
        raise typer.Exit(1)
    typer.echo(f"call {result.uniqueid} ended ({result.ended_by or 'by the server'})")


async def _read_line(prompt: str) -> str | None:
    """A line from the console, None at its end. Read on a daemon thread so that Ctrl-C ends the call
    at once instead of waiting for the line to be finished."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def deliver(line: str | None) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        try:
            line: str | None = input(prompt)
        except (EOFError, OSError):
            line = None
        with contextlib.suppress(RuntimeError):  # the call ended (Ctrl-C) while the line was typed
            loop.call_soon_threadsafe(deliver, line)

    threading.Thread(target=read, name="console keys", daemon=True).start()
    return await answer


def main() -> None:
    app()
