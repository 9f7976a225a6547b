"""Recognition in worker processes: the same results as in process, an event loop that stays free,
crashed workers replaced with no-matches for their streams, start-up failures reported at start."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from voice.speech.generated_audio import GeneratedAudio, silence
from voice.speech.pocketsphinx_engine import PocketsphinxRecognizer
from voice.speech.recognition import FRAME_BYTES, Grammar, Recognition, RecognitionError
from voice.speech.recognition_pool import EngineSpec, RecognitionPool

AUDIO_CACHE = Path("/tmp/centralita-test-audio")
MENU = Grammar("en", {"1": ["billing"], "2": ["technical support"], "0": ["speak to an agent"], "y": ["yes"]})


@pytest.fixture(scope="module")
def audio() -> GeneratedAudio:
    return GeneratedAudio(AUDIO_CACHE)


def utterance(audio: GeneratedAudio, phrase: str, voice: str = "en-us") -> bytes:
    return silence(300) + audio.speech(phrase, voice=voice) + silence(300)


async def say(pool: RecognitionPool, pcm: bytes, *, label: str = "") -> Recognition:
    async with pool.stream(MENU, label=label) as stream:
        for offset in range(0, len(pcm), FRAME_BYTES):
            await stream.feed(pcm[offset : offset + FRAME_BYTES])
        return await stream.finish()


def test_concurrent_streams_on_two_workers_all_get_their_phrase(audio: GeneratedAudio) -> None:
    phrases = ["billing", "technical support", "speak to an agent", "yes"]

    async def run() -> list[Recognition]:
        async with RecognitionPool(EngineSpec(pocketsphinx=True), workers=2) as pool:
            return list(await asyncio.gather(*(say(pool, utterance(audio, phrase)) for phrase in phrases)))

    assert [result.text for result in asyncio.run(run())] == phrases


def test_pool_results_match_in_process_results(audio: GeneratedAudio) -> None:
    phrases = [
        ("billing", "en-us"),
        ("technical support", "en-gb"),
        ("speak to an agent", "en-gb-x-rp"),
        ("yes", "en-us"),
    ]
    recordings = [utterance(audio, phrase, voice) for phrase, voice in phrases]
    local = PocketsphinxRecognizer()
    expected = []
    for pcm in recordings:
        stream = local.start(MENU)
        for offset in range(0, len(pcm), FRAME_BYTES):
            stream.accept(pcm[offset : offset + FRAME_BYTES])
        expected.append(stream.finish())

    async def run() -> list[Recognition]:
        # One worker, streams in the same order: its decoder adapts to the line as the local one did.
        async with RecognitionPool(EngineSpec(pocketsphinx=True), workers=1) as pool:
            return [await say(pool, pcm, label=f"call-{n}") for n, pcm in enumerate(recordings)]

    results = asyncio.run(run())
    assert results == expected
    assert [result.text for result in results] == [phrase for phrase, _ in phrases]


def test_a_long_decode_does_not_hold_up_the_event_loop(audio: GeneratedAudio) -> None:
    """Half a minute of speech fed at once: the loop still ticks every few milliseconds."""
    sentence = utterance(audio, "technical support and billing and an agent")
    monologue = sentence * (30 * 16000 // len(sentence))

    async def run() -> float:
        async with RecognitionPool(EngineSpec(pocketsphinx=True), workers=1) as pool:
            worst = 0.0
            stop = asyncio.Event()

            async def tick() -> None:
                nonlocal worst
                while not stop.is_set():
                    before = time.perf_counter()
                    await asyncio.sleep(0.002)
                    worst = max(worst, time.perf_counter() - before)

            ticker = asyncio.create_task(tick())
            await say(pool, monologue)
            stop.set()
            await ticker
            return worst

    assert asyncio.run(run()) < 0.25


def test_a_killed_worker_gives_its_streams_a_no_match_and_is_replaced(audio: GeneratedAudio) -> None:
    async def run() -> tuple[Recognition, Recognition, int]:
        async with RecognitionPool(EngineSpec(pocketsphinx=True), workers=1) as pool:
            async with pool.stream(MENU, label="call-killed") as stream:
                await stream.feed(utterance(audio, "billing"))
                os.kill(pool.pids[0], signal.SIGKILL)
                orphaned = await stream.finish()
            for _ in range(200):  # the replacement loads its model
                if pool.replaced and pool.pids:
                    break
                await asyncio.sleep(0.05)
            after = await say(pool, utterance(audio, "billing"), label="call-after")
            return orphaned, after, pool.replaced

    orphaned, after, replaced = asyncio.run(run())
    assert orphaned == Recognition("", 0.0, "unavailable")
    assert after.text == "billing"
    assert replaced == 1


def test_a_bad_model_path_fails_the_pool_at_start(tmp_path: Path) -> None:
    spec = EngineSpec(vosk_models=(("es", str(tmp_path / "nowhere"), "CENTRALITA_VOSK_MODEL_ES"),))

    async def run() -> None:
        async with RecognitionPool(spec, workers=2):
            pass

    with pytest.raises(RecognitionError, match="CENTRALITA_VOSK_MODEL_ES") as error:
        asyncio.run(run())
    assert str(tmp_path / "nowhere") in str(error.value)


def test_a_language_without_a_model_fails_the_stream_not_the_pool(audio: GeneratedAudio) -> None:
    async def run() -> Recognition:
        async with RecognitionPool(EngineSpec(pocketsphinx=True), workers=1) as pool:
            with pytest.raises(RecognitionError, match="'es'"):
                async with pool.stream(Grammar("es", {"1": ["facturación"]})):
                    pass
            return await say(pool, utterance(audio, "yes"))

    assert asyncio.run(run()).text == "yes"


def test_close_gives_open_streams_a_no_match_and_stops_the_workers() -> None:
    async def run() -> tuple[Recognition, list[int]]:
        pool = RecognitionPool(EngineSpec(fake_script=(("billing", 0.9),)), workers=1)
        await pool.start()
        pids = pool.pids
        async with pool.stream(MENU) as stream:
            await stream.feed(bytes(FRAME_BYTES))
            await pool.close()
            return await stream.finish(), pids

    result, pids = asyncio.run(run())
    assert result.text == ""
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
