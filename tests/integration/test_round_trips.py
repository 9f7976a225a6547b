"""A screen pop must stay within three round trips and never grow with the customer's history."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from centralita.container import Container


@contextmanager
def counting_statements(container: Container) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The tests' container does not cache API keys (so revocation is seen at once); a served
        # one does, for CENTRALITA_API_KEY_CACHE_SECONDS. Only the screen pop's own queries count.
        # Nor what the live stats' worker (started by an earlier test's reader) reads meanwhile.
        if "FROM api_keys" not in statement and threading.current_thread().name != "live-stats":
            statements.append(statement)

    engine = container.read_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_lookup_and_timeline_take_a_fixed_number_of_round_trips(
    client: TestClient, container: Container
) -> None:
    customer = client.post(
        "/api/v1/customers",
        json={"identities": [{"kind": "phone", "value": "600111222"}, {"kind": "email", "value": "a@b.es"}]},
    ).json()["id"]
    for day in range(1, 21):
        interaction = client.post(
            "/api/v1/interactions",
            json={
                "customer_id": customer,
                "channel": "voice",
                "direction": "inbound",
                "started_at": f"2026-11-{day:02d}T10:00:00Z",
                "external_refs": [{"kind": "asterisk_linkedid", "value": f"17324.{day}"}],
            },
        ).json()["id"]
        client.post(
            f"/api/v1/interactions/{interaction}/touchpoints", json={"kind": "ivr_node", "node": "menu"}
        )
        client.post("/api/v1/cases", json={"customer_id": customer, "interaction_ids": [interaction]})

    with counting_statements(container) as statements:
        assert client.get("/api/v1/customers/lookup", params={"phone": "600111222"}).status_code == 200
    assert len(statements) <= 3, statements

    with counting_statements(container) as statements:
        page = client.get(f"/api/v1/customers/{customer}/timeline", params={"limit": 50}).json()
    assert len(page["items"]) == 20
    assert len(statements) <= 2, statements

    with counting_statements(container) as statements:
        client.get(f"/api/v1/customers/{customer}/timeline", params={"include": "touchpoints"})
    assert len(statements) <= 3, statements
