"""The ARI call network against FakeAri: what it asks Asterisk, and what it tells the campaign runner for
each thing a real Asterisk sends (tests/e2e/test_e2e_dialer.py checks the same against a real one)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialer.ari_network import (
    AMD_CONTEXT,
    AgentNotConnected,
    AriCallNetwork,
    CallNotReady,
    call_end,
    cause_text,
)
from dialer.call_network import AmdVerdict, CallEnd, CallRequest, NetworkUnavailable, PlacedCall
from voice.ari.errors import (
    AriBadRequest,
    AriConnectionError,
    AriError,
    AriNotFound,
    AriServerError,
    AriUnauthorized,
)
from voice.ari.events import AriEvent, Dial
from voice.ari.fake import (
    FakeAri,
    channel,
    channel_destroyed,
    hangup_request,
    playback_finished,
    stasis_end,
    stasis_start,
)
from voice.ari.router import AriRouter
from voice.ari.stasis_app import OTHER_PURPOSES

APP = "centralita"


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def runner() -> None:
        asyncio.run(test())

    return runner


class FixedClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        self.at += timedelta(milliseconds=1)  # each reading later than the one before
        return self.at

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@dataclass
class Recorder:
    """The campaign runner's side: what each call reported, in order; `on_greeting` acts as the runner
    does when a greeting ends (connect, hang up, play the message)."""

    steps: list[tuple[str, int, object]] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    on_answer: Callable[[PlacedCall], Awaitable[None]] | None = None
    on_greeting: Callable[[PlacedCall, AmdVerdict], Awaitable[None]] | None = None
    causes: dict[int, str] = field(default_factory=dict)

    async def answered(self, call: PlacedCall, at: datetime) -> None:
        self.steps.append(("answered", call.attempt_id, None))
        self.times.append(at)
        if self.on_answer is not None:
            await self.on_answer(call)

    async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None:
        self.steps.append(("greeting_ended", call.attempt_id, verdict))
        self.times.append(at)
        if self.on_greeting is not None:
            await self.on_greeting(call, verdict)

    async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None:
        self.steps.append(("ended", call.attempt_id, how))
        self.times.append(at)
        self.causes[call.attempt_id] = cause

    def of(self, attempt: int) -> list[tuple[str, object]]:
        return [(name, detail) for name, number, detail in self.steps if number == attempt]

    def ended_calls(self) -> int:
        return sum(1 for name, _, _ in self.steps if name == "ended")


class Line:
    """A network on a FakeAri, and what a real Asterisk would send about its calls."""

    def __init__(self, **options: Any) -> None:
        self.router = AriRouter()
        self.ari = FakeAri(self.router, application=APP)
        self.recorder = Recorder()
        self.network = AriCallNetwork(
            self.ari,
            self.router,
            app=APP,
            endpoint_template=options.pop("endpoint_template", "PJSIP/{number}@trunk"),
            clock=FixedClock(),
            **options,
        )

    async def place(self, attempt: int = 7, *, amd: bool = True) -> PlacedCall:
        request = CallRequest(attempt, "+34600111222", "+34910000000", 25, amd, campaign_id=1)
        return await self.network.place(request, self.recorder)

    async def push(self, *events: AriEvent) -> None:
        await self.ari.push(*events)
        await settle()

    async def dial(self, call: PlacedCall, status: str) -> None:
        await self.push(Dial(peer=channel(call.call_ref, state="Down"), dialstatus=status, application=APP))

    async def answer(self, call: PlacedCall) -> None:
        await self.dial(call, "ANSWER")
        await self.push(stasis_start(call.call_ref, "dialer", str(call.attempt_id), application=APP))

    async def amd(self, call: PlacedCall, status: str, cause: str = "") -> None:
        """The call leaves the application for the AMD context and comes back with the verdict."""
        await self.push(
            stasis_end(call.call_ref, application=APP),
            stasis_start(
                call.call_ref, "dialer", "amd", str(call.attempt_id), status, cause, application=APP
            ),
        )

    async def ends(self, channel_id: str, cause: int = 16, text: str = "Normal Clearing") -> None:
        await self.push(
            hangup_request(channel_id, cause=cause, application=APP),
            stasis_end(channel_id, application=APP),
            channel_destroyed(channel_id, cause=cause, cause_txt=text, application=APP),
        )

    async def agent_answers(self, call: PlacedCall, number: int = 1) -> str:
        """Waits for the agent's leg to be originated, then answers it; its channel id."""
        await until(lambda: len(self.ari.called("originate")) > number)
        agent = str(self.ari.called("originate")[number].args["channel_id"])
        await self.push(stasis_start(agent, "agent", str(call.attempt_id), application=APP))
        return agent

    def hung_up(self) -> list[str]:
        return [str(call.args["channel_id"]) for call in self.ari.called("hangup")]

    def clean(self) -> bool:
        """Nothing left behind: no call, no router subscription."""
        return self.network.active_calls == 0 and not self.router.watched_channels


