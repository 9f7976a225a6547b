"""AriRouter: who gets which event, in which order, and what a failing handler does (nothing to others)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voice.ari.events import AriEvent, Dial, Playback, StasisStart
from voice.ari.fake import channel, dtmf, playback_finished, stasis_end, stasis_start
from voice.ari.router import AriRouter


def run(router: AriRouter, *events: AriEvent) -> list[int]:
    async def main() -> list[int]:
        return [await router.dispatch(event) for event in events]

    return asyncio.run(main())


def test_channel_handlers_get_their_channel_only_in_order() -> None:
    router = AriRouter()
    first: list[str] = []
    second: list[str] = []
    router.on_channel("c1", lambda e: first.append(getattr(e, "digit", e.type)))
    router.on_channel("c2", lambda e: second.append(getattr(e, "digit", e.type)))
    run(router, dtmf("c1", "1"), dtmf("c2", "9"), dtmf("c1", "2"), dtmf("c1", "#"), stasis_end("c1"))
    assert first == ["1", "2", "#", "StasisEnd"]
    assert second == ["9"]


def test_subscribers_filter_by_application_and_type() -> None:
    router = AriRouter()
    starts: list[str] = []
    everything: list[str] = []
    router.subscribe(lambda e: starts.append(e.type), application="ccapp", types=[StasisStart, "StasisEnd"])
    router.subscribe(lambda e: everything.append(e.application))
    run(
        router, stasis_start("c1"), dtmf("c1", "1"), stasis_start("c2", application="other"), stasis_end("c1")
    )
    assert starts == ["StasisStart", "StasisEnd"]
    assert everything == ["ccapp", "ccapp", "other", "ccapp"]


def test_a_handler_registered_by_a_subscriber_receives_the_event_that_created_it() -> None:
    router = AriRouter()
    call: list[str] = []

    def on_start(event: AriEvent) -> None:
        assert isinstance(event, StasisStart)
        router.on_channel(event.channel.id, lambda e: call.append(e.type))

    router.subscribe(on_start, types=[StasisStart])
    run(router, stasis_start("c1"), dtmf("c1", "5"))
    assert call == ["StasisStart", "ChannelDtmfReceived"]


def test_async_and_sync_handlers_both_run_and_the_same_handler_runs_once_per_event() -> None:
    router = AriRouter()
    seen: list[str] = []

    async def slow(event: AriEvent) -> None:
        await asyncio.sleep(0)
        seen.append("async")

    def both_legs(event: AriEvent) -> None:
        seen.append("both")

    router.on_channel("peer", slow)
    router.on_channel("peer", both_legs)
    router.on_channel("caller", both_legs)
    dial = Dial(peer=channel("peer"), caller=channel("caller"), dialstatus="ANSWER")
    assert run(router, dial) == [2]
    assert seen == ["async", "both"]


def test_cancelled_subscriptions_stop_deliveries_and_forget_the_channel() -> None:
    router = AriRouter()
    seen: list[str] = []
    subscription = router.on_channel("c1", lambda e: seen.append("channel"))
    everything = router.subscribe(lambda e: seen.append("all"))
    run(router, dtmf("c1", "1"))
    subscription.cancel()
    subscription.cancel()  # idempotent
    everything.cancel()
    assert not subscription.active
    run(router, dtmf("c1", "2"))
    assert seen == ["all", "channel"]
    assert router.watched_channels == frozenset()


def test_the_same_handler_twice_on_a_channel_is_removed_once_per_subscription() -> None:
    router = AriRouter()
    seen: list[int] = []

    def handler(event: AriEvent) -> None:
        seen.append(1)

    first = router.on_channel("c1", handler)
    router.on_channel("c1", handler)
    first.cancel()
    run(router, dtmf("c1", "1"))
    assert seen == [1]
    assert router.watched_channels == {"c1"}


def test_playback_events_reach_the_channel_they_play_on() -> None:
    router = AriRouter()
    seen: list[str] = []
    router.on_channel("c1", lambda e: seen.append(e.type))
    router.on_bridge("b1", lambda e: seen.append("bridge:" + e.type))
    on_channel = Playback(id="p1", target_uri="channel:c1", state="done")
    on_bridge = Playback(id="p2", target_uri="bridge:b1", state="done")
    run(router, playback_finished(on_channel), playback_finished(on_bridge, state="failed"))
    assert seen == ["PlaybackFinished", "bridge:PlaybackFinished"]


def test_a_failing_handler_is_logged_and_the_next_ones_still_run(caplog: pytest.LogCaptureFixture) -> None:
    router = AriRouter()
    seen: list[str] = []

    async def broken(event: AriEvent) -> None:
        raise KeyError("bug")

    router.subscribe(broken)
    router.on_channel("c1", lambda e: seen.append(e.type))
    with caplog.at_level(logging.ERROR, logger="voice.ari.router"):
        run(router, dtmf("c1", "1"), dtmf("c1", "2"))
    assert seen == ["ChannelDtmfReceived", "ChannelDtmfReceived"]
    assert router.failures == 2
    assert "ChannelDtmfReceived" in caplog.text and "channels c1" in caplog.text


def test_dispatch_raw_parses_and_drops_what_is_not_an_event(caplog: pytest.LogCaptureFixture) -> None:
    router = AriRouter()
    seen: list[str] = []
    router.subscribe(lambda e: seen.append(e.type))

    async def main() -> list[object]:
        return [
            await router.dispatch_raw({"nothing": "here"}),
            await router.dispatch_raw({"type": "ChannelHold", "channel": {"id": "c1"}}),
        ]

    dropped, unknown = asyncio.run(main())
    assert dropped is None and unknown is not None
    assert seen == ["ChannelHold"]
    assert "not a valid event" in caplog.text


def test_subscribing_by_a_class_without_a_fixed_type_is_refused() -> None:
    from voice.ari.events import UnknownEvent

    with pytest.raises(TypeError):
        AriRouter().subscribe(print, types=[UnknownEvent])
