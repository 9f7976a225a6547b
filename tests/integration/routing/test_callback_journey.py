"""Issue 7's "done when", the callback and continuation half, over the service's own path: the
container's API on a real socket (its lifespan runs the callback desk), its FastAGI server and call
runner, the console caller playing Asterisk, a simulated call network for the callback, a local
Twilio for the SMS and a signed webhook for the reply.

With no agent free, banco_es's billing queue offers a callback instead of the wait; the caller
accepts with 1 and hangs up; the callback waits as a virtual position in the live ACD and is dialed
the moment the agent frees, bridged to them, in the call's case. No agent free means: the only one
with the skill paused (overflow "no_agents"; then the same caller's next call continues on SMS and
the reply comes back, both in that case too), or on a call longer than the queue's overflow
threshold ("long_wait"), or a caller who waited on hold past the max wait (the queue node's
on_failure): that caller's callback keeps the place they had, ahead of one asked for after it.

(tests/integration/messaging/test_sms_continuation.py covers the SMS continuation in a case opened
through the API, and its failure paths; here the case is the one the callback made.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from ivr_call_records import CARD, MADRID_MONDAY_10, new_customer, recorded
from served import free_port
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from centralita.container import Container
from core.auth.roles import Role
from core.customers.identities import IdentityKind
from core.settings import Settings
from core.timeline.models import Interaction, Touchpoint
from dialer.clock import ScaledClock
from dialer.simulated_network import CalleeBehaviour, SimulatedCallNetwork
from messaging.continuation import LinkTokens
from routing.agent_state import AgentState
from routing.callback_dialer import entry_id
from routing.callback_models import Callback
from routing.live_queues import InboundCall, Joined, LiveQueues
from voice.agi.server import FastAgiServer
from voice.console_caller import CallResult, ScriptedKeypad, place_call
from voice.prompts import prompt_texts

# The messaging tests' local Twilio (appended: the service's own `messaging` package stays first).
sys.path.append(str(Path(__file__).resolve().parents[1] / "messaging"))
from fake_twilio_api import FakeTwilioApi

T = TypeVar("T")

CALLER = "+34699000222"
ACCOUNT = "AC" + "d4" * 16
TOKEN = "the-account-auth-token-for-journeys"
PUBLIC = "https://cc.example.com"
SMS_FROM = "+34911000000"
LINK_SECRET = "a-link-secret-of-at-least-32-chars"
# The customer asked for the call: they answer it, after a ring of a second or two.
ANSWERING = CalleeBehaviour(
    live_answer=1.0, machine=0, busy=0, failed=0, ring_min_s=1, ring_max_s=2, talk_mean_s=20
)
NETWORK_SPEED = 200  # simulated seconds per real second: the callback rings ~10 ms, talks ~0.1 s

BILLING_THEN_CALL_ME = ["2", "1"]  # menu: billing; overflow offer: "press 1 for a call back"
SOMETHING_ELSE_THEN_BALANCE = ["2", "1", CARD + "#", "05031980"]  # open case: not about it; balance


@dataclass
class Service:
    container: Container
    base: str
    loop: asyncio.AbstractEventLoop  # the served app's, where the live ACD and the callback desk run
    network: SimulatedCallNetwork
    twilio: FakeTwilioApi

    @property
    def live(self) -> LiveQueues:
        return self.container.routing().live

    def on_loop(self, work: Callable[[], Coroutine[Any, Any, T]], timeout: float = 15) -> T:
        return asyncio.run_coroutine_threadsafe(work(), self.loop).result(timeout=timeout)

    def read_live(self, read: Callable[[LiveQueues], T]) -> T:
        """Reads the live ACD on its own loop (it is not shared across threads)."""

        async def work() -> T:
            return read(self.live)

        return self.on_loop(work)


@pytest.fixture
def service(container: Container) -> Iterator[Service]:
    """The container's service as `serve` runs it, with callbacks allowed at any hour (the test runs at
    any time of day), Twilio and the link secret set, and the callback desk on a simulated network."""
    with FakeTwilioApi(account_sid=ACCOUNT, auth_token=TOKEN) as twilio:
        settings = Settings(
            _env_file=None,
            database_url=container.settings.database_url,
            api_key_cache_seconds=0,
            callback_hours="00:00-24:00",
            public_url=PUBLIC,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_api_base_url=twilio.base_url,
            twilio_sms_from=SMS_FROM,
            link_secret=LINK_SECRET,
        )
        # Its own live ACD, desk and journal over the suite's database and bus.
        wired = dataclasses.replace(container, settings=settings)
        network = SimulatedCallNetwork(ScaledClock(NETWORK_SPEED), behaviour=ANSWERING)
        wired.callbacks().use_network(network)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(wired.api(), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "the app did not start"
            time.sleep(0.02)
        loop = _server_loop(wired)
        try:
            yield Service(wired, f"http://127.0.0.1:{port}", loop, network, twilio)
        finally:
            asyncio.run_coroutine_threadsafe(network.close(), loop).result(timeout=10)
            server.should_exit = True
            thread.join(timeout=10)
            _close(wired)


def _server_loop(wired: Container) -> asyncio.AbstractEventLoop:
    loop = wired.callbacks()._loop  # started by the app's lifespan, on the app's loop
    assert loop is not None, "the callback desk did not start: it needs a network"
    return loop


def _close(wired: Container) -> None:
    """What `Container.close` does, but the engines: they are the suite's."""
    if wired._callbacks is not None:
        wired._callbacks.close()
    if wired._routing is not None:
        wired._routing.close()
    if wired._recording_notes is not None:
        wired._recording_notes.close()
    if wired._live_stats is not None:
        wired._live_stats.stop()
    if wired._journal is not None:
        wired._journal.close_pool()