async def settle() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)


# --- the hang-up causes, as a table --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answered", "cause", "dial_status", "how"),
    [
        (True, 16, "ANSWER", CallEnd.COMPLETED),
        (True, 32, "ANSWER", CallEnd.COMPLETED),  # hung up by us (DELETE)
        (True, 0, "", CallEnd.COMPLETED),
        (False, 17, "", CallEnd.BUSY),  # a SIP trunk: the cause says it
        (False, 0, "BUSY", CallEnd.BUSY),  # a Local channel: only the Dial status does
        (False, 21, "", CallEnd.BUSY),  # call rejected
        (False, 19, "RINGING", CallEnd.NO_ANSWER),  # the ring time-out
        (False, 18, "", CallEnd.NO_ANSWER),
        (False, 0, "NOANSWER", CallEnd.NO_ANSWER),
        (False, 16, "RINGING", CallEnd.NO_ANSWER),  # it rang and stopped
        (False, 34, "", CallEnd.FAILED),
        (False, 0, "CONGESTION", CallEnd.FAILED),
        (False, 38, "", CallEnd.FAILED),
        (False, 0, "CHANUNAVAIL", CallEnd.FAILED),
        (False, 1, "", CallEnd.FAILED),  # unallocated number
        (False, 0, "", CallEnd.FAILED),  # no such extension: nothing rang
        (False, 16, "", CallEnd.FAILED),
    ],
)
def test_how_a_call_ended_follows_its_cause_and_dial_status(
    answered: bool, cause: int, dial_status: str, how: CallEnd
) -> None:
    assert call_end(answered=answered, cause=cause, dial_status=dial_status) is how


def test_the_cause_text_names_the_dial_status_when_the_cause_does_not_say_it() -> None:
    assert cause_text(17, "User busy", "BUSY") == "17 User busy (dial status BUSY)"
    assert cause_text(0, "Unknown", "CONGESTION") == "0 Unknown (dial status CONGESTION)"
    assert cause_text(19, "User alerting, no answer", "RINGING") == "19 User alerting, no answer"
    assert cause_text(16, "Normal Clearing", "ANSWER") == "16 Normal Clearing"


def test_the_ivr_leaves_the_dialer_and_agent_channels_alone() -> None:
    assert {"dialer", "agent"} <= OTHER_PURPOSES


def test_a_template_without_the_number_or_an_empty_app_is_refused() -> None:
    router = AriRouter()
    with pytest.raises(ValueError, match="number"):
        AriCallNetwork(FakeAri(router), router, app=APP, endpoint_template="PJSIP/trunk")
    with pytest.raises(ValueError, match="application"):
        AriCallNetwork(FakeAri(router), router, app="", endpoint_template="PJSIP/{number}@trunk")
    network = AriCallNetwork(FakeAri(router), router, app=APP, endpoint_template="Local/{digits}@out")
    assert network.endpoint("+34600111222") == "Local/34600111222@out"


# --- placing a call ------------------------------------------------------------------------------------


