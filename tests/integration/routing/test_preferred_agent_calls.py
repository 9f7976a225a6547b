"""The agent who handled a customer's open case last, on SQLite and PostgreSQL: the database read
(`routing.preferred_agent`), then whole calls over ARI (the real StasisIvr, runner, timeline and live ACD,
a FakeAri playing Asterisk): the customer's call goes to that agent before a longer-idle one, and to the
longer-idle one when that agent is busy."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ivr_call_records import CALLER, MADRID_MONDAY_10, new_customer, recorded

from centralita.container import Container
from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.timeline import service as timeline
from core.timeline.schemas import InteractionCreate, TouchpointCreate, TouchpointKind
from routing import preferred_agent
from routing import service as routing
from routing.agent_state import Login, Pause
from routing.schemas import AgentCreate, QueueCreate, QueueSkill, SkillLevel
from voice.ari.events import Channel
from voice.ari.fake import FakeAri, channel
from voice.ari.ivr_port import AriPortOptions
from voice.ari.stasis_app import LINKEDID, StasisIvr

APP = "centralita"
T0 = datetime(2025, 2, 1, 10, 0, tzinfo=UTC)
LINKED = "1795537000.77"
CHANNEL = f"{LINKED}-chan"


def agent(container: Container, name: str, endpoint: str) -> int:
    with unit_of_work(container.session_factory) as db:
        data = AgentCreate(
            name=name,
            display_name=name.title(),
            home_endpoint=endpoint,
            skills=[SkillLevel(skill="incidencias", level=5)],
        )
        return routing.create_agent(db=db, data=data, actor="test").id


def open_case(container: Container, customer_id: int, *, resolved: bool = False) -> int:
    with unit_of_work(container.session_factory) as db:
        case = cases.open_case(db=db, data=CaseCreate(customer_id=customer_id, subject="Cargo duplicado"))
        if resolved:
            cases.resolve_case(db=db, case_id=case.id, resolution="devuelto")
        return case.id


def a_call(
    container: Container, customer_id: int, case_id: int | None, at: datetime, agent_name: str | None
) -> None:
    """A past call of the customer (in `case_id`), answered by `agent_name` (None: nobody answered)."""
    with unit_of_work(container.session_factory) as db:
        interaction, _ = timeline.record_interaction(
            db=db,
            data=InteractionCreate(
                customer_id=customer_id, case_id=case_id, channel="voice", direction="inbound", started_at=at
            ),
            region="ES",
        )
        steps = [TouchpointCreate(kind=TouchpointKind.QUEUE_ENTER, occurred_at=at, attributes={"queue": "q"})]
        if agent_name is not None:
            steps.append(
                TouchpointCreate(
                    kind=TouchpointKind.AGENT_CONNECT,
                    occurred_at=at + timedelta(seconds=30),
                    attributes={"agent": agent_name, "queue": "incidencias"},
                )
            )
        for step in steps:
            timeline.add_touchpoint(db=db, interaction_id=interaction.id, data=step)


def preferred(container: Container, customer_id: int) -> int | None:
    with container.read_session_factory() as db:
        found = preferred_agent.open_case(db=db, customer_id=customer_id, queue="incidencias")
    return found.preferred_agent if found is not None else None


# --- the read ---------------------------------------------------------------------------------------


def test_the_agent_of_the_latest_answered_call_of_an_open_case_is_preferred(container: Container) -> None:
    alba = agent(container, "alba", "PJSIP/1001")
    bea = agent(container, "bea", "PJSIP/1002")
    ana = new_customer(container, (IdentityKind.PHONE, "600 111 222"), name="Ana")
    case = open_case(container, ana)
    a_call(container, ana, case, T0, "alba")
    a_call(container, ana, case, T0 + timedelta(days=1), "bea")
    assert preferred(container, ana) == bea

    # Not counted: a call nobody answered, a call in no case, a resolved case, another customer's case.
    a_call(container, ana, case, T0 + timedelta(days=2), None)
    a_call(container, ana, None, T0 + timedelta(days=3), "alba")
    a_call(container, ana, open_case(container, ana, resolved=True), T0 + timedelta(days=4), "alba")
    luis = new_customer(container, (IdentityKind.PHONE, "600 333 444"), name="Luis")
    a_call(container, luis, open_case(container, luis), T0 + timedelta(days=5), "alba")
    assert preferred(container, ana) == bea
    assert preferred(container, luis) == alba

    # A later answered call on another of her open cases decides.
    a_call(container, ana, open_case(container, ana), T0 + timedelta(days=6), "alba")
    assert preferred(container, ana) == alba


def test_no_case_no_answered_call_or_an_agent_gone_since_is_no_preference(container: Container) -> None:
    agent(container, "alba", "PJSIP/1001")
    ana = new_customer(container, (IdentityKind.PHONE, "600 111 222"), name="Ana")
    assert preferred(container, ana) is None
    case = open_case(container, ana)
    a_call(container, ana, case, T0, None)
    assert preferred(container, ana) is None
    a_call(container, ana, case, T0 + timedelta(hours=1), "alba")
    a_call(container, ana, case, T0 + timedelta(hours=2), "zoe")  # not an agent (any more)
    assert preferred(container, ana) is None


# --- whole calls over ARI -------------------------------------------------------------------------------


class Asterisk(FakeAri):
    """Prompts play to the end; agents' phones answer, except those in `busy`; once the caller is bridged
    to an agent, the caller hangs up."""

    def __init__(self) -> None:
        super().__init__(application=APP)
        self._soon: set[asyncio.Task[None]] = set()

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)

    async def settle(self) -> None:
        while self._soon:
            await asyncio.gather(*set(self._soon))

    async def play(self, channel_id: str, media: str | Sequence[str], **options: Any) -> Any:
        playback = await super().play(channel_id, media, **options)
        self.later(self.finish_playback(playback.id))
        return playback

    async def originate(self, endpoint: str, **options: Any) -> Channel:
        made = await super().originate(endpoint, **options)
        self.later(self.answer_originated(made.id))
        return made

    async def add_channel(self, bridge_id: str, channel_ids: str | Sequence[str], **options: Any) -> None:
        await super().add_channel(bridge_id, channel_ids, **options)
        self.later(self.caller_hangs_up(CHANNEL))

    async def dial_in(self, ivr: StasisIvr, keys: deque[str]) -> None:
        """Ana calls banco_es and answers each question with the next keys."""
        self.variables[(CHANNEL, LINKEDID)] = LINKED
        arriving = channel(CHANNEL, caller_number=CALLER, name="PJSIP/trunk-1", exten="900100200")
        await self.start_call(arriving, "ivr", "banco_es", "900100200")
        answered = -1
        while (port := ivr.port(CHANNEL)) is not None:
            asked = len(self.called("play"))
            if port.waiting_for == "digits" and not port.gone and asked != answered and keys:
                answered = asked
                await self.press(CHANNEL, keys.popleft())
            await asyncio.sleep(0.001)
        await self.settle()


@pytest.mark.parametrize(("b_busy", "expected"), [(False, "bea"), (True, "alba")])
def test_a_customer_with_an_open_case_reaches_its_agent_when_ready_else_the_longest_idle(
    container: Container, b_busy: bool, expected: str
) -> None:
    ids = {"alba": agent(container, "alba", "PJSIP/1001"), "bea": agent(container, "bea", "PJSIP/1002")}
    with unit_of_work(container.session_factory) as db:
        queue = QueueCreate(name="incidencias", skills=[QueueSkill(skill="incidencias")], wrap_up_seconds=5)
        routing.create_queue(db=db, data=queue, actor="test")
    ana = new_customer(container, (IdentityKind.PHONE, "600 111 222"), name="Ana", preferred_language="es")
    a_call(container, ana, open_case(container, ana), T0, "bea")
    live = container.routing().live
    runner = container.call_runner(clock=lambda: MADRID_MONDAY_10)

    async def main() -> Asterisk:
        await live.change(ids["alba"], Login("PJSIP/1001"), actor="test")  # alba: idle the longest
        await asyncio.sleep(0.01)
        await live.change(ids["bea"], Login("PJSIP/1002"), actor="test")
        if b_busy:
            await live.change(ids["bea"], Pause("coffee"), actor="test")
        asterisk = Asterisk()
        ivr = StasisIvr(
            asterisk,
            asterisk.router,
            runner,
            container.flows().get,
            application=APP,
            options=AriPortOptions(handoff_poll=0.01),
            queues=container.ivr_queues(),
        )
        async with ivr:
            # "1": she calls about her open case (banco_es' caso_abierto), to queue incidencias.
            await asyncio.wait_for(asterisk.dial_in(ivr, deque(["1"])), timeout=30)
        await runner.drain(timeout=10)
        assert asterisk.router.watched_channels == frozenset()
        live.clear()
        return asterisk

    asterisk = asyncio.run(main())

    (originate,) = asterisk.called("originate")
    assert originate.args["endpoint"] == f"PJSIP/100{1 if expected == 'alba' else 2}"
    call = recorded(container, LINKED)
    connected = [t for t in call.touchpoints if t.kind == TouchpointKind.AGENT_CONNECT.value]
    assert [t.attributes["agent"] for t in connected] == [expected]
    assert call.interaction.customer_id == ana and call.interaction.outcome == "transferred"
