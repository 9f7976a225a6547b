"""The queue's open-case priority boost on SQLite and PostgreSQL: the setting over the API (default,
bounds, change), the column as the migration made it (server default, range check), the one read that
tells the IVR about the customer's open case (`routing.preferred_agent.open_case`), and calls joining
through the IVR's queues on the database: a later caller with an open case is offered to the agent first
when the queue's boost is on, the earlier caller when it is 0."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from ivr_call_records import new_customer
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from centralita.container import Container
from core.cases import service as cases
from core.cases.schemas import CaseCreate, CaseStatus, CaseUpdate
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.timeline import service as timeline
from core.timeline.schemas import InteractionCreate, TouchpointCreate, TouchpointKind
from routing import preferred_agent
from routing import service as routing
from routing.agent_state import Login, Pause, Ready
from routing.live_queues import InboundCall, Joined
from routing.preferred_agent import OpenCase
from routing.schemas import AgentCreate, QueueCreate, QueueSkill, SkillLevel

QUEUE = "incidencias"
T0 = datetime(2025, 2, 1, 10, 0, tzinfo=UTC)


def a_queue(container: Container, **fields: object) -> None:
    with unit_of_work(container.session_factory) as db:
        data = QueueCreate(name=QUEUE, skills=[QueueSkill(skill=QUEUE)], **fields)  # type: ignore[arg-type]
        routing.create_queue(db=db, data=data, actor="test")


def an_open_case(container: Container, customer_id: int, *, status: CaseStatus = CaseStatus.OPEN) -> int:
    with unit_of_work(container.session_factory) as db:
        case = cases.open_case(db=db, data=CaseCreate(customer_id=customer_id, subject="Sin línea"))
        if status is not CaseStatus.OPEN:
            cases.update_case(db=db, case_id=case.id, data=CaseUpdate(status=status))
        return case.id


def read(container: Container, customer_id: int, queue: str = QUEUE) -> OpenCase | None:
    with container.read_session_factory() as db:
        return preferred_agent.open_case(db=db, customer_id=customer_id, queue=queue)


# --- the setting --------------------------------------------------------------------------------------


def test_the_boost_defaults_to_one_is_bounded_and_changes_over_the_api(client: TestClient) -> None:
    created = client.post("/api/v1/queues", json={"name": "billing"})
    assert created.status_code == 201, created.text
    assert created.json()["open_case_priority_boost"] == 1
    off = client.post("/api/v1/queues", json={"name": "sales", "open_case_priority_boost": 0}).json()
    assert off["open_case_priority_boost"] == 0

    changed = client.patch("/api/v1/queues/billing", json={"open_case_priority_boost": 4})
    assert changed.status_code == 200 and changed.json()["open_case_priority_boost"] == 4
    for wrong in (11, -1, None, "high"):
        refused = client.patch("/api/v1/queues/billing", json={"open_case_priority_boost": wrong})
        assert refused.status_code == 422, wrong
        assert "open_case_priority_boost" in refused.text
    assert (
        client.post("/api/v1/queues", json={"name": "x", "open_case_priority_boost": 11}).status_code == 422
    )
    assert client.get("/api/v1/queues/billing").json()["open_case_priority_boost"] == 4
    listed = {q["name"]: q["open_case_priority_boost"] for q in client.get("/api/v1/queues").json()["items"]}
    assert listed == {"billing": 4, "sales": 0}


def test_a_queue_row_written_without_the_boost_gets_one_and_the_database_refuses_one_out_of_range(
    container: Container,
) -> None:
    with container.engine.begin() as conn:  # as a row from before the migration: no boost named
        conn.execute(
            text(
                "INSERT INTO queues (name, display_name, skills, priority, service_level_seconds,"
                " service_level_percent, wrap_up_seconds, recording, created_at, updated_at)"
                " VALUES ('old', 'Old', '[]', 0, 20, 80, 30, 'never', :at, :at)"
            ),
            {"at": T0},
        )
        assert conn.scalar(text("SELECT open_case_priority_boost FROM queues WHERE name = 'old'")) == 1
    with pytest.raises(IntegrityError), container.engine.begin() as conn:
        conn.execute(text("UPDATE queues SET open_case_priority_boost = 11 WHERE name = 'old'"))


# --- the read -----------------------------------------------------------------------------------------


def test_the_read_tells_an_open_or_pending_case_its_agent_and_the_queues_boost(container: Container) -> None:
    a_queue(container, open_case_priority_boost=3)
    with unit_of_work(container.session_factory) as db:
        alba = routing.create_agent(
            db=db, data=AgentCreate(name="alba", display_name="Alba"), actor="test"
        ).id
    ana = new_customer(container, (IdentityKind.PHONE, "600 111 222"), name="Ana")
    luis = new_customer(container, (IdentityKind.PHONE, "600 333 444"), name="Luis")
    assert read(container, ana) is None  # no case at all

    with unit_of_work(container.session_factory) as db:
        cases.resolve_case(
            db=db,
            case_id=cases.open_case(db=db, data=CaseCreate(customer_id=ana, subject="Antiguo")).id,
            resolution="hecho",
        )
    assert read(container, ana) is None  # only a resolved one

    case = an_open_case(container, ana)
    assert read(container, ana) == OpenCase(preferred_agent=None, priority_boost=3)  # nobody answered yet
    with unit_of_work(container.session_factory) as db:
        interaction, _ = timeline.record_interaction(
            db=db,
            data=InteractionCreate(
                customer_id=ana, case_id=case, channel="voice", direction="inbound", started_at=T0
            ),
            region="ES",
        )
        timeline.add_touchpoint(
            db=db,
            interaction_id=interaction.id,
            data=TouchpointCreate(
                kind=TouchpointKind.AGENT_CONNECT, occurred_at=T0, attributes={"agent": "alba"}
            ),
        )
    assert read(container, ana) == OpenCase(preferred_agent=alba, priority_boost=3)
    assert read(container, ana, queue="not-a-queue") == OpenCase(preferred_agent=alba, priority_boost=0)

    an_open_case(container, luis, status=CaseStatus.PENDING)
    assert read(container, luis) == OpenCase(preferred_agent=None, priority_boost=3)


# --- calls joining through the IVR's queues ----------------------------------------------------------


@pytest.mark.parametrize(("boost", "first"), [(1, "later-with-case"), (0, "earlier")])
def test_a_later_caller_with_an_open_case_reaches_the_agent_first_when_the_queue_boosts(
    container: Container, boost: int, first: str
) -> None:
    a_queue(container, open_case_priority_boost=boost)
    with unit_of_work(container.session_factory) as db:
        data = AgentCreate(name="alba", display_name="Alba", skills=[SkillLevel(skill=QUEUE, level=5)])
        alba = routing.create_agent(db=db, data=data, actor="test").id
    ana = new_customer(container, (IdentityKind.PHONE, "600 111 222"), name="Ana")
    luis = new_customer(container, (IdentityKind.PHONE, "600 333 444"), name="Luis")
    an_open_case(container, ana)
    live = container.routing().live
    queues = container.ivr_queues()
    calls = [
        InboundCall("earlier", QUEUE, customer_id=luis, priority=0),
        InboundCall("later-with-case", QUEUE, customer_id=ana, priority=0),
    ]

    joins: dict[str, Joined] = {}

    async def main() -> tuple[str, int]:
        await live.change(alba, Login("PJSIP/1001"), actor="test")
        await live.change(alba, Pause("coffee"), actor="test")
        lines = {call.call_id: queues.open_line(call.call_id) for call in calls}
        try:
            for call in calls:
                joined = await queues.join(call)
                assert isinstance(joined, Joined)
                joins[call.call_id] = joined
                await asyncio.sleep(0.002)
            await live.change(alba, Ready(), actor="test")
            offers = {asyncio.ensure_future(line.next_offer()): call_id for call_id, line in lines.items()}
            done, pending = await asyncio.wait(offers, timeout=5, return_when=asyncio.FIRST_COMPLETED)
            for waiting in pending:
                waiting.cancel()
            (offered,) = done
            return offers[offered], offered.result().offer.call.priority
        finally:
            for call in calls:
                queues.close_line(call.call_id)
            live.clear()

    offered_to, priority = asyncio.run(main())
    assert (offered_to, priority) == (first, boost)  # boost 0: the earlier caller, at the IVR's 0
    # The join says so, for the queue_leave touchpoint: the priority, and what it was before the raise.
    raised = joins["later-with-case"]
    assert (raised.priority, raised.open_case_raised_from) == (boost, 0 if boost else None)
    assert (joins["earlier"].priority, joins["earlier"].open_case_raised_from) == (0, None)
