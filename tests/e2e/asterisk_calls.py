"""Placing calls through a real Asterisk for the end-to-end tests, with the rendered dialplan's contexts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from served import http, run_cli

from core.settings import Settings
from voice.ami.client import AmiClient
from voice.ami.events import AGIExecStart, AmiEvent, Hangup
from voice.ari.client import AriClient
from voice.ari.events import AriEvent
from voice.ari.events_stream import AriEventStream
from voice.ari.router import AriRouter

INBOUND = "centralita-inbound"  # the trunk's context: a number runs its flow over FastAGI
INBOUND_ARI = "centralita-inbound-ari"  # the alternative: the number enters the ARI application
TEST_CALLEE = "centralita-test-callee"
# An agent's phone for the dialer's tests: Local/<extension>@centralita-test-agent rings 1 s and answers.
TEST_AGENT = "centralita-test-agent"
# Numbers for whole campaigns: Local/<digits>@centralita-test-numbers behaves as its last digit says
# (1-5 a person, 6-7 an answering machine, 8 busy, 9 no answer, 0 congested).
TEST_NUMBERS = "centralita-test-numbers"
# A phone that answers at once and stays on the line; the test plays its keys (AMI PlayDTMF).
PHONE = f"Local/phone@{TEST_CALLEE}"
BANCO_DID = "912345678"  # rendered with --did 912345678=banco_es (asterisk/README.md)

E = TypeVar("E", bound=AriEvent)


def ari_base_url(settings: Settings) -> str:
    """AriClient and AriEventStream take Asterisk's HTTP server; the setting may name its /ari path."""
    assert settings.asterisk_ari_url is not None
    url = settings.asterisk_ari_url.rstrip("/")
    return url[: -len("/ari")] if url.endswith("/ari") else url


def ami_client(settings: Settings, *, secret: str | None = None) -> AmiClient:
    assert settings.asterisk_ami_host is not None
    return AmiClient(
        settings.asterisk_ami_host,
        settings.asterisk_ami_port,
        username=settings.asterisk_ami_user,
        secret=settings.asterisk_ami_password if secret is None else secret,
        ping_interval=None,
    )


def agi_address(env: dict[str, str]) -> str:
    """host:port of the FastAGI server under test, as the dialplan's CENTRALITA_AGI variable."""
    host = env["CENTRALITA_AGI_HOST"]
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"[{host}]:{env['CENTRALITA_AGI_PORT']}" if ":" in host else f"{host}:{env['CENTRALITA_AGI_PORT']}"


