"""The voice port over ARI, on FakeAri: the REST calls it makes, the events it waits for, keys kept as
type-ahead, ARI's errors turned into the port's (gone, lost, not done), no subscription left behind;
then the Stasis application that runs a flow per call."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest

from core.timeline.schemas import Outcome
from voice.ari.errors import (
    AriConflict,
    AriConnectionError,
    AriNotFound,
    AriProtocolError,
    AriServerError,
    AriUnauthorized,
)
from voice.ari.events import (
    ChannelDestroyed,
    LiveRecording,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisStart,
)
from voice.ari.fake import FakeAri, channel, channel_destroyed, stasis_end, stasis_start
from voice.ari.ivr_port import AriPortOptions, AriVoicePort
from voice.ari.stasis_app import StasisIvr, call_info
from voice.call_journal import InMemoryCallJournal
from voice.ivr.call_runner import CallRunner
from voice.ivr.loader import load_flows
from voice.ivr.schema import Flow
from voice.ivr.voice_port import DTMF_KEYS, ActionNotDone, CallerGone, CallInfo, CallLost, VoicePort
from voice.prompts import PromptAudio

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
FAST = AriPortOptions(prompt_limit=0.3, recording_grace=0.05, handoff_poll=0.01)
PROMPT = PromptAudio("centralita/es/0123456789abcdef", "Hola.", "es")
CHANNEL = "1795537000.12"
T = TypeVar("T")


def on_call(body: Callable[[FakeAri, AriVoicePort], Awaitable[T]], *, options: AriPortOptions = FAST) -> T:
    """Runs `body` with a call in the application and its port; the port is closed afterwards and must
    leave no subscription behind."""

    async def main() -> T:
        ari = FakeAri()
        await ari.start_call(channel(CHANNEL, caller_number="600111222"), "banco_es")
        port = AriVoicePort(ari, ari.router, CHANNEL, options=options)
        try:
            return await body(ari, port)
        finally:
            await port.close()
            assert ari.router.watched_channels == frozenset()

    return asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    """Let the port run until `condition` holds (it only ever needs a few turns of the loop)."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the port never got there")


async def playing(ari: FakeAri, port: AriVoicePort, nth: int = 1) -> str:
    """The id of the port's `nth` playback, once it waits for its end."""
    await until(lambda: port.waiting_for == "prompt" and len(ari.called("play")) >= nth)
    playback_id = ari.called("play")[nth - 1].args["playback_id"]
    assert isinstance(playback_id, str)
    return playback_id


def recording_event(
    kind: type[RecordingStarted | RecordingFinished | RecordingFailed],
    name: str,
    *,
    channel_id: str = CHANNEL,
    **fields: str,
) -> RecordingStarted | RecordingFinished | RecordingFailed:
    recording = LiveRecording(name=name, format="wav", target_uri=f"channel:{channel_id}", **fields)
    return kind(recording=recording, application="ccapp")


# --- answer and play ---------------------------------------------------------------------------------


def test_answer_answers_the_channel_and_a_gone_channel_is_the_caller_gone() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await port.answer()
        ari.fail_next("answer", AriNotFound(404, "Channel not found"))
        with pytest.raises(CallerGone, match="answer: the channel is gone"):
            await port.answer()
        assert port.gone

    on_call(body)


def test_a_prompt_plays_its_sound_and_returns_once_asterisk_says_it_finished() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.play(PROMPT))
        playback_id = await playing(ari, port)
        await asyncio.sleep(0.01)
        assert not task.done()  # the REST reply (201 queued) is not the end of the prompt
        await ari.finish_playback(playback_id)
        assert await task is None
        assert port.waiting_for is None

    on_call(body)


def test_the_playback_is_of_the_prompt_file_with_an_id_of_its_own() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> list[str]:
        ids = []
        for nth in (1, 2):
            task = asyncio.create_task(port.play(PROMPT))
            ids.append(await playing(ari, port, nth))
            await ari.finish_playback(ids[-1])
            await task
        return ids

    first, second = on_call(body)
    assert first != second


def test_a_missing_sound_is_not_done_and_the_call_goes_on() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.play(PromptAudio("no-such-sound-file", None, "en")))
        await ari.finish_playback(await playing(ari, port), state="failed")
        with pytest.raises(ActionNotDone, match="prompt no-such-sound-file: Asterisk could not play it"):
            await task
        await port.answer()  # still up

    on_call(body)


