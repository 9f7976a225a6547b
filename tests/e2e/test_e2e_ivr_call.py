"""A caller dials a number, Asterisk runs its flow on `centralita serve` over FastAGI, the caller presses
keys, and the customer's timeline (over the REST API) shows the call and each IVR step."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from pathlib import Path
from typing import Any

from asterisk_calls import INBOUND, PHONE, Caller, agi_address, ami_client, hang_up_leftovers
from served import free_port, http, run_cli, serving

from core.settings import Settings
from voice.ami.events import AmiEvent, Hangup, Newexten, OriginateReason

CALLER = "+34600111222"
BANCO_DID = "912345678"  # rendered with --did 912345678=banco_es (asterisk/README.md)


def timeline(base: str, key: str, phone: str) -> list[dict[str, Any]]:
    status, found = http("GET", f"{base}/api/v1/customers/lookup?phone={urllib.parse.quote(phone)}", key)
    if status == 404:
        return []
    assert status == 200, found
    customer = found["customer"]["id"]
    status, page = http("GET", f"{base}/api/v1/customers/{customer}/timeline?include=touchpoints", key)
    assert status == 200, page
    return list(page["items"])


def test_a_call_runs_the_banco_flow_and_the_timeline_shows_its_steps(
    ami_settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    created = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]

    # In business hours the main menu: 2 (billing), the queue has no agent, the call-back offer: 1.
    # Out of hours (or on a holiday) the out-of-hours menu: 2 (WhatsApp, not configured: voicemail), #.
    async def call() -> Caller:
        async with ami_client(ami_settings) as ami:
            caller = Caller(ami, keys=["2", "1"])
            subscription = ami.subscribe(caller.on_event, events=["AGIExecStart", "Hangup"])
            try:
                answered = await ami.originate(
                    PHONE,
                    context=INBOUND,
                    exten=BANCO_DID,
                    priority=1,
                    caller_id=CALLER,
                    variables={"CENTRALITA_AGI": agi_address(env)},
                    timeout=10,
                )
                assert answered.reason == OriginateReason.ANSWERED, answered
                async with asyncio.timeout(120):
                    await caller.finished.wait()
            finally:
                subscription.cancel()
                await hang_up_leftovers(ami, f"{PHONE}-")
            return caller

    with serving(env=env, cwd=tmp_path) as (_, base):
        caller = asyncio.run(call())
        assert not caller.problems, caller.problems
        assert "ANSWER" in caller.commands[:2], caller.commands  # after asking for the linkedid
        assert caller.commands[-1] == "HANGUP", caller.commands  # the flow said goodbye and hung up
        assert caller.pressed[0] == "2", caller.commands

        deadline = time.monotonic() + 20
        while True:  # the journal writes the call from its own thread
            items = timeline(base, key, CALLER)
            if items and items[0]["ended_at"] is not None:
                break
            assert time.monotonic() < deadline, f"no finished call on the timeline: {items}"
            time.sleep(0.2)

    assert len(items) == 1, items
    call_item = items[0]
    assert (call_item["channel"], call_item["direction"]) == ("voice", "inbound")
    assert call_item["attributes"]["flow"] == "banco_es"
    assert {"kind": "asterisk_linkedid", "value": caller.linkedid} in call_item["external_refs"]
    steps = [(t["kind"], t["node"], t["input"]) for t in call_item["touchpoints"]]
    nodes = [node for _, node, _ in steps]
    assert nodes[0] == "identificar_llamante", steps  # the caller is looked up by number first
    menu = "menu_principal" if "menu_principal" in nodes else "fuera_de_horario"
    assert ("menu_choice", menu, "2") in steps, "\n".join(map(str, steps)) + "\n" + "\n".join(caller.commands)
    if menu == "menu_principal":
        assert "cola_facturacion" in nodes and "despedida_rellamada" in nodes, steps
    else:
        assert "buzon" in nodes and "despedida_buzon" in nodes, steps


def test_when_centralita_is_unreachable_the_call_leaves_through_the_ivr_failed_context(
    ami_settings: Settings,
) -> None:
    async def call() -> list[tuple[str, str]]:
        steps: list[tuple[str, str]] = []
        ended = asyncio.Event()

        def on_event(event: AmiEvent) -> None:
            if not event_channel(event).startswith(f"{PHONE}-") or not event_channel(event).endswith(";1"):
                return
            if isinstance(event, Newexten):
                steps.append((event.context, event.application))
            elif isinstance(event, Hangup):
                ended.set()

        async with ami_client(ami_settings) as ami:
            subscription = ami.subscribe(on_event, events=["Newexten", "Hangup"])
            try:
                answered = await ami.originate(
                    PHONE,
                    context=INBOUND,
                    exten=BANCO_DID,
                    priority=1,
                    caller_id=CALLER,
                    variables={"CENTRALITA_AGI": f"127.0.0.1:{free_port()}"},  # nobody listens there
                    timeout=10,
                )
                assert answered.reason == OriginateReason.ANSWERED, answered
                async with asyncio.timeout(30):
                    await ended.wait()
            finally:
                subscription.cancel()
                await hang_up_leftovers(ami, f"{PHONE}-")
        return steps

    steps = asyncio.run(call())
    assert (INBOUND, "AGI") in steps, steps
    assert ("centralita-ivr-failed", "NoOp") in steps, steps  # then the fallback queue, if one is set


def event_channel(event: AmiEvent) -> str:
    return str(getattr(event, "channel", ""))