def until(condition: Callable[[], T], what: str, timeout: float = 10.0) -> T:
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return found


def call(service: Service, keys: list[str]) -> CallResult:
    """One call through banco_es on the service's FastAGI server (on the ACD's loop), the caller's keys
    scripted; returns once the call's timeline writes are done."""
    wired = service.container
    runner = wired.call_runner(clock=lambda: MADRID_MONDAY_10)  # banco_es is open
    prompts = prompt_texts(wired.flows().flows.values())

    async def start() -> FastAgiServer:
        agi = wired.agi_server(runner=runner, port=0)
        await agi.start()
        return agi

    agi = service.on_loop(start)
    try:
        result = asyncio.run(
            place_call(
                "127.0.0.1", agi.port, "banco_es", keypad=ScriptedKeypad(list(keys)), caller=CALLER,
                prompts=prompts, say=lambda _: None,
            )
        )  # fmt: skip
    finally:
        service.on_loop(lambda: agi.stop(2))
        service.on_loop(lambda: runner.drain(timeout=10))
    assert result.closed_by_server, result.transcript
    return result


def callback_row(wired: Container, callback_id: int) -> Callback:
    with wired.session_factory() as db:
        found = db.get(Callback, callback_id)
        assert found is not None
        db.expunge(found)
        return found


def billing(service: Service, http: httpx.Client, **queue: Any) -> tuple[int, int]:
    """Queue "facturacion" in Centralita's queues table, Ana (her number and her card), and Luis, the one
    agent with the skill, logged in and ready: (Ana's id, Luis's id)."""
    made = {"name": "facturacion", "skills": [{"skill": "facturacion"}], "wrap_up_seconds": 0} | queue
    assert http.post("/api/v1/queues", json=made).status_code == 201
    ana = new_customer(
        service.container,
        (IdentityKind.PHONE, CALLER),
        (IdentityKind.CRM, CARD),
        name="Ana",
        preferred_language="es",
    )
    agent = http.post(
        "/api/v1/agents",
        json={"name": "luis", "display_name": "Luis", "home_endpoint": "PJSIP/1001",
              "skills": [{"skill": "facturacion", "level": 4}]},
    ).json()  # fmt: skip
    assert http.post(f"/api/v1/agents/{agent['id']}/login").status_code == 200
    return ana, int(agent["id"])


