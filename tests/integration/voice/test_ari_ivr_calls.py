"""Whole IVR calls over ARI: the shipped flows run by the real StasisIvr, AriVoicePort and CallRunner,
with the real timeline journal on SQLite and on PostgreSQL, against a FakeAri that plays Asterisk 22 as
the recordings show it (../shared/fixtures/asterisk/ari_trace.txt) with a scripted caller on the line."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ivr_call_records import (
    CALLER,
    CARD,
    LONDON_TUESDAY_11,
    MADRID_MONDAY_10,
    SUNDAY,
    Sender,
    new_customer,
    recorded,
)
from sqlalchemy import select

from centralita.container import Container
from core.cases import service as cases
from core.cases.schemas import CaseCreate
from core.customers.identities import IdentityKind
from core.db import unit_of_work
from core.timeline.models import Interaction
from voice.ari.events import LiveRecording, RecordingFinished, RecordingStarted
from voice.ari.fake import FakeAri, channel, hangup_request, stasis_end, stasis_start
from voice.ari.ivr_port import DEFAULT_HANDOFF_CONTEXT, AriPortOptions
from voice.ari.stasis_app import LINKEDID, StasisIvr
from voice.ivr.call_runner import CallRunner
from voice.ivr.schema import Flow
from voice.prompts import prompt_texts

APP = "centralita"
FAST = AriPortOptions(handoff_poll=0.01)
REFUSALS = {"queue": "JOINEMPTY", "dial": "CHANUNAVAIL"}


@dataclass
class Caller:
    """One caller on the line: presses `keys` (an entry per question; then hangs up), hears prompts."""

    channel_id: str
    linkedid: str
    keys: deque[str]
    heard: list[str] = field(default_factory=list)
    pressed: list[str] = field(default_factory=list)
    handoffs: list[dict[str, str]] = field(default_factory=list)  # the variables each handoff carried
    recordings: list[str] = field(default_factory=list)
    ended_by: str | None = None  # "caller", "ivr" (hung up or done), "handoff" (an agent took the call)


class SimulatedAsterisk(FakeAri):
    """FakeAri answering as Asterisk does: prompts play to the end (PlaybackStarted, PlaybackFinished),
    recordings start and finish, a DELETE brings ChannelHangupRequest and StasisEnd. A handoff leaves the
    application; with `handoffs_fail` the queue has nobody (JOINEMPTY) or the target is unavailable
    (CHANUNAVAIL) and the channel comes back into the application with that status, as the handoff
    dialplan does; otherwise an agent answers, they talk, the caller hangs up, and Asterisk forgets the
    channel (the application hears nothing more of a channel that left it)."""

    def __init__(self, prompts: Mapping[str, str], *, handoffs_fail: bool = False) -> None:
        super().__init__(application=APP)
        self.prompts = prompts
        self.handoffs_fail = handoffs_fail
        self.callers: dict[str, Caller] = {}
        self._soon: set[asyncio.Task[None]] = set()

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Events Asterisk sends after its reply."""
        task = asyncio.get_running_loop().create_task(work)
        self._soon.add(task)
        task.add_done_callback(self._soon.discard)

    async def settle(self) -> None:
        while self._soon:
            await asyncio.gather(*set(self._soon))

    async def play(self, channel_id: str, media: str | Sequence[str], **options: Any) -> Any:
        playback = await super().play(channel_id, media, **options)
        file = playback.media_uri.removeprefix("sound:")
        self.callers[channel_id].heard.append(self.prompts.get(file, f"[{file}]"))
        self.later(self.finish_playback(playback.id))
        return playback

    async def record(self, channel_id: str, name: str, **options: Any) -> Any:
        recording = await super().record(channel_id, name, **options)
        self.callers[channel_id].recordings.append(name)
        target = f"channel:{channel_id}"
        self.later(
            self.push(
                RecordingStarted(recording=LiveRecording(name=name, state="recording", target_uri=target)),
                RecordingFinished(recording=LiveRecording(name=name, state="done", target_uri=target)),
            )
        )
        return recording

    async def hangup(self, channel_id: str, reason: str | None = None) -> None:
        gone = self.channels.get(channel_id) or channel(channel_id)
        await super().hangup(channel_id, reason)
        self.callers[channel_id].ended_by = "ivr"
        self.later(self.push(hangup_request(gone, cause=32, soft=True), stasis_end(gone)))

    async def continue_in_dialplan(self, channel_id: str, **where: Any) -> None:
        await super().continue_in_dialplan(channel_id, **where)
        caller = self.callers[channel_id]
        left = self.channels[channel_id]
        extension = where.get("extension")
        if where.get("context") != DEFAULT_HANDOFF_CONTEXT or extension not in REFUSALS:
            caller.ended_by = caller.ended_by or "ivr"  # the dialplan after Stasis() hangs up
            del self.channels[channel_id]
            self.later(self.push(stasis_end(left)))
            return
        caller.handoffs.append(
            {
                name: value
                for (chan, name), value in self.variables.items()
                if chan == channel_id and name != LINKEDID
            }
        )
        if self.handoffs_fail:
            back = stasis_start(left, "handoff", extension, REFUSALS[extension], application=APP)
            self.later(self.push(stasis_end(left), back))
            return
        caller.ended_by = "handoff"
        del self.channels[channel_id]
        self.later(self.push(stasis_end(left)))

    async def dial_in(self, ivr: StasisIvr, caller: Caller, flow: str, number: str | None) -> None:
        """The call enters Stasis(centralita,ivr,<flow>,<number>); the caller answers each question the
        IVR waits for with the next keys, and hangs up when none are left."""
        self.callers[caller.channel_id] = caller
        self.variables[(caller.channel_id, LINKEDID)] = caller.linkedid
        arriving = channel(
            caller.channel_id,
            caller_number=number or "",
            name=f"PJSIP/trunk-{caller.channel_id}",
            exten="900100200",
        )
        await self.start_call(arriving, "ivr", flow, "900100200")  # as the rendered dialplan sends it
        answered = -1  # the prompts played when the caller last answered: one answer per question
        while (port := ivr.port(caller.channel_id)) is not None:
            asked = len(self.called("play"))
            if port.waiting_for == "digits" and not port.gone and asked != answered:
                answered = asked
                if not caller.keys:
                    caller.ended_by = "caller"
                    await self.caller_hangs_up(caller.channel_id)
                else:
                    caller.pressed.append(caller.keys.popleft())
                    await self.press(caller.channel_id, caller.pressed[-1])
            await asyncio.sleep(0.001)
        await self.settle()