def test_a_key_among_the_escape_digits_stops_the_prompt_and_is_returned() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.play(PROMPT, escape_digits=DTMF_KEYS))
        playback_id = await playing(ari, port)
        await ari.press(CHANNEL, "3")
        assert await task == "3"
        assert ari.called("stop_playback")[0].args == {"playback_id": playback_id}
        await ari.finish_playback(playback_id)  # Asterisk's end of the stopped playback: ignored
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == ""

    on_call(body)


def test_a_prompt_that_ended_by_itself_before_the_stop_is_still_a_barge_in() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        ari.fail_next("stop_playback", AriNotFound(404, "Playback not found"))
        task = asyncio.create_task(port.play(PROMPT, escape_digits=DTMF_KEYS))
        await playing(ari, port)
        await ari.press(CHANNEL, "9")
        assert await task == "9"
        assert not port.gone  # a 404 about the playback says nothing about the channel

    on_call(body)


def test_keys_during_a_prompt_without_barge_in_are_kept_in_order_for_the_next_question() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.play(PROMPT))
        playback_id = await playing(ari, port)
        await ari.press(CHANNEL, "12#")
        await asyncio.sleep(0.01)
        assert not task.done()  # no escape digits: the prompt plays on
        await ari.finish_playback(playback_id)
        assert await task is None
        assert ari.called("stop_playback") == []
        assert await port.collect_digits(max_digits=4, timeout_ms=10, terminator="#") == "12"

    on_call(body)


def test_a_key_typed_ahead_answers_an_interruptible_prompt_without_playing_it() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await ari.press(CHANNEL, "21")
        assert await port.play(PROMPT, escape_digits=DTMF_KEYS) == "2"
        assert ari.called("play") == []
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == "1"

    on_call(body)


def test_a_key_typed_ahead_waits_through_a_prompt_that_cannot_be_interrupted() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await ari.press(CHANNEL, "5")
        task = asyncio.create_task(port.play(PROMPT))
        await ari.finish_playback(await playing(ari, port))
        assert await task is None
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == "5"

    on_call(body)


def test_the_caller_hanging_up_mid_prompt_is_the_caller_gone_for_every_command_after() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.play(PROMPT, escape_digits=DTMF_KEYS))
        await playing(ari, port)
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone, match="prompt centralita/es/0123456789abcdef: the call was hung up"):
            await task
        before = len(ari.calls)
        for command in (
            port.answer(),
            port.play(PROMPT),
            port.collect_digits(max_digits=1, timeout_ms=1000, terminator=None),
            port.enqueue(queue="q", priority=0, skills=[], language="es"),
            port.transfer("100"),
            port.record(mailbox="m", max_seconds=10, beep=True),
            port.hangup(),
        ):
            with pytest.raises(CallerGone):
                await command
        assert len(ari.calls) == before  # nothing more is sent to a gone channel

    on_call(body)


def test_a_gone_call_is_not_handed_back_to_the_dialplan_at_close() -> None:
    async def main() -> FakeAri:
        ari = FakeAri()
        await ari.start_call(CHANNEL, "banco_es")
        port = AriVoicePort(ari, ari.router, CHANNEL, options=FAST)
        await ari.push(channel_destroyed(CHANNEL))
        await port.close()
        await port.close()
        return ari

    assert asyncio.run(main()).methods == []


def test_a_prompt_whose_end_never_comes_is_stopped_and_not_done() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        with pytest.raises(ActionNotDone, match=r"no end of playback after 0\.3s"):
            await port.play(PROMPT)
        assert len(ari.called("stop_playback")) == 1

    on_call(body)


# --- digits ---------------------------------------------------------------------------------------------


def test_digits_stop_at_max_digits_and_the_rest_stay_for_later() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.collect_digits(max_digits=3, timeout_ms=1000, terminator="#"))
        await until(lambda: port.waiting_for == "digits")
        await ari.press(CHANNEL, "12345")
        assert await task == "123"
        assert await port.collect_digits(max_digits=5, timeout_ms=10, terminator=None) == "45"

    on_call(body)


@pytest.mark.parametrize(("terminator", "keys", "expected"), [("#", "12#3", "12"), ("*", "4*", "4")])
def test_the_terminator_ends_the_digits_and_is_not_returned(
    terminator: str, keys: str, expected: str
) -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> str:
        await ari.press(CHANNEL, keys)
        return await port.collect_digits(max_digits=16, timeout_ms=1000, terminator=terminator)

    assert on_call(body) == expected


