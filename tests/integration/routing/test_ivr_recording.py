"""A recorded queue over real sockets: the caller rings banco_es (the console caller playing Asterisk),
chooses billing, hears the recording notice before joining Centralita's queue, MixMonitor runs before
the agent's phone is dialled, and the recording is on the call's interaction, listed by the API."""

from __future__ import annotations

import asyncio
import re
import threading

import httpx
from fastapi.testclient import TestClient
from ivr_call_records import recorded
from test_ivr_to_agent import MADRID_MONDAY_10, served  # noqa: F401  (served: the fixture)

from centralita.container import Container
from voice.agi.server import FastAgiServer
from voice.console_caller import CallResult, ScriptedKeypad, place_call
from voice.ivr.recording_consent import consent_text
from voice.prompts import prompt_texts

CALLER = "+34600111222"


def test_a_queue_that_always_records_announces_then_mixmonitors_and_the_recording_is_listed(
    client: TestClient,
    container: Container,
    agent_key: tuple[int, str],
    served: str,  # noqa: F811
) -> None:
    key_id, key = agent_key
    queue = {"name": "facturacion", "skills": [{"skill": "facturacion"}], "recording": "always"}
    assert client.post("/api/v1/queues", json=queue).is_success
    agent = client.post(
        "/api/v1/agents",
        json={"name": "luis", "display_name": "Luis", "api_key_id": key_id, "home_endpoint": "PJSIP/1001",
              "skills": [{"skill": "facturacion", "level": 4}]},
    ).json()  # fmt: skip
    prompts = prompt_texts(container.flows().flows.values())
    runner = container.call_runner(clock=lambda: MADRID_MONDAY_10)
    queues = container.ivr_queues()
    assert queues.recording is not None
    with httpx.Client(base_url=served, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
        assert http.post(f"/api/v1/agents/{agent['id']}/login").status_code == 200
        loop = container.routing().live.loop
        assert loop is not None

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
            caller.start()
            caller.join(timeout=20)
        finally:
            asyncio.run_coroutine_threadsafe(agi.stop(2), loop).result(timeout=10)
            asyncio.run_coroutine_threadsafe(runner.drain(timeout=10), loop).result(timeout=15)
            asyncio.run_coroutine_threadsafe(queues.recording.drain(timeout=10), loop).result(timeout=15)

        (call,) = calls
        assert consent_text("es") in call.heard, call.transcript
        commands = call.commands
        monitors = [c for c in commands if c.startswith("EXEC MixMonitor")]
        (monitor,) = monitors
        day = r"\d{4}/\d\d/\d\d"
        wanted = rf"EXEC MixMonitor /var/spool/asterisk/centralita/{day}/{re.escape(call.uniqueid)}-1\.wav,b"
        assert re.fullmatch(wanted, monitor), monitor
        first_dial = next(i for i, c in enumerate(commands) if c.startswith("EXEC Dial"))
        assert commands.index(monitor) < first_dial

    record = recorded(container, call.uniqueid)
    (recording,) = [t for t in record.touchpoints if t.kind == "recording"]
    assert recording.attributes["file"] == monitor.split(" ", 2)[2].removeprefix(
        "/var/spool/asterisk/centralita/"
    ).removesuffix(",b")
    assert recording.attributes["policy"] == "always" and recording.attributes["queue"] == "facturacion"
    listed = client.get(f"/api/v1/interactions/{record.interaction.id}/recordings")
    assert listed.status_code == 200 and [i["number"] for i in listed.json()["items"]] == [1]