def accept_callback(
    service: Service, http: httpx.Client, ana: int, reason: str
) -> tuple[dict[str, Any], int]:
    """Ana calls, chooses billing, hears the callback offer (the queue overflowed for `reason`), presses 1
    and hangs up. Checks the call, the callback and its virtual position; returns (the callback as the
    API reads it, the call's interaction id)."""
    wired = service.container
    heard = call(service, BILLING_THEN_CALL_ME)
    assert "El departamento de facturación no puede atenderle ahora." in " ".join(heard.heard)
    assert heard.heard[-1].startswith("De acuerdo, le llamaremos en cuanto haya un agente libre.")
    assert not any(c.startswith(("EXEC Dial", "EXEC Queue")) for c in heard.commands)  # never queued
    the_call = recorded(wired, heard.uniqueid)
    assert the_call.interaction.outcome == "callback_requested"
    steps = [(t.kind, t.node, t.attributes.get("result")) for t in the_call.touchpoints]
    assert ("ivr_node", "cola_facturacion", f"overflow: {reason}") in steps, steps
    assert ("menu_choice", "ofrecer_llamada_facturacion", "accepted") in steps, steps
    accepted = [t.attributes for t in the_call.touchpoints if t.kind == "callback_accepted"]
    assert [(a["queue"], a["number"]) for a in accepted] == [("facturacion", CALLER)], steps

    [callback] = http.get("/api/v1/callbacks", params={"customer_id": ana}).json()["items"]
    assert (callback["status"], callback["source"], callback["queue"], callback["phone"]) == (
        "waiting", "ivr", "facturacion", CALLER
    )  # fmt: skip
    assert callback["interaction_id"] == the_call.interaction.id
    assert callback["context"]["node"] == "ofrecer_llamada_facturacion"
    # The call and the callback share a case of Ana's.
    assert the_call.interaction.case_id == callback["case_id"]
    case = http.get(f"/api/v1/cases/{callback['case_id']}").json()
    assert (case["customer_id"], case["status"]) == (ana, "open")

    # A virtual position, the only one waiting in billing; nobody is dialed while no agent is free.
    entry = entry_id(callback["id"])
    until(lambda: service.read_live(lambda live: live.virtual_ids() == {entry}), "the virtual position")
    assert service.read_live(lambda live: live.position_of(entry)) == 1
    assert http.get("/api/v1/queues/facturacion/status").json()["waiting"] == 1
    assert service.network.active_calls == 0
    assert callback_row(wired, callback["id"]).attempts == 0
    return callback, the_call.interaction.id


def history(http: httpx.Client, agent: int) -> list[tuple[str, str | None]]:
    """The agent's recorded states, oldest first, with the call each was about."""
    rows = http.get(f"/api/v1/agents/{agent}/history").json()  # newest first
    return [(row["state"], row["call_id"]) for row in reversed(rows)]


def assert_called_back(
    service: Service, http: httpx.Client, callback: dict[str, Any], call_interaction: int
) -> None:
    """The callback was dialed once, answered, bridged to Luis and completed, in the call's case."""
    wired = service.container
    until(lambda: callback_row(wired, callback["id"]).status == "completed", "the callback completed")
    made = http.get(f"/api/v1/callbacks/{callback['id']}").json()
    assert (made["attempts"], made["last_result"], made["agent"]) == (1, "connected", "luis")
    assert entry_id(callback["id"]) not in service.read_live(lambda live: live.virtual_ids())
    with wired.session_factory() as db:
        outbound = db.get(Interaction, made["callback_interaction_id"])
        assert outbound is not None
        assert (outbound.channel, outbound.direction, outbound.outcome, outbound.agent) == (
            "voice", "outbound", "completed", "luis"
        )  # fmt: skip
        assert outbound.case_id == callback["case_id"]
        assert outbound.attributes["callback_for"] == call_interaction
        bridged = db.scalars(select(Touchpoint).where(Touchpoint.interaction_id == outbound.id)).all()
        assert [(t.kind, t.attributes["endpoint"]) for t in bridged] == [("agent_connect", "PJSIP/1001")]


