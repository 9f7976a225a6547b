"""The dialer's real call network against a real Asterisk: calls originated over ARI to the rendered
`centralita-test-callee` context, where a "person" answers with a short tone and a "machine" with a long
one, so that AMD and the 2-second rule meet real audio; busy, unanswered and congested lines; an agent
(`centralita-test-agent`) bridged to the call; the abandoned-call message; an Asterisk that cannot be
reached. Each test uses a Stasis application of its own, so a running Centralita never sees its calls."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from asterisk_calls import TEST_AGENT, TEST_CALLEE, ari_base_url
from served import free_port

from core.settings import Settings
from dialer.ari_network import AgentNotConnected, AriCallNetwork
from dialer.call_network import AmdVerdict, CallEnd, CallRequest, NetworkUnavailable, PlacedCall
from voice.ari.client import AriClient
from voice.ari.errors import AriError, AriNotFound
from voice.ari.events_stream import AriEventStream
from voice.ari.router import AriRouter

CAMPAIGN_CALLER_ID = "+34910000000"


@dataclass
class Call:
    """What the network reported about one call, with the monotonic time of each report."""

    placed_at: float
    steps: list[tuple[str, object, float]] = field(default_factory=list)
    cause: str = ""
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def names(self) -> list[str]:
        return [name for name, _, _ in self.steps]

    def at(self, name: str) -> float:
        """Seconds from placing the call to the first `name` report."""
        return next(when for step, _, when in self.steps if step == name) - self.placed_at

    def detail(self, name: str) -> object:
        return next(detail for step, detail, _ in self.steps if step == name)


class Runner:
    """The campaign runner's side of the port, reduced: it records, and answers a greeting the way the
    test asks (`on_greeting`)."""

    def __init__(self) -> None:
        self.calls: dict[int, Call] = {}
        self.on_greeting: Callable[[PlacedCall, AmdVerdict], Awaitable[None]] | None = None

    def refs(self) -> list[str]:
        """The channel ids of the calls placed."""
        return [detail.call_ref for call in self.calls.values() for name, detail, _ in call.steps
                if name == "placed" and isinstance(detail, PlacedCall)]  # fmt: skip

    def expect(self, attempt: int) -> Call:
        self.calls[attempt] = Call(time.monotonic())
        return self.calls[attempt]

    def note(self, call: PlacedCall, name: str, detail: object = None) -> None:
        self.calls[call.attempt_id].steps.append((name, detail, time.monotonic()))

    async def answered(self, call: PlacedCall, at: datetime) -> None:
        self.note(call, "answered")

    async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None:
        self.note(call, "greeting_ended", verdict)
        if self.on_greeting is not None:
            await self.on_greeting(call, verdict)

    async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None:
        self.note(call, "ended", how)
        self.calls[call.attempt_id].cause = cause
        self.calls[call.attempt_id].ended.set()


@dataclass
class Dialer:
    network: AriCallNetwork
    ari: AriClient
    router: AriRouter
    runner: Runner
    app: str

    async def place(self, attempt: int, callee: str, *, amd: bool = True, ring_timeout_s: int = 15) -> Call:
        call = self.runner.expect(attempt)
        request = CallRequest(attempt, callee, CAMPAIGN_CALLER_ID, ring_timeout_s, amd, campaign_id=1)
        placed = await self.network.place(request, self.runner)
        call.steps.append(("placed", placed, time.monotonic()))
        return call

    async def channels(self) -> list[str]:
        """This test's channels (callees, agents, their Local halves) still up in Asterisk."""
        refs = tuple(self.runner.refs())
        return [
            channel.id for channel in await self.ari.list_channels() if refs and channel.id.startswith(refs)
        ]


