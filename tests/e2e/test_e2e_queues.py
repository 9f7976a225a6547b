"""A call in one of Centralita's own queues, through a real Asterisk. The queue and its agent are made over
the API of the `centralita serve` under test; the agent's phone is `Local/1001@centralita-test-agent`
(it rings 1 s, answers and stays on the line). The caller dials the banco_es number, which the service
under test answers with a flow of the test's own that goes straight into that queue.

Over FastAGI the IVR rings the agent from the caller's channel with Dial's `U()` subroutine
(`centralita-agent-answered`), so the ACD counts the agent on the call while they talk; over ARI the
agent's phone is originated into the Stasis application and bridged with the caller. Either way the
agent's event stream says so while the two are bridged, and the caller's timeline shows the queue and
the agent."""

from __future__ import annotations

import asyncio
import io
import re
import struct
import urllib.request
import uuid
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asterisk_calls import (
    BANCO_DID,
    INBOUND,
    INBOUND_ARI,
    PHONE,
    TEST_AGENT,
    TEST_NUMBERS,
    AgentEvents,
    Caller,
    admin_key,
    agent_events,
    agi_address,
    ami_client,
    answering_banco_with,
    finished_call,
    hang_up_leftovers,
)
from served import http, serving

from core.settings import Settings
from voice.ami.client import AmiClient
from voice.ami.events import AmiEvent, DialBegin, Newchannel, Newexten, OriginateReason

CALLER = "+34600111333"
QUEUE = "e2e_ventas"
AGENT = "e2e-ana"
AGENT_PHONE = f"Local/1001@{TEST_AGENT}"
ARI_RECORDINGS = "/var/spool/asterisk/recording"  # where ARI's recordings go (Asterisk's astspooldir)
RING_SECONDS = 10  # CENTRALITA_AGENT_RING_SECONDS: how long the IVR rings the agent
# The banco_es number's flow in the service under test (`answering_banco_with`): straight into the queue;
# hung up on if the queue refuses the call. No prompt of its own, so nothing to build for Asterisk (a
# recording queue's notice is the shipped flows' own, in Spanish).
QUEUE_FLOW = f"""
name: banco_es
languages: [es]
default_language: es
start: cola
nodes:
  cola:
    kind: queue
    queue: {QUEUE}
    on_failure: fin
  fin:
    kind: hangup
"""


def queue_service_env(env: dict[str, str], tmp_path: Path, **more: str) -> dict[str, str]:
    """The environment of a service that answers the banco_es number with QUEUE_FLOW."""
    return answering_banco_with(env, tmp_path, QUEUE_FLOW) | {
        "CENTRALITA_AGENT_RING_SECONDS": str(RING_SECONDS),
        **more,
    }


def queue_and_agent(base: str, key: str, **queue: Any) -> int:
    """The test's queue and its one agent, logged in on the test phone (ready); the agent's id."""
    status, made = http("POST", f"{base}/api/v1/queues", key, {"name": QUEUE, **queue})
    assert status == 201, made
    agent = {"name": AGENT, "display_name": "Ana (e2e)", "home_endpoint": AGENT_PHONE}
    status, made = http("POST", f"{base}/api/v1/agents", key, agent)
    assert status == 201, made
    status, logged_in = http("POST", f"{base}/api/v1/agents/{made['id']}/login", key, {})
    assert status == 200 and logged_in["status"]["state"] == "ready", logged_in
    return int(made["id"])


@dataclass
class QueuedCall:
    """What Asterisk and the agent's event stream showed of one call through the queue."""

    caller: Caller
    events: AgentEvents
    offered: dict[str, Any] = field(default_factory=dict)  # agent.call_offered
    on_call: dict[str, Any] = field(default_factory=dict)  # the change to on_call
    agent_leg: str = ""  # the `;1` half of the agent's Local channel: the one bridged with the caller
    dialed: list[DialBegin] = field(default_factory=list)  # Dials from the caller's channel
    # The dialplan steps of the agent's leg: (context, application, data).
    agent_steps: list[tuple[str, str, str]] = field(default_factory=list)
    bridges: dict[str, str] = field(default_factory=dict)  # channel -> bridge it entered


async def hang_up(ami: AmiClient, agent_leg: str) -> None:
    """The agent hangs up (the far half of their Local channel)."""
    await ami.hangup(agent_leg[: -len(";1")] + ";2")