def test_a_callback_accepted_while_the_only_agent_is_paused_is_dialed_when_they_are_ready_and_the_sms_continuation_lands_in_its_case(  # noqa: E501
    service: Service, make_key: Callable[[Role, str], str]
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN, 'journey admin')}"}
    with httpx.Client(base_url=service.base, headers=headers, timeout=10) as http:
        ana, luis = billing(service, http)
        paused = http.post(f"/api/v1/agents/{luis}/pause", json={"reason": "break"})
        assert paused.json()["status"]["state"] == "paused", paused.text
        status = http.get("/api/v1/queues/facturacion/status").json()
        assert (status["overflow"], status["overflow_reason"]) == (True, "no_agents")

        callback, call_interaction = accept_callback(service, http, ana, "no_agents")
        case_id = callback["case_id"]

        assert http.post(f"/api/v1/agents/{luis}/ready").status_code == 200
        assert_called_back(service, http, callback, call_interaction)
        entry = entry_id(callback["id"])
        until(lambda: len(history(http, luis)) >= 6, "the agent's states recorded")
        assert history(http, luis) == [
            ("ready", None), ("paused", None), ("ready", None),
            ("offered", entry), ("on_call", entry), ("ready", entry),
        ]  # fmt: skip

        # Ana calls again (her case is open: "something else", then her balance): the SMS
        # continuation and her reply land in the callback's case.
        again = call(service, SOMETHING_ELSE_THEN_BALANCE)
        assert again.heard[-1] == "Gracias por llamar a Banco Meridiano. Adiós."
        assert recorded(service.container, again.uniqueid).interaction.case_id == case_id
        [posted] = service.twilio.sent()
        assert (posted["To"], posted["From"]) == (CALLER, SMS_FROM)
        link = re.search(r"https://cc\.example\.com/l/([A-Za-z0-9_-]+)", posted["Body"])
        assert link is not None
        assert LinkTokens(LINK_SECRET.encode()).read(link.group(1)).case_id == case_id
        reply = {"MessageSid": "SM" + "7" * 32, "From": CALLER, "To": SMS_FROM, "Body": "Ya lo he visto"}
        path = "/api/v1/webhooks/twilio/messages"
        signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}{path}", reply)
        assert http.post(path, data=reply, headers={"X-Twilio-Signature": signature}).status_code == 200

        timeline = http.get(f"/api/v1/customers/{ana}/timeline").json()["items"]
        assert {i["case_id"] for i in timeline} == {case_id}, timeline
        assert sorted((i["channel"], i["direction"], i["outcome"] or "") for i in timeline) == [
            ("sms", "inbound", "delivered"),
            ("sms", "outbound", ""),  # no delivery report yet
            ("voice", "inbound", "callback_requested"),
            ("voice", "inbound", "contained"),
            ("voice", "outbound", "completed"),
        ], timeline