def test_the_terminator_after_a_full_entry_ends_it_and_answers_nothing_else() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await ari.press(CHANNEL, "1234#")  # four digits asked for, then "#" as the prompt said
        assert await port.collect_digits(max_digits=4, timeout_ms=1000, terminator="#") == "1234"
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == ""
        task = asyncio.create_task(port.collect_digits(max_digits=2, timeout_ms=1000, terminator="#"))
        await until(lambda: port.waiting_for == "digits")
        await ari.press(CHANNEL, "56")
        assert await task == "56"
        await ari.press(CHANNEL, "#")  # a moment later than the entry: still the caller finishing it
        await ari.press(CHANNEL, "#")  # and a second one is an answer of its own
        assert await port.collect_digits(max_digits=2, timeout_ms=10, terminator=None) == "#"

    on_call(body)


def test_a_key_after_a_full_entry_that_is_not_the_terminator_is_kept() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await ari.press(CHANNEL, "12")
        assert await port.collect_digits(max_digits=2, timeout_ms=1000, terminator="#") == "12"
        await ari.press(CHANNEL, "3#")
        assert await port.collect_digits(max_digits=2, timeout_ms=10, terminator=None) == "3#"

    on_call(body)


def test_a_terminator_long_after_a_full_entry_is_an_answer() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await ari.press(CHANNEL, "12")
        assert await port.collect_digits(max_digits=2, timeout_ms=20, terminator="#") == "12"
        await asyncio.sleep(0.05)
        await ari.press(CHANNEL, "#")
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == "#"

    on_call(body)


def test_silence_returns_nothing_after_the_time_out() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await port.collect_digits(max_digits=4, timeout_ms=80, terminator="#") == ""
        return loop.time() - started

    assert 0.07 <= on_call(body) < 1.0


def test_the_time_out_runs_again_after_each_key() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(port.collect_digits(max_digits=4, timeout_ms=150, terminator="#"))
        for digit in "12":
            await asyncio.sleep(0.1)  # less than the time-out, twice: more than it in all
            await ari.press(CHANNEL, digit)
        assert await task == "12"
        return loop.time() - started

    assert on_call(body) >= 0.34


def test_a_hang_up_while_waiting_for_keys_is_the_caller_gone() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.collect_digits(max_digits=4, timeout_ms=5000, terminator="#"))
        await until(lambda: port.waiting_for == "digits")
        await ari.press(CHANNEL, "1")
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone, match="digit collection"):
            await task

    on_call(body)


def test_keys_of_other_channels_do_not_reach_the_call() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        await ari.start_call("other", "banco_es")
        await ari.press("other", "7")
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == ""

    on_call(body)


# --- queues and transfers -----------------------------------------------------------------------------


async def handed_off(ari: FakeAri, port: AriVoicePort) -> None:
    await until(lambda: port.waiting_for == "handoff" and bool(ari.called("continue_in_dialplan")))
    await ari.push(stasis_end(CHANNEL))  # the channel leaves the application for the dialplan


def test_a_queue_refusal_is_not_done_with_the_queue_status() -> None:
    seen: list[FakeAri] = []

    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        seen.append(ari)
        task = asyncio.create_task(port.enqueue(queue="facturacion", priority=0, skills=[], language="es"))
        await handed_off(ari, port)
        await ari.press(CHANNEL, "5")  # pressed while waiting in the queue: not for the IVR
        await ari.push(stasis_start(CHANNEL, "handoff", "queue", "JOINEMPTY"))
        with pytest.raises(ActionNotDone, match=r"^queue facturacion: JOINEMPTY$"):
            await task
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == ""
        await port.answer()  # back in the application: the flow goes on

    on_call(body)
    (ari,) = seen
    assert [(c.args["variable"], c.args["value"]) for c in ari.called("set_variable")] == [
        ("CHANNEL(language)", "es"),
        ("QUEUE_PRIO", "0"),
        ("CENTRALITA_QUEUE", "facturacion"),
    ]
    handoff = ari.called("continue_in_dialplan")[0].args
    assert handoff == {
        "channel_id": CHANNEL,
        "context": "centralita-handoff",
        "extension": "queue",
        "priority": 1,
        "label": None,
    }
    # close(): the channel is back in the application, so it goes on in the dialplan
    assert ari.called("continue_in_dialplan")[-1].args["context"] is None