async def call_the_queue(
    ami_settings: Settings,
    env: dict[str, str],
    base: str,
    key: str,
    agent_id: int,
    *,
    context: str,
    agent: Callable[[AmiClient, str], Awaitable[None]] = hang_up,
) -> QueuedCall:
    """Calls the banco_es number in `context` (INBOUND: FastAGI; INBOUND_ARI: the Stasis application),
    waits until the agent is on the call and bridged with the caller, lets the `agent` end the
    conversation (by default at once), and waits for the call and the agent's wrap-up to end it."""
    async with ami_client(ami_settings) as ami, agent_events(base, key, agent_id) as events:
        seen = QueuedCall(Caller(ami, keys=[]), events)
        bridged = asyncio.Event()

        def on_event(event: AmiEvent) -> None:
            channel = str(getattr(event, "channel", ""))
            if isinstance(event, DialBegin) and channel.startswith(f"{PHONE}-"):
                seen.dialed.append(event)
            elif (
                isinstance(event, Newchannel)
                and channel.startswith(f"{AGENT_PHONE}-")
                and channel.endswith(";1")
            ):
                seen.agent_leg = channel
            elif isinstance(event, Newexten) and channel == seen.agent_leg:
                seen.agent_steps.append((event.context, event.application, event.app_data))
            elif event.event == "BridgeEnter" and event.raw is not None:  # not modelled: read raw
                fields = event.raw.as_dict()
                seen.bridges[str(fields.get("Channel"))] = str(fields.get("BridgeUniqueid"))
                caller = seen.caller.channel or next(
                    (c for c in seen.bridges if c.startswith(f"{PHONE}-")), ""
                )
                if caller in seen.bridges and seen.bridges.get(seen.agent_leg) == seen.bridges[caller]:
                    bridged.set()

        subscriptions = [
            ami.subscribe(seen.caller.on_event, events=["AGIExecStart", "Hangup"]),
            ami.subscribe(on_event, events=["DialBegin", "Newchannel", "Newexten", "BridgeEnter"]),
        ]
        app = env.get("CENTRALITA_ASTERISK_ARI_APP", "")
        try:
            answered = await ami.originate(
                PHONE,
                context=context,
                exten=BANCO_DID,
                priority=1,
                caller_id=CALLER,
                # Inherited (`_`): the agent's leg runs the U() subroutine's AGI on this server too.
                variables={"_CENTRALITA_AGI": agi_address(env), "CENTRALITA_ARI_APP": app},
                timeout=10,
            )
            assert answered.reason == OriginateReason.ANSWERED, answered
            seen.offered = await events.next("agent.call_offered")
            seen.on_call = await events.state("on_call")
            try:
                async with asyncio.timeout(10):
                    await bridged.wait()  # counted on the call while the two talk, not afterwards
            except TimeoutError:
                raise AssertionError(
                    f"agent {seen.agent_leg} not bridged with the caller: {seen.bridges}"
                ) from None
            await agent(ami, seen.agent_leg)
            if context == INBOUND:
                async with asyncio.timeout(20):
                    await seen.caller.finished.wait()
            await events.state("wrap_up")
        finally:
            for subscription in subscriptions:
                subscription.cancel()
            await hang_up_leftovers(ami, f"{PHONE}-")
            await hang_up_leftovers(ami, f"{AGENT_PHONE}-")
        return seen


def assert_the_timeline_shows_the_agent(item: dict[str, Any], linkedid: str) -> None:
    assert {"kind": "asterisk_linkedid", "value": linkedid} in item["external_refs"], item
    assert item["outcome"] == "transferred", item  # handed to an agent
    steps = [(t["kind"], t["attributes"]) for t in item["touchpoints"]]
    kinds = [kind for kind, _ in steps]
    assert kinds[-3:] == ["queue_enter", "queue_leave", "agent_connect"], steps
    enter, leave, connect = (attributes for _, attributes in steps[-3:])
    assert enter["queue"] == QUEUE, steps
    assert (leave["queue"], leave["result"], leave["agent"]) == (QUEUE, "answered", AGENT), steps
    assert (connect["queue"], connect["agent"]) == (QUEUE, AGENT), steps