@run
async def test_a_call_is_originated_into_the_application_with_the_campaign_caller_id_and_ring_time() -> None:
    line = Line()
    call = await line.place(7)
    (originate,) = line.ari.called("originate")
    assert originate.args["endpoint"] == "PJSIP/+34600111222@trunk"
    assert originate.args["app"] == APP
    assert originate.args["app_args"] == ["dialer", "7"]
    assert originate.args["caller_id"] == "+34910000000"
    assert originate.args["timeout"] == 25
    assert originate.args["channel_id"] == call.call_ref
    assert originate.args["variables"] == {"CENTRALITA_ARI_APP": APP, "CENTRALITA_DIALER_ATTEMPT": "7"}
    assert call.attempt_id == 7 and call.call_ref.startswith("dialer-7-")
    assert line.network.active_calls == 1
    assert line.router.watched_channels == {call.call_ref}  # listening before the originate


@run
async def test_a_person_answers_amd_says_human_and_the_call_ends_in_that_order() -> None:
    line = Line()
    call = await line.place(7)
    await line.dial(call, "RINGING")
    assert line.recorder.steps == []
    await line.answer(call)
    assert line.recorder.of(7) == [("answered", None)]
    (detect,) = line.ari.called("continue_in_dialplan")
    assert detect.args == {
        "channel_id": call.call_ref,
        "context": AMD_CONTEXT,
        "extension": "s",
        "priority": 1,
        "label": None,
    }
    await line.amd(call, "HUMAN", "HUMAN-800-800")
    assert line.recorder.of(7)[-1] == ("greeting_ended", AmdVerdict.HUMAN)
    await line.ends(call.call_ref)
    assert line.recorder.of(7) == [
        ("answered", None),
        ("greeting_ended", AmdVerdict.HUMAN),
        ("ended", CallEnd.COMPLETED),
    ]
    assert line.recorder.causes[7] == "16 Normal Clearing"
    assert line.recorder.times == sorted(line.recorder.times)
    assert line.clean()


@run
async def test_a_machine_is_reported_and_hung_up_when_the_runner_says_so() -> None:
    line = Line()

    async def hang_up_machines(call: PlacedCall, verdict: AmdVerdict) -> None:
        if verdict is AmdVerdict.MACHINE:
            await line.network.hang_up(call)

    line.recorder.on_greeting = hang_up_machines
    call = await line.place(8)
    await line.answer(call)
    await line.amd(call, "MACHINE", "LONGGREETING-1500-1500")
    assert line.recorder.of(8)[-1] == ("greeting_ended", AmdVerdict.MACHINE)
    assert line.hung_up() == [call.call_ref]
    await line.ends(call.call_ref, cause=16)
    assert line.recorder.of(8)[-1] == ("ended", CallEnd.COMPLETED)
    assert line.clean()


@run
async def test_amd_notsure_is_unsure_and_an_unknown_status_too() -> None:
    line = Line()
    first, second = await line.place(1), await line.place(2)
    for call in (first, second):
        await line.answer(call)
    await line.amd(first, "NOTSURE", "TOOLONG-5000")
    await line.amd(second, "SOMETHING-NEW")
    assert line.recorder.of(1)[-1] == ("greeting_ended", AmdVerdict.UNSURE)
    assert line.recorder.of(2)[-1] == ("greeting_ended", AmdVerdict.UNSURE)


@run
async def test_with_amd_off_the_greeting_ends_at_once_unsure_and_the_call_stays_in_the_application() -> None:
    line = Line()
    call = await line.place(9, amd=False)
    await line.answer(call)
    assert line.recorder.of(9) == [("answered", None), ("greeting_ended", AmdVerdict.UNSURE)]
    assert line.ari.called("continue_in_dialplan") == []
    await line.ends(call.call_ref)
    assert line.recorder.of(9)[-1] == ("ended", CallEnd.COMPLETED)
    assert line.clean()


@run
async def test_amd_that_cannot_start_gives_unsure_rather_than_a_call_left_waiting() -> None:
    line = Line()
    line.ari.fail_next("continue_in_dialplan", AriServerError(500, "Internal Server Error"))
    call = await line.place(3)
    await line.answer(call)
    assert line.recorder.of(3) == [("answered", None), ("greeting_ended", AmdVerdict.UNSURE)]