@asynccontextmanager
async def dialer(settings: Settings, **options: Any) -> AsyncIterator[Dialer]:
    """A network on an application of this test's own, its event stream connected; afterwards no call,
    no router subscription and no channel of the test may be left."""
    app = f"{settings.asterisk_ari_app}-e2e-dialer-{uuid.uuid4().hex[:8]}"
    base = ari_base_url(settings)
    router = AriRouter()
    runner = Runner()
    async with AriClient(base, settings.asterisk_ari_user, settings.asterisk_ari_password) as ari:
        network = AriCallNetwork(
            ari,
            router,
            app=app,
            endpoint_template=options.pop("endpoint_template", f"Local/{{number}}@{TEST_CALLEE}"),
            **options,
        )
        stream = AriEventStream(
            base,
            [app],
            settings.asterisk_ari_user,
            settings.asterisk_ari_password,
            router,
            on_connect=network.resync,
            ping_interval=None,
        )
        task = asyncio.create_task(stream.run())
        try:
            async with asyncio.timeout(10):
                await stream.wait_connected()
            yield Dialer(network, ari, router, runner, app)
            async with asyncio.timeout(10):  # the last events (ChannelDestroyed of the agents) may lag
                while network.active_calls or router.watched_channels:
                    await asyncio.sleep(0.05)
        finally:
            with contextlib.suppress(Exception):
                await network.close(grace_seconds=5)
            await stream.stop()
            await task
            await hang_up_test_channels(ari, runner)


async def hang_up_test_channels(ari: AriClient, runner: Runner) -> None:
    """A failed test must not leave its calls running on a shared Asterisk."""
    refs = tuple(runner.refs())
    if not refs:
        return
    with contextlib.suppress(AriError):
        for channel in await ari.list_channels():
            if channel.id.startswith(refs):
                with contextlib.suppress(AriError):
                    await ari.hangup(channel.id)


def run(main: Callable[[], Awaitable[None]], seconds: float = 90) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(seconds):
            await main()

    asyncio.run(bounded())


async def wait_ended(*calls: Call, seconds: float = 40) -> None:
    async with asyncio.timeout(seconds):
        await asyncio.gather(*(call.ended.wait() for call in calls))


def placed(call: Call) -> PlacedCall:
    detail = call.detail("placed")
    assert isinstance(detail, PlacedCall)
    return detail


# --- AMD on real audio ---------------------------------------------------------------------------------


def test_amd_tells_a_person_from_a_machine_and_each_call_reports_in_order(settings: Settings) -> None:
    async def main() -> None:
        async with dialer(settings) as d:

            async def as_the_runner(call: PlacedCall, verdict: AmdVerdict) -> None:
                # No agent in this test: a machine is hung up on at once, a person a moment later.
                if verdict is not AmdVerdict.MACHINE:
                    await asyncio.sleep(0.5)
                await d.network.hang_up(call)

            d.runner.on_greeting = as_the_runner
            person = await d.place(1, "human")
            machine = await d.place(2, "machine")
            unsure = await d.place(3, "human", amd=False)
            await wait_ended(person, machine, unsure)

            for call in (person, machine, unsure):
                assert call.names() == ["placed", "answered", "greeting_ended", "ended"], call.steps
                assert call.detail("ended") is CallEnd.COMPLETED, call.cause
            assert person.detail("greeting_ended") is AmdVerdict.HUMAN
            assert machine.detail("greeting_ended") is AmdVerdict.MACHINE
            assert unsure.detail("greeting_ended") is AmdVerdict.UNSURE
            # The callee context answers after 2 s; a person's "hello" (0.8 s) and the silence after it
            # (amd.conf after_greeting_silence 0.8 s) end the greeting; AMD off ends it at the answer.
            for call in (person, machine, unsure):
                assert 1.8 <= call.at("answered") <= 4.0, call.steps
            assert 1.2 <= person.at("greeting_ended") - person.at("answered") <= 3.5, person.steps
            assert machine.at("greeting_ended") - machine.at("answered") <= 3.5, machine.steps
            assert unsure.at("greeting_ended") - unsure.at("answered") < 0.2, unsure.steps
            print(
                "\nAMD on real audio: answered after "
                + ", ".join(f"{c.at('answered'):.2f}s" for c in (person, machine, unsure))
                + f"; greeting ended {person.at('greeting_ended') - person.at('answered'):.2f}s after the "
                f"answer (person), {machine.at('greeting_ended') - machine.at('answered'):.2f}s (machine)"
            )
            assert "16" in person.cause and "16" in machine.cause
            assert await d.channels() == []

    run(main)


