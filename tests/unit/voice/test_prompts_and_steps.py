"""Prompt file names (what `prompts build` will render) and how engine steps map to touchpoint kinds."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.timeline.schemas import TouchpointKind
from voice.call_journal import action_touchpoint, step_kind, step_touchpoint
from voice.ivr.actions import EnqueueCall, OfferCallback, Play, RecordStep, SendLink, Transfer
from voice.ivr.loader import load_flows
from voice.ivr.schema import LinkChannel, NodeKind
from voice.prompts import audio_name, flow_prompts, prompt_audio, prompt_name, prompt_texts

FLOWS = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def test_a_text_prompt_is_named_by_its_language_and_words() -> None:
    digest = hashlib.sha256(b"es\nHola.").hexdigest()[:16]
    assert prompt_name("es", "Hola.") == f"centralita/es/{digest}"
    assert prompt_name("es", "Hola.") == prompt_name("es", "Hola.")
    assert len({prompt_name("es", "Hola."), prompt_name("en", "Hola."), prompt_name("es", "Hola")}) == 3


def test_a_flows_own_recording_wins_and_loses_its_extension() -> None:
    recorded = Play(text="Bienvenido.", audio="meridiano/es/bienvenida.wav", language="es", barge_in=True)
    assert prompt_audio(recorded).file == "meridiano/es/bienvenida"
    spoken = Play(text="Bienvenido.", audio=None, language="es", barge_in=True)
    assert prompt_audio(spoken).file == prompt_name("es", "Bienvenido.")
    assert audio_name("a/b.GSM") == "a/b" and audio_name("a/b") == "a/b" and audio_name("x.v2/b") == "x.v2/b"


def test_the_prompt_list_covers_every_language_and_fills_in_confirmations() -> None:
    banco = flow_prompts(FLOWS["banco_es"])
    assert {prompt.language for prompt in banco} == {"es", "en"}
    confirm = [p for p in banco if p.node == "menu_principal" and p.field == "confirm_prompt"]
    assert len(confirm) == 2 * 5  # two languages, five options
    assert "¿Ha dicho saldo? Pulse 1 o diga sí; pulse 2 o diga no." in {p.text for p in confirm}
    welcome = [p for p in banco if p.node == "bienvenida"]
    assert {(p.file, p.recorded) for p in welcome} == {
        ("meridiano/es/bienvenida", True),
        ("meridiano/en/welcome", True),
    }
    texts = prompt_texts(FLOWS.values())
    goodbye = "Thanks for calling Northwind Broadband. Goodbye."
    assert texts[prompt_name("en", goodbye)] == goodbye


@pytest.mark.parametrize(
    ("kind", "input", "result", "expected"),
    [
        (NodeKind.PLAY, None, None, TouchpointKind.IVR_NODE),
        (NodeKind.PLAY, "1", "barge-in", TouchpointKind.DTMF),
        (NodeKind.MENU, None, None, TouchpointKind.IVR_NODE),
        (NodeKind.MENU, "2", "option 2", TouchpointKind.MENU_CHOICE),
        (NodeKind.MENU, "no-input", "no-input; asking again", TouchpointKind.MENU_CHOICE),
        (NodeKind.MENU, "speech", "option 1", TouchpointKind.SPEECH),
        (NodeKind.COLLECT, "************1486", "tarjeta collected", TouchpointKind.DTMF),
        (NodeKind.LOOKUP, None, None, TouchpointKind.IVR_NODE),
        (NodeKind.LOOKUP, "caller", "found", TouchpointKind.LOOKUP),
        (NodeKind.SET_LANGUAGE, None, "en", TouchpointKind.LANGUAGE_SET),
        (NodeKind.CALLBACK_OFFER, None, None, TouchpointKind.CALLBACK_OFFERED),
        (NodeKind.CALLBACK_OFFER, None, "no number to call back", TouchpointKind.IVR_NODE),
        (NodeKind.CALLBACK_OFFER, "1", "accepted", TouchpointKind.MENU_CHOICE),
        (NodeKind.RECORD, "recorded", "support", TouchpointKind.RECORDING),
        (NodeKind.QUEUE, None, None, TouchpointKind.IVR_NODE),
        (NodeKind.QUEUE, None, "failed: queue x: FULL", TouchpointKind.IVR_NODE),
        (NodeKind.MENU, "hangup", None, TouchpointKind.IVR_NODE),
    ],
)
def test_engine_steps_become_touchpoints_of_the_right_kind(
    kind: NodeKind, input: str | None, result: str | None, expected: TouchpointKind
) -> None:
    step = RecordStep(node="n", kind=kind, input=input, result=result)
    assert step_kind(step) is expected
    touchpoint = step_touchpoint(step, occurred_at=NOW, duration_ms=120)
    assert (touchpoint.node, touchpoint.input, touchpoint.duration_ms) == ("n", input, 120)
    assert touchpoint.attributes.get("result") == result and touchpoint.attributes["node_kind"] == kind.value


def test_handoffs_links_and_callbacks_are_touchpoints_with_their_details() -> None:
    made = [
        action_touchpoint(
            EnqueueCall(queue="q", priority=3, skills=["a"], language="es"), node="n", occurred_at=NOW
        ),
        action_touchpoint(Transfer(target="PJSIP/sales"), node="n", occurred_at=NOW),
        action_touchpoint(
            SendLink(
                channel=LinkChannel.SMS, to="+34600111222", link="balance", text="{link}", language="es"
            ),
            node="n",
            occurred_at=NOW,
        ),
        action_touchpoint(
            OfferCallback(queue="q", number="+34600111222", language="es"), node="n", occurred_at=NOW
        ),
    ]
    assert [t.kind for t in made] == [
        TouchpointKind.QUEUE_ENTER,
        TouchpointKind.TRANSFER,
        TouchpointKind.LINK_SENT,
        TouchpointKind.CALLBACK_ACCEPTED,
    ]
    assert made[0].attributes == {"queue": "q", "priority": 3, "skills": ["a"], "language": "es"}
    assert made[2].attributes["to"] == "+34600111222" and made[2].text == "{link}"
