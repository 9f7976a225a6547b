"""The listening turn on a scripted caller (FakeAudioLink): keys, tones, speech with barge-in, silence."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from voice.audiosocket.port import FakeAudioLink
from voice.audiosocket.protocol import FRAME_BYTES, AudioFrame, DtmfFrame
from voice.ivr.voice_port import Heard, Question
from voice.speech.dtmf_tones import DtmfDetector, dtmf_tone
from voice.speech.generated_audio import noise, silence
from voice.speech.listening import LinkEnded, ListeningRules, listen
from voice.speech.recognition import FakeRecognizer, Grammar, Partial, Recognition, RecognitionStream
from voice.speech.voice_activity import EnergyDetector

QUESTION = Question(
    prompts=(),
    phrases={"1": ["technical support"], "2": ["billing"]},
    language="en",
    max_digits=1,
    terminator=None,
    timeout_ms=1000,
)
PROMPT = noise(2000, amplitude=2000, seed=7)  # two seconds of "prompt"


class ScriptedRecognition:
    """The FakeRecognizer behind the async interface the turn uses; counts the audio fed."""

    def __init__(self, script: list[tuple[str, float]]) -> None:
        self.recognizer = FakeRecognizer(script=list(script))

    @contextlib.asynccontextmanager
    async def stream(self, grammar: Grammar) -> AsyncIterator[_Stream]:
        yield _Stream(self.recognizer.start(grammar))


class _Stream:
    def __init__(self, stream: RecognitionStream) -> None:
        self._stream = stream

    async def feed(self, pcm: bytes) -> Partial | None:
        return self._stream.accept(pcm)

    async def finish(self) -> Recognition:
        return self._stream.finish()


def frames(pcm: bytes) -> list[AudioFrame]:
    return [AudioFrame(pcm[i : i + FRAME_BYTES]) for i in range(0, len(pcm), FRAME_BYTES)]


def ask(
    link: FakeAudioLink,
    recognition: ScriptedRecognition,
    *,
    question: Question = QUESTION,
    prompt: bytes = PROMPT,
) -> Heard:
    async def main() -> Heard:
        try:
            return await listen(
                link,
                [prompt],
                question,
                recognition=recognition,
                vad=EnergyDetector(),
                dtmf=DtmfDetector(),
                rules=ListeningRules(stall_seconds=2),
            )
        finally:
            await link.close()

    return asyncio.run(main())


def test_a_key_frame_during_the_prompt_stops_it_and_answers() -> None:
    link = FakeAudioLink([*frames(silence(200)), DtmfFrame("2")])
    recognition = ScriptedRecognition([])
    heard = ask(link, recognition)
    assert heard == Heard(digits="2")
    assert link.stops >= 1 and len(link.played) < len(PROMPT)
    assert recognition.recognizer.grammars == []  # nobody spoke: no recogniser was started


def test_a_key_pressed_as_a_tone_inside_the_audio_answers_too() -> None:
    link = FakeAudioLink(frames(silence(100) + dtmf_tone("7", 100) + silence(100)))
    heard = ask(link, ScriptedRecognition([]))
    assert heard.digits == "7"


def test_several_keys_end_at_the_terminator() -> None:
    question = Question((), {}, "en", max_digits=8, terminator="#", timeout_ms=1000)
    link = FakeAudioLink([DtmfFrame(key) for key in "1234#9"])
    assert ask(link, ScriptedRecognition([]), question=question).digits == "1234"


def test_keys_end_after_a_pause() -> None:
    question = Question((), {}, "en", max_digits=8, terminator="#", timeout_ms=1000)
    link = FakeAudioLink([DtmfFrame("4"), DtmfFrame("2"), *frames(silence(3200)), DtmfFrame("9")])
    assert ask(link, ScriptedRecognition([]), question=question).digits == "42"


def test_speaking_over_the_prompt_stops_it_and_the_recogniser_hears_the_words() -> None:
    words = noise(700, amplitude=4000, seed=1)
    link = FakeAudioLink(frames(silence(400) + words + silence(1000)))
    recognition = ScriptedRecognition([("billing", 0.82)])
    heard = ask(link, recognition)
    assert (heard.spoke, heard.text, heard.confidence, heard.engine) == (True, "billing", 0.82, "fake")
    assert link.stops >= 1 and len(link.played) < len(PROMPT)  # barge-in
    # The recogniser got the words from a little before the detected start, and the silence after.
    assert recognition.recognizer.audio_bytes[0] >= len(words)
    assert recognition.recognizer.grammars[0].phrases == QUESTION.phrases
    assert heard.latency_ms is not None and 600 <= heard.latency_ms < 1000  # the endpointing silence


def test_speech_outside_the_grammar_is_heard_as_a_no_match() -> None:
    link = FakeAudioLink(frames(noise(500, amplitude=4000) + silence(1000)))
    heard = ask(link, ScriptedRecognition([]))
    assert heard.spoke and heard.text == "" and heard.confidence == 0.0


def test_silence_after_the_whole_prompt_is_no_input() -> None:
    link = FakeAudioLink(frames(silence(200)))  # then silence for ever
    heard = ask(link, ScriptedRecognition([]))
    assert heard == Heard()
    assert len(link.played) == len(PROMPT)  # the prompt was heard to the end before the timer ran


def test_a_caller_hanging_up_ends_the_turn() -> None:
    link = FakeAudioLink(frames(silence(200)), then="hangup")
    with pytest.raises(LinkEnded):
        ask(link, ScriptedRecognition([]))
