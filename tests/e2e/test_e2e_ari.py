"""The ARI client against a real Asterisk: a number routed by the rendered dialplan into the Stasis
application, answered, played to, sent keys and hung up; and Asterisk's error replies."""

from __future__ import annotations

import asyncio

import pytest
from asterisk_calls import INBOUND_ARI, ari_base_url, stasis_app

from core.settings import Settings
from voice.ari.client import AriClient
from voice.ari.errors import AriNotFound, AriUnauthorized
from voice.ari.events import (
    ChannelDtmfReceived,
    PlaybackFinished,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from voice.ari.events_stream import AriEventStream
from voice.ari.router import AriRouter

BANCO_DID = "912345678"


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
