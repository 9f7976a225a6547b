"""FakeAri: what tests of the IVR and the dialer rely on."""

from __future__ import annotations

import asyncio

import pytest

from voice.ari.errors import AriNotFound, AriVariableNotFound
from voice.ari.events import AriEvent, ChannelDtmfReceived, PlaybackFinished, StasisStart
from voice.ari.fake import FakeAri
from voice.ari.port import AriPort


async def a_tiny_ivr(ari: AriPort, channel_id: str) -> str:
    """Code under test only sees the port."""
    await ari.answer(channel_id)
    await ari.set_variable(channel_id, "CCAPP_STATE", "ivr")
    playback = await ari.play(channel_id, "sound:hello-world")
    return playback.id


def test_it_records_calls_and_answers_like_asterisk() -> None:
    ari = FakeAri()

    async def main() -> None:
        started = await ari.start_call("c1", "inbound", "5551234")
        assert started.id == "c1"
        playback_id = await a_tiny_ivr(ari, "c1")
        assert ari.playbacks[playback_id].target_uri == "channel:c1"
        assert await ari.get_variable("c1", "CCAPP_STATE") == "ivr"
        with pytest.raises(AriVariableNotFound):
            await ari.get_variable("c1", "UNSET")
        agent = await ari.originate("PJSIP/1001", app="ccapp", app_args="agent,1001", caller_id='"CC" <7000>')
        assert (agent.caller.name, agent.caller.number, agent.state) == ("CC", "7000", "Down")
        bridge = await ari.create_bridge(bridge_id="b1")
        await ari.add_channel(bridge.id, ["c1", agent.id])
        await ari.remove_channel(bridge.id, "c1")
        assert ari.bridges["b1"].channels == (agent.id,)
        await ari.hangup("c1", reason="normal")
        with pytest.raises(AriNotFound):
            await ari.get_channel("c1")

    asyncio.run(main())
    assert ari.methods[:3] == ["answer", "set_variable", "play"]
    assert ari.called("play")[0].args["media"] == "sound:hello-world"
    assert ari.called("hangup")[0].args == {"channel_id": "c1", "reason": "normal"}


def test_scripted_errors_are_raised_once_in_order() -> None:
    ari = FakeAri()
    ari.fail_next("answer", AriNotFound(404, "Channel not found"))

    async def main() -> None:
        with pytest.raises(AriNotFound):
            await ari.answer("gone")
        await ari.answer("gone")  # the next one succeeds

    asyncio.run(main())
    assert ari.methods == ["answer", "answer"]


def test_pushed_events_go_through_the_real_router() -> None:
    ari = FakeAri()
    seen: list[AriEvent] = []

    async def main() -> None:
        ari.router.subscribe(seen.append, application="ccapp")
        await ari.start_call("c1")
        await ari.press("c1", "12#")
        playback = await ari.play("c1", "sound:no-such-sound-file")
        await ari.finish_playback(playback.id, state="failed")
        await ari.caller_hangs_up("c1")
        await ari.push({"type": "ChannelHold", "application": "ccapp", "channel": {"id": "c1"}})

    asyncio.run(main())
    assert [e.type for e in seen] == [
        "StasisStart",
        "ChannelDtmfReceived",
        "ChannelDtmfReceived",
        "ChannelDtmfReceived",
        "PlaybackStarted",
        "PlaybackFinished",
        "ChannelHangupRequest",
        "StasisEnd",
        "ChannelHold",
    ]
    assert isinstance(seen[0], StasisStart) and seen[0].channel.id == "c1"
    assert "".join(e.digit for e in seen if isinstance(e, ChannelDtmfReceived)) == "12#"
    finished = [e for e in seen if isinstance(e, PlaybackFinished)]
    assert finished[0].playback.failed
    assert "c1" not in ari.channels