@run
async def test_a_callee_who_hangs_up_during_amd_ends_the_call_without_a_verdict() -> None:
    line = Line()
    call = await line.place(4)
    await line.answer(call)
    await line.push(stasis_end(call.call_ref, application=APP))  # off to the AMD context
    assert line.network.active_calls == 1
    await line.push(
        hangup_request(call.call_ref, cause=16, application=APP),
        channel_destroyed(call.call_ref, application=APP),
    )
    assert line.recorder.of(4) == [("answered", None), ("ended", CallEnd.COMPLETED)]
    assert line.clean()


@pytest.mark.parametrize(
    ("dial_status", "cause", "text", "how", "said"),
    [
        ("BUSY", 0, "Unknown", CallEnd.BUSY, "0 Unknown (dial status BUSY)"),  # Local/busy: as recorded
        ("", 17, "User busy", CallEnd.BUSY, "17 User busy"),
        ("RINGING", 19, "User alerting, no answer", CallEnd.NO_ANSWER, "19 User alerting, no answer"),
        ("CONGESTION", 0, "Unknown", CallEnd.FAILED, "0 Unknown (dial status CONGESTION)"),
        ("", 34, "Circuit/channel congestion", CallEnd.FAILED, "34 Circuit/channel congestion"),
        ("", 38, "Network out of order", CallEnd.FAILED, "38 Network out of order"),
    ],
)
def test_an_unanswered_call_ends_once_with_what_asterisk_said(
    dial_status: str, cause: int, text: str, how: CallEnd, said: str
) -> None:
    async def main() -> None:
        line = Line()
        call = await line.place(5)
        if dial_status:
            await line.dial(call, dial_status)
        await line.push(channel_destroyed(call.call_ref, cause=cause, cause_txt=text, application=APP))
        await line.push(channel_destroyed(call.call_ref, cause=cause, cause_txt=text, application=APP))
        assert line.recorder.of(5) == [("ended", how)]
        assert line.recorder.causes[5] == said
        assert line.clean()

    asyncio.run(main())


@run
async def test_a_refused_originate_fails_that_call_only_after_place_returned() -> None:
    line = Line()
    line.ari.fail_next("originate", AriBadRequest(400, "Endpoint must be specified"))
    refused = await line.place(1)
    assert line.recorder.steps == []  # the runner has the PlacedCall before it hears of its end
    fine = await line.place(2)
    await settle()
    assert line.recorder.of(1) == [("ended", CallEnd.FAILED)]
    assert (
        "originate refused" in line.recorder.causes[1]
        and "Endpoint must be specified" in line.recorder.causes[1]
    )
    assert refused.call_ref not in line.router.watched_channels
    assert line.network.active_calls == 1 and line.router.watched_channels == {fine.call_ref}
    await line.answer(fine)
    assert line.recorder.of(2) == [("answered", None)]


@pytest.mark.parametrize(
    "error",
    [
        AriConnectionError("POST /channels: ConnectError: [Errno 111] Connection refused"),
        AriConnectionError("POST /channels: ReadTimeout: "),
        AriUnauthorized(401, "Authentication required"),
    ],
)
def test_an_unreachable_asterisk_raises_network_unavailable_and_leaves_nothing_behind(
    error: AriError,
) -> None:
    async def main() -> None:
        line = Line()
        line.ari.fail_next("originate", error)
        with pytest.raises(NetworkUnavailable, match="ARI"):
            await line.place(1)
        await settle()
        assert line.recorder.steps == []
        assert line.clean()
        if isinstance(error, AriConnectionError):  # a request that timed out may have made the call
            assert len(line.hung_up()) == 1

    asyncio.run(main())


# --- connecting to an agent ---------------------------------------------------------------------------


def connect_people(line: Line, agent: str = "PJSIP/1001") -> None:
    """The runner's way: connect a person (or an unsure greeting) from inside greeting_ended."""

    async def connect(call: PlacedCall, verdict: AmdVerdict) -> None:
        try:
            await line.network.connect(call, agent)
        except AgentNotConnected as exc:
            line.recorder.steps.append(("not_connected", call.attempt_id, str(exc)))
            return
        line.recorder.steps.append(("connected", call.attempt_id, agent))

    line.recorder.on_greeting = connect