def call(
    container: Container,
    flow: str,
    keys: list[str],
    *,
    caller: str | None = CALLER,
    now: datetime = MADRID_MONDAY_10,
    handoffs_fail: bool = False,
    sender: Sender | None = None,
    linkedid: str = "1795537000.42",
) -> tuple[Caller, SimulatedAsterisk]:
    prompts = prompt_texts(container.flows().flows.values())
    on_line = Caller(f"{linkedid}-chan", linkedid, deque(keys))

    async def main() -> SimulatedAsterisk:
        asterisk = SimulatedAsterisk(prompts, handoffs_fail=handoffs_fail)
        runner = container.call_runner(clock=lambda: now, link_sender=sender)
        ivr = StasisIvr(
            asterisk, asterisk.router, runner, container.flows().get, application=APP, options=FAST
        )
        async with ivr:
            await asyncio.wait_for(asterisk.dial_in(ivr, on_line, flow, caller), timeout=30)
        await runner.drain(timeout=10)
        assert asterisk.router.watched_channels == frozenset()  # no port left listening
        return asterisk

    return on_line, asyncio.run(main())


def test_a_known_customer_presses_2_and_is_queued_for_billing(container: Container) -> None:
    ana = new_customer(
        container, (IdentityKind.PHONE, "600 111 222"), name="Ana Pérez", preferred_language="es"
    )
    on_line, asterisk = call(container, "banco_es", ["2"])

    assert on_line.heard[0].startswith("Bienvenido a Banco Meridiano.")
    assert on_line.heard[-1] == "Le pasamos con el departamento de facturación."
    assert on_line.pressed == ["2"] and on_line.ended_by == "handoff"
    assert on_line.handoffs == [
        {
            "CHANNEL(language)": "es",
            "QUEUE_PRIO": "3",
            "CENTRALITA_SKILLS": "facturacion",
            "CENTRALITA_QUEUE": "facturacion",
        }
    ]
    assert asterisk.methods[:2] == ["get_variable", "answer"]

    call_record = recorded(container, on_line.linkedid)
    interaction = call_record.interaction
    assert (interaction.channel, interaction.direction, interaction.customer_id) == ("voice", "inbound", ana)
    assert interaction.external_refs == [{"kind": "asterisk_linkedid", "value": on_line.linkedid}]
    banco = container.flows().flows["banco_es"]
    assert interaction.attributes["flow"] == "banco_es"
    assert interaction.attributes["flow_version"] == banco.version
    assert interaction.outcome == "transferred" and interaction.ended_at is not None
    assert call_record.nodes() == [
        "identificar_llamante", "idioma_cliente", "bienvenida", "horario", "prioridad", "menu_principal",
        "cola_facturacion",
    ]  # fmt: skip
    assert call_record.steps()[1] == ("lookup", "identificar_llamante", "caller")
    assert call_record.touchpoints[1].attributes["result"] == "found"
    assert ("menu_choice", "menu_principal", "2") in call_record.steps()
    assert call_record.steps()[-1] == ("queue_enter", "cola_facturacion", None)


