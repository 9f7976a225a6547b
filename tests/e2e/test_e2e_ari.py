"""The ARI client against a real Asterisk: a number routed by the rendered dialplan into the Stasis
application, answered, played to, sent keys and hung up; and Asterisk's error replies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from asterisk_calls import INBOUND_ARI, ari_base_url

from core.settings import Settings
from voice.ari.client import AriClient
from voice.ari.errors import AriNotFound, AriUnauthorized
from voice.ari.events import (
    AriEvent,
    ChannelDtmfReceived,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from voice.ari.events_stream import AriEventStream
from voice.ari.router import AriRouter

E = TypeVar("E", bound=AriEvent)
BANCO_DID = "912345678"


class Events:
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
                if isinstance(event, kind) and (where is None or _channel_of(event) == where):
                    self.seen.remove(event)
                    return event
            return None

        async with asyncio.timeout(seconds), self._arrived:
            while (match := take()) is None:
                await self._arrived.wait()
            return match


def _channel_of(event: AriEvent) -> str | None:
    channel = getattr(event, "channel", None)
    if channel is not None:
        return str(channel.id)
    playback = getattr(event, "playback", None)
    return playback.channel_id if playback is not None else None


@asynccontextmanager
async def stasis_app(settings: Settings) -> AsyncIterator[tuple[str, AriClient, Events]]:
    """A Stasis application of this test's own (so a running Centralita never sees its calls), its
    event stream connected, and an ARI client."""
    app = f"{settings.asterisk_ari_app}-e2e-{uuid.uuid4().hex[:8]}"
    base = ari_base_url(settings)
    events = Events()
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


def test_a_number_routed_to_stasis_is_answered_played_to_and_hung_up(settings: Settings) -> None:
    async def main() -> None:
        async with stasis_app(settings) as (app, ari, events):
            # The ;2 half runs the rendered centralita-inbound-ari context and enters Stasis ringing; once
            # answered, the ;1 half (the caller) joins the application too, to press keys.
            await ari.originate(
                f"Local/{BANCO_DID}@{INBOUND_ARI}",
                app=app,
                app_args="caller",
                caller_id="+34600111222",
                variables={"CENTRALITA_ARI_APP": app},
                timeout=10,
            )
            inbound = await events.next(StasisStart)
            assert inbound.args == ("ivr", "banco_es", BANCO_DID)  # Stasis(app,ivr,<flow>,<number>)
            assert inbound.channel.state == "Ring"
            line = inbound.channel.id
            try:
                await ari.answer(line)
                caller = await events.next(StasisStart)
                assert caller.args == ("caller",)

                await ari.send_dtmf(caller.channel.id, "1", duration=200)
                key = await events.next(ChannelDtmfReceived, where=line)
                assert key.digit == "1"

                playback = await ari.play(line, "sound:silence/1")
                started = await events.next(PlaybackStarted)
                finished = await events.next(PlaybackFinished)
                assert started.playback.id == finished.playback.id == playback.id
                assert finished.playback.state == "done"

                # A sound Asterisk does not have: accepted, then failed (the fixtures' README says so).
                missing = await ari.play(line, "sound:centralita/no-such-prompt")
                failed = await events.next(PlaybackFinished)
                assert (failed.playback.id, failed.playback.state) == (missing.id, "failed")
            finally:
                await ari.hangup(line)
            ended = await events.next(StasisEnd, where=line)
            assert ended.channel.id == line
            async with asyncio.timeout(5):  # StasisEnd comes before the channel is destroyed
                while True:
                    try:
                        await ari.get_channel(line)
                    except AriNotFound:
                        break
                    await asyncio.sleep(0.1)

    asyncio.run(main())


def test_a_wrong_ari_password_is_refused(settings: Settings) -> None:
    async def main() -> None:
        base = ari_base_url(settings)
        async with AriClient(base, settings.asterisk_ari_user, "not-the-password") as ari:
            with pytest.raises(AriUnauthorized):
                await ari.asterisk_info()
        stream = AriEventStream(base, ["e2e"], settings.asterisk_ari_user, "not-the-password", AriRouter())
        with pytest.raises(AriUnauthorized):
            async with asyncio.timeout(10):
                await stream.run()

    asyncio.run(main())
