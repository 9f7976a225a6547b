"""One listening turn over a call's two-way audio: play the question, hear the answer.

    heard = await listen(link, prompts, question, recognition=..., vad=..., dtmf=...)

The prompts play while the caller's audio is read frame by frame (20 ms). Three things can answer:
- keys, as AudioSocket DTMF frames or as tones inside the audio (Goertzel, `voice.speech.dtmf_tones`):
  the first stops the prompt, and keys are gathered until `max_digits`, the terminator, or a pause;
- speech: voice activity (`voice_activity`) drives the end-of-utterance detector (`utterance`); when the
  caller starts speaking the prompt stops (barge-in) and a recognition stream opens, fed the audio from a
  little before the start (`pre_roll_ms`: the detector needs `min_speech_ms` to be sure, and the
  recogniser needs the first syllable); when the caller stops, the stream's final result is the answer;
- nothing: the no-input time counts from the end of the prompts.

Time is counted in audio, not by the wall clock: frames arrive every 20 ms on a live call, and a test or
a benchmark can send them faster and get the same answer. A wall-clock guard still ends a turn whose
audio stops coming (`LinkStalled`).

Endpointing: the caller is done after `end_silence_ms` of silence, or sooner — `complete_silence_ms` —
when the recogniser's partial result is already one of the grammar's phrases: "billing" needs no 600 ms
pause to be understood. `Heard.latency_ms` counts from the end of the caller's speech (the last speech
window) to the final result: the endpointing wait plus the recogniser's own time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from voice.audiosocket.port import AudioLink, CallerFrame
from voice.audiosocket.protocol import FRAME_MS, DtmfFrame
from voice.ivr.matching import words
from voice.ivr.voice_port import Heard, Question
from voice.speech.dtmf_tones import DtmfDetector
from voice.speech.recognition import Grammar
from voice.speech.recognition_pool import AsyncRecognitionStream, SpeechRecognition
from voice.speech.utterance import NoInput, SpeechStarted, UtteranceDetector, UtteranceRules
from voice.speech.voice_activity import VoiceActivityDetector


class LinkEnded(Exception):
    """The audio link closed during the turn: the caller hung up, or Asterisk ended AudioSocket()."""


class LinkStalled(Exception):
    """No audio arrived for `stall_seconds`: the link is half-open."""


@dataclass(frozen=True, slots=True)
class ListeningRules:
    utterance: UtteranceRules = field(default_factory=UtteranceRules)
    complete_silence_ms: int = 240  # silence that ends an utterance already matching a whole phrase
    pre_roll_ms: int = 300  # audio before the detected start given to the recogniser
    inter_digit_ms: int = 3000  # after a key, the pause that ends the keys
    stall_seconds: float = 5.0  # no frame at all for this long: the link is dead


async def listen(
    link: AudioLink,
    prompts: Sequence[bytes],
    question: Question,
    *,
    recognition: SpeechRecognition,
    vad: VoiceActivityDetector,
    dtmf: DtmfDetector | None = None,
    rules: ListeningRules = ListeningRules(),
) -> Heard:
    """Ask `question` (its prompts as 8 kHz PCM) on `link`; the link stays open afterwards.
    Raises LinkEnded when the caller hangs up, LinkStalled when the audio stops coming."""
    turn = _Turn(link, question, recognition, vad, dtmf, rules)
    async with contextlib.AsyncExitStack() as stack:
        player = asyncio.create_task(_play(link, prompts), name="prompt")
        stack.push_async_callback(_stop, player)
        player.add_done_callback(lambda _: turn.detector.start_timer())
        heard = await turn.run(stack)
    return heard


async def _play(link: AudioLink, prompts: Sequence[bytes]) -> None:
    for pcm in prompts:
        if not await link.write_audio(pcm):
            return


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class _Turn:
    def __init__(
        self,
        link: AudioLink,
        question: Question,
        recognition: SpeechRecognition,
        vad: VoiceActivityDetector,
        dtmf: DtmfDetector | None,
        rules: ListeningRules,
    ) -> None:
        self.link = link
        self.question = question
        self.recognition = recognition
        self.vad = vad
        self.dtmf = dtmf
        self.rules = rules
        utterance = replace(rules.utterance, no_input_ms=max(question.timeout_ms, FRAME_MS))
        self.detector = UtteranceDetector(utterance, timer_started=False)
        self.grammar = Grammar(question.language, question.phrases)
        self.phrases = {words(phrase) for said in question.phrases.values() for phrase in said}
        self.audio_ms = 0  # audio received this turn
        self.pre_roll: deque[bytes] = deque(maxlen=max(1, rules.pre_roll_ms // FRAME_MS))
        self.partial = ""
        self.last_speech_ms = 0  # end of the latest speech window
        self.speaking = False
        vad.reset()
        if dtmf is not None:
            dtmf.reset()

    async def run(self, stack: contextlib.AsyncExitStack) -> Heard:
        stream: AsyncRecognitionStream | None = None
        while True:
            frame = await self._next_frame()
            if isinstance(frame, DtmfFrame):
                return await self._keys(frame.digit)
            pcm = frame.pcm
            self.audio_ms += len(pcm) * 1000 // 16000
            keys = self.dtmf.feed(pcm) if self.dtmf is not None else []
            if keys:
                return await self._keys("".join(keys))
            probabilities = self.vad.feed(pcm)
            if stream is None:
                self.pre_roll.append(pcm)
            else:
                found = await stream.feed(pcm)
                if found is not None:
                    self.partial = words(found.text)
            for probability in probabilities:
                for event in self.detector.step(probability, self.vad.window_ms):
                    if isinstance(event, SpeechStarted):
                        await self.link.stop_audio()
                        self.speaking = True
                        stream = await stack.enter_async_context(self.recognition.stream(self.grammar))
                        found = await stream.feed(b"".join(self.pre_roll))
                        self.partial = words(found.text) if found is not None else ""
                    elif isinstance(event, NoInput):
                        return Heard()
                    else:  # UtteranceEnded or TooLong
                        assert stream is not None
                        return await self._result(stream, event.end_ms)
                if self.speaking:
                    if probability >= self.detector.rules.silence_below:
                        self.last_speech_ms = self.audio_ms
                    elif (
                        self.partial in self.phrases
                        and self.audio_ms - self.last_speech_ms >= self.rules.complete_silence_ms
                    ):
                        assert stream is not None
                        return await self._result(stream, self.last_speech_ms)

    async def _result(self, stream: AsyncRecognitionStream, speech_end_ms: int) -> Heard:
        started = time.perf_counter()
        result = await stream.finish()
        decoding_ms = (time.perf_counter() - started) * 1000
        waited_ms = max(0, self.audio_ms - speech_end_ms)
        return Heard(
            spoke=True,
            text=result.text,
            confidence=result.confidence if result.text else 0.0,
            engine=result.engine,
            latency_ms=round(waited_ms + decoding_ms),
        )

    async def _keys(self, first: str) -> Heard:
        """Keys answer the question: stop the prompt, gather the rest."""
        await self.link.stop_audio()
        question = self.question
        digits = ""
        pending = first
        quiet_ms = 0
        while True:
            for key in pending:
                if question.terminator and key == question.terminator:
                    return Heard(digits=digits)
                digits += key
                if len(digits) >= question.max_digits:
                    return Heard(digits=digits)
            pending = ""
            frame = await self._next_frame()
            if isinstance(frame, DtmfFrame):
                pending, quiet_ms = frame.digit, 0
                continue
            quiet_ms += len(frame.pcm) * 1000 // 16000
            pending = "".join(self.dtmf.feed(frame.pcm)) if self.dtmf is not None else ""
            if pending:
                quiet_ms = 0
            elif quiet_ms >= self.rules.inter_digit_ms:
                return Heard(digits=digits)

    async def _next_frame(self) -> CallerFrame:
        try:
            async with asyncio.timeout(self.rules.stall_seconds):
                frame = await self.link.read()
        except TimeoutError:
            raise LinkStalled(f"no audio for {self.rules.stall_seconds:g} s") from None
        if frame is None:
            raise LinkEnded("the audio link closed")
        return frame