def test_skills_go_to_the_dialplan_joined_by_commas() -> None:
    seen: list[FakeAri] = []

    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        seen.append(ari)
        task = asyncio.create_task(
            port.enqueue(queue="technical", priority=5, skills=["fibre", "tv"], language="en")
        )
        await handed_off(ari, port)
        await ari.push(stasis_start(CHANNEL, "handoff", "queue", "CONTINUE"))
        await task  # CONTINUE: the agent hung up and the caller is back, as over AGI

    on_call(body)
    assert ("CENTRALITA_SKILLS", "fibre,tv") in [
        (c.args["variable"], c.args["value"]) for c in seen[0].called("set_variable")
    ]


def test_a_caller_who_talks_to_an_agent_and_hangs_up_ends_the_queue_with_the_caller_gone() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.enqueue(queue="facturacion", priority=0, skills=[], language="es"))
        await handed_off(ari, port)
        await asyncio.sleep(0.05)
        assert not task.done()  # the channel still exists: in the queue, or talking
        del ari.channels[CHANNEL]  # the conversation is over: Asterisk forgets the channel
        with pytest.raises(CallerGone, match="queue facturacion: the call ended"):
            await task
        assert len(ari.called("get_channel")) >= 2

    on_call(body)


def test_a_hang_up_event_during_a_handoff_ends_it_at_once() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.transfer("600111222"))
        await handed_off(ari, port)
        await ari.push(channel_destroyed(CHANNEL))
        with pytest.raises(CallerGone, match="transfer to 600111222: the call ended"):
            await task

    on_call(body, options=AriPortOptions(handoff_poll=60))


def test_a_dialplan_that_comes_back_without_a_status_is_a_clear_failure() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.enqueue(queue="facturacion", priority=0, skills=[], language="es"))
        await handed_off(ari, port)
        await ari.push(stasis_start(CHANNEL, "banco_es"))
        with pytest.raises(ActionNotDone, match="came back without a QUEUESTATUS"):
            await task

    on_call(body)


def test_asterisk_out_of_reach_during_a_handoff_loses_the_call_after_a_few_checks() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        for _ in range(3):
            ari.fail_next("get_channel", AriConnectionError("GET /channels/x: ConnectError"))
        task = asyncio.create_task(port.enqueue(queue="facturacion", priority=0, skills=[], language="es"))
        await handed_off(ari, port)
        with pytest.raises(CallLost, match="no answer from Asterisk"):
            await task
        assert len(ari.called("get_channel")) == 3

    on_call(body)


@pytest.mark.parametrize(
    ("target", "dialled"),
    [("600111222", "Local/600111222@centralita-transfer"), ("PJSIP/1001", "PJSIP/1001")],
)
def test_a_number_is_dialled_through_the_transfer_context_and_a_dial_string_as_it_is(
    target: str, dialled: str
) -> None:
    seen: list[FakeAri] = []

    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        seen.append(ari)
        task = asyncio.create_task(port.transfer(target))
        await handed_off(ari, port)
        await ari.push(stasis_start(CHANNEL, "handoff", "dial", "BUSY"))
        with pytest.raises(ActionNotDone, match=rf"^transfer to {re.escape(target)}: BUSY$"):
            await task
        task = asyncio.create_task(port.transfer(target))
        await until(lambda: len(ari.called("continue_in_dialplan")) == 2)
        await ari.push(stasis_end(CHANNEL), stasis_start(CHANNEL, "handoff", "dial", "ANSWER"))
        await task  # answered, and the callee hung up first: the caller is back

    on_call(body)
    (ari,) = seen
    assert [(c.args["variable"], c.args["value"]) for c in ari.called("set_variable")][:2] == [
        ("CENTRALITA_DIAL", dialled),
        ("CENTRALITA_DIAL_SECONDS", "60"),
    ]
    assert ari.called("continue_in_dialplan")[0].args["extension"] == "dial"


def test_a_return_that_overtakes_the_continue_reply_is_not_missed() -> None:
    class Quick(FakeAri):
        async def continue_in_dialplan(self, channel_id: str, **where: object) -> None:
            await super().continue_in_dialplan(channel_id, **where)  # type: ignore[arg-type]
            if where.get("context"):  # the dialplan is faster than the REST reply
                await self.push(stasis_end(channel_id), stasis_start(channel_id, "handoff", "queue", "FULL"))

    async def main() -> None:
        ari = Quick()
        await ari.start_call(CHANNEL, "banco_es")
        port = AriVoicePort(ari, ari.router, CHANNEL, options=FAST)
        with pytest.raises(ActionNotDone, match="FULL"):
            await port.enqueue(queue="q", priority=0, skills=[], language="es")
        await port.close()
        assert ari.called("continue_in_dialplan")[-1].args["context"] is None  # back in the app

    asyncio.run(main())