# --- lines that do not answer ------------------------------------------------------------------------


def test_busy_unanswered_congested_and_unknown_lines_end_as_such(settings: Settings) -> None:
    async def main() -> None:
        async with dialer(settings) as d:
            busy = await d.place(1, "busy")
            congested = await d.place(2, "congested")
            nowhere = await d.place(3, "no-such-extension")
            unanswered = await d.place(4, "noanswer", ring_timeout_s=15)
            await wait_ended(busy, congested, nowhere, unanswered)

            for call in (busy, congested, nowhere, unanswered):
                assert call.names() == ["placed", "ended"], call.steps
            assert busy.detail("ended") is CallEnd.BUSY, busy.cause
            assert "BUSY" in busy.cause
            assert congested.detail("ended") is CallEnd.FAILED and "CONGESTION" in congested.cause
            assert nowhere.detail("ended") is CallEnd.FAILED, nowhere.cause
            assert unanswered.detail("ended") is CallEnd.NO_ANSWER, unanswered.cause
            assert unanswered.cause.startswith("19 ")
            assert 14.5 <= unanswered.at("ended") <= 17, unanswered.steps  # the ring time-out
            assert busy.at("ended") < 2 and congested.at("ended") < 2

    run(main)


def test_a_channel_asterisk_cannot_make_fails_that_call(settings: Settings) -> None:
    async def main() -> None:
        async with dialer(settings, endpoint_template="NoSuchTechnology/{number}") as d:
            call = await d.place(1, "human")
            await wait_ended(call, seconds=5)
            assert call.names() == ["placed", "ended"]
            assert call.detail("ended") is CallEnd.FAILED
            assert call.cause.startswith("originate refused"), call.cause

    run(main)


# --- an agent ------------------------------------------------------------------------------------------


def test_a_person_is_bridged_to_the_agent_and_when_the_agent_hangs_up_the_call_ends(
    settings: Settings,
) -> None:
    async def main() -> None:
        async with dialer(settings) as d:
            connected: dict[int, float] = {}
            agent = f"Local/1001@{TEST_AGENT}"

            async def connect(call: PlacedCall, verdict: AmdVerdict) -> None:
                assert verdict is AmdVerdict.HUMAN
                await d.network.connect(call, agent)
                connected[call.attempt_id] = time.monotonic()

            d.runner.on_greeting = connect
            call = await d.place(1, "human")
            async with asyncio.timeout(20):
                while 1 not in connected:
                    await asyncio.sleep(0.05)
            ref = placed(call).call_ref
            wait = connected[1] - call.placed_at - call.at("greeting_ended")
            print(
                f"\nagent connected {wait:.2f}s after the end of the greeting (the agent's phone rings 1 s)"
            )
            assert wait < 2.0  # within the legal window, with this agent's 1 s of ringing

            bridges = [b for b in await d.ari.request("GET", "/bridges") if ref in b["channels"]]
            assert len(bridges) == 1 and len(bridges[0]["channels"]) == 2, bridges
            agent_channel = next(c for c in bridges[0]["channels"] if c != ref)
            assert agent_channel.startswith(f"{ref}-agent")

            # The agent's phone hangs up (the far half of its Local channel).
            await d.ari.hangup(f"{agent_channel};2")
            await wait_ended(call, seconds=10)
            assert call.names() == ["placed", "answered", "greeting_ended", "ended"]
            assert call.detail("ended") is CallEnd.COMPLETED
            with pytest.raises(AriNotFound):
                await d.ari.get_bridge(bridges[0]["id"])
            assert await d.channels() == []

    run(main)


