"""The live figures over HTTP: JSON, Server-Sent Events on a real socket, and /metrics."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from served import free_port

from centralita.container import Container
from core.auth.roles import Role
from core.customers.identities import IdentityKind
from core.db import unit_of_work, utcnow
from core.timeline import service as timeline
from core.timeline.schemas import CustomerIdentityRef, InteractionCreate, TouchpointCreate


def call_in_queue(container: Container, queue: str = "billing") -> int:
    """A call that entered `queue` just now and waits there."""
    now = utcnow()
    with unit_of_work(container.session_factory) as db:
        interaction, _ = timeline.record_interaction(
            db=db,
            data=InteractionCreate(
                identity=CustomerIdentityRef(kind=IdentityKind.PHONE, value="600111222"),
                channel="voice",
                direction="inbound",
                started_at=now,
                attributes={"flow": "banco_es"},
            ),  # type: ignore[arg-type]
            region="ES",
        )
        timeline.add_touchpoint(
            db=db,
            interaction_id=interaction.id,
            data=TouchpointCreate(kind="queue_enter", occurred_at=now, attributes={"queue": queue}),  # type: ignore[arg-type]
        )
        return interaction.id


def fresh(container: Container) -> None:
    """The container outlives each test's data: read today again."""
    container.live_stats().start()
    container.live_stats().reload()


def test_stats_answers_the_current_figures(container: Container, client: TestClient) -> None:
    fresh(container)
    call_in_queue(container)
    container.live_stats().reload()
    body = client.get("/api/v1/stats").json()
    (billing,) = body["queues"]
    assert (billing["queue"], billing["waiting"]) == ("billing", 1)
    assert billing["longest_wait_seconds"] >= 0
    assert body["totals"]["contacts"] == 1
    assert body["channels"] == [
        {"channel": "voice", "contacts": 1, "inbound_contacts": 1, "outbound_contacts": 0}
    ]


def test_stats_need_the_reports_permission(container: Container, client: TestClient, make_key: Any) -> None:
    agent = {"Authorization": f"Bearer {make_key(Role.AGENT)}"}
    answer = client.get("/api/v1/stats", headers=agent)
    assert answer.status_code == 403
    assert "reports:read" in answer.json()["detail"]
    manager = {"Authorization": f"Bearer {make_key(Role.MANAGER)}"}
    assert client.get("/metrics", headers=manager).status_code == 200
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401


def test_metrics_parse_as_prometheus_text(container: Container, client: TestClient) -> None:
    fresh(container)
    call_in_queue(container, queue='sales "north"')
    container.live_stats().reload()
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert all(name.startswith("centralita_") for name in families)
    waiting = families["centralita_queue_waiting_calls"]
    assert waiting.type == "gauge"
    assert [(s.labels, s.value) for s in waiting.samples] == [({"queue": 'sales "north"'}, 1.0)]
    for line in answer.text.splitlines():  # every family announced before its samples
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert f"# TYPE {name} gauge" in answer.text


@contextmanager
def served(container: Container) -> Iterator[str]:
    """The real application on a real socket (the test client buffers whole responses: no streams)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(container.api(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(kind, data) per SSE message: ("stats", json) or ("comment", text)."""
    kind, data = "", ""
    for line in lines:
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and kind:
            yield kind, data
            kind, data = "", ""


def test_the_stream_sends_figures_at_once_and_an_update_within_a_second(
    container: Container, make_key: Any
) -> None:
    fresh(container)
    headers = {"Authorization": f"Bearer {make_key(Role.MANAGER)}"}
    with served(container) as base, httpx.Client(timeout=5) as http:
        opened = time.monotonic()
        with http.stream("GET", f"{base}/api/v1/stats/stream", headers=headers) as answer:
            assert answer.headers["content-type"].startswith("text/event-stream")
            stream = events(answer.iter_lines())
            kind, data = next(stream)
            assert time.monotonic() - opened < 1.0, "the first event comes at once"
            first: dict[str, Any] = json.loads(data)
            assert kind == "stats" and first["queues"] == []

            committed = time.monotonic()
            call_in_queue(container)
            kind, data = next(stream)
            latency = time.monotonic() - committed
            update = json.loads(data)
            assert kind == "stats" and update["version"] > first["version"]
            assert [(q["queue"], q["waiting"]) for q in update["queues"]] == [("billing", 1)]
            assert latency < 1.0, f"the update took {latency:.2f} s"


def test_the_stream_keeps_the_connection_alive_with_comments(container: Container, make_key: Any) -> None:
    fresh(container)
    headers = {"Authorization": f"Bearer {make_key(Role.MANAGER)}"}
    with served(container) as base, httpx.Client(timeout=5) as http:
        url = f"{base}/api/v1/stats/stream?keepalive=1"
        with http.stream("GET", url, headers=headers) as answer:
            stream = events(answer.iter_lines())
            assert next(stream)[0] == "stats"
            assert next(stream) == ("comment", "keep-alive")