# --- recording ---------------------------------------------------------------------------------------


def test_voicemail_is_recorded_under_the_mailbox_and_call_id_until_asterisk_finishes_it() -> None:
    seen: list[FakeAri] = []

    async def body(ari: FakeAri, port: AriVoicePort) -> str:
        seen.append(ari)
        port.call_id = "1795537000.7"
        await ari.press(CHANNEL, "4")  # typed before the recording: not for it, and not kept after it
        task = asyncio.create_task(port.record(mailbox="support", max_seconds=120, beep=True))
        await until(lambda: port.waiting_for == "recording" and bool(ari.called("record")))
        name = "centralita/recordings/support-1795537000.7"
        await ari.push(recording_event(RecordingStarted, name, state="recording"))
        await ari.press(CHANNEL, "#")  # the caller ends the message
        assert not task.done()
        await ari.push(recording_event(RecordingFinished, name, state="done"))
        assert await task == name
        assert await port.collect_digits(max_digits=1, timeout_ms=10, terminator=None) == ""
        return name

    name = on_call(body)
    assert seen[0].called("record")[0].args == {
        "channel_id": CHANNEL,
        "name": name,
        "format": "wav",
        "max_duration_seconds": 120,
        "max_silence_seconds": 4,
        "if_exists": "overwrite",
        "beep": True,
        "terminate_on": "#",
    }


def test_a_failed_recording_is_not_done_with_asterisks_cause() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.record(mailbox="m", max_seconds=30, beep=False))
        await until(lambda: bool(ari.called("record")))
        name = ari.called("record")[0].args["name"]
        await ari.push(recording_event(RecordingFailed, name, state="failed", cause="disk full"))
        with pytest.raises(ActionNotDone, match="disk full"):
            await task

    on_call(body)


def test_a_hang_up_while_recording_keeps_the_recording() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.record(mailbox="m", max_seconds=30, beep=False))
        await until(lambda: bool(ari.called("record")))
        name = ari.called("record")[0].args["name"]
        await ari.push(recording_event(RecordingStarted, name, state="recording"))
        await ari.caller_hangs_up(CHANNEL)
        assert await task == f"centralita/recordings/m-{CHANNEL}"
        with pytest.raises(CallerGone):
            await port.answer()

    on_call(body)


def test_a_recording_asterisk_never_reports_is_stopped_and_not_done() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        with pytest.raises(ActionNotDone, match="never reported"):
            await port.record(mailbox="m", max_seconds=0, beep=False)
        assert len(ari.called("stop_recording")) == 1

    on_call(body)


# --- hangup, errors, the end of the port -------------------------------------------------------------------


def test_hangup_deletes_the_channel_and_nothing_follows() -> None:
    seen: list[FakeAri] = []

    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        seen.append(ari)
        await port.hangup()
        with pytest.raises(CallerGone, match="hung up by the IVR"):
            await port.play(PROMPT)

    on_call(body)
    assert seen[0].methods[-1] == "hangup"  # and no continue at close()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (AriConnectionError("POST /channels/x/play: ConnectError"), CallLost),
        (AriUnauthorized(401, "Authentication required"), CallLost),
        (AriProtocolError("reply is not JSON"), CallLost),
        (AriServerError(500, "Allocation failed"), ActionNotDone),
        (AriNotFound(404, "Channel not found"), CallerGone),
    ],
)
def test_ari_errors_become_the_ports(error: Exception, expected: type[Exception]) -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        ari.fail_next("play", error)  # type: ignore[arg-type]
        with pytest.raises(expected, match="prompt centralita/es/0123456789abcdef"):
            await port.play(PROMPT)

    on_call(body)


def test_not_in_stasis_is_the_caller_gone_when_the_channel_is_gone_and_not_done_when_it_is_not() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        conflict = AriConflict(409, "Channel not in Stasis application")
        ari.fail_next("answer", conflict)
        with pytest.raises(ActionNotDone, match="Asterisk refused it"):
            await port.answer()
        ari.fail_next("answer", conflict)
        del ari.channels[CHANNEL]
        with pytest.raises(CallerGone, match="the caller hung up"):
            await port.answer()

    on_call(body)


def test_check_channel_ends_a_wait_whose_channel_went_away_while_events_were_lost() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.collect_digits(max_digits=4, timeout_ms=60_000, terminator="#"))
        await until(lambda: port.waiting_for == "digits")
        await port.check_channel()
        assert not task.done()
        del ari.channels[CHANNEL]
        await port.check_channel()
        with pytest.raises(CallerGone, match="the channel is gone"):
            await task

    on_call(body)


