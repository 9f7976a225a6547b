"""Callers answer the IVR by voice, end to end: `centralita serve` with pocketsphinx and the AudioSocket
listener, and the console caller speaking espeak-ng's words (`say:`) as Asterisk's AudioSocket() would
carry them. And barge-in: the AudioSocket test client talks over the prompt, and the prompt stops."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from served import http, run_cli, serving

from voice.audiosocket.client import AudioSocketCaller
from voice.audiosocket.server import AudioSocketServer
from voice.ivr.voice_port import Heard, Question
from voice.prompts import PromptAudio
from voice.speech.generated_audio import GeneratedAudio, silence
from voice.speech.listener import SpeechListener
from voice.speech.pocketsphinx_engine import PocketsphinxRecognizer
from voice.speech.recognition_pool import InProcessRecognition
from voice.speech.silero_vad import SileroDetector

AUDIO_CACHE = Path("/tmp/centralita-test-audio")
SPEECH_FLOW = """\
name: speech_en
languages: [en]
default_language: en
start: menu
nodes:
  menu:
    kind: menu
    prompt:
      en: Say billing, or say technical support.
    no_input_prompt:
      en: I did not hear you. Say billing, or technical support.
    no_match_prompt:
      en: Sorry. Say billing, or technical support.
    retries: 1
    timeout_ms: 4000
    confidence_threshold: 0.5
    on_failure: goodbye
    options:
      1:
        next: tech
        phrases:
          en: [technical support]
      2:
        next: billing
        phrases:
          en: [billing]
  tech:
    kind: hangup
    prompt:
      en: Technical support it is.
  billing:
    kind: hangup
    prompt:
      en: Billing it is.
  goodbye:
    kind: hangup
    prompt:
      en: Goodbye.
"""


def test_a_caller_says_billing_and_the_ivr_takes_that_branch(env: dict[str, str], tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "speech_en.yaml").write_text(SPEECH_FLOW)
    env = env | {"CENTRALITA_EXTRA_FLOWS_DIRS": str(flows)}
    key = run_cli("keys", "create", "--role", "admin", env=env, cwd=tmp_path).stdout.strip().splitlines()[-1]
    with serving(env=env, cwd=tmp_path) as (_, base):
        call = run_cli(
            "call",
            "speech_en",
            "--from",
            "+447700900123",
            "--input",
            "say[en-us]:billing",
            env=env,
            cwd=tmp_path,
        )
        assert call.returncode == 0, call.stdout + call.stderr
        assert "you say: billing" in call.stdout
        assert "Billing it is." in call.stdout, call.stdout
        status, found = http("GET", f"{base}/api/v1/customers/lookup?phone=%2B447700900123", key)
        assert status == 200, found
        status, page = http(
            "GET", f"{base}/api/v1/customers/{found['customer']['id']}/timeline?include=touchpoints", key
        )
        assert status == 200, page
        (interaction,) = page["items"]
        (speech,) = [t for t in interaction["touchpoints"] if t["kind"] == "speech"]
        assert (speech["node"], speech["text"]) == ("menu", "billing")
        assert speech["attributes"]["engine"] == "pocketsphinx-en"
        assert speech["attributes"]["result"] == "option 2"
        assert 0.5 <= speech["confidence"] <= 1
        assert 0 < speech["attributes"]["latency_ms"] < 2000


def test_talking_over_the_prompt_stops_it_and_the_words_still_count() -> None:
    audio = GeneratedAudio(AUDIO_CACHE)
    words = audio.speech("technical support", voice="en-gb", speed=150)
    prompt = PromptAudio("test/long-prompt", "a long prompt", "en")
    long_prompt = audio.speech("Welcome to Northwind. " * 6, voice="en-us")  # about 10 seconds

    class Sounds:
        async def pcm(self, asked: PromptAudio) -> bytes:
            assert asked == prompt
            return long_prompt

    async def main() -> tuple[Heard, float, float]:
        async with AudioSocketServer(port=0) as server:
            listener = SpeechListener(
                links=server,
                address=f"127.0.0.1:{server.port}",
                sounds=Sounds(),
                recognition=InProcessRecognition(PocketsphinxRecognizer()),
                languages=frozenset({"en"}),
                new_vad=SileroDetector,
            )
            call = uuid.uuid4()
            pending = server.expect(call, timeout=5)
            async with await AudioSocketCaller.connect("127.0.0.1", server.port, call) as caller:
                # The caller starts talking one second into the prompt, then stays quiet.
                talking = asyncio.create_task(caller.send_audio(silence(1000) + words + silence(3000)))
                link = await pending
                question = Question(
                    (prompt,), {"1": ["technical support"], "2": ["billing"]}, "en", 1, None, 4000
                )
                heard = await listener.ask(link, question)
                await link.close()
                talking.cancel()
                received = len(caller.received_audio) / 16000
        return heard, received, len(long_prompt) / 16000

    heard, received, prompt_seconds = asyncio.run(main())
    assert heard.text == "technical support", heard
    assert received < prompt_seconds / 2  # the prompt stopped soon after the caller began
