from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from centralita.container import Container
from core.auth.roles import Role


@pytest.fixture(autouse=True)
def fresh_routing(container: Container) -> Iterator[None]:
    """The live ACD outlives each test's tables: start every test from what the database holds."""
    container.routing().reload()
    yield


@pytest.fixture
def agent_key(client: TestClient) -> tuple[int, str]:
    """An agent-role key: (its id, the key)."""
    made = client.post("/api/v1/keys", json={"role": Role.AGENT.value, "name": "ana's desk"}).json()
    return made["id"], made["key"]