def test_close_hands_a_live_channel_back_to_the_dialplan_once_and_stops_listening() -> None:
    async def main() -> FakeAri:
        ari = FakeAri()
        await ari.start_call(CHANNEL, "banco_es")
        port = AriVoicePort(ari, ari.router, CHANNEL, options=FAST)
        assert ari.router.watched_channels == {CHANNEL}
        await port.close()
        await port.close()
        assert ari.router.watched_channels == frozenset()
        assert await ari.router.dispatch(stasis_end(CHANNEL)) == 0
        return ari

    ari = asyncio.run(main())
    assert [call.args for call in ari.called("continue_in_dialplan")] == [
        {"channel_id": CHANNEL, "context": None, "extension": None, "priority": None, "label": None}
    ]


def test_a_stasis_end_outside_a_handoff_means_the_call_left_the_application() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.collect_digits(max_digits=1, timeout_ms=5000, terminator=None))
        await until(lambda: port.waiting_for == "digits")
        await ari.push(stasis_end(CHANNEL))
        with pytest.raises(CallerGone, match="left the application"):
            await task

    on_call(body)


# --- the Stasis application ---------------------------------------------------------------------------------


class RecordingRunner:
    """Runs nothing: notes what it was asked to run (or runs `body` on the port)."""

    def __init__(self, body: Callable[[VoicePort], Awaitable[object]] | None = None) -> None:
        self.runs: list[tuple[str, CallInfo]] = []
        self.body = body

    async def run(self, flow: Flow, port: VoicePort, call: CallInfo) -> None:
        self.runs.append((flow.name, call))
        if self.body is not None:
            await self.body(port)


def stasis_ivr(ari: FakeAri, runner: object, **options: object) -> StasisIvr:
    return StasisIvr(
        ari,
        ari.router,
        runner,  # type: ignore[arg-type]
        FLOWS.get,
        application="ccapp",
        options=FAST,
        **options,  # type: ignore[arg-type]
    )


def test_each_call_runs_the_flow_named_by_its_stasis_argument() -> None:
    runner = RecordingRunner()

    async def main() -> FakeAri:
        ari = FakeAri()
        ari.variables[("c1", "CHANNEL(linkedid)")] = "1795537000.1"
        async with stasis_ivr(ari, runner):
            await ari.start_call(
                channel("c1", caller_number="600111222", name="PJSIP/trunk-00000001", exten="912345678"),
                "banco_es",
            )
            await ari.start_call(channel("c2", caller_number="unknown"), "support_en")
        assert ari.router.watched_channels == frozenset()
        return ari

    ari = asyncio.run(main())
    assert runner.runs == [
        (
            "banco_es",
            CallInfo(
                call_id="1795537000.1",
                ref_kind="asterisk_linkedid",
                caller="600111222",
                called="912345678",
                channel="PJSIP/trunk-00000001",
                flow="banco_es",
            ),
        ),
        ("support_en", CallInfo("c2", "asterisk_uniqueid", None, None, "PJSIP/c2", "support_en")),
    ]
    # Each run ended with its channel still in the application: back to the dialplan.
    assert sorted(c.args["channel_id"] for c in ari.called("continue_in_dialplan")) == ["c1", "c2"]


@pytest.mark.parametrize(
    ("args", "flow", "called"),
    [
        (("ivr", "banco_es", "912345678"), "banco_es", "912345678"),  # the rendered dialplan
        (("ivr", "banco_es", ""), "banco_es", "900"),
        (("banco_es",), "banco_es", "900"),
        (("ivr",), "", "900"),
        ((), "", "900"),
    ],
)
def test_the_flow_and_the_number_dialled_come_from_the_stasis_arguments(
    args: tuple[str, ...], flow: str, called: str
) -> None:
    event = stasis_start(channel("c1", exten="900"), *args)
    info = asyncio.run(call_info(FakeAri(), event))
    assert (info.flow, info.called) == (flow, called)


def test_a_linkedid_the_event_carries_is_used_without_asking() -> None:
    async def main() -> CallInfo:
        ari = FakeAri()
        event = stasis_start(channel("c1").model_copy(update={"channelvars": {"CHANNEL(linkedid)": "L1"}}))
        info = await call_info(ari, event)
        assert ari.called("get_variable") == []
        return info

    assert asyncio.run(main()).call_id == "L1"


