"""FakeAmi and the subscribers: what tests of the dialer rely on."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voice.ami.dispatch import AmiSubscribers
from voice.ami.errors import AmiActionError, AmiConnectionLost
from voice.ami.events import AmiEvent, Hangup, OriginateReason, OriginateResponse
from voice.ami.fake import FakeAmi, event
from voice.ami.port import AmiPort
from voice.ami.protocol import AmiMessage


async def dial_one(ami: AmiPort, number: str) -> OriginateResponse:
    """Code under test only sees the port."""
    return await ami.originate(
        f"PJSIP/{number}@trunk", context="ivr", exten="s", priority=1, timeout=25, variables={"CAMPAIGN": "7"}
    )


def test_originate_records_the_action_and_answers_from_the_script() -> None:
    ami = FakeAmi()
    ami.script_originate(OriginateReason.BUSY)
    broadcast: list[AmiEvent] = []
    ami.subscribe(broadcast.append, events=["OriginateResponse"])

    async def main() -> tuple[OriginateResponse, OriginateResponse]:
        return await dial_one(ami, "600111222"), await dial_one(ami, "600333444")

    busy, answered = asyncio.run(main())
    assert (busy.success, busy.outcome, busy.uniqueid) == (False, OriginateReason.BUSY, None)
    assert (answered.success, answered.outcome) == (True, OriginateReason.ANSWERED)
    assert answered.uniqueid is not None and answered.action_id == ami.sent("originate")[1].action_id
    assert broadcast == [busy, answered]
    first = ami.sent("Originate")[0]
    assert (first.get("Channel"), first.get("Timeout"), first.get("Async")) == (
        "PJSIP/600111222@trunk",
        "25000",
        "true",
    )
    assert first.get_all("Variable") == ["CAMPAIGN=7"]


def test_scripted_errors_and_replies() -> None:
    ami = FakeAmi()
    ami.script("hangup", AmiActionError("Hangup", "No such channel"))
    ami.script("Getvar", AmiMessage.of(Response="Error", Message="No such channel"))
    ami.script_originate(AmiConnectionLost("gone"))

    async def main() -> None:
        with pytest.raises(AmiActionError, match="No such channel"):
            await ami.hangup("PJSIP/1-1", cause=16)
        await ami.hangup("PJSIP/1-1")  # the script is used up: success
        with pytest.raises(AmiActionError):
            await ami.get_var("X", "PJSIP/1-1")
        with pytest.raises(AmiConnectionLost):
            await ami.originate("PJSIP/1")
        await ami.set_var("X", "1", "PJSIP/1-1")
        assert await ami.get_var("X", "PJSIP/1-1") == "1"
        assert await ami.core_show_channels() == []
        reply = await ami.send_action("QueueStatus", {"Queue": "sales"})
        assert reply.response == "Success"

    asyncio.run(main())
    assert [a.action for a in ami.actions] == [
        "Hangup",
        "Hangup",
        "Getvar",
        "Originate",
        "Setvar",
        "Getvar",
        "CoreShowChannels",
        "QueueStatus",
    ]
    assert ami.actions[0].get("Cause") == "16" and ami.actions[1].get("Cause") is None


def test_pushed_events_reach_subscribers_by_name_typed() -> None:
    ami = FakeAmi()
    hangups: list[AmiEvent] = []
    everything: list[str] = []
    ami.subscribe(hangups.append, events=["HANGUP"])
    subscription = ami.subscribe(lambda e: everything.append(e.event))

    async def main() -> None:
        await ami.push(
            event("Hangup", Channel="PJSIP/1-1", Uniqueid="1.1", Cause="17", **{"Cause-txt": "User busy"})
        )
        subscription.cancel()
        await ami.push(AmiMessage.of(Event="Hangup", Channel="PJSIP/2-2", Cause="16"))

    asyncio.run(main())
    assert [(e.channel, e.cause) for e in hangups if isinstance(e, Hangup)] == [
        ("PJSIP/1-1", 17),
        ("PJSIP/2-2", 16),
    ]
    assert everything == ["Hangup"]


def test_a_failing_subscriber_is_logged_and_the_others_run(caplog: pytest.LogCaptureFixture) -> None:
    subscribers = AmiSubscribers()
    seen: list[str] = []

    async def broken(e: AmiEvent) -> None:
        raise RuntimeError("dialer bug")

    subscribers.subscribe(broken)
    subscribers.subscribe(lambda e: seen.append(e.event))
    with caplog.at_level(logging.ERROR, logger="voice.ami.dispatch"):
        count = asyncio.run(subscribers.dispatch(event("Hangup", Channel="PJSIP/1-1", Cause="16")))
    assert count == 2 and seen == ["Hangup"] and subscribers.failures == 1
    assert "dialer bug" in caplog.text and "PJSIP/1-1" in caplog.text
