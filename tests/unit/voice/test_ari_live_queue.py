"""A call waiting in one of Centralita's queues over ARI, on FakeAri: the caller holds in the Stasis
application with music on hold, each agent the ACD offers the call to is originated into the application,
the one who answers is bridged to the caller, and the ACD hears how every offer went (answered, no answer,
busy, unreachable) and when the conversation ends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from routing.acd import SkillNeed
from routing.agent_state import AgentState, Login, Pause
from routing.ivr_queues import IvrQueues
from routing.live_queues import (
    AgentProfile,
    FakeAgentConnector,
    FakeRoutingEvents,
    LiveQueues,
    QueueConfig,
)
from voice.ari.client import AriClient
from voice.ari.errors import AriServerError
from voice.ari.fake import FakeAri, channel
from voice.ari.ivr_port import DEFAULT_HANDOFF_CONTEXT, AriPortOptions, AriVoicePort
from voice.ivr.voice_port import ActionNotDone, CallerGone, QueueContext, QueueProgress

CHANNEL = "1795537000.12"
CALL = "1795537000.10"  # the linkedid
CALLER = "+34600111222"
APP = "ccapp"
FAST = AriPortOptions(prompt_limit=0.3, handoff_poll=0.01)


def leg(n: int) -> str:
    """The channel id of the n-th agent's phone rung for the call."""
    return f"{CHANNEL}-agent-{n}"


class Centre:
    """A live ACD with queue "facturacion" (skill facturacion), the IVR's connector on it."""

    def __init__(self, **queue: Any) -> None:
        self.events = FakeRoutingEvents()
        self.live = LiveQueues(FakeAgentConnector(), self.events, ring_timeout_s=15)
        self.queues = IvrQueues.install(self.live)
        self.live.set_queue(QueueConfig("facturacion", needs=(SkillNeed("facturacion"),), **queue))
        self.progress: list[QueueProgress] = []

    async def staff(self, agent_id: int, skills: dict[str, int], *, paused: bool = False) -> None:
        self.live.set_agent(AgentProfile(agent_id, f"agent{agent_id}", skills))
        await self.live.change(agent_id, Login(f"PJSIP/100{agent_id}"), actor="test")
        if paused:
            await self.live.change(agent_id, Pause("lunch"), actor="test")

    def state(self, agent_id: int) -> AgentState:
        return self.live.status_of(agent_id).state

    def steps(self) -> list[tuple[str, str | None, str | None]]:
        return [(p.what, p.agent, p.result) for p in self.progress]


Scenario = Callable[[FakeAri, AriVoicePort, "asyncio.Task[None]"], Awaitable[None]]


def in_queue(
    centre: Centre,
    scenario: Scenario,
    staff: Callable[[], Awaitable[None]] | None = None,
    *,
    queue: str = "facturacion",
    prepare: Callable[[FakeAri], None] | None = None,
) -> FakeAri:
    """The caller's port enqueues (as the runner does) and `scenario` plays Asterisk and the agents; the
    port is closed afterwards and must leave no subscription and no open line behind."""

    async def main() -> FakeAri:
        if staff is not None:
            await staff()
        ari = FakeAri(application=APP)
        if prepare is not None:
            prepare(ari)
        await ari.start_call(channel(CHANNEL, caller_number="600111222"), "ivr", "banco_es")
        port = AriVoicePort(
            ari, ari.router, CHANNEL, call_id=CALL, options=FAST, queues=centre.queues, application=APP,
            caller=CALLER,
        )  # fmt: skip
        context = QueueContext(
            customer_id=7, interaction_id=70, collected={"flow": "banco_es"}, progress=centre.progress.append
        )
        task = asyncio.create_task(
            port.enqueue(queue=queue, priority=3, skills=["facturacion"], language="es", context=context)
        )
        try:
            await scenario(ari, port, task)
        finally:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await port.close()
            await asyncio.sleep(0)  # let the ACD finish what the last step started
        assert ari.router.watched_channels == frozenset()
        assert centre.queues.lines() == []
        return ari

    return asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the port never got there")


async def ringing(ari: FakeAri, n: int) -> dict[str, Any]:
    """The n-th originate (an agent's phone ringing); its arguments."""
    await until(lambda: len(ari.called("originate")) >= n)
    return ari.called("originate")[n - 1].args


async def bridged(ari: FakeAri) -> None:
    await until(lambda: bool(ari.called("add_channel")))


