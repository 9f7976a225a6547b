"""Questions by voice over ARI: FakeAri stands for Asterisk's REST side, a real AudioSocket server listens,
and `AudioSocketCaller` plays the external-media channel Asterisk connects with the UUID the port sent in
`externalMedia`. The answer is heard over the socket or keyed over ARI; whatever happens, the media
channel is hung up and the caller's bridge destroyed."""

from __future__ import annotations

import asyncio
import math
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from voice.ari.errors import AriBadRequest
from voice.ari.fake import FakeAri, channel
from voice.ari.ivr_port import AriPortOptions, AriVoicePort
from voice.ari.stasis_app import StasisIvr
from voice.audiosocket.client import AudioSocketCaller
from voice.audiosocket.server import AudioSocketServer
from voice.ivr.loader import load_flows
from voice.ivr.schema import Flow
from voice.ivr.voice_port import ActionNotDone, CallerGone, CallInfo, Heard, Question, VoicePort
from voice.prompts import PromptAudio
from voice.speech.generated_audio import silence
from voice.speech.listener import SpeechListener
from voice.speech.recognition import FakeRecognizer
from voice.speech.recognition_pool import InProcessRecognition
from voice.speech.voice_activity import EnergyDetector

CHANNEL = "1795537000.12"
APP = "ccapp"
MENU = PromptAudio("centralita/en/menu", "Say billing, or technical support.", "en")
QUESTION = Question((MENU,), {"1": ["technical support"], "2": ["billing"]}, "en", 1, None, 4000)
FAST = AriPortOptions(prompt_limit=0.3, recording_grace=0.05, handoff_poll=0.01)
T = TypeVar("T")


class ShortPrompt:
    async def pcm(self, prompt: PromptAudio) -> bytes:
        assert prompt == MENU
        return silence(200)


