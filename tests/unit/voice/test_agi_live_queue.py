"""A call waiting in one of Centralita's queues over FastAGI: the exact commands (music on hold, Dial to
the agent's phone with the answer subroutine), the ACD hearing how each offer went, and the ways a
wait ends (answered, refused, max wait, the caller hanging up on hold)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from routing.acd import SkillNeed
from routing.agent_state import AgentState, Login, Pause
from routing.ivr_queues import IvrQueues
from routing.live_queues import (
    AgentProfile,
    FakeAgentConnector,
    FakeRoutingEvents,
    InboundCall,
    LiveQueues,
    QueueConfig,
)
from voice.agi.fake_asterisk import Exchange, FakeAsterisk, environment_lines, exchange
from voice.agi.ivr_port import AgiVoicePort, ivr_router
from voice.agi.session import AgiTimeouts
from voice.ivr.voice_port import ActionNotDone, CallerGone, QueueContext, QueueProgress

FAST = AgiTimeouts(environment=0.5, command=0.3, media=0.3, application=0.3)
GONE = "511 Command Not Permitted on a dead channel or intercept routine"
CALL = "1795537810.0"  # the fake environment's uniqueid is the call id
SETUP = [exchange("SET VARIABLE CHANNEL(language) es", "200 result=1")]
MUSIC_ON = exchange("SET MUSIC on", "200 result=0")
MUSIC_OFF = exchange("SET MUSIC off", "200 result=0")


def dial(endpoint: str, status: str, result: int = 0) -> list[Exchange]:
    return [
        MUSIC_OFF,
        exchange(f"EXEC Dial {endpoint},15,mU(centralita-agent-answered^{CALL})", f"200 result={result}"),
        exchange("GET VARIABLE DIALSTATUS", f"200 result=1 ({status})"),
    ]


class Centre:
    """A live ACD with queue "facturacion" (skill facturacion), the IVR's connector on it."""

    def __init__(self, **queue: Any) -> None:
        self.events = FakeRoutingEvents()
        self.live = LiveQueues(FakeAgentConnector(), self.events)
        self.queues = IvrQueues.install(self.live)
        self.live.set_queue(QueueConfig("facturacion", needs=(SkillNeed("facturacion"),), **queue))
        self.progress: list[QueueProgress] = []

    async def staff(
        self, agent_id: int, endpoint: str, skills: dict[str, int], *, paused: bool = False
    ) -> None:
        self.live.set_agent(AgentProfile(agent_id, f"agent{agent_id}", skills))
        await self.live.change(agent_id, Login(endpoint), actor="test")
        if paused:
            await self.live.change(agent_id, Pause("lunch"), actor="test")

    def context(self) -> QueueContext:
        return QueueContext(
            customer_id=7, interaction_id=70, collected={"flow": "banco_es"}, progress=self.progress.append
        )


def in_queue(
    centre: Centre,
    script: list[Exchange],
    before: Callable[[], Awaitable[None]] | None = None,
    *,
    hold_check: float = 5.0,
) -> None:
    async def main() -> None:
        if before is not None:
            await before()
        fake = FakeAsterisk(script, environment=environment_lines("banco_es"))
        session = await fake.session(FAST)
        port = AgiVoicePort(
            session, queues=centre.queues, caller="+34600111222", hold_check_seconds=hold_check
        )
        try:
            await port.enqueue(
                queue="facturacion",
                priority=3,
                skills=["facturacion"],
                language="es",
                context=centre.context(),
            )
        finally:
            await asyncio.sleep(0)  # let the ACD finish what the last reply started
            fake.assert_finished()

    asyncio.run(main())


def test_a_ready_agent_with_the_skill_is_dialled_and_the_call_ends_after_the_conversation() -> None:
    centre = Centre(wrap_up_s=30)

    async def staff() -> None:
        await centre.staff(1, "PJSIP/1001", {"ventas": 5})  # no skill: never offered
        await centre.staff(2, "PJSIP/1002", {"facturacion": 4})

    # The agent hangs up first: Dial returns 0 with ANSWER, and the call is done with the queue.
    in_queue(centre, [*SETUP, MUSIC_ON, *dial("PJSIP/1002", "ANSWER")], staff)

    assert centre.live.status_of(2).state is AgentState.WRAP_UP
    assert centre.live.status_of(1).state is AgentState.READY
    assert [(p.what, p.agent, p.result) for p in centre.progress] == [
        ("left", "agent2", "answered"),
        ("agent_connected", "agent2", None),
    ]
    (offered,) = centre.events.offers
    assert offered.call.customer_id == 7 and offered.call.interaction_id == 70
    assert offered.call.caller == "+34600111222" and offered.call.context == {"flow": "banco_es"}
    assert offered.call.priority == 3 and offered.call.skills == ("facturacion",)
    assert centre.queues.lines() == []