async def connected_call(line: Line, attempt: int = 7) -> tuple[PlacedCall, str]:
    connect_people(line)
    call = await line.place(attempt)
    await line.answer(call)
    await line.amd(call, "HUMAN")
    agent = await line.agent_answers(call)
    await until(lambda: ("connected", "PJSIP/1001") in line.recorder.of(attempt))
    return call, agent


@run
async def test_connect_originates_the_agent_and_bridges_both_once_the_agent_answers() -> None:
    line = Line()
    call, agent = await connected_call(line)
    originate = line.ari.called("originate")[1]
    assert originate.args["endpoint"] == "PJSIP/1001"
    assert originate.args["app"] == APP and originate.args["app_args"] == ["agent", "7"]
    assert originate.args["caller_id"] == "+34600111222"  # the agent sees whom they talk to
    assert originate.args["timeout"] == 15
    (bridge,) = line.ari.called("create_bridge")
    assert bridge.args["type"] == "mixing"
    (added,) = line.ari.called("add_channel")
    assert added.args["bridge_id"] == bridge.args["bridge_id"]
    assert added.args["channel_ids"] == (call.call_ref, agent)
    assert line.router.watched_channels == {call.call_ref, agent}


@run
async def test_when_the_agent_hangs_up_the_callee_is_hung_up_and_the_call_completes() -> None:
    line = Line()
    call, agent = await connected_call(line)
    await line.ends(agent)
    assert line.hung_up() == [call.call_ref]
    await line.ends(call.call_ref, cause=32, text="Normal Clearing")
    assert line.recorder.of(7)[-1] == ("ended", CallEnd.COMPLETED)
    assert len(line.ari.called("destroy_bridge")) == 1
    assert line.hung_up() == [call.call_ref]  # the agent's channel was gone already
    assert line.clean()


@run
async def test_when_the_callee_hangs_up_the_agent_is_hung_up_and_the_bridge_destroyed() -> None:
    line = Line()
    call, agent = await connected_call(line)
    await line.ends(call.call_ref)
    assert line.recorder.of(7)[-1] == ("ended", CallEnd.COMPLETED)
    assert line.hung_up() == [agent]
    assert len(line.ari.called("destroy_bridge")) == 1
    assert line.clean()


@run
async def test_an_agent_who_does_not_answer_is_not_connected_and_another_can_be() -> None:
    line = Line()
    connect_people(line)
    call = await line.place(7)
    await line.answer(call)
    await line.amd(call, "HUMAN")
    await until(lambda: len(line.ari.called("originate")) == 2)
    first = str(line.ari.called("originate")[1].args["channel_id"])
    await line.push(channel_destroyed(first, cause=19, cause_txt="User alerting, no answer", application=APP))
    await until(lambda: any(name == "not_connected" for name, _ in line.recorder.of(7)))
    failure = next(str(detail) for name, detail in line.recorder.of(7) if name == "not_connected")
    assert "PJSIP/1001 did not answer" in failure and "19" in failure
    assert line.ari.called("create_bridge") == []
    assert line.router.watched_channels == {call.call_ref}

    task = asyncio.create_task(line.network.connect(call, "PJSIP/1002"))
    second = await line.agent_answers(call, number=2)
    await task
    assert second != first
    assert line.ari.called("add_channel")[0].args["channel_ids"] == (call.call_ref, second)


@run
async def test_a_callee_who_hangs_up_while_the_agent_rings_is_not_connected_and_ends_once() -> None:
    line = Line()
    connect_people(line)
    call = await line.place(7)
    await line.answer(call)
    await line.amd(call, "HUMAN")
    await until(lambda: len(line.ari.called("originate")) == 2)
    agent = str(line.ari.called("originate")[1].args["channel_id"])
    await line.ends(call.call_ref)
    await until(lambda: line.recorder.ended_calls() == 1)
    steps = [name for name, _ in line.recorder.of(7)]
    assert steps == ["answered", "greeting_ended", "not_connected", "ended"]
    assert agent in line.hung_up()
    assert line.ari.called("create_bridge") == []
    assert line.clean()


