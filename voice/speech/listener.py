"""The speech listener: what a voice port needs to ask a question by voice, built once per process.

A port (FastAGI, ARI) gets the caller's audio onto an `AudioLink` its own way — FastAGI runs Asterisk's
`AudioSocket()` application, ARI bridges an external-media channel — and hands it here with the
question; the listener fetches the prompts' sound, gives the turn a fresh voice-activity detector and
DTMF detector, and runs `voice.speech.listening.listen`.

Without AudioSocket — no server in this process (`links` None), or an Asterisk that has no AudioSocket()
application — a FastAGI port asks through `recorded` instead (`voice.speech.recorded_turn`: Asterisk
records the answer, Centralita recognises the file), when the recordings directory is shared. The listener
remembers an Asterisk without AudioSocket() for `audiosocket_retry_seconds`, so that each turn does not
try it again first.
"""

from __future__ import annotations

import logging
import time
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
from voice.speech.recorded_turn import RecordedTurns
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
    links: AudioLinks | None  # None: no AudioSocket server here; turns are recorded (`recorded`) or off
    address: str  # host:port, as Asterisk should connect to `links`
    sounds: PromptSounds
    recognition: SpeechRecognition
    languages: frozenset[str]  # primary subtags a recogniser is loaded for
    new_vad: Callable[[], VoiceActivityDetector]
    rules: ListeningRules = field(default_factory=ListeningRules)
    connect_timeout: float = 5.0  # Asterisk's AudioSocket() connects within this, or it failed
    recorded: RecordedTurns | None = None  # speech turns recorded by Asterisk, when AudioSocket is not there
    audiosocket_retry_seconds: float = 300.0  # after Asterisk said it has no AudioSocket(), record until then

    _idle_vads: list[VoiceActivityDetector] = field(default_factory=list, init=False, repr=False)
    _audiosocket_missing_at: float | None = field(default=None, init=False, repr=False)

    def hears(self, language: str) -> bool:
        """Whether a turn in `language` can be heard at all (over AudioSocket or recorded)."""
        reachable = self.recorded is not None or self.streams_audio()
        return reachable and language.split("-")[0] in self.languages

    def streams_audio(self) -> bool:
        """Whether to ask over AudioSocket first: a server runs here, and Asterisk was not found lacking
        AudioSocket() within `audiosocket_retry_seconds`."""
        if self.links is None:
            return False
        missing_at = self._audiosocket_missing_at
        return missing_at is None or time.monotonic() - missing_at >= self.audiosocket_retry_seconds

    def audiosocket_missing(self) -> None:
        """Asterisk answered that it has no AudioSocket() application (app_audiosocket not loaded)."""
        if self._audiosocket_missing_at is None:
            logger.warning(
                "Asterisk has no AudioSocket() application (load app_audiosocket.so): speech turns are %s; "
                "AudioSocket() is tried again every %g s",
                "recorded with RECORD FILE" if self.recorded is not None else "keys only",
                self.audiosocket_retry_seconds,
            )
        self._audiosocket_missing_at = time.monotonic()

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