def test_channels_made_for_other_purposes_are_left_alone() -> None:
    runner = RecordingRunner()

    async def main() -> FakeAri:
        ari = FakeAri()
        async with stasis_ivr(ari, runner) as ivr:
            await ari.start_call("agent-1", "agent", "1001")
            await ari.start_call("dial-1", "dialer", "42")
            await ari.start_call(channel("snoop-1", name="Snoop/c1-00000001"), "banco_es")
            await ari.start_call(channel("media-1", name="UnicastRTP/127.0.0.1:4000-0001"))
            await ari.push(stasis_start("other-app-call", "banco_es", application="another"))
            assert ivr.active_calls == 0
        return ari

    ari = asyncio.run(main())
    assert runner.runs == [] and ari.calls == []


def test_an_unknown_flow_is_hung_up_and_a_fallback_flow_runs_instead_when_configured() -> None:
    async def main(**options: object) -> tuple[FakeAri, RecordingRunner]:
        ari, runner = FakeAri(), RecordingRunner()
        async with stasis_ivr(ari, runner, **options):
            await ari.start_call("c1", "no_such_flow")
            await ari.start_call("c2")  # Stasis(app) with no flow at all
        return ari, runner

    ari, runner = asyncio.run(main())
    assert runner.runs == [] and [c.args["channel_id"] for c in ari.called("hangup")] == ["c1", "c2"]
    ari, runner = asyncio.run(main(fallback_flow="support_en"))
    assert [(name, call.flow) for name, call in runner.runs] == [
        ("support_en", "no_such_flow"),
        ("support_en", ""),
    ]
    assert ari.called("hangup") == []


def test_a_fallback_hang_up_that_fails_is_a_warning_and_the_dialplan_takes_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> FakeAri:
        ari = FakeAri()
        ari.fail_next("hangup", AriServerError(500, "Internal Server Error"))
        async with stasis_ivr(ari, RecordingRunner()):
            await ari.start_call("c1", "no_such_flow")
        return ari

    with caplog.at_level(logging.WARNING, logger="voice.ari.stasis_app"):
        ari = asyncio.run(main())
    assert "ARI: could not hang up channel c1: hangup: Asterisk refused the request" in caplog.text
    assert not any(record.exc_info for record in caplog.records)  # a warning, not a crash
    assert ari.methods == ["hangup", "continue_in_dialplan"]


def test_a_return_from_a_handoff_nobody_waits_for_goes_to_the_failure_context() -> None:
    async def main(**options: object) -> FakeAri:
        ari = FakeAri()
        async with stasis_ivr(ari, RecordingRunner(), **options):
            await ari.start_call("c1", "handoff", "queue", "TIMEOUT")
        return ari

    (handed_back,) = asyncio.run(main(failed_context="centralita-ivr-failed")).calls
    assert handed_back.method == "continue_in_dialplan"
    assert (handed_back.args["context"], handed_back.args["extension"], handed_back.args["priority"]) == (
        "centralita-ivr-failed",
        "s",
        1,
    )
    (handed_back,) = asyncio.run(main()).calls  # none configured: on after Stasis()
    assert (handed_back.method, handed_back.args["context"]) == ("continue_in_dialplan", None)


def test_a_failing_call_does_not_disturb_another(caplog: pytest.LogCaptureFixture) -> None:
    async def body(port: VoicePort) -> None:
        assert isinstance(port, AriVoicePort)
        if port.channel_id == "bad":
            raise RuntimeError("boom")
        await port.answer()
        await port.collect_digits(max_digits=1, timeout_ms=1000, terminator=None)

    runner = RecordingRunner(body)

    async def main() -> FakeAri:
        ari = FakeAri()
        async with stasis_ivr(ari, runner) as ivr:
            await ari.start_call("good", "banco_es")
            await ari.start_call("bad", "banco_es")
            await until(lambda: ivr.active_calls == 1)
            good = ivr.port("good")
            assert good is not None and ivr.port("bad") is None
            await until(lambda: good.waiting_for == "digits")
            await ari.press("good", "1")
        return ari

    with caplog.at_level(logging.ERROR, logger="voice.ari.stasis_app"):
        ari = asyncio.run(main())
    assert "ARI call failed: flow 'banco_es', channel PJSIP/bad (bad)" in caplog.text
    assert [c.args["channel_id"] for c in ari.called("answer")] == ["good"]