@run
async def test_an_agent_who_never_answers_times_out() -> None:
    line = Line(agent_ring_timeout_s=1, lost_event_margin_s=0)  # the end of the ringing is never heard
    connect_people(line)
    call = await line.place(7)
    await line.answer(call)
    await line.amd(call, "HUMAN")
    await until(lambda: any(name == "not_connected" for name, _ in line.recorder.of(7)), seconds=3)
    failure = next(str(detail) for name, detail in line.recorder.of(7) if name == "not_connected")
    assert "did not answer in 1s" in failure
    assert len(line.hung_up()) == 1  # the agent's leg


@run
async def test_connect_before_the_answer_or_during_amd_is_refused() -> None:
    line = Line()
    call = await line.place(7)
    with pytest.raises(CallNotReady, match="not answered"):
        await line.network.connect(call, "PJSIP/1001")
    await line.answer(call)
    with pytest.raises(CallNotReady, match="AMD"):
        await line.network.connect(call, "PJSIP/1001")
    with pytest.raises(CallNotReady, match="AMD"):
        await line.network.play_and_hang_up(call, "centralita/es/abandon")
    assert len(line.ari.called("originate")) == 1


@run
async def test_a_bridge_asterisk_refuses_hangs_up_the_agent_and_raises() -> None:
    line = Line()
    line.ari.fail_next("add_channel", AriServerError(500, "Internal Server Error"))
    connect_people(line)
    call = await line.place(7)
    await line.answer(call)
    await line.amd(call, "HUMAN")
    agent = await line.agent_answers(call)
    await until(lambda: any(name == "not_connected" for name, _ in line.recorder.of(7)))
    assert line.hung_up() == [agent]
    assert len(line.ari.called("destroy_bridge")) == 1
    assert line.router.watched_channels == {call.call_ref}


# --- the abandoned-call message, hanging up -------------------------------------------------------


@run
async def test_play_and_hang_up_plays_the_message_and_hangs_up_when_it_ends() -> None:
    line = Line()
    call = await line.place(7, amd=False)
    await line.answer(call)
    await line.network.play_and_hang_up(call, "centralita/es/abc123")
    (play,) = line.ari.called("play")
    assert play.args["channel_id"] == call.call_ref and play.args["media"] == "sound:centralita/es/abc123"
    assert line.hung_up() == []  # not before the message ends
    playback = line.ari.playbacks[str(play.args["playback_id"])]
    await line.push(playback_finished(playback, application=APP))
    assert line.hung_up() == [call.call_ref]
    await line.ends(call.call_ref, cause=32)
    assert line.recorder.of(7)[-1] == ("ended", CallEnd.COMPLETED)
    assert line.clean()


@run
async def test_a_message_asterisk_cannot_play_still_hangs_up() -> None:
    line = Line()
    call = await line.place(7, amd=False)
    await line.answer(call)
    await line.network.play_and_hang_up(call, "centralita/es/missing")
    playback = line.ari.playbacks[str(line.ari.called("play")[0].args["playback_id"])]
    await line.push(playback_finished(playback, state="failed", application=APP))
    assert line.hung_up() == [call.call_ref]


@run
async def test_a_message_that_never_ends_is_cut_at_the_limit() -> None:
    line = Line(message_limit_s=0.01)
    call = await line.place(7, amd=False)
    await line.answer(call)
    await line.network.play_and_hang_up(call, "centralita/es/abc123")
    await until(lambda: line.hung_up() == [call.call_ref])


@run
async def test_a_play_asterisk_refuses_hangs_up_at_once_and_raises() -> None:
    line = Line()
    call = await line.place(7, amd=False)
    await line.answer(call)
    line.ari.fail_next("play", AriServerError(500, "Internal Server Error"))
    with pytest.raises(AriServerError):
        await line.network.play_and_hang_up(call, "centralita/es/abc123")
    assert line.hung_up() == [call.call_ref]