def test_the_first_agent_answers_is_bridged_to_the_caller_and_goes_to_wrap_up_after() -> None:
    centre = Centre(wrap_up_s=30)

    async def staff() -> None:
        await centre.staff(1, {"ventas": 5})  # no skill: never offered
        await centre.staff(2, {"facturacion": 4})

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        originate = await ringing(ari, 1)
        assert originate["endpoint"] == "PJSIP/1002" and originate["app"] == APP
        assert originate["app_args"] == ["agent", CALL] and originate["channel_id"] == leg(1)
        assert originate["timeout"] == 15 and originate["caller_id"] == CALLER
        assert ari.moh == {CHANNEL: None}  # the caller hears music while the phone rings
        assert centre.state(2) is AgentState.OFFERED
        await ari.answer_originated(leg(1))
        await bridged(ari)
        await until(lambda: centre.state(2) is AgentState.ON_CALL)
        assert not task.done()  # they talk
        assert ari.moh == {}
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone, match=r"agent2 answered it \(the caller hung up\)"):
            await task

    ari = in_queue(centre, scenario, staff)

    assert ari.methods == [
        "set_variable", "start_moh", "originate", "create_bridge", "stop_moh", "add_channel", "hangup",
        "destroy_bridge",
    ]  # fmt: skip
    assert ari.called("set_variable")[0].args["value"] == "es"
    assert ari.called("create_bridge")[0].args["type"] == "mixing"
    bridge = ari.called("create_bridge")[0].args["bridge_id"]
    assert ari.called("add_channel")[0].args["channel_ids"] == (CHANNEL, leg(1))
    assert ari.called("hangup")[0].args["channel_id"] == leg(1)  # the agent's leg, after the caller
    assert ari.called("destroy_bridge")[0].args["bridge_id"] == bridge
    assert centre.state(2) is AgentState.WRAP_UP and centre.state(1) is AgentState.READY
    assert centre.steps() == [("left", "agent2", "answered"), ("agent_connected", "agent2", None)]
    (offered,) = centre.events.offers
    assert offered.call.call_id == CALL and offered.call.caller == CALLER
    assert offered.call.customer_id == 7 and offered.call.interaction_id == 70
    assert offered.call.context == {"flow": "banco_es"} and offered.call.priority == 3


def test_an_agent_who_does_not_answer_is_paused_and_the_next_one_rings_while_the_caller_holds() -> None:
    centre = Centre()

    async def staff() -> None:
        await centre.staff(1, {"facturacion": 4})
        await asyncio.sleep(0.01)  # agent 1 has been idle the longest: offered first
        await centre.staff(2, {"facturacion": 4})

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        assert (await ringing(ari, 1))["endpoint"] == "PJSIP/1001"
        await ari.originated_ends(leg(1), cause=19, cause_txt="No answer")
        second = await ringing(ari, 2)
        assert second["endpoint"] == "PJSIP/1002" and second["channel_id"] == leg(2)
        assert centre.live.status_of(1).reason == "missed call"
        assert ari.moh == {CHANNEL: None} and not ari.called("stop_moh")  # the music never stopped
        await ari.answer_originated(leg(2))
        await bridged(ari)
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone, match="agent2"):
            await task

    ari = in_queue(centre, scenario, staff)

    assert centre.state(1) is AgentState.PAUSED
    assert centre.state(2) is AgentState.WRAP_UP
    assert ari.called("add_channel")[0].args["channel_ids"] == (CHANNEL, leg(2))
    assert centre.steps() == [("left", "agent2", "answered"), ("agent_connected", "agent2", None)]


def test_a_busy_phone_counts_as_busy_and_the_caller_keeps_holding() -> None:
    centre = Centre()

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await ringing(ari, 1)
        await ari.originated_ends(leg(1), cause=17, cause_txt="User busy")
        await until(lambda: centre.state(1) is AgentState.PAUSED)
        await asyncio.sleep(0.01)
        assert not task.done() and port.waiting_for == "queue"
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone):
            await task

    in_queue(centre, scenario, lambda: centre.staff(1, {"facturacion": 4}))
    assert centre.live.status_of(1).reason == "phone busy"
    assert centre.steps() == [("left", None, "caller hung up")]


def test_an_endpoint_asterisk_will_not_ring_is_unreachable_for_the_acd() -> None:
    centre = Centre()

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await until(lambda: centre.state(1) is AgentState.PAUSED)
        assert not task.done()  # the caller holds on for the next agent
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone):
            await task

    ari = in_queue(
        centre,
        scenario,
        lambda: centre.staff(1, {"facturacion": 4}),
        prepare=lambda ari: ari.fail_next("originate", AriServerError(500, "Allocation failed")),
    )
    assert centre.live.status_of(1).reason == "phone unreachable"
    assert ari.called("hangup") == []  # nothing was made, nothing to hang up


