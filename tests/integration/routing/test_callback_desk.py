"""Callbacks made by the desk: a live ACD, the simulated call network (fast), SQLite and PostgreSQL.

Each test runs its own event loop with a live ACD of its own and the container's database and bus, so
a booking's commit wakes the desk exactly as in the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from centralita.container import Container
from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.customers import service as customers
from core.customers.identities import IdentityKind
from core.db import unit_of_work, utcnow
from core.timeline import service as timeline
from core.timeline.models import Interaction, Touchpoint
from core.timeline.schemas import ExternalRef, InteractionCreate, RefKind
from dialer import do_not_call_store
from dialer.calling_window import ANY_TIME
from dialer.clock import ScaledClock
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork
from routing import callbacks as service
from routing import service as routing
from routing.agent_state import AgentState, Login
from routing.callback_dialer import CallbackDesk, entry_id
from routing.callback_models import Callback, CallbackSource
from routing.callback_rules import CallbackRefused, CallbackRules
from routing.live_queues import (
    AgentProfile,
    FakeAgentConnector,
    FakeRoutingEvents,
    InboundCall,
    LiveQueues,
    QueueConfig,
)
from routing.schemas import QueueCreate
from voice.ivr.actions import OfferCallback
from voice.ivr.voice_port import CallInfo

PHONE = "+34600111222"
ANSWERING = CalleeBehaviour(
    live_answer=1.0, machine=0, busy=0, failed=0, ring_min_s=1, ring_max_s=2, talk_mean_s=20
)
BUSY = CalleeBehaviour(live_answer=0, machine=0, busy=1.0, failed=0)


class Centre:
    """A live ACD with queue "general" (no wrap-up), agent "ana", and a callback desk on `behaviour`."""

    def __init__(self, container: Container, behaviour: CalleeBehaviour, **rules: Any) -> None:
        self.container = container
        self.phones = FakeAgentConnector(hold=True)
        self.events = FakeRoutingEvents()
        self.live = LiveQueues(self.phones, self.events)
        self.live.set_queue(QueueConfig("general", wrap_up_s=0))
        self.live.set_agent(AgentProfile(1, "ana", {}))
        self.network = SimulatedCallNetwork(ScaledClock(2000), behaviour=behaviour)
        self.rules = CallbackRules(hours=ANY_TIME, **rules)
        self.desk = CallbackDesk(
            session_factory=container.session_factory,
            bus=container.bus,
            live=self.live,
            rules=self.rules,
            network=self.network,
            poll_seconds=0.5,
        )
        with unit_of_work(container.session_factory) as db:
            routing.create_queue(db=db, data=QueueCreate(name="general", wrap_up_seconds=0), actor="test")

    async def log_in(self) -> None:
        await self.live.change(1, Login("PJSIP/1001"), actor="test")

    def book(self, phone: str = PHONE, **ask: Any) -> int:
        with unit_of_work(self.container.session_factory) as db:
            booked = service.request_callback(
                db=db,
                ask=service.CallbackAsk(phone=phone, source=CallbackSource.WEB, **ask),
                rules=self.rules,
                actor="test",
                now=utcnow(),
            )
            return booked.callback.id

    def callback(self, callback_id: int) -> Callback:
        with self.container.session_factory() as db:
            found = db.get(Callback, callback_id)
            assert found is not None
            db.expunge(found)
            return found

    def served(self) -> list[str]:
        return [offer.call.call_id for offer in self.events.offers]

    async def close(self) -> None:
        await self.desk.stop()
        await self.network.close()
        self.desk.close()


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.01)


def ivr_call(container: Container, linkedid: str) -> tuple[int, int]:
    """An IVR call as the call journal records it, in a case of the caller's: (interaction, case)."""
    with unit_of_work(container.session_factory) as db:
        customer_id = customers.find_or_create_by_identity(
            db=db, kind=IdentityKind.PHONE, value=PHONE, region="ES"
        )
        case = cases.open_case(db=db, data=CaseCreate(customer_id=customer_id, subject="fault"))
        interaction, _ = timeline.record_interaction(
            db=db,
            data=InteractionCreate(
                customer_id=customer_id,
                case_id=case.id,
                channel="voice",
                direction="inbound",
                started_at=utcnow(),
                external_refs=[ExternalRef(kind=RefKind.ASTERISK_LINKEDID, value=linkedid)],
            ),
            region="ES",
        )
        return interaction.id, case.id