def test_stop_lets_calls_finish_then_cancels_the_rest_and_refuses_new_ones() -> None:
    answered: list[str] = []

    async def body(port: VoicePort) -> None:
        answered.append(await port.collect_digits(max_digits=1, timeout_ms=60_000, terminator=None))

    async def main() -> FakeAri:
        ari = FakeAri()
        ivr = stasis_ivr(ari, RecordingRunner(body))
        await ivr.start()
        await ari.start_call("quick", "banco_es")
        await ari.start_call("slow", "banco_es")
        stopping = asyncio.create_task(ivr.stop(grace_seconds=0.1))
        await asyncio.sleep(0.01)
        await ari.start_call("late", "banco_es")  # arrives while stopping: back to the dialplan
        await ari.press("quick", "1")
        await stopping
        assert ivr.active_calls == 0 and ari.router.watched_channels == frozenset()
        assert await ari.router.dispatch(stasis_start("later", "banco_es")) == 0  # unsubscribed
        return ari

    ari = asyncio.run(main())
    assert answered == ["1"]  # the quick call finished; the slow one was cancelled after the grace
    assert sorted(c.args["channel_id"] for c in ari.called("continue_in_dialplan")) == [
        "late",
        "quick",
        "slow",
    ]


def test_resync_ends_calls_whose_channel_went_away_while_the_stream_was_down() -> None:
    async def body(port: VoicePort) -> None:
        await port.collect_digits(max_digits=1, timeout_ms=60_000, terminator=None)

    async def main() -> None:
        ari = FakeAri()
        async with stasis_ivr(ari, RecordingRunner(body)) as ivr:
            await ari.start_call("c1", "banco_es")
            await until(lambda: ivr.active_calls == 1)
            port = ivr.port("c1")
            assert port is not None
            await until(lambda: port.waiting_for == "digits")
            del ari.channels["c1"]
            await ivr.resync()
            await until(lambda: ivr.active_calls == 0)

    asyncio.run(main())


def test_a_whole_support_call_runs_on_the_real_runner() -> None:
    """Out of hours, anonymous: the caller presses 1 for voicemail, leaves a message, the IVR hangs up."""
    journal = InMemoryCallJournal()
    sunday = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)

    async def main() -> FakeAri:
        ari = FakeAri()
        runner = CallRunner(journal, clock=lambda: sunday)
        async with stasis_ivr(ari, runner) as ivr:
            await ari.start_call("c1", "support_en")
            await until(lambda: ivr.active_calls == 1)
            port = ivr.port("c1")
            assert port is not None
            finished: set[str] = set()
            keys = ["1"]
            while ivr.active_calls:  # the caller: listens to every prompt, answers, speaks after the beep
                await asyncio.sleep(0.001)
                started = [call.args["playback_id"] for call in ari.called("play")]
                if port.waiting_for == "prompt" and started and started[-1] not in finished:
                    finished.add(started[-1])
                    await ari.finish_playback(started[-1])
                elif port.waiting_for == "digits" and keys:
                    await ari.press("c1", keys.pop(0))
                elif port.waiting_for == "recording" and ari.called("record"):
                    name = ari.called("record")[0].args["name"]
                    await ari.push(
                        recording_event(RecordingStarted, name, channel_id="c1", state="recording"),
                        recording_event(RecordingFinished, name, channel_id="c1", state="done"),
                    )
            await runner.drain()
        return ari

    ari = asyncio.run(main())
    entry = journal.only()
    assert entry.outcome == Outcome.CONTAINED
    assert ari.methods[:2] == ["get_variable", "answer"] and ari.methods[-1] == "hangup"
    recording = next(step for step in entry.steps if step.kind == "recording")
    assert recording.attributes["recording"] == "centralita/recordings/support-c1"


def test_a_channel_destroyed_event_alone_is_enough_to_end_a_call() -> None:
    async def body(ari: FakeAri, port: AriVoicePort) -> None:
        task = asyncio.create_task(port.play(PROMPT))
        await playing(ari, port)
        await ari.push(ChannelDestroyed(cause=16, channel=channel(CHANNEL), application="ccapp"))
        with pytest.raises(CallerGone):
            await task

    on_call(body)


def test_a_stasis_start_for_a_running_call_is_its_port_business() -> None:
    runner = RecordingRunner(lambda port: port.collect_digits(max_digits=1, timeout_ms=200, terminator=None))

    async def main() -> None:
        ari = FakeAri()
        async with stasis_ivr(ari, runner) as ivr:
            await ari.start_call("c1", "banco_es")
            await ari.push(StasisStart(args=("banco_es",), channel=channel("c1"), application="ccapp"))
            assert ivr.active_calls == 1

    asyncio.run(main())
    assert len(runner.runs) == 1