def test_a_caller_who_gives_up_on_hold_leaves_the_queue() -> None:
    centre = Centre()

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await until(lambda: port.waiting_for == "queue" and CHANNEL in ari.moh)
        assert centre.live.position_of(CALL) == 1
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone):
            await task

    ari = in_queue(centre, scenario, lambda: centre.staff(1, {"facturacion": 4}, paused=True))

    assert centre.live.position_of(CALL) is None
    assert centre.steps() == [("left", None, "caller hung up")]
    assert ari.methods == ["set_variable", "start_moh"]  # nothing is sent to a channel that has gone


def test_a_caller_who_hangs_up_while_the_agent_rings_frees_the_agent_and_stops_the_ringing() -> None:
    centre = Centre()

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await ringing(ari, 1)
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone):
            await task

    ari = in_queue(centre, scenario, lambda: centre.staff(1, {"facturacion": 4}))

    assert ari.called("hangup")[0].args["channel_id"] == leg(1)
    assert centre.state(1) is AgentState.READY  # withdrawn: not the agent's doing
    assert centre.steps() == [("left", None, "caller hung up")]


def test_an_agent_who_hangs_up_first_ends_the_call_for_the_caller_too() -> None:
    centre = Centre(wrap_up_s=30)

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await ringing(ari, 1)
        await ari.answer_originated(leg(1))
        await bridged(ari)
        await ari.originated_ends(leg(1))  # the agent hangs up
        with pytest.raises(CallerGone, match=r"agent1 answered it \(the agent hung up\)"):
            await task
        assert port.gone

    ari = in_queue(centre, scenario, lambda: centre.staff(1, {"facturacion": 4}))

    assert [c.args["channel_id"] for c in ari.called("hangup")] == [CHANNEL]  # the caller's, only
    assert len(ari.called("destroy_bridge")) == 1
    assert ari.called("continue_in_dialplan") == []  # a hung-up caller is not handed back at close
    assert centre.state(1) is AgentState.WRAP_UP
    assert centre.steps() == [("left", "agent1", "answered"), ("agent_connected", "agent1", None)]


def test_a_run_cancelled_mid_conversation_leaves_the_two_talking_in_their_bridge() -> None:
    centre = Centre()

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await ringing(ari, 1)
        await ari.answer_originated(leg(1))
        await until(lambda: centre.state(1) is AgentState.ON_CALL)
        task.cancel()  # the service is stopping
        await asyncio.gather(task, return_exceptions=True)

    ari = in_queue(centre, scenario, lambda: centre.staff(1, {"facturacion": 4}))

    assert not {"hangup", "destroy_bridge", "continue_in_dialplan"} & set(ari.methods)
    assert centre.state(1) is AgentState.WRAP_UP  # the ACD forgets the call: its process is going away


def test_a_queue_that_refuses_the_call_is_not_done_without_any_music() -> None:
    centre = Centre()  # nobody logged in

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        with pytest.raises(ActionNotDone, match="queue facturacion: no_agents"):
            await task

    ari = in_queue(centre, scenario)
    assert ari.methods[:1] == ["set_variable"] and "start_moh" not in ari.methods


def test_the_max_wait_stops_the_music_and_the_flow_goes_on() -> None:
    centre = Centre(max_wait_s=0)

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        with pytest.raises(ActionNotDone, match="max_wait"):
            await task
        assert not port.gone and ari.moh == {}

    ari = in_queue(centre, scenario, lambda: centre.staff(1, {"facturacion": 4}, paused=True))
    assert "stop_moh" in ari.methods
    assert centre.steps() == [("left", None, "max_wait")]


def test_a_queue_centralita_does_not_have_goes_to_asterisks_queue_through_the_dialplan() -> None:
    centre = Centre()

    async def scenario(ari: FakeAri, port: AriVoicePort, task: asyncio.Task[None]) -> None:
        await until(lambda: port.waiting_for == "handoff")
        await ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone):
            await task

    ari = in_queue(centre, scenario, queue="soporte")
    (handoff,) = ari.called("continue_in_dialplan")
    assert handoff.args["context"] == DEFAULT_HANDOFF_CONTEXT and handoff.args["extension"] == "queue"
    assert (
        "soporte" in [c.args["value"] for c in ari.called("set_variable")]
    ) and "start_moh" not in ari.methods


def test_music_on_hold_starts_and_stops_with_asterisk_22_paths() -> None:
    seen: list[tuple[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, str(request.url)))
        return httpx.Response(204)

    async def main() -> None:
        async with AriClient("http://pbx:8088", "u", "p", transport=httpx.MockTransport(answer)) as ari:
            await ari.start_moh("c1")
            await ari.start_moh("c1", "spanish")
            await ari.stop_moh("c1")

    asyncio.run(main())
    assert seen == [
        ("POST", "http://pbx:8088/ari/channels/c1/moh"),
        ("POST", "http://pbx:8088/ari/channels/c1/moh?mohClass=spanish"),
        ("DELETE", "http://pbx:8088/ari/channels/c1/moh"),
    ]