def spoken() -> bytes:
    """A loud tone between silences: speech to the energy detector (the fake recogniser says what)."""
    count = 8000 * 700 // 1000
    tone = struct.pack(
        f"<{count}h", *(round(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(count))
    )
    return silence(300) + tone + silence(1000)


@dataclass
class Call:
    ari: FakeAri
    port: AriVoicePort
    server: AudioSocketServer
    recognizer: FakeRecognizer

    async def media_requested(self) -> uuid.UUID:
        """The UUID of the external-media channel the port asked for, once it has."""
        for _ in range(500):
            if self.ari.called("external_media"):
                return uuid.UUID(self.ari.called("external_media")[-1].args["data"])
            await asyncio.sleep(0.002)
        raise AssertionError("the port never asked for an external-media channel")

    async def asterisk_connects(self) -> AudioSocketCaller:
        """What chan_audiosocket does for externalMedia: connect to external_host and send the UUID."""
        link_uuid = await self.media_requested()
        return await AudioSocketCaller.connect("127.0.0.1", self.server.port, link_uuid)


def on_call(body: Callable[[Call], Awaitable[T]], *, connect_timeout: float = 2.0) -> T:
    async def main() -> T:
        recognizer = FakeRecognizer(script=[("billing", 0.8)])
        async with AudioSocketServer(port=0) as server:
            listener = SpeechListener(
                links=server,
                address=f"127.0.0.1:{server.port}",
                sounds=ShortPrompt(),
                recognition=InProcessRecognition(recognizer),
                languages=frozenset({"en"}),
                new_vad=EnergyDetector,
                connect_timeout=connect_timeout,
            )
            ari = FakeAri(application=APP)
            await ari.start_call(channel(CHANNEL, caller_number="600111222"), "support_en")
            port = AriVoicePort(ari, ari.router, CHANNEL, options=FAST, application=APP, listener=listener)
            try:
                return await asyncio.wait_for(body(Call(ari, port, server, recognizer)), 10)
            finally:
                await port.close()
                assert ari.router.watched_channels == frozenset()

    return asyncio.run(main())


def assert_cleaned_up(ari: FakeAri, *, caller_removed: bool = True) -> None:
    (bridge,) = ari.called("create_bridge")
    (media,) = ari.called("external_media")
    media_id, bridge_id = media.args["channel_id"], bridge.args["bridge_id"]
    assert [call.args["channel_id"] for call in ari.called("hangup")] == [media_id]
    assert media_id not in ari.channels and bridge_id not in ari.bridges
    removed = [call.args["channel_ids"] for call in ari.called("remove_channel")]
    assert removed == ([(CHANNEL,)] if caller_removed else [])
    assert ari.methods[-1] == "destroy_bridge"


def test_a_caller_who_says_billing_is_heard_through_an_external_media_channel_bridged_with_them() -> None:
    async def body(call: Call) -> tuple[Heard, AudioSocketCaller]:
        asking = asyncio.create_task(call.port.ask(QUESTION))
        media = await call.asterisk_connects()
        talking = asyncio.create_task(media.send_audio(spoken() + silence(2000), speed=8))
        heard = await asking
        assert await media.wait_closed(2)  # the link ended with the turn
        talking.cancel()
        return heard, media

    ari_calls: list[str] = []
    heard, media = on_call(lambda call: _recording_methods(call, body, ari_calls))
    assert (heard.spoke, heard.text, heard.confidence, heard.engine) == (True, "billing", 0.8, "fake")
    assert media.closed_by_server and media.received_audio  # the prompt went over the socket
    assert ari_calls == [
        "create_bridge",
        "add_channel",
        "external_media",
        "add_channel",
        "hangup",
        "remove_channel",
        "destroy_bridge",
    ]


async def _recording_methods(
    call: Call, body: Callable[[Call], Awaitable[tuple[Heard, AudioSocketCaller]]], into: list[str]
) -> tuple[Heard, AudioSocketCaller]:
    result = await body(call)
    ari = call.ari
    (made,) = ari.called("external_media")
    assert made.args | {"data": None} == {
        "app": APP,
        "external_host": f"127.0.0.1:{call.server.port}",
        "format": "slin",
        "channel_id": f"{CHANNEL}-media-1",
        "encapsulation": "audiosocket",
        "transport": "tcp",
        "connection_type": None,
        "direction": None,
        "data": None,
        "variables": None,
    }
    (bridge,) = ari.called("create_bridge")
    assert bridge.args["type"] == "mixing"
    adds = [(c.args["bridge_id"], c.args["channel_ids"]) for c in ari.called("add_channel")]
    assert adds == [
        (bridge.args["bridge_id"], (CHANNEL,)),
        (bridge.args["bridge_id"], (f"{CHANNEL}-media-1",)),
    ]
    assert_cleaned_up(ari)
    into.extend(ari.methods[ari.methods.index("create_bridge") :])
    return result


def test_a_key_pressed_during_the_turn_answers_it_and_further_keys_are_collected_until_the_terminator() -> (
    None
):
    question = Question((MENU,), {"2": ["billing"]}, "en", 4, "#", 4000)

    async def body(call: Call) -> tuple[Heard, AudioSocketCaller]:
        asking = asyncio.create_task(call.port.ask(question))
        media = await call.asterisk_connects()
        talking = asyncio.create_task(media.send_silence_until_closed(limit_seconds=5))
        await asyncio.sleep(0.1)
        await call.ari.press(CHANNEL, "12#")  # ChannelDtmfReceived: Asterisk kept the keys to itself
        heard = await asking
        assert await media.wait_closed(2)
        await talking
        assert call.recognizer.grammars == []  # nobody spoke: no recognition opened
        assert_cleaned_up(call.ari)
        return heard, media

    heard, _ = on_call(body)
    assert heard == Heard(digits="12")


def test_a_key_the_socket_heard_first_is_not_taken_again_when_ari_reports_it() -> None:
    async def body(call: Call) -> tuple[Heard, str]:
        asking = asyncio.create_task(call.port.ask(QUESTION))
        media = await call.asterisk_connects()
        talking = asyncio.create_task(media.send_silence_until_closed(limit_seconds=5))
        await media.send_dtmf("2", speed=8)
        heard = await asking
        await talking
        await call.ari.press(CHANNEL, "25")  # ARI's report of the same "2", then a new key
        typed = await call.port.collect_digits(max_digits=2, timeout_ms=50, terminator=None)
        return heard, typed

    heard, typed = on_call(body)
    assert heard == Heard(digits="2")
    assert typed == "5"


def test_a_key_typed_before_the_question_answers_it_without_any_media_channel() -> None:
    async def body(call: Call) -> Heard:
        await call.ari.press(CHANNEL, "2")
        heard = await call.port.ask(QUESTION)
        assert call.ari.called("create_bridge") == [] and call.ari.called("external_media") == []
        return heard

    assert on_call(body) == Heard(digits="2")


def test_when_asterisk_never_connects_the_turn_is_not_done_and_everything_is_undone() -> None:
    async def body(call: Call) -> None:
        with pytest.raises(ActionNotDone, match="did not connect"):
            await call.port.ask(QUESTION)
        assert_cleaned_up(call.ari)
        # The flow asks again with keys: the call is still fine.
        await call.ari.press(CHANNEL, "1")
        assert await call.port.collect_digits(max_digits=1, timeout_ms=100, terminator=None) == "1"

    on_call(body, connect_timeout=0.2)


def test_an_asterisk_without_audiosocket_media_refuses_externalmedia_and_the_caller_leaves_the_bridge() -> (
    None
):
    async def body(call: Call) -> None:
        call.ari.fail_next("external_media", AriBadRequest(400, "Invalid encapsulation"))
        with pytest.raises(ActionNotDone, match="refused"):
            await call.port.ask(QUESTION)
        assert call.ari.channels.keys() == {CHANNEL}  # no media channel was made (its hang-up: a 404)
        assert [c.args["channel_ids"] for c in call.ari.called("remove_channel")] == [(CHANNEL,)]
        assert call.ari.methods[-1] == "destroy_bridge" and call.ari.bridges == {}

    on_call(body)


def test_a_caller_who_hangs_up_mid_turn_is_gone_and_the_media_channel_and_bridge_go_too() -> None:
    async def body(call: Call) -> None:
        asking = asyncio.create_task(call.port.ask(QUESTION))
        media = await call.asterisk_connects()
        talking = asyncio.create_task(media.send_silence_until_closed(limit_seconds=5))
        await asyncio.sleep(0.1)
        await call.ari.caller_hangs_up(CHANNEL)
        with pytest.raises(CallerGone):
            await asking
        assert await media.wait_closed(2)
        await talking
        assert_cleaned_up(call.ari, caller_removed=False)

    on_call(body)


def test_the_audio_link_closing_with_the_call_is_the_caller_gone_even_before_ari_says_so() -> None:
    async def body(call: Call) -> None:
        asking = asyncio.create_task(call.port.ask(QUESTION))
        media = await call.asterisk_connects()
        await media.send_silence(100, speed=8)
        call.ari.channels.pop(CHANNEL)  # the caller hung up; the events are late
        await media.hang_up()
        with pytest.raises(CallerGone):
            await asking
        assert_cleaned_up(call.ari, caller_removed=False)  # a channel that is gone leaves by itself

    on_call(body)


def test_a_port_hears_speech_only_with_a_listener_an_application_and_a_loaded_language() -> None:
    async def main() -> None:
        async with AudioSocketServer(port=0) as server:
            listener = SpeechListener(
                links=server,
                address=f"127.0.0.1:{server.port}",
                sounds=ShortPrompt(),
                recognition=InProcessRecognition(FakeRecognizer()),
                languages=frozenset({"en"}),
                new_vad=EnergyDetector,
            )
            ari = FakeAri(application=APP)
            ports = [
                AriVoicePort(ari, ari.router, "a", application=APP, listener=listener),
                AriVoicePort(ari, ari.router, "b", application=APP),
                AriVoicePort(ari, ari.router, "c", listener=listener),
            ]
            assert [port.hears_speech("en-GB") for port in ports] == [True, False, False]
            assert not ports[0].hears_speech("es")
            with pytest.raises(ActionNotDone):
                await ports[1].ask(QUESTION)
            for port in ports:
                await port.close()

    asyncio.run(main())


def test_the_external_media_channel_entering_the_application_is_not_taken_for_a_call() -> None:
    class Runner:
        def __init__(self) -> None:
            self.calls: list[str] = []
            self.done = asyncio.Event()

        async def run(self, flow: Flow, port: VoicePort, call: CallInfo) -> object:
            self.calls.append(call.channel)
            await self.done.wait()
            return None

    async def main() -> None:
        ari = FakeAri(application=APP)
        runner = Runner()
        flows = load_flows(Path(__file__).resolve().parents[3] / "ivr_flows")
        ivr = StasisIvr(ari, ari.router, runner, lambda _: next(iter(flows.values())), application=APP)
        async with ivr:
            await ari.start_call(CHANNEL, "ivr", "support_en")
            await ari.external_media(
                APP,
                "127.0.0.1:9092",
                "slin",
                channel_id=f"{CHANNEL}-media-1",
                encapsulation="audiosocket",
                transport="tcp",
                data=str(uuid.uuid4()),
            )
            for _ in range(20):
                await asyncio.sleep(0)
            assert ivr.active_calls == 1 and ivr.port(f"{CHANNEL}-media-1") is None
            assert runner.calls == [f"PJSIP/{CHANNEL}"]
            runner.done.set()

    asyncio.run(main())