def test_a_balance_request_looks_the_card_up_and_sends_the_link(container: Container) -> None:
    ana = new_customer(container, (IdentityKind.CRM, CARD), name="Ana")
    sender = Sender()
    on_line, _ = call(
        container, "banco_es", ["1", CARD + "#", "05031980"], caller="+34699000111", sender=sender
    )

    assert [link.link for link in sender.sent] == ["balance"] and sender.sent[0].to == "+34699000111"
    assert on_line.ended_by == "ivr"
    assert on_line.heard[-1].startswith("Gracias por llamar")
    call_record = recorded(container, on_line.linkedid)
    assert call_record.interaction.outcome == "contained"
    card = next(t for t in call_record.touchpoints if t.node == "pedir_tarjeta" and t.input)
    assert card.kind == "dtmf" and card.input == "************1486"
    lookup = next(t for t in call_record.touchpoints if t.kind == "lookup" and t.node == "buscar_tarjeta")
    assert (lookup.attributes["result"], lookup.text) == ("found", str(ana))
    assert "link_sent" in [t.kind for t in call_record.touchpoints]


def test_a_refused_queue_ends_in_voicemail(container: Container) -> None:
    on_line, asterisk = call(container, "banco_es", ["2", "2"], handoffs_fail=True)
    call_record = recorded(container, on_line.linkedid)
    assert "ofrecer_llamada_facturacion" in call_record.nodes() and "buzon" in call_record.nodes()
    assert any(
        t.node == "cola_facturacion" and t.attributes.get("result") == "failed: queue facturacion: JOINEMPTY"
        for t in call_record.touchpoints
    )
    recording = next(t for t in call_record.touchpoints if t.kind == "recording")
    assert recording.attributes["recording"] == f"centralita/recordings/atencion_cliente-{on_line.linkedid}"
    assert on_line.recordings == [recording.attributes["recording"]]
    assert call_record.interaction.outcome == "contained"
    assert asterisk.called("record")[0].args["beep"] is True


@pytest.mark.parametrize("caller", [None, "anonymous"])
def test_a_withheld_number_is_an_anonymous_call_that_goes_on(
    container: Container, caller: str | None
) -> None:
    on_line, _ = call(container, "banco_es", ["0", "2"], caller=caller)
    call_record = recorded(container, on_line.linkedid)
    assert call_record.interaction.customer_id is None
    assert call_record.interaction.outcome == "transferred"
    assert on_line.handoffs[-1]["CENTRALITA_QUEUE"] == "atencion_general"


# --- support_en -------------------------------------------------------------------------------------------


def test_a_customer_with_an_open_case_is_sent_to_its_team(container: Container) -> None:
    bob = new_customer(container, (IdentityKind.PHONE, "+447700900123"), name="Bob")
    with unit_of_work(container.session_factory) as db:
        cases.open_case(db=db, data=CaseCreate(customer_id=bob, subject="No broadband since Monday"))
    on_line, _ = call(container, "support_en", ["1"], caller="+447700900123", now=LONDON_TUESDAY_11)
    assert on_line.heard[1].startswith("Welcome back. You have an open support case with us.")
    assert on_line.handoffs[-1]["CENTRALITA_QUEUE"] == "technical"
    assert on_line.handoffs[-1]["CENTRALITA_SKILLS"] == "case_followup"
    call_record = recorded(container, on_line.linkedid)
    assert call_record.interaction.customer_id == bob
    assert call_record.steps()[-1] == ("queue_enter", "case_queue", None)


def test_an_anonymous_caller_leaves_a_voicemail_out_of_hours(container: Container) -> None:
    on_line, asterisk = call(container, "support_en", ["1"], caller=None, now=SUNDAY)
    assert on_line.ended_by == "ivr" and asterisk.methods[-1] == "hangup"
    call_record = recorded(container, on_line.linkedid)
    assert call_record.interaction.customer_id is None and call_record.interaction.outcome == "contained"
    recording = next(t for t in call_record.touchpoints if t.kind == "recording")
    assert recording.attributes["recording"] == f"centralita/recordings/support-{on_line.linkedid}"