def test_over_fastagi_the_agent_is_rung_with_the_answered_subroutine_and_counted_on_the_call(
    ami_settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    env = queue_service_env(env, tmp_path)
    key = admin_key(env, tmp_path)
    with serving(env=env, cwd=tmp_path) as (_, base):
        agent_id = queue_and_agent(base, key)
        seen = asyncio.run(call_the_queue(ami_settings, env, base, key, agent_id, context=INBOUND))
        item = finished_call(base, key, CALLER)
        status, agent = http("GET", f"{base}/api/v1/agents/{agent_id}", key)

    caller = seen.caller
    assert not caller.problems, caller.problems
    linkedid = caller.linkedid
    assert linkedid is not None, caller.commands
    # The IVR rang the agent's phone from the caller's channel, with the U() subroutine.
    dial = f"EXEC Dial {AGENT_PHONE},{RING_SECONDS},mU(centralita-agent-answered^{linkedid})"
    assert dial in caller.commands, caller.commands
    assert caller.commands[caller.commands.index(dial) + 1] == "GET VARIABLE DIALSTATUS", caller.commands
    assert [d.dest_channel for d in seen.dialed] == [seen.agent_leg], seen.dialed
    # The subroutine ran on the agent's leg when it answered, and reached this server's FastAGI.
    answered = ("centralita-agent-answered", "AGI", f"agi://{agi_address(env)}/agent-answered,{linkedid}")
    assert answered in seen.agent_steps, seen.agent_steps
    # The ACD offered the call to the agent, with the screen pop, then counted them on it.
    offered = seen.offered
    assert (offered["agent"], offered["endpoint"], offered["call_id"]) == (AGENT, AGENT_PHONE, linkedid)
    assert offered["caller"] == CALLER and offered["ivr"]["flow"] == "banco_es", offered
    assert (seen.on_call["call_id"], seen.on_call["queue"]) == (linkedid, QUEUE), seen.on_call
    assert status == 200 and agent["status"]["state"] == "wrap_up", agent
    assert_the_timeline_shows_the_agent(item, linkedid)


def test_over_ari_the_agents_phone_is_originated_into_the_application_and_bridged(
    settings: Settings, ami_settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    app = f"{settings.asterisk_ari_app}-e2e-queue-{uuid.uuid4().hex[:8]}"
    env = queue_service_env(env, tmp_path, CENTRALITA_ASTERISK_ARI_APP=app)
    key = admin_key(env, tmp_path)
    with serving(env=env, cwd=tmp_path) as (_, base):
        agent_id = queue_and_agent(base, key)
        seen = asyncio.run(call_the_queue(ami_settings, env, base, key, agent_id, context=INBOUND_ARI))
        item = finished_call(base, key, CALLER)
        status, agent = http("GET", f"{base}/api/v1/agents/{agent_id}", key)

    linkedid = seen.offered["call_id"]
    # No FastAGI at all: the caller stayed in the Stasis application and nothing Dialed from it.
    assert seen.caller.commands == [] and seen.dialed == [], (seen.caller.commands, seen.dialed)
    assert not any(context == "centralita-agent-answered" for context, _, _ in seen.agent_steps)
    assert (seen.offered["agent"], seen.offered["endpoint"]) == (AGENT, AGENT_PHONE), seen.offered
    assert seen.offered["caller"] == CALLER and seen.offered["ivr"]["flow"] == "banco_es", seen.offered
    assert (seen.on_call["call_id"], seen.on_call["queue"]) == (linkedid, QUEUE), seen.on_call
    assert status == 200 and agent["status"]["state"] == "wrap_up", agent
    assert_the_timeline_shows_the_agent(item, linkedid)


async def say_hello_and_hang_up(ami: AmiClient, agent_leg: str) -> None:
    """The agent's phone says a short "hello" (a 0.8 s tone) and hangs up 8 s later: the rendered test
    number's person, from its tone on (`centralita-test-numbers`, `person`, priority 4)."""
    phone = agent_leg[: -len(";1")] + ";2"
    redirect: dict[str, str | int] = {
        "Channel": phone,
        "Context": TEST_NUMBERS,
        "Exten": "person",
        "Priority": 4,
    }
    await ami.send_action("Redirect", redirect)


def loudest_sample(wav: bytes) -> int:
    """The largest absolute sample of a 16-bit mono WAV (0 for silence, or no audio at all)."""
    with wave.open(io.BytesIO(wav)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth()) == (1, 2), audio.getparams()
        frames = audio.readframes(audio.getnframes())
    return max((abs(sample) for (sample,) in struct.iter_unpack("<h", frames)), default=0)


def test_a_queue_that_always_records_records_the_call_with_mixmonitor_and_the_api_lists_it(
    ami_settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    recordings = ami_settings.asterisk_recordings_dir
    if recordings is None:
        pytest.skip(
            "CENTRALITA_ASTERISK_RECORDINGS_DIR is not set: Asterisk's recordings cannot be read here"
        )
    env = queue_service_env(env, tmp_path)
    key = admin_key(env, tmp_path)
    with serving(env=env, cwd=tmp_path) as (_, base):
        agent_id = queue_and_agent(base, key, recording="always")
        seen = asyncio.run(
            call_the_queue(
                ami_settings, env, base, key, agent_id, context=INBOUND, agent=say_hello_and_hang_up
            )
        )
        item = finished_call(base, key, CALLER)
        status, listed = http("GET", f"{base}/api/v1/interactions/{item['id']}/recordings", key)
        assert status == 200, listed
        request = urllib.request.Request(
            f"{base}/api/v1/interactions/{item['id']}/recordings/1",
            headers={"Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            served = response.read()

    commands = seen.caller.commands
    linkedid = seen.caller.linkedid
    assert linkedid is not None, commands
    # The notice first (the recording consent prompt, in the call's language), then MixMonitor on the
    # caller's channel before the agent's phone is dialled, recording only while bridged (`b`).
    notice = next(c for c in commands if c.startswith("STREAM FILE centralita/es/"))
    mixmonitor = next(c for c in commands if c.startswith("EXEC MixMonitor "))
    dial = next(c for c in commands if c.startswith("EXEC Dial "))
    assert commands.index(notice) < commands.index(mixmonitor) < commands.index(dial), commands
    path = ami_settings.asterisk_recordings_path
    found = re.fullmatch(
        rf"EXEC MixMonitor {re.escape(path)}/(\d{{4}}/\d\d/\d\d/{re.escape(linkedid)}-1\.wav),b", mixmonitor
    )
    assert found is not None, mixmonitor
    name = found[1]
    # The API lists it, as Asterisk wrote it where the settings say.
    (recording,) = listed["items"]
    assert (recording["number"], recording["file"]) == (1, name), recording
    assert (recording["policy"], recording["source"], recording["queue"]) == ("always", "mixmonitor", QUEUE)
    on_disk = (recordings / name).read_bytes()
    assert served == on_disk
    # The agent's "hello" is in it: MixMonitor recorded the two while they were bridged.
    assert loudest_sample(on_disk) > 1000, f"{name}: no sound recorded ({len(on_disk)} bytes)"
    assert "recording" in [t["kind"] for t in item["touchpoints"]], item["touchpoints"]
    (recordings / name).unlink()  # a shared Asterisk's directory: only a failed test leaves its file


def test_over_ari_a_queue_that_always_records_records_the_bridge_and_the_api_lists_it(
    settings: Settings, ami_settings: Settings, env: dict[str, str], tmp_path: Path
) -> None:
    recordings, path = ami_settings.asterisk_recordings_dir, ami_settings.asterisk_recordings_path
    if recordings is None or not path.startswith(ARI_RECORDINGS + "/"):
        pytest.skip(
            f"ARI records only under {ARI_RECORDINGS}: set CENTRALITA_ASTERISK_RECORDINGS_PATH to a directory"
            " inside it (and CENTRALITA_ASTERISK_RECORDINGS_DIR to where this machine reads it)"
        )
    app = f"{settings.asterisk_ari_app}-e2e-rec-{uuid.uuid4().hex[:8]}"
    env = queue_service_env(env, tmp_path, CENTRALITA_ASTERISK_ARI_APP=app)
    key = admin_key(env, tmp_path)
    with serving(env=env, cwd=tmp_path) as (_, base):
        agent_id = queue_and_agent(base, key, recording="always")
        seen = asyncio.run(
            call_the_queue(
                ami_settings, env, base, key, agent_id, context=INBOUND_ARI, agent=say_hello_and_hang_up
            )
        )
        item = finished_call(base, key, CALLER)
        status, listed = http("GET", f"{base}/api/v1/interactions/{item['id']}/recordings", key)
        assert status == 200, listed

    assert seen.caller.commands == [], seen.caller.commands  # no FastAGI: the call stayed in Stasis
    linkedid = seen.offered["call_id"]
    (recording,) = listed["items"]
    assert (recording["policy"], recording["source"], recording["queue"]) == ("always", "ari_bridge", QUEUE)
    assert re.fullmatch(rf"\d{{4}}/\d\d/\d\d/{re.escape(linkedid)}-1\.wav", recording["file"]), recording
    on_disk = recordings / recording["file"]
    # The agent's "hello" is in it: Asterisk recorded the bridge's mix.
    assert loudest_sample(on_disk.read_bytes()) > 1000, f"{on_disk}: no sound recorded"
    assert "recording" in [t["kind"] for t in item["touchpoints"]], item["touchpoints"]
    on_disk.unlink()
