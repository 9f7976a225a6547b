"""The schema, the unit of work and the events that follow a commit."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from centralita.container import Container
from core.customers import service as customers
from core.customers.models import Customer
from core.customers.schemas import CustomerCreate
from core.db import Base, unit_of_work
from core.events import Event
from core.migrate import current_revision


def test_migrations_build_exactly_the_schema_the_models_describe(container: Container) -> None:
    with container.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
    assert current_revision(container.engine) is not None


def test_events_are_published_only_after_the_commit(container: Container) -> None:
    heard: list[Event] = []
    subscription = container.bus.subscribe("customer.*", heard.append)
    try:
        with unit_of_work(container.session_factory) as db:
            customers.create_customer(db=db, data=CustomerCreate(name="Ana"), region="ES")
            assert heard == [], "nobody may hear of a write before it is committed"
        assert [e.topic for e in heard] == ["customer.created"]
        assert heard[0].payload["customer_id"] > 0
    finally:
        subscription.close()


def test_a_rolled_back_write_publishes_nothing_and_leaves_nothing(container: Container) -> None:
    heard: list[Event] = []
    subscription = container.bus.subscribe("*", heard.append)
    try:
        try:
            with unit_of_work(container.session_factory) as db:
                customers.create_customer(db=db, data=CustomerCreate(name="Ana"), region="ES")
                raise RuntimeError("the request failed after the write")
        except RuntimeError:
            pass
        with unit_of_work(container.session_factory) as db:
            customers.create_customer(db=db, data=CustomerCreate(name="Luis"), region="ES")
        assert [e.payload["customer_id"] for e in heard] == [heard[0].payload["customer_id"]]
        with container.session_factory() as db:
            assert db.scalar(select(func.count()).select_from(Customer)) == 1
    finally:
        subscription.close()


def test_the_api_publishes_each_write(client, container: Container) -> None:  # type: ignore[no-untyped-def]
    heard: list[str] = []
    subscription = container.bus.subscribe("*", lambda e: heard.append(e.topic))
    try:
        customer = client.post("/api/v1/customers", json={"name": "Ana"}).json()["id"]
        interaction = client.post(
            "/api/v1/interactions",
            json={
                "customer_id": customer,
                "channel": "sms",
                "direction": "inbound",
                "started_at": "2026-11-24T10:00:00Z",
            },
        ).json()["id"]
        case = client.post(
            "/api/v1/cases", json={"customer_id": customer, "interaction_ids": [interaction]}
        ).json()
        client.post(f"/api/v1/cases/{case['id']}/resolve", json={})
        client.post("/api/v1/customers", json={"name": ""})  # refused: publishes nothing
        assert heard == ["customer.created", "interaction.created", "case.opened", "case.resolved"]
    finally:
        subscription.close()