def test_when_the_callee_hangs_up_the_agent_is_hung_up_too(settings: Settings) -> None:
    async def main() -> None:
        async with dialer(settings) as d:
            connected = asyncio.Event()

            async def connect(call: PlacedCall, verdict: AmdVerdict) -> None:
                await d.network.connect(call, f"Local/1002@{TEST_AGENT}")
                connected.set()

            d.runner.on_greeting = connect
            call = await d.place(1, "human", amd=False)
            async with asyncio.timeout(20):
                await connected.wait()
            ref = placed(call).call_ref
            agent_channel = f"{ref}-agent-1"
            await d.ari.get_channel(agent_channel)  # up, in the bridge
            await d.ari.hangup(f"{ref};2")  # the callee's phone hangs up
            await wait_ended(call, seconds=10)
            assert call.detail("ended") is CallEnd.COMPLETED
            async with asyncio.timeout(5):
                while True:
                    try:
                        await d.ari.get_channel(agent_channel)
                    except AriNotFound:
                        break
                    await asyncio.sleep(0.05)

    run(main)


def test_an_agent_that_does_not_answer_is_reported_and_the_call_stays_up(settings: Settings) -> None:
    async def main() -> None:
        async with dialer(settings) as d:
            outcome: list[str] = []

            async def connect(call: PlacedCall, verdict: AmdVerdict) -> None:
                try:
                    # An agent's "phone" that is busy: the test callee's busy line.
                    await d.network.connect(call, f"Local/busy@{TEST_CALLEE}")
                    outcome.append("connected")
                except AgentNotConnected as exc:
                    outcome.append(f"not connected: {exc}")
                await d.network.hang_up(call)

            d.runner.on_greeting = connect
            call = await d.place(1, "human", amd=False)
            await wait_ended(call, seconds=20)
            assert len(outcome) == 1 and outcome[0].startswith("not connected"), outcome
            assert "did not answer" in outcome[0]
            assert call.detail("ended") is CallEnd.COMPLETED

    run(main)


# --- the abandoned-call message -------------------------------------------------------------------------


def test_the_message_is_played_and_then_the_call_hung_up(settings: Settings) -> None:
    async def main() -> None:
        async with dialer(settings) as d:
            played: dict[int, float] = {}

            async def abandon(call: PlacedCall, verdict: AmdVerdict) -> None:
                played[call.attempt_id] = time.monotonic()
                # `beep` (0.25 s) is in the test Asterisk's sounds; the second one is not (it fails at once).
                await d.network.play_and_hang_up(call, "beep" if call.attempt_id == 1 else "centralita/none")

            d.runner.on_greeting = abandon
            heard = await d.place(1, "human", amd=False)
            missing = await d.place(2, "human", amd=False)
            await wait_ended(heard, missing, seconds=15)
            for call in (heard, missing):
                assert call.names() == ["placed", "answered", "greeting_ended", "ended"]
                assert call.detail("ended") is CallEnd.COMPLETED
            message = heard.at("ended") - (played[1] - heard.placed_at)
            print(f"\nthe message (0.25 s) played, then the call ended {message:.2f}s after play started")
            assert 0.2 <= message <= 3.0

    run(main)


# --- an Asterisk that cannot be reached ---------------------------------------------------------------


def test_an_unreachable_or_refusing_asterisk_is_network_unavailable(settings: Settings) -> None:
    async def main() -> None:
        request = CallRequest(1, "human", CAMPAIGN_CALLER_ID, 15, True, campaign_id=1)
        nobody = f"http://127.0.0.1:{free_port()}"
        async with AriClient(nobody, "centralita", "x", timeout=2) as ari:
            router = AriRouter()
            network = AriCallNetwork(ari, router, app="e2e", endpoint_template="Local/{number}@x")
            with pytest.raises(NetworkUnavailable, match="Connect"):
                await network.place(request, Runner())
            assert network.active_calls == 0 and not router.watched_channels
        base = ari_base_url(settings)
        async with AriClient(base, settings.asterisk_ari_user, "not-the-password") as ari:
            router = AriRouter()
            network = AriCallNetwork(ari, router, app="e2e", endpoint_template="Local/{number}@x")
            with pytest.raises(NetworkUnavailable, match="401"):
                await network.place(request, Runner())
            assert network.active_calls == 0 and not router.watched_channels

    run(main)