@run
async def test_hang_up_of_a_gone_channel_is_fine_and_of_an_ended_call_a_lookup_error() -> None:
    line = Line()
    call = await line.place(7)
    line.ari.fail_next("hangup", AriNotFound(404, "Channel not found"))
    await line.network.hang_up(call)
    await line.push(channel_destroyed(call.call_ref, cause=16, application=APP))
    with pytest.raises(LookupError):
        await line.network.hang_up(call)
    assert line.recorder.of(7) == [("ended", CallEnd.FAILED)]


# --- one call's trouble is its own ---------------------------------------------------------------


@run
async def test_an_observer_that_fails_gets_its_call_hung_up_and_the_others_go_on() -> None:
    line = Line()

    async def explode(call: PlacedCall) -> None:
        if call.attempt_id == 1:
            raise RuntimeError("the runner's bookkeeping broke")

    line.recorder.on_answer = explode
    broken, fine = await line.place(1), await line.place(2)
    await line.answer(broken)
    await line.answer(fine)
    assert line.hung_up() == [broken.call_ref]
    assert line.ari.called("continue_in_dialplan")[0].args["channel_id"] == fine.call_ref
    await line.ends(broken.call_ref, cause=32)
    assert "observer failed" in line.recorder.causes[1]
    await line.amd(fine, "HUMAN")
    assert line.recorder.of(2) == [("answered", None), ("greeting_ended", AmdVerdict.HUMAN)]
    assert line.router.failures == 0


@run
async def test_many_calls_each_get_their_own_events() -> None:
    line = Line()
    calls = [await line.place(attempt) for attempt in range(1, 21)]
    for call in calls[::2]:
        await line.answer(call)
    for call in calls[1::2]:
        await line.dial(call, "BUSY")
        await line.push(channel_destroyed(call.call_ref, cause=0, cause_txt="Unknown", application=APP))
    for call in calls[::2]:
        await line.amd(call, "MACHINE")
        await line.ends(call.call_ref)
    for call in calls:
        expected = (
            [("answered", None), ("greeting_ended", AmdVerdict.MACHINE), ("ended", CallEnd.COMPLETED)]
            if call.attempt_id % 2
            else [("ended", CallEnd.BUSY)]
        )
        assert line.recorder.of(call.attempt_id) == expected
    assert line.clean()


# --- after the event stream was down ----------------------------------------------------------------


@run
async def test_resync_ends_the_calls_whose_channels_went_away_meanwhile() -> None:
    line = Line()
    ringing, talking, still = await line.place(1), await line.place(2), await line.place(3)
    await line.answer(talking)
    await line.amd(talking, "HUMAN")
    del line.ari.channels[ringing.call_ref], line.ari.channels[talking.call_ref]
    await line.network.resync()
    await settle()
    assert line.recorder.of(1) == [("ended", CallEnd.FAILED)]
    assert line.recorder.of(2)[-1] == ("ended", CallEnd.COMPLETED)
    assert "event stream was down" in line.recorder.causes[2]
    assert line.network.active_calls == 1 and line.router.watched_channels == {still.call_ref}


@run
async def test_resync_hangs_up_a_callee_whose_agent_went_away_meanwhile() -> None:
    line = Line()
    call, agent = await connected_call(line)
    del line.ari.channels[agent]
    await line.network.resync()
    await settle()
    assert line.hung_up() == [call.call_ref]


@run
async def test_close_hangs_up_every_call_and_waits_for_their_ends() -> None:
    line = Line()
    calls = [await line.place(attempt) for attempt in (1, 2)]

    async def asterisk_hangs_them_up() -> None:
        await until(lambda: len(line.hung_up()) == 2)
        for call in calls:
            await line.push(channel_destroyed(call.call_ref, cause=16, application=APP))

    helper = asyncio.create_task(asterisk_hangs_them_up())
    await line.network.close(grace_seconds=2)
    await helper
    assert line.recorder.ended_calls() == 2
    assert line.clean()