def test_a_caller_who_hangs_up_in_a_menu_is_an_abandoned_call(container: Container) -> None:
    on_line, _ = call(container, "support_en", ["1"], now=LONDON_TUESDAY_11)  # no second key: hangs up
    assert on_line.ended_by == "caller"
    call_record = recorded(container, on_line.linkedid)
    assert call_record.interaction.outcome == "abandoned"
    assert call_record.steps()[-1] == ("ivr_node", "tech_menu", "hangup")


def test_a_refused_transfer_takes_the_flows_failure_path(container: Container) -> None:
    on_line, _ = call(container, "support_en", ["4"], now=LONDON_TUESDAY_11, handoffs_fail=True)
    transfer = next(h for h in on_line.handoffs if "CENTRALITA_DIAL" in h)
    assert (transfer["CENTRALITA_DIAL"], transfer["CENTRALITA_DIAL_SECONDS"]) == ("PJSIP/sales", "60")
    call_record = recorded(container, on_line.linkedid)
    assert any(
        t.node == "sales_transfer" and str(t.attributes.get("result")).endswith(": CHANUNAVAIL")
        for t in call_record.touchpoints
    )


def test_the_timeline_shows_the_call_to_whoever_looks_the_number_up(
    container: Container, client: TestClient
) -> None:
    on_line, _ = call(container, "support_en", ["2"], caller="+34600111222", now=LONDON_TUESDAY_11)
    found = client.get("/api/v1/customers/lookup", params={"phone": "600 111 222"})
    assert found.status_code == 200, found.text
    customer_id = found.json()["customer"]["id"]
    page = client.get(f"/api/v1/customers/{customer_id}/timeline", params={"include": "touchpoints"}).json()
    (item,) = page["items"]
    assert (item["channel"], item["outcome"]) == ("voice", "transferred")
    assert item["external_refs"] == [{"kind": "asterisk_linkedid", "value": on_line.linkedid}]
    kinds = [t["kind"] for t in item["touchpoints"]]
    assert kinds[0] == "ivr_node" and "menu_choice" in kinds and kinds[-1] == "queue_enter"


# --- isolation and the fallback -----------------------------------------------------------------------------


def test_two_calls_at_once_one_crashing_do_not_disturb_each_other(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    banco = container.flows().flows["banco_es"]
    broken = banco.model_copy(update={"name": "broken", "start": "nowhere"})
    flows: dict[str, Flow] = {"banco_es": banco, "broken": broken}
    crashing = Caller("c-broken", "1795537000.1", deque())
    fine = Caller("c-fine", "1795537000.2", deque(["2"]))

    async def main() -> SimulatedAsterisk:
        asterisk = SimulatedAsterisk(prompt_texts([banco]))
        runner = CallRunner(container.call_journal(), clock=lambda: MADRID_MONDAY_10)
        async with StasisIvr(
            asterisk, asterisk.router, runner, flows.get, application=APP, options=FAST
        ) as ivr:
            await asyncio.wait_for(
                asyncio.gather(
                    asterisk.dial_in(ivr, crashing, "broken", CALLER),
                    asterisk.dial_in(ivr, fine, "banco_es", CALLER),
                ),
                timeout=30,
            )
        await runner.drain(timeout=10)
        return asterisk

    with caplog.at_level(logging.ERROR, logger="voice.ivr.call_runner"):
        asterisk = asyncio.run(main())
    assert [call.method for call in asterisk.calls if call.args.get("channel_id") == "c-broken"] == [
        "get_variable",
        "hangup",
    ]
    assert "call 1795537000.1 (broken): the IVR failed; hanging up" in caplog.text
    assert recorded(container, crashing.linkedid).interaction.outcome == "failed"
    assert fine.ended_by == "handoff" and fine.handoffs[-1]["CENTRALITA_QUEUE"] == "facturacion"
    assert recorded(container, fine.linkedid).interaction.outcome == "transferred"


def test_an_unknown_flow_is_hung_up_and_leaves_no_timeline(container: Container) -> None:
    on_line, asterisk = call(container, "no_such_flow", ["1"])
    assert asterisk.methods == ["hangup"] and on_line.ended_by == "ivr"
    with container.session_factory() as db:
        assert db.scalars(select(Interaction)).all() == []