def test_a_callback_keeps_its_place_is_dialed_when_the_agent_frees_and_lands_in_the_calls_case(
    container: Container,
) -> None:
    call_interaction, case_id = ivr_call(container, "c2")

    async def scenario() -> None:
        centre = Centre(container, ANSWERING)
        await centre.log_in()
        await centre.desk.start()
        try:
            centre.live.join(InboundCall("c0", "general"))
            await until(lambda: centre.phones.ringing() == ["PJSIP/1001"])
            centre.phones.answer("PJSIP/1001")  # the only agent is busy with c0 from now on
            for call_id in ("c1", "c2", "c3"):
                centre.live.join(InboundCall(call_id, "general"))
                await asyncio.sleep(0.002)
            place = centre.live.place_of("c2")
            assert place is not None
            # The caller of c2 accepts a callback and hangs up; the IVR books it.
            centre.live.leave("c2")
            booker = service.IvrCallbackBooker(
                session_factory=container.session_factory, rules=centre.rules, places=centre.live.place_of
            )
            await booker.book_callback(
                OfferCallback(queue="general", number=PHONE, language="es"),
                CallInfo(call_id="c2", ref_kind="asterisk_linkedid", caller=PHONE, called="900100200"),
                context={"intent": "billing", "flow": "banco_es", "node": "ofrecer_llamada"},
            )
            with container.session_factory() as db:
                (callback_id,) = db.scalars(select(Callback.id)).all()
            entry = entry_id(callback_id)
            await until(lambda: centre.live.virtual_ids() == {entry})
            assert [centre.live.position_of(c) for c in ("c1", entry, "c3")] == [1, 2, 3]
            assert centre.callback(callback_id).place_at == place.entered_at

            centre.live.call_ended("c0")  # the agent frees: c1 first, who was there before
            await until(lambda: centre.phones.ringing() == ["PJSIP/1001"])
            centre.phones.answer("PJSIP/1001")
            await until(lambda: centre.live.status_of(1).call_id == "c1")
            centre.live.call_ended("c1")  # then the callback: dialed, answered, bridged to ana
            await until(lambda: centre.callback(callback_id).status in ("connected", "completed"))
            await until(lambda: centre.callback(callback_id).status == "completed")
            await until(lambda: centre.live.status_of(1).call_id == "c3")  # and then c3
            await until(lambda: len(centre.served()) == 4)  # its screen pop is published just after
            assert centre.served() == ["c0", "c1", entry, "c3"]
            assert centre.events.offers[2].call.context["intent"] == "billing"  # the screen pop
        finally:
            await centre.close()

    asyncio.run(scenario())
    with container.session_factory() as db:
        callback = db.scalars(select(Callback)).one()
        assert (callback.status, callback.attempts, callback.last_result) == ("completed", 1, "connected")
        assert (callback.interaction_id, callback.case_id, callback.agent) == (
            call_interaction,
            case_id,
            "ana",
        )
        assert callback.context == {"intent": "billing", "flow": "banco_es", "node": "ofrecer_llamada"}
        made = db.get(Interaction, callback.callback_interaction_id)
        assert made is not None
        assert (made.channel, made.direction, made.case_id, made.outcome, made.agent) == (
            "voice", "outbound", case_id, "completed", "ana"
        )  # fmt: skip
        assert made.attributes["callback_for"] == call_interaction
        steps = db.scalars(select(Touchpoint).where(Touchpoint.interaction_id == made.id)).all()
        assert [(s.kind, s.attributes["agent"]) for s in steps] == [("agent_connect", "ana")]


def test_a_busy_customer_is_tried_again_with_its_place_then_the_callback_fails(container: Container) -> None:
    async def scenario() -> int:
        centre = Centre(container, BUSY, max_attempts=2, retry_base_s=0.3)
        await centre.log_in()
        await centre.desk.start()
        try:
            callback_id = centre.book()
            await until(lambda: centre.callback(callback_id).status == "failed")
            assert centre.served() == [entry_id(callback_id)] * 2
            # Released, not paused: the customer was busy, not the agent.
            await until(lambda: centre.live.status_of(1).state is AgentState.READY)
            assert centre.live.virtual_ids() == set()
            return callback_id
        finally:
            await centre.close()

    callback_id = asyncio.run(scenario())
    with container.session_factory() as db:
        callback = db.get(Callback, callback_id)
        assert callback is not None
        assert (callback.attempts, callback.last_result, callback.next_attempt_at) == (2, "busy", None)
        assert callback.status_reason == "not reached after 2 attempts"
        calls = db.scalars(
            select(Interaction).where(Interaction.direction == "outbound").order_by(Interaction.id)
        ).all()
        assert [(c.outcome, c.case_id, c.attributes["attempt"]) for c in calls] == [
            ("busy", callback.case_id, 1), ("busy", callback.case_id, 2)
        ]  # fmt: skip
        note = db.scalars(select(Touchpoint).where(Touchpoint.kind == "note")).one()
        assert note.interaction_id == callback.interaction_id
        assert note.text == "callback failed: not reached after 2 attempts"


def test_a_number_listed_do_not_call_after_booking_is_not_dialed(container: Container) -> None:
    async def scenario() -> int:
        centre = Centre(container, ANSWERING)
        callback_id = centre.book()
        with unit_of_work(container.session_factory) as db:
            do_not_call_store.add_numbers(
                db=db, numbers=[PHONE], campaign_id=None, reason="asked", actor="test", region="ES"
            )
        await centre.log_in()
        await centre.desk.start()
        try:
            await until(lambda: centre.callback(callback_id).status == "failed")
            await until(lambda: centre.live.status_of(1).state is AgentState.READY)
            assert centre.network.active_calls == 0
            return callback_id
        finally:
            await centre.close()

    callback_id = asyncio.run(scenario())
    with container.session_factory() as db:
        callback = db.get(Callback, callback_id)
        assert callback is not None and callback.last_result == "do_not_call"
        assert callback.status_reason == f"{PHONE} is on the global do-not-call list"
        assert callback.attempts == 0 and callback.callback_interaction_id is None


