"""A menu asked by voice through a real Asterisk: the caller says "billing" and the timeline shows what
was recognised.

The caller's side of the call is the `;1` half of `Local/912345678@centralita-inbound` (FastAGI) or
`@centralita-inbound-ari` (ARI), held in a Stasis application of the test's own: the `;2` half runs the
number's flow on the `centralita serve` under test, and whatever the test plays on the `;1` half reaches
it as the caller's voice. The words are espeak-ng's, at 8 kHz, put where Asterisk finds sounds
(CENTRALITA_PROMPTS_DIR: Asterisk's sounds directory, as this machine sees it). TALK_DETECT on the
caller's half tells when the IVR's question has been said, so the answer comes after it, as a person's
would.

Over FastAGI the IVR hears the caller through AudioSocket() (`EXEC AudioSocket <uuid>,<address>`); over
ARI through an external-media channel (`encapsulation=audiosocket`) bridged with the caller. The service
hears English out of the box (pocketsphinx), so the flow here is in English."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from asterisk_calls import (
    BANCO_DID,
    INBOUND,
    INBOUND_ARI,
    AriEvents,
    admin_key,
    agi_address,
    ami_client,
    answering_banco_with,
    finished_call,
    hang_up_leftovers,
    stasis_app,
)
from served import serving

from core.settings import Settings
from voice.ami.events import AGIExecStart, AmiEvent, Newchannel
from voice.ari.events import (
    ChannelTalkingFinished,
    ChannelTalkingStarted,
    PlaybackStarted,
    StasisEnd,
    StasisStart,
)
from voice.speech.generated_audio import GeneratedAudio

CALLER = "+447700900555"
# The banco_es number's flow in the service under test (`answering_banco_with`). The service speaks its
# prompts itself over the audio link: nothing to build for Asterisk.
SPEECH_FLOW = """
name: banco_es
languages: [en]
default_language: en
start: menu
nodes:
  menu:
    kind: menu
    prompt:
      en: Which team would you like? Say billing, or say cards.
    no_input_prompt:
      en: I did not hear you. Say billing, or say cards.
    no_match_prompt:
      en: Sorry, I did not get that. Say billing, or say cards.
    retries: 0
    timeout_ms: 8000
    on_failure: not_understood
    options:
      1:
        next: billing
        phrases:
          en: [billing]
      2:
        next: cards
        phrases:
          en: [cards]
  billing:
    kind: hangup
  cards:
    kind: hangup
  not_understood:
    kind: hangup
"""
SAID = "billing"
# TALK_DETECT(set)=<silence ms>: the end of the question is reported half a second after it.
TALK_DETECT_SILENCE_MS = "500"


@pytest.fixture
def sounds(settings: Settings) -> Path:
    if settings.prompts_dir is None:
        pytest.skip(
            "CENTRALITA_PROMPTS_DIR is not set: no Asterisk sounds directory to put the caller's words in"
        )
    return settings.prompts_dir


def caller_words(sounds: Path, text: str, cache: Path) -> str:
    """`text` spoken by espeak-ng as an 8 kHz sound Asterisk can play; the sound's name."""
    voice, speed = "en-us", 150
    name = f"centralita-e2e/{hashlib.sha256(f'{voice}|{speed}|{text}'.encode()).hexdigest()[:16]}"
    path = sounds / f"{name}.sln"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".part")
        part.write_bytes(GeneratedAudio(cache).speech(text, voice=voice, speed=speed))
        part.replace(path)
    return name


def speech_service_env(env: dict[str, str], tmp_path: Path, **more: str) -> dict[str, str]:
    """A service that answers the banco_es number with SPEECH_FLOW, hearing English with pocketsphinx."""
    return answering_banco_with(env, tmp_path, SPEECH_FLOW) | {
        "CENTRALITA_SPEECH_ENGINE": "pocketsphinx",
        **more,
    }


@dataclass
class Heard:
    """What Asterisk showed of the IVR's side of the call."""

    commands: list[str] = field(default_factory=list)  # its AGI commands (none over ARI)
    media: list[str] = field(default_factory=list)  # external-media channels made (AudioSocket/…)