def test_a_callback_accepted_while_the_only_agent_is_on_a_long_call_is_dialed_when_that_call_ends(
    service: Service, make_key: Callable[[Role, str], str]
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN, 'journey admin')}"}
    with httpx.Client(base_url=service.base, headers=headers, timeout=10) as http:
        ana, luis = billing(service, http, overflow_wait_seconds=60)
        # Luis takes another caller's call (answered at once: no voice port holds it).
        joined = service.read_live(lambda live: live.join(InboundCall("other-call", "facturacion")))
        assert isinstance(joined, Joined)
        until(
            lambda: service.read_live(lambda live: live.status_of(luis).state) is AgentState.ON_CALL,
            "on call",
        )
        status = http.get("/api/v1/queues/facturacion/status").json()
        assert (status["overflow"], status["overflow_reason"]) == (True, "long_wait")  # about 3 minutes

        callback, call_interaction = accept_callback(service, http, ana, "long_wait")
        assert callback_row(service.container, callback["id"]).agent is None

        service.read_live(lambda live: live.call_ended("other-call"))  # Luis is free: Ana is called
        assert_called_back(service, http, callback, call_interaction)
        entry = entry_id(callback["id"])
        until(lambda: len(history(http, luis)) >= 7, "the agent's states recorded")
        assert history(http, luis) == [
            ("ready", None),
            ("offered", "other-call"), ("on_call", "other-call"), ("ready", "other-call"),
            ("offered", entry), ("on_call", entry), ("ready", entry),
        ]  # fmt: skip


def test_a_caller_who_waited_past_the_max_wait_keeps_their_place_with_the_callback_they_accept(
    service: Service, make_key: Callable[[Role, str], str]
) -> None:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN, 'journey admin')}"}
    with httpx.Client(base_url=service.base, headers=headers, timeout=10) as http:
        # No overflow when joining (the threshold is far above the wait), but a max wait of 1 s.
        ana, luis = billing(service, http, overflow_wait_seconds=3600, max_wait_seconds=1)
        joined = service.read_live(lambda live: live.join(InboundCall("other-call", "facturacion")))
        assert isinstance(joined, Joined)
        until(
            lambda: service.read_live(lambda live: live.status_of(luis).state) is AgentState.ON_CALL,
            "on call",
        )

        calls: list[CallResult] = []
        caller = threading.Thread(target=lambda: calls.append(call(service, BILLING_THEN_CALL_ME)))
        caller.start()
        try:
            # While Ana waits on hold, a web page asks for a callback to someone else: behind her.
            until(
                lambda: service.read_live(lambda live: live.queue_status("facturacion").waiting) == 1, "Ana"
            )
            web = http.post("/api/v1/callbacks", json={"phone": "+34600000009", "queue": "facturacion"})
            assert web.status_code == 201, web.text
        finally:
            caller.join(timeout=20)
        (heard,) = calls
        assert "[on hold: music]" in heard.transcript
        the_call = recorded(service.container, heard.uniqueid)
        steps = [(t.kind, t.attributes.get("result")) for t in the_call.touchpoints]
        assert ("queue_leave", "max_wait") in steps, steps
        assert the_call.interaction.outcome == "callback_requested"

        [ana_callback] = http.get("/api/v1/callbacks", params={"customer_id": ana}).json()["items"]
        others = web.json()["id"]
        # Her place: when she joined the queue, a max wait (1 s) before she asked; ahead of the web's.
        kept = callback_row(service.container, ana_callback["id"])
        assert kept.requested_at - kept.place_at >= timedelta(seconds=1), (kept.place_at, kept.requested_at)
        assert kept.place_at < callback_row(service.container, others).place_at
        ana_entry, other_entry = entry_id(ana_callback["id"]), entry_id(others)
        until(
            lambda: service.read_live(lambda live: live.virtual_ids()) == {ana_entry, other_entry},
            "both virtual positions",
        )
        positions = service.read_live(lambda live: [live.position_of(e) for e in (ana_entry, other_entry)])
        assert positions == [1, 2]

        service.read_live(lambda live: live.call_ended("other-call"))  # Luis frees: Ana first
        assert_called_back(service, http, ana_callback, the_call.interaction.id)
        until(lambda: callback_row(service.container, others).status == "completed", "the web callback")
        until(lambda: len(history(http, luis)) >= 10, "the agent's states recorded")
        assert [call_id for state, call_id in history(http, luis) if state == "offered"] == [
            "other-call", ana_entry, other_entry
        ]  # fmt: skip