@dataclass
class Caller:
    """Presses keys when the IVR asks for them, as a person would: the next key of `keys` when the
    IVR's channel starts collecting digits (AGI `GET DATA`), `#` a moment after a recording starts.

    The IVR runs on the `;1` half of Local/phone@centralita-test-callee; the keys are played on the
    `;2` half, which sends them across as DTMF."""

    ami: AmiClient
    keys: Sequence[str]
    commands: list[str] = field(default_factory=list)  # every AGI command the IVR sent, in order
    pressed: list[str] = field(default_factory=list)
    linkedid: str | None = None
    channel: str | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    problems: list[str] = field(default_factory=list)

    def on_event(self, event: AmiEvent) -> None:
        if isinstance(event, AGIExecStart) and event.channel.startswith(f"{PHONE}-"):
            if self.channel is None:
                self.channel, self.linkedid = event.channel, event.linkedid
            if event.channel != self.channel:
                return
            self.commands.append(event.command)
            verb = event.command.upper()
            if verb.startswith("GET DATA"):
                if len(self.pressed) < len(self.keys):
                    self._press(self.keys[len(self.pressed)], delay=0.3)
            elif verb.startswith("RECORD FILE"):
                self._press("#", delay=1.5)  # after the beep: a caller who has nothing to say
        elif isinstance(event, Hangup) and event.channel == self.channel:
            self.finished.set()

    def _press(self, key: str, *, delay: float) -> None:
        self.pressed.append(key)
        asyncio.get_running_loop().create_task(self._play(key, delay))

    async def _play(self, key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        assert self.channel is not None
        other_half = self.channel[: -len(";1")] + ";2"
        try:
            await self.ami.send_action("PlayDTMF", {"Channel": other_half, "Digit": key, "Duration": 250})
        except Exception as exc:  # reported by the test: a handler's failure is only logged
            self.problems.append(f"PlayDTMF {key} on {other_half}: {exc}")


async def hang_up_leftovers(ami: AmiClient, prefix: str) -> None:
    """A failed test must not leave its calls running on a shared Asterisk."""
    with contextlib.suppress(Exception):
        for channel in await ami.core_show_channels():
            if channel.channel.startswith(prefix):
                with contextlib.suppress(Exception):
                    await ami.hangup(channel.channel)


class AgentEvents:
    """An agent's event stream (`GET /api/v1/agents/{id}/events`, Server-Sent Events) as it arrives:
    `agent.state` first, then `agent.state_changed` and `agent.call_offered`, each as its payload with
    the `topic`."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []  # every event, in arrival order
        self._unread: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()

    async def add(self, event: dict[str, Any]) -> None:
        async with self._arrived:
            self.seen.append(event)
            self._unread.append(event)
            self._arrived.notify_all()

    async def next(
        self, topic: str, *, where: Callable[[dict[str, Any]], bool] | None = None, seconds: float = 20
    ) -> dict[str, Any]:
        """The first event of `topic` (for which `where` holds, if given) not taken before."""

        def take() -> dict[str, Any] | None:
            for event in self._unread:
                if event["topic"] == topic and (where is None or where(event)):
                    self._unread.remove(event)
                    return event
            return None

        try:
            async with asyncio.timeout(seconds), self._arrived:
                while (match := take()) is None:
                    await self._arrived.wait()
                return match
        except TimeoutError:
            raise AssertionError(
                f"no {topic} within {seconds:g} s; the agent's events: {self.seen}"
            ) from None

    async def state(self, state: str, *, seconds: float = 20) -> dict[str, Any]:
        """The next change of the agent's state to `state`."""
        return await self.next("agent.state_changed", where=lambda e: e["state"] == state, seconds=seconds)


@contextlib.asynccontextmanager
async def agent_events(base: str, key: str, agent_id: int) -> AsyncIterator[AgentEvents]:
    """The agent's event stream, read from the moment its first event (`agent.state`) has come."""
    events = AgentEvents()
    connected = asyncio.Event()

    async def read(client: httpx.AsyncClient) -> None:
        url = f"{base}/api/v1/agents/{agent_id}/events"
        headers = {"Authorization": f"Bearer {key}"}
        async with client.stream("GET", url, headers=headers, params={"keep_alive": 1}) as response:
            response.raise_for_status()
            topic, data = "", ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    topic = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = line[len("data: ") :]
                elif not line and data:
                    await events.add({"topic": topic, **json.loads(data)["payload"]})
                    topic, data = "", ""
                    connected.set()

    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client:
        reader = asyncio.create_task(read(client))
        first = asyncio.ensure_future(connected.wait())
        try:
            done, _ = await asyncio.wait({reader, first}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                reader.result()  # raises what went wrong
                raise AssertionError("the agent's event stream ended at once")
            assert first in done, "the agent's event stream sent nothing within 10 s"
            yield events
        finally:
            first.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


class AriEvents:
    """The application's events in arrival order, waited for by type and condition."""

    def __init__(self) -> None:
        self.seen: list[AriEvent] = []
        self._arrived = asyncio.Condition()

    async def add(self, event: AriEvent) -> None:
        async with self._arrived:
            self.seen.append(event)
            self._arrived.notify_all()

    async def next(self, kind: type[E], *, where: str | None = None, seconds: float = 10) -> E:
        """The first event of `kind` (about channel `where`, if given) not taken before."""

        def take() -> E | None:
            for event in self.seen:
                if isinstance(event, kind) and (where is None or channel_of(event) == where):
                    self.seen.remove(event)
                    return event
            return None

        async with asyncio.timeout(seconds), self._arrived:
            while (match := take()) is None:
                await self._arrived.wait()
            return match


def channel_of(event: AriEvent) -> str | None:
    channel = getattr(event, "channel", None)
    if channel is not None:
        return str(channel.id)
    playback = getattr(event, "playback", None)
    return playback.channel_id if playback is not None else None


@contextlib.asynccontextmanager
async def stasis_app(settings: Settings) -> AsyncIterator[tuple[str, AriClient, AriEvents]]:
    """A Stasis application of this test's own (so a running Centralita never sees its calls), its
    event stream connected, and an ARI client."""
    app = f"{settings.asterisk_ari_app}-e2e-{uuid.uuid4().hex[:8]}"
    base = ari_base_url(settings)
    events = AriEvents()
    router = AriRouter()
    router.subscribe(events.add, application=app)
    stream = AriEventStream(
        base, [app], settings.asterisk_ari_user, settings.asterisk_ari_password, router, ping_interval=None
    )
    task = asyncio.create_task(stream.run())
    try:
        async with asyncio.timeout(10):
            await stream.wait_connected()
        async with AriClient(base, settings.asterisk_ari_user, settings.asterisk_ari_password) as ari:
            yield app, ari, events
    finally:
        await stream.stop()
        await task


# --- the service under test, over its API ---------------------------------------------------------------


def admin_key(env: dict[str, str], cwd: Path) -> str:
    """A new admin key of the service that `env` configures."""
    created = run_cli("keys", "create", "--role", "admin", env=env, cwd=cwd)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1].split()[-1]


def answering_banco_with(env: dict[str, str], tmp_path: Path, flow: str) -> dict[str, str]:
    """The environment of a service that answers the banco_es number (BANCO_DID) with `flow` (YAML named
    banco_es) instead of the shipped one: a flow in an extra directory replaces a same-named one, so a
    test's call comes in through the rendered inbound dialplan like any other."""
    flows = tmp_path / "flows"
    flows.mkdir(exist_ok=True)
    (flows / "banco_es.yaml").write_text(flow)
    return env | {"CENTRALITA_EXTRA_FLOWS_DIRS": str(flows)}


def finished_call(base: str, key: str, phone: str, *, seconds: float = 20) -> dict[str, Any]:
    """The caller's one call on their timeline, with its steps, once it has ended (the journal writes it
    from its own thread)."""
    deadline = time.monotonic() + seconds
    while True:
        status, found = http("GET", f"{base}/api/v1/customers/lookup?phone={urllib.parse.quote(phone)}", key)
        items: list[dict[str, Any]] = []
        if status == 200:
            path = f"/api/v1/customers/{found['customer']['id']}/timeline?include=touchpoints"
            status, page = http("GET", f"{base}{path}", key)
            assert status == 200, page
            items = page["items"]
        else:
            assert status == 404, found
        if items and items[0]["ended_at"] is not None:
            assert len(items) == 1, items
            return dict(items[0])
        assert time.monotonic() < deadline, f"no finished call on the timeline: {items}"
        time.sleep(0.2)