async def answer_by_voice(settings: Settings, context: str, words: str, variables: dict[str, str]) -> Heard:
    """Calls the banco_es number in `context`, says `words` once the IVR's question is over, and waits
    for the IVR to hang up."""
    heard = Heard()
    ivr_side = f"Local/{BANCO_DID}@{context}-"

    def on_event(event: AmiEvent) -> None:
        if isinstance(event, AGIExecStart) and event.channel.startswith(ivr_side):
            heard.commands.append(event.command)
        elif isinstance(event, Newchannel) and event.channel.startswith("AudioSocket/"):
            heard.media.append(event.channel)

    async with stasis_app(settings) as (app, ari, events), ami_client(settings) as ami:
        subscription = ami.subscribe(on_event, events=["AGIExecStart", "Newchannel"])
        try:
            await ari.originate(
                f"Local/{BANCO_DID}@{context}",
                app=app,
                app_args="caller",
                caller_id=CALLER,
                variables=variables,
                timeout=10,
            )
            caller = (await events.next(StasisStart)).channel.id  # once the IVR has answered
            await ari.set_variable(caller, "TALK_DETECT(set)", TALK_DETECT_SILENCE_MS)
            await question_said(events, caller)
            playback = await ari.play(caller, f"sound:{words}")
            started = await events.next(PlaybackStarted, where=caller)  # Asterisk has the sound
            assert started.playback.id == playback.id, started
            # The IVR hangs up once it has understood: perhaps before the words' trailing silence is over.
            await events.next(StasisEnd, where=caller, seconds=20)
        finally:
            subscription.cancel()
            await hang_up_leftovers(ami, ivr_side)
    return heard


async def question_said(events: AriEvents, caller: str) -> None:
    """Until the IVR's question has been heard on the caller's side, start to end."""
    await events.next(ChannelTalkingStarted, where=caller, seconds=15)
    said = await events.next(ChannelTalkingFinished, where=caller, seconds=30)
    assert said.duration > 1000, said  # the question, not a click


def assert_the_timeline_shows_what_was_heard(item: dict[str, Any]) -> None:
    steps = [(t["kind"], t["node"], t["input"], t["text"]) for t in item["touchpoints"]]
    spoken = [t for t in item["touchpoints"] if t["kind"] == "speech"]
    assert len(spoken) == 1, steps
    assert (spoken[0]["node"], spoken[0]["text"]) == ("menu", SAID), spoken
    assert spoken[0]["confidence"] is not None, spoken
    assert spoken[0]["attributes"]["result"] == "option 1", spoken
    assert spoken[0]["attributes"]["engine"].startswith("pocketsphinx"), spoken
    assert "billing" in [node for _, node, _, _ in steps], steps
    assert "not_understood" not in [node for _, node, _, _ in steps], steps


def test_over_fastagi_a_spoken_answer_reaches_the_ivr_through_audiosocket(
    ami_settings: Settings, sounds: Path, env: dict[str, str], tmp_path: Path
) -> None:
    env = speech_service_env(env, tmp_path)
    key = admin_key(env, tmp_path)
    words = caller_words(sounds, SAID, tmp_path / "speech")
    with serving(env=env, cwd=tmp_path) as (_, base):
        variables = {"CENTRALITA_AGI": agi_address(env)}
        heard = asyncio.run(answer_by_voice(ami_settings, INBOUND, words, variables))
        item = finished_call(base, key, CALLER)

    commands = heard.commands
    assert heard.media == [], heard  # AudioSocket() streams the caller's own channel
    audiosocket = [c for c in commands if c.startswith("EXEC AudioSocket ")]
    assert len(audiosocket) == 1, commands  # one turn, over AudioSocket: no RECORD FILE, no GET DATA
    link, address = audiosocket[0].removeprefix("EXEC AudioSocket ").split(",")
    uuid.UUID(link)
    assert address.startswith("127.0.0.1:"), address
    assert not any(c.startswith(("RECORD FILE", "GET DATA")) for c in commands), commands
    assert_the_timeline_shows_what_was_heard(item)


def test_over_ari_a_spoken_answer_reaches_the_ivr_through_external_media(
    settings: Settings, ami_settings: Settings, sounds: Path, env: dict[str, str], tmp_path: Path
) -> None:
    app = f"{settings.asterisk_ari_app}-e2e-speech-{uuid.uuid4().hex[:8]}"
    env = speech_service_env(env, tmp_path, CENTRALITA_ASTERISK_ARI_APP=app)
    key = admin_key(env, tmp_path)
    words = caller_words(sounds, SAID, tmp_path / "speech")
    with serving(env=env, cwd=tmp_path) as (_, base):
        variables = {"CENTRALITA_ARI_APP": app}
        heard = asyncio.run(answer_by_voice(ami_settings, INBOUND_ARI, words, variables))
        item = finished_call(base, key, CALLER)

    assert heard.commands == [], heard  # no FastAGI
    assert len(heard.media) == 1, heard  # one turn: one external-media channel, bridged with the caller
    assert_the_timeline_shows_what_was_heard(item)