def test_after_a_restart_waiting_due_and_interrupted_callbacks_take_their_places_again(
    container: Container,
) -> None:
    async def scenario() -> None:
        centre = Centre(container, ANSWERING)  # nobody logged in: nothing is dialed
        later = utcnow() + timedelta(hours=1)
        waiting = centre.book("+34600000001")
        scheduled = centre.book("+34600000002", at=later)
        interrupted = centre.book("+34600000003")
        with unit_of_work(container.session_factory) as db:
            # The scheduled one fell due while the service was down; the other was being dialed.
            db.execute(
                update(Callback)
                .where(Callback.id == scheduled)
                .values(
                    next_attempt_at=utcnow() - timedelta(minutes=1), place_at=utcnow() - timedelta(hours=1)
                )
            )
            db.execute(
                update(Callback).where(Callback.id == interrupted).values(status="dialing", attempts=1)
            )
        assert centre.callback(scheduled).status == "requested"
        await centre.desk.start()  # a new process: its live ACD holds nothing yet
        try:
            expected = {entry_id(i) for i in (waiting, scheduled, interrupted)}
            assert centre.live.virtual_ids() == expected
            # Each at its own place: the one due while down first (its place was an hour ago).
            positions = [centre.live.position_of(entry_id(i)) for i in (scheduled, waiting, interrupted)]
            assert positions == [1, 2, 3]
            restarted = centre.callback(interrupted)
            assert (restarted.status, restarted.last_result, restarted.attempts) == (
                "waiting",
                "interrupted",
                1,
            )
            assert centre.callback(scheduled).status == "waiting"
        finally:
            await centre.close()

    asyncio.run(scenario())


def test_cancelling_a_waiting_callback_takes_it_out_of_the_queue(container: Container) -> None:
    async def scenario() -> None:
        centre = Centre(container, ANSWERING)
        await centre.desk.start()
        try:
            callback_id = centre.book()
            await until(lambda: centre.live.virtual_ids() == {entry_id(callback_id)})
            with unit_of_work(container.session_factory) as db:
                service.cancel_callback(
                    db=db, callback_id=callback_id, actor="test", reason=None, now=utcnow()
                )
            await until(lambda: centre.live.virtual_ids() == set())
        finally:
            await centre.close()

    asyncio.run(scenario())


def test_an_ivr_booking_refused_leaves_a_note_on_the_call_and_raises(container: Container) -> None:
    call_interaction, _ = ivr_call(container, "c9")
    with unit_of_work(container.session_factory) as db:
        routing.create_queue(db=db, data=QueueCreate(name="general"), actor="test")
        do_not_call_store.add_numbers(
            db=db, numbers=[PHONE], campaign_id=None, reason="asked", actor="test", region="ES"
        )
    booker = service.IvrCallbackBooker(
        session_factory=container.session_factory, rules=CallbackRules(hours=ANY_TIME)
    )
    with pytest.raises(CallbackRefused):
        asyncio.run(
            booker.book_callback(
                OfferCallback(queue="general", number=PHONE, language="es"),
                CallInfo(call_id="c9", ref_kind="asterisk_linkedid", caller=PHONE, called=None),
                context={},
            )
        )
    with container.session_factory() as db:
        note = db.scalars(select(Touchpoint).where(Touchpoint.kind == "note")).one()
        assert note.interaction_id == call_interaction
        assert (
            note.text == f"callback not booked: cannot call back: {PHONE} is on the global do-not-call list"
        )
        assert db.scalars(select(Callback)).all() == []


def test_an_ivr_booking_before_the_journal_wrote_the_call_records_the_call_itself(
    container: Container,
) -> None:
    with unit_of_work(container.session_factory) as db:
        routing.create_queue(db=db, data=QueueCreate(name="general"), actor="test")
    booker = service.IvrCallbackBooker(
        session_factory=container.session_factory, rules=CallbackRules(hours=ANY_TIME)
    )
    asyncio.run(
        booker.book_callback(
            OfferCallback(queue="general", number=PHONE, language="es"),
            CallInfo(call_id="1700000000.42", ref_kind="asterisk_linkedid", caller=PHONE, called=None),
            context={"flow": "banco_es"},
        )
    )
    with container.session_factory() as db:
        callback = db.scalars(select(Callback)).one()
        call = db.get(Interaction, callback.interaction_id)
        assert call is not None
        assert (call.channel, call.direction, call.case_id) == ("voice", "inbound", callback.case_id)
        assert call.external_refs == [{"kind": "asterisk_linkedid", "value": "1700000000.42"}]
        assert (callback.source, callback.language, callback.status) == ("ivr", "es", "waiting")
