"""The speech listener: what a voice port needs to ask a question by voice, built once per process.

A port (FastAGI, ARI) gets the caller's audio onto an `AudioLink` its own way — FastAGI runs Asterisk's
`AudioSocket()` application, ARI bridges an external-media channel — and hands it here with the
question; the listener fetches the prompts' sound, gives the turn a fresh voice-activity detector and
DTMF detector, and runs `voice.speech.listening.listen`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from voice.audiosocket.port import AudioLink
from voice.ivr.voice_port import Heard, Question
from voice.speech.dtmf_tones import DtmfDetector
from voice.speech.listening import ListeningRules, listen
from voice.speech.prompt_pcm import PromptSoundMissing, PromptSounds
from voice.speech.recognition_pool import SpeechRecognition
from voice.speech.voice_activity import VoiceActivityDetector

logger = logging.getLogger(__name__)


class PendingAudioLink(Protocol):
    def __await__(self) -> Generator[Any, None, AudioLink]: ...

    def cancel(self) -> None:
        """Withdraw the expectation (a link that arrives later is closed), or close the link that came."""
        ...


class AudioLinks(Protocol):
    """Where calls' audio connects: `voice.audiosocket.server.AudioSocketServer`."""

    def expect(self, link_uuid: uuid.UUID, *, timeout: float | None = None) -> PendingAudioLink:
        """Register the UUID before Asterisk is told to connect; await the result for the link.
        Raises AudioLinkUnavailable when no server runs; the awaited result raises it on a time-out."""
        ...


@dataclass
class SpeechListener:
    links: AudioLinks
    address: str  # host:port, as Asterisk should connect to `links`
    sounds: PromptSounds
    recognition: SpeechRecognition
    languages: frozenset[str]  # primary subtags a recogniser is loaded for
    new_vad: Callable[[], VoiceActivityDetector]
    rules: ListeningRules = field(default_factory=ListeningRules)
    connect_timeout: float = 5.0  # Asterisk's AudioSocket() connects within this, or it failed

    _idle_vads: list[VoiceActivityDetector] = field(default_factory=list, init=False, repr=False)

    def hears(self, language: str) -> bool:
        return language.split("-")[0] in self.languages

    async def ask(self, link: AudioLink, question: Question) -> Heard:
        # Detectors are reused (reset between turns): loading Silero's model costs ~40 ms a time.
        vad = self._idle_vads.pop() if self._idle_vads else self.new_vad()
        try:
            return await self._ask(link, question, vad)
        finally:
            vad.reset()
            self._idle_vads.append(vad)

    async def _ask(self, link: AudioLink, question: Question, vad: VoiceActivityDetector) -> Heard:
        prompts = []
        for prompt in question.prompts:
            try:
                prompts.append(await self.sounds.pcm(prompt))
            except PromptSoundMissing as exc:
                logger.warning("asking without a prompt: %s", exc)  # better than no question at all
        return await listen(
            link,
            prompts,
            question,
            recognition=self.recognition,
            vad=vad,
            dtmf=DtmfDetector(),
            rules=self.rules,
        )
