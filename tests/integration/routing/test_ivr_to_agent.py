"""The whole inbound path over real sockets: an agent logs in through the API, a caller rings banco_es over
FastAGI (the console caller playing Asterisk, the agent's leg included), chooses billing, waits in
Centralita's queue, and the agent's phone is dialled; the agent's screen-pop stream shows the customer
and what the IVR collected, and the call's interaction shows the agent who answered."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from ivr_call_records import recorded
from served import free_port

from centralita.container import Container
from voice.agi.server import FastAgiServer
from voice.console_caller import CallResult, ScriptedKeypad, place_call
from voice.prompts import prompt_texts

MADRID_MONDAY_10 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # banco_es is open
CALLER = "+34600111222"


@pytest.fixture
def served(container: Container) -> Iterator[str]:
    """The container's app on a real socket, its loop in a thread of its own; the live ACD forgotten
    afterwards, so that later tests do not find this test's queue."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(container.api(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    live = container.routing().live
    live.submit(live.clear)


def screen_pop(lines: Iterator[str]) -> dict[str, Any]:
    """Reads the stream until the `agent.call_offered` event; returns its payload."""
    topic = None
    for line in lines:
        if line.startswith("event: "):
            topic = line.removeprefix("event: ")
        elif line.startswith("data: ") and topic == "agent.call_offered":
            payload: dict[str, Any] = json.loads(line.removeprefix("data: "))["payload"]
            return payload
    raise AssertionError("the stream ended without a screen pop")


def test_a_caller_reaches_the_ready_agent_with_the_skill_and_the_screen_pop_shows_the_customer(
    client: TestClient, container: Container, agent_key: tuple[int, str], served: str
) -> None:
    key_id, key = agent_key
    assert client.post(
        "/api/v1/queues", json={"name": "facturacion", "skills": [{"skill": "facturacion"}]}
    ).is_success
    customer = client.post(
        "/api/v1/customers",
        json={"name": "Ana Pérez", "preferred_language": "es",
              "identities": [{"kind": "phone", "value": CALLER}]},
    ).json()  # fmt: skip
    other = client.post(
        "/api/v1/agents",
        json={"name": "eva", "display_name": "Eva", "home_endpoint": "PJSIP/1002",
              "skills": [{"skill": "averias", "level": 9}]},
    ).json()  # fmt: skip
    agent = client.post(
        "/api/v1/agents",
        json={"name": "luis", "display_name": "Luis", "api_key_id": key_id, "home_endpoint": "PJSIP/1001",
              "skills": [{"skill": "facturacion", "level": 4}]},
    ).json()  # fmt: skip
    assert client.post(f"/api/v1/agents/{other['id']}/login").status_code == 200  # ready, wrong skill
    prompts = prompt_texts(container.flows().flows.values())
    runner = container.call_runner(clock=lambda: MADRID_MONDAY_10)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=served, headers=headers, timeout=10) as http:
        assert http.post(f"/api/v1/agents/{agent['id']}/login").status_code == 200
        loop = container.routing().live.loop
        assert loop is not None  # the ACD's loop: the app's, where the FastAGI server must run too

        async def start() -> FastAgiServer:
            server = container.agi_server(runner=runner, port=0)
            await server.start()
            return server

        agi = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=5)
        calls: list[CallResult] = []
        caller = threading.Thread(
            target=lambda: calls.append(
                asyncio.run(
                    place_call(
                        "127.0.0.1", agi.port, "banco_es", keypad=ScriptedKeypad(["2"]), caller=CALLER,
                        prompts=prompts, say=lambda _: None,
                    )
                )
            )
        )  # fmt: skip
        try:
            with http.stream(
                "GET", f"/api/v1/agents/{agent['id']}/events", params={"keep_alive": 0.2}
            ) as stream:
                assert stream.status_code == 200
                caller.start()
                pop = screen_pop(stream.iter_lines())
            caller.join(timeout=20)
        finally:
            asyncio.run_coroutine_threadsafe(agi.stop(2), loop).result(timeout=10)
            asyncio.run_coroutine_threadsafe(runner.drain(timeout=10), loop).result(timeout=15)

        (call,) = calls
        assert call.closed_by_server, call.transcript
        assert pop["agent"] == "luis" and pop["queue"] == "facturacion" and pop["call_id"] == call.uniqueid
        assert pop["customer_id"] == customer["id"] and pop["caller"] == CALLER
        assert pop["lookup"]["customer"]["name"] == "Ana Pérez"
        assert pop["ivr"]["flow"] == "banco_es" and pop["ivr"]["node"] == "cola_facturacion"
        assert pop["interaction_id"] is not None

        assert call.heard[-1] == "Le pasamos con el departamento de facturación."
        assert "[on hold: music]" in call.transcript
        assert "[PJSIP/1001 answers: you talk to the agent, then hang up]" in call.transcript
        dials = [c for c in call.commands if c.startswith("EXEC Dial")]
        assert len(dials) == 1
        assert re.fullmatch(
            rf"EXEC Dial PJSIP/1001,\d+,mU\(centralita-agent-answered\^{call.uniqueid}\)", dials[0]
        )
        assert not any(c.startswith("EXEC Queue") for c in call.commands)

        status = http.get(f"/api/v1/agents/{agent['id']}").json()
        assert status["status"]["state"] in ("wrap_up", "ready"), status

    record = recorded(container, call.uniqueid)
    kinds = [t.kind for t in record.touchpoints]
    assert kinds[-3:] == ["queue_enter", "queue_leave", "agent_connect"], kinds
    connect = record.touchpoints[-1]
    assert connect.attributes["agent"] == "luis" and connect.attributes["queue"] == "facturacion"
    assert connect.attributes["waited_seconds"] >= 0
    assert record.touchpoints[-2].attributes["result"] == "answered"
    assert record.interaction.outcome == "transferred"