def test_an_agent_who_does_not_answer_is_paused_and_the_next_one_is_dialled_while_the_caller_holds() -> None:
    centre = Centre()

    async def staff() -> None:
        await centre.staff(1, "PJSIP/1001", {"facturacion": 4})
        await asyncio.sleep(0.01)  # agent 1 has been idle the longest: offered first
        await centre.staff(2, "PJSIP/1002", {"facturacion": 4})

    script = [
        *SETUP,
        MUSIC_ON,
        *dial("PJSIP/1001", "NOANSWER"),
        MUSIC_ON,
        # The caller hangs up at the end of the conversation: Asterisk's HANGUP notice comes before the
        # reply to the first GET VARIABLE, which it still answers on the dead channel.
        *dial("PJSIP/1002", "ANSWER", result=-1)[:2],
        exchange("GET VARIABLE DIALSTATUS", "HANGUP", "200 result=1 (ANSWER)"),
        exchange("GET VARIABLE DIALSTATUS", "200 result=1 (ANSWER)"),
    ]
    with pytest.raises(CallerGone, match="agent2"):
        in_queue(centre, script, staff)
    assert centre.live.status_of(1).state is AgentState.PAUSED
    assert centre.live.status_of(1).reason == "missed call"
    assert centre.live.status_of(2).state is AgentState.WRAP_UP
    assert ("agent_connected", "agent2") in [(p.what, p.agent) for p in centre.progress]


def test_a_busy_phone_counts_as_busy_for_the_acd() -> None:
    centre = Centre(max_wait_s=None)

    async def staff() -> None:
        await centre.staff(1, "PJSIP/1001", {"facturacion": 4})

    # After the busy phone nobody is ready: the caller holds until hanging up.
    script = [
        *SETUP,
        MUSIC_ON,
        *dial("PJSIP/1001", "BUSY"),
        MUSIC_ON,
        exchange("CHANNEL STATUS", "HANGUP", GONE),
    ]
    with pytest.raises(CallerGone):
        in_queue(centre, script, staff, hold_check=0.05)
    assert centre.live.status_of(1).reason == "phone busy"


def test_no_agent_logged_in_refuses_the_call_so_the_flow_takes_its_failure_path() -> None:
    centre = Centre()
    with pytest.raises(ActionNotDone, match="queue facturacion: no_agents"):
        in_queue(centre, SETUP)
    assert centre.queues.lines() == []


def test_the_max_wait_ends_the_wait_as_not_done() -> None:
    centre = Centre(max_wait_s=0)

    async def staff() -> None:
        await centre.staff(1, "PJSIP/1001", {"facturacion": 4}, paused=True)

    with pytest.raises(ActionNotDone, match="max_wait"):
        in_queue(centre, [*SETUP, MUSIC_ON], staff)
    assert [(p.what, p.result) for p in centre.progress] == [("left", "max_wait")]


def test_a_caller_who_hangs_up_on_hold_leaves_the_queue() -> None:
    centre = Centre()

    async def staff() -> None:
        await centre.staff(1, "PJSIP/1001", {"facturacion": 4}, paused=True)

    script = [
        *SETUP,
        MUSIC_ON,
        exchange("CHANNEL STATUS", "200 result=6"),
        exchange("CHANNEL STATUS", "HANGUP", GONE),
    ]
    with pytest.raises(CallerGone):
        in_queue(centre, script, staff, hold_check=0.05)
    assert centre.live.position_of(CALL) is None
    assert [(p.what, p.result) for p in centre.progress] == [("left", "caller hung up")]
    assert centre.live.queue_status("facturacion").service_level.abandoned == 1


def test_a_queue_centralita_does_not_have_goes_to_asterisks_queue() -> None:
    centre = Centre()
    script = [
        *SETUP,
        exchange("SET VARIABLE QUEUE_PRIO 3", "200 result=1"),
        exchange("SET VARIABLE CENTRALITA_SKILLS soporte", "200 result=1"),
        exchange("EXEC Queue soporte", "200 result=-1"),
    ]

    async def main() -> None:
        fake = FakeAsterisk(script, environment=environment_lines("banco_es"))
        port = AgiVoicePort(await fake.session(FAST), queues=centre.queues)
        with pytest.raises(CallerGone):
            await port.enqueue(queue="soporte", priority=3, skills=["soporte"], language="es")
        fake.assert_finished()

    asyncio.run(main())


def answered_script(call_id: str) -> list[bytes]:
    return environment_lines("agent-answered", arg_1=call_id, channel="PJSIP/1002-00000007")


def test_the_dialplans_answer_signal_counts_the_agent_on_the_call_while_they_talk() -> None:
    centre = Centre()
    route = ivr_router(lambda name: None, runner=None, queues=centre.queues)  # type: ignore[arg-type]

    async def main() -> None:
        await centre.staff(2, "PJSIP/1002", {"facturacion": 4})
        line = centre.queues.open_line(CALL)
        centre.live.join(InboundCall(CALL, "facturacion"))
        pending = await asyncio.wait_for(line.next_offer(), 1)
        line.ringing = pending
        fake = FakeAsterisk([], environment=answered_script(CALL))
        session = await fake.session(FAST)
        handler = route(session.env)
        assert handler is not None
        await handler(session)
        fake.assert_finished()
        assert await asyncio.wait_for(pending.result, 1) == "answered"
        await asyncio.sleep(0.01)
        assert centre.live.status_of(2).state is AgentState.ON_CALL
        # Too late: nothing rings for that call any more, so the agent's leg is not bridged.
        line.ringing = None
        fake = FakeAsterisk(
            [exchange("SET VARIABLE GOSUB_RESULT CONTINUE", "200 result=1")],
            environment=answered_script(CALL),
        )
        session = await fake.session(FAST)
        late = route(session.env)
        assert late is not None
        await late(session)
        fake.assert_finished()

    asyncio.run(main())
