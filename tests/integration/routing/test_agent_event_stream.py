"""The agent's Server-Sent Events stream, from a real served app: state first, then the screen pop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from served import free_port

from centralita.container import Container
from routing.live_queues import InboundCall, Joined, Outcome


@pytest.fixture
def served(container: Container) -> Iterator[tuple[str, uvicorn.Server]]:
    """The container's app on a real socket, its loop in a thread of its own."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(container.api(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", server
    server.should_exit = True
    thread.join(timeout=10)


def read_events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    """The next `count` events (keep-alive comments counted as {"comment": ...})."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            events.append({"comment": line[1:].strip()})
        elif line.startswith("event: "):
            current["event"] = line.removeprefix("event: ")
        elif line.startswith("data: "):
            current["data"] = json.loads(line.removeprefix("data: "))
        elif line == "" and current:
            events.append(current)
            current = {}
        if len(events) == count:
            break
    return events


def test_the_agent_sees_their_state_then_the_offered_call_with_the_customer_and_the_ivr_answers(
    client: TestClient, container: Container, agent_key: tuple[int, str], served: tuple[str, uvicorn.Server]
) -> None:
    base, _server = served
    key_id, key = agent_key
    client.post("/api/v1/queues", json={"name": "billing", "skills": [{"skill": "billing"}]})
    customer = client.post(
        "/api/v1/customers",
        json={"name": "Ana Pérez", "identities": [{"kind": "phone", "value": "+34600111222"}]},
    )
    assert customer.status_code == 201, customer.text
    agent = client.post(
        "/api/v1/agents",
        json={"name": "luis", "display_name": "Luis", "api_key_id": key_id, "home_endpoint": "PJSIP/1001",
              "skills": [{"skill": "billing", "level": 4}]},
    ).json()  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        assert http.post(f"/api/v1/agents/{agent['id']}/login").status_code == 200
        with http.stream("GET", f"/api/v1/agents/{agent['id']}/events", params={"keep_alive": 0.2}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            (first,) = read_events(lines, 1)
            assert first["event"] == "agent.state"
            assert first["data"]["payload"]["state"] == "ready"
            assert read_events(lines, 1) == [{"comment": "keep-alive"}]

            live = container.routing().live
            call = InboundCall("linked-1", "billing", caller="600 111 222", context={"intent": "invoice"})

            async def route() -> Outcome:
                joined = live.join(call)
                assert isinstance(joined, Joined)
                return await live.wait(call.call_id)

            loop = live.loop
            assert loop is not None
            outcome = asyncio.run_coroutine_threadsafe(route(), loop).result(timeout=5)
            assert (outcome.result, outcome.agent_id) == ("answered", agent["id"])
            events = [e for e in read_events(lines, 6) if "event" in e][:3]
    by_topic = {e["event"]: e["data"]["payload"] for e in events}
    assert set(by_topic) == {"agent.state_changed", "agent.call_offered"}
    pop = by_topic["agent.call_offered"]
    assert pop["call_id"] == "linked-1" and pop["queue"] == "billing"
    assert pop["ivr"] == {"intent": "invoice"}
    assert pop["lookup"]["customer"]["name"] == "Ana Pérez"
    assert pop["lookup"]["matched_identity"]["value"] == "+34600111222"
    states = [e["data"]["payload"]["state"] for e in events if e["event"] == "agent.state_changed"]
    assert states[0] == "offered"
