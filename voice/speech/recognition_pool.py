"""Speech recognition off the event loop: worker processes that each load the models once and decode
many streams, and the async interface the call code uses (`SpeechRecognition`).

    pool = RecognitionPool(EngineSpec(pocketsphinx=True), workers=2)
    await pool.start()                                # RecognitionError here if a model fails to load
    async with pool.stream(grammar, label=call_id) as stream:
        partial = await stream.feed(pcm)              # never waits for the decoder
        result = await stream.finish()                # the final Recognition
    await pool.close()

Why processes: a decode is CPU work in C that holds the GIL for its whole call, so in a thread it would
still stall every other call's AGI and ARI traffic. A worker serves many streams (keyed by stream id),
one message at a time; a new stream goes to the worker with the fewest open streams.

Failure: a worker that dies (killed, out of memory, a crash in C) is noticed through its process
sentinel; each stream it held gets a no-match (`Recognition("", 0.0, …)`) — the flow's no-match path,
not a silent hang — and a replacement starts. A worker that stops answering is given `finish_timeout`
seconds per result, then the stream gets a no-match too. Errors are logged with the stream's label
(the call id).

`InProcessRecognition` offers the same interface over any `Recognizer` in this process, for the fake
and for tests of the code above.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, Protocol

from voice.speech.recognition import Grammar, Partial, Recognition, RecognitionError, Recognizer

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # a worker loading its models (vosk's big models take a while)
OPEN_TIMEOUT = 10.0  # a worker acknowledging a new stream
FINISH_TIMEOUT = 10.0  # a worker giving a final result
STOP_TIMEOUT = 5.0  # a worker exiting when asked, before it is killed
NO_ENGINE = "unavailable"  # the engine named on a no-match the pool itself gives (the worker is gone)


class AsyncRecognitionStream(Protocol):
    async def feed(self, pcm: bytes) -> Partial | None:
        """Audio of the utterance; the newest partial hypothesis not given before, if any."""
        ...

    async def finish(self) -> Recognition: ...


class SpeechRecognition(Protocol):
    """Recognition as a call needs it: one stream per utterance."""

    def stream(self, grammar: Grammar) -> AbstractAsyncContextManager[AsyncRecognitionStream]: ...


# ---------------------------------------------------------------------------------------------- in process


class InProcessRecognition:
    """`SpeechRecognition` over a Recognizer in this process: decoding runs on the event loop, so use it
    for fakes and tests, or an engine fast enough not to matter."""

    def __init__(self, recognizer: Recognizer) -> None:
        self.recognizer = recognizer

    @contextlib.asynccontextmanager
    async def stream(self, grammar: Grammar, *, label: str = "") -> AsyncIterator[AsyncRecognitionStream]:
        yield _InProcessStream(self.recognizer.start(grammar))


@dataclass
class _InProcessStream:
    stream: Any  # a RecognitionStream

    async def feed(self, pcm: bytes) -> Partial | None:
        partial: Partial | None = self.stream.accept(pcm)
        return partial

    async def finish(self) -> Recognition:
        result: Recognition = self.stream.finish()
        return result


# ----------------------------------------------------------------------------------------- engine spec


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """What a worker builds its recognizer from; plain data, so it crosses to a spawned process.

    `vosk_models`: (language, model directory, the setting it came from) for each vosk model;
    `pocketsphinx`: English by pocketsphinx for what vosk has no model for. A language both could serve
    goes to vosk."""

    vosk_models: tuple[tuple[str, str, str], ...] = ()
    pocketsphinx: bool = False
    fake_script: tuple[tuple[str, float], ...] | None = None  # tests: a FakeRecognizer with this script

    @property
    def name(self) -> str:
        parts = [f"vosk-{language}" for language, _, _ in self.vosk_models]
        if self.pocketsphinx:
            parts.append("pocketsphinx-en")
        if self.fake_script is not None:
            parts.append("fake")
        return "+".join(parts) or "none"

    @property
    def languages(self) -> frozenset[str]:
        """The primary language subtags some engine of this spec recognises."""
        found = {language.split("-")[0] for language, _, _ in self.vosk_models}
        if self.pocketsphinx:
            found.add("en")
        if self.fake_script is not None:
            found |= {"es", "en"}
        return frozenset(found)

    def build(self) -> Recognizer:
        """The recognizer this spec names, models loaded (RecognitionError if one cannot be)."""
        from voice.speech.engines import LanguageRouter

        recognizers: list[Recognizer] = []
        if self.fake_script is not None:
            from voice.speech.recognition import FakeRecognizer

            recognizers.append(FakeRecognizer(script=list(self.fake_script)))
        if self.vosk_models:
            from pathlib import Path

            from voice.speech.vosk_engine import VoskRecognizer

            recognizers.append(
                VoskRecognizer(
                    {language: Path(path) for language, path, _ in self.vosk_models},
                    settings={language: setting for language, _, setting in self.vosk_models if setting},
                )
            )
        if self.pocketsphinx:
            from voice.speech.pocketsphinx_engine import PocketsphinxRecognizer

            recognizers.append(PocketsphinxRecognizer())
        if not recognizers:
            raise RecognitionError("no speech engine configured")
        return recognizers[0] if len(recognizers) == 1 else LanguageRouter(tuple(recognizers))


# -------------------------------------------------------------------------------------- worker process


def _worker_main(spec: EngineSpec, requests: Any, replies: multiprocessing.connection.Connection) -> None:
    """A worker: build the recognizer, then serve messages until told to stop (or the parent goes)."""
    try:
        recognizer = spec.build()
    except Exception as exc:  # any failure to start is reported, not just RecognitionError
        replies.send(("failed", f"{exc}"))
        return
    replies.send(("ready",))
    streams: dict[int, Any] = {}
    while True:
        message = requests.get()
        kind = message[0]
        if kind == "stop":
            return
        stream_id = message[1]
        try:
            if kind == "open":
                language, phrases = message[2], message[3]
                streams[stream_id] = recognizer.start(Grammar(language, phrases))
                replies.send(("opened", stream_id))
            elif kind == "audio":
                feeding = streams.get(stream_id)
                if feeding is not None:
                    partial = feeding.accept(message[2])
                    if partial is not None:
                        replies.send(("partial", stream_id, partial.text))
            elif kind == "finish":
                finishing = streams.pop(stream_id, None)
                if finishing is None:
                    replies.send(("error", stream_id, "no such stream"))
                else:
                    result = finishing.finish()
                    replies.send(("final", stream_id, result.text, result.confidence, result.engine))
            elif kind == "drop":
                streams.pop(stream_id, None)
        except Exception as exc:  # one stream's failure is that stream's, never the worker's
            streams.pop(stream_id, None)
            replies.send(("error", stream_id, f"{type(exc).__name__}: {exc}"))


# -------------------------------------------------------------------------------------------- the pool


@dataclass
class _Waiter:
    """One open stream's side in the parent: what it is waiting for and what has arrived."""

    label: str
    worker: _Worker
    opened: asyncio.Future[None]
    final: asyncio.Future[Recognition]
    partials: list[str] = field(default_factory=list)


class _Worker:
    def __init__(self, pool: RecognitionPool, index: int) -> None:
        self.pool = pool
        self.index = index
        context = pool.context
        self.requests: Any = context.Queue()  # its feeder thread: put() never blocks the event loop
        receive, send = context.Pipe(duplex=False)
        self.replies = receive
        self.process: BaseProcess = context.Process(
            target=_worker_main,
            args=(pool.spec, self.requests, send),
            name=f"centralita-speech-{index}",
            daemon=True,
        )
        self.process.start()
        send.close()  # the child holds the only writing end: its death reads as end-of-file here
        self.ready: asyncio.Future[None] = pool.loop.create_future()
        self.streams: set[int] = set()
        self.gone = False
        pool.loop.add_reader(self.replies.fileno(), self._on_reply)
        pool.loop.add_reader(self.process.sentinel, self._on_exit)

    def send(self, message: tuple[Any, ...]) -> None:
        if not self.gone:
            self.requests.put(message)

    def _on_reply(self) -> None:
        try:
            while self.replies.poll():
                self.pool._on_message(self, self.replies.recv())
        except (EOFError, OSError):
            self._on_exit()

    def _on_exit(self) -> None:
        if self.gone:
            return
        self.gone = True
        loop = self.pool.loop
        loop.remove_reader(self.replies.fileno())
        loop.remove_reader(self.process.sentinel)
        self.pool._on_worker_gone(self)

    def release(self) -> None:
        """Close this side's handles (the process has exited or been killed)."""
        self.process.join(timeout=0)
        self.replies.close()
        self.requests.close()
        self.requests.cancel_join_thread()


class RecognitionPool:
    """`SpeechRecognition` in `workers` worker processes, each running `spec`'s engines."""

    def __init__(
        self,
        spec: EngineSpec,
        *,
        workers: int = 1,
        context: str = "spawn",
        finish_timeout: float = FINISH_TIMEOUT,
    ) -> None:
        if workers < 1:
            raise ValueError("a recognition pool needs at least one worker")
        self.spec = spec
        self.size = workers
        self.context: Any = multiprocessing.get_context(context)
        self.finish_timeout = finish_timeout
        self._workers: list[_Worker] = []
        self._waiters: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)
        self._indexes = itertools.count()
        self._closing = False
        self.replaced = 0  # workers started in place of dead ones
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the recognition pool has not been started")
        return self._loop

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers if worker.process.pid is not None]

    async def start(self) -> None:
        """Start the workers and wait until each has loaded its models; a worker that cannot start
        (a wrong model path) raises RecognitionError here, with the worker's reason."""
        self._loop = asyncio.get_running_loop()
        self._workers = [_Worker(self, next(self._indexes)) for _ in range(self.size)]
        try:
            await asyncio.wait_for(asyncio.gather(*(worker.ready for worker in self._workers)), START_TIMEOUT)
        except (RecognitionError, TimeoutError) as exc:
            await self.close()
            if isinstance(exc, TimeoutError):
                raise RecognitionError(f"speech workers did not start in {START_TIMEOUT:.0f} s") from None
            raise

    async def __aenter__(self) -> RecognitionPool:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def stream(self, grammar: Grammar, *, label: str = "") -> AsyncIterator[AsyncRecognitionStream]:
        stream_id, waiter = await self._open(grammar, label)
        try:
            yield _PoolStream(self, stream_id, waiter)
        finally:
            if self._waiters.pop(stream_id, None) is not None:
                waiter.worker.streams.discard(stream_id)
                waiter.worker.send(("drop", stream_id))

    async def _open(self, grammar: Grammar, label: str) -> tuple[int, _Waiter]:
        if self._closing or self._loop is None:
            raise RecognitionError("the recognition pool is not running")
        live = [worker for worker in self._workers if not worker.gone]
        ready = [worker for worker in live if worker.ready.done()] or live
        if not ready:
            raise RecognitionError("no speech worker is running")
        worker = min(ready, key=lambda candidate: len(candidate.streams))
        if not worker.ready.done():
            await asyncio.wait_for(asyncio.shield(worker.ready), START_TIMEOUT)
        stream_id = next(self._ids)
        waiter = _Waiter(label, worker, self.loop.create_future(), self.loop.create_future())
        self._waiters[stream_id] = waiter
        worker.streams.add(stream_id)
        phrases = {key: list(values) for key, values in grammar.phrases.items()}
        worker.send(("open", stream_id, grammar.language, phrases))
        try:
            await asyncio.wait_for(asyncio.shield(waiter.opened), OPEN_TIMEOUT)
        except BaseException:
            self._waiters.pop(stream_id, None)
            worker.streams.discard(stream_id)
            raise
        return stream_id, waiter

    def _on_message(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            if not worker.ready.done():
                worker.ready.set_result(None)
            return
        if kind == "failed":
            if not worker.ready.done():
                worker.ready.set_exception(RecognitionError(f"speech worker could not start: {message[1]}"))
            return
        waiter = self._waiters.get(message[1])
        if waiter is None:
            return  # a stream closed since: nothing waits for this
        if kind == "opened":
            _settle(waiter.opened, None)
        elif kind == "partial":
            waiter.partials.append(message[2])
        elif kind == "final":
            _settle(waiter.final, Recognition(message[2], message[3], message[4]))
        elif kind == "error":
            error = RecognitionError(message[2])
            if not waiter.opened.done():
                waiter.opened.set_exception(error)
            else:
                log.error("speech recognition failed (call %s): %s", waiter.label or "-", message[2])
                _settle(waiter.final, Recognition("", 0.0, NO_ENGINE))

    def _on_worker_gone(self, worker: _Worker) -> None:
        code = worker.process.exitcode
        if not worker.ready.done():
            worker.ready.set_exception(
                RecognitionError(f"speech worker {worker.index} exited while starting (exit code {code})")
            )
        for stream_id in list(worker.streams):
            waiter = self._waiters.get(stream_id)
            if waiter is None:
                continue
            log.error(
                "speech worker %s died (exit code %s): no-match for call %s",
                worker.index,
                code,
                waiter.label or "-",
            )
            if not waiter.opened.done():
                waiter.opened.set_exception(RecognitionError("the speech worker died"))
            _settle(waiter.final, Recognition("", 0.0, NO_ENGINE))
        worker.streams.clear()
        worker.release()
        if self._closing or not worker.ready.done() or worker.ready.exception() is not None:
            return  # a worker that never started is not restarted in a loop: start() reports it
        position = self._workers.index(worker)
        self._workers[position] = _Worker(self, next(self._indexes))
        self.replaced += 1
        self._workers[position].ready.add_done_callback(_log_restart)

    async def close(self) -> None:
        """Stop the workers (open streams get no-matches) and wait for them to exit."""
        if self._closing:
            return
        self._closing = True
        for waiter in self._waiters.values():
            if not waiter.opened.done():
                waiter.opened.set_exception(RecognitionError("the recognition pool closed"))
            _settle(waiter.final, Recognition("", 0.0, NO_ENGINE))
        self._waiters.clear()
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.send(("stop",))
        for worker in workers:
            await asyncio.to_thread(worker.process.join, STOP_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                await asyncio.to_thread(worker.process.join, STOP_TIMEOUT)
            if not worker.gone:
                worker.gone = True
                self.loop.remove_reader(worker.replies.fileno())
                self.loop.remove_reader(worker.process.sentinel)
                worker.release()
            if not worker.ready.done():
                worker.ready.cancel()
            elif not worker.ready.cancelled():
                worker.ready.exception()  # retrieved: a failed start is reported once, by start()


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _log_restart(ready: asyncio.Future[None]) -> None:
    if ready.cancelled():
        return
    if ready.exception() is not None:
        log.error("a replacement speech worker could not start: %s", ready.exception())
    else:
        log.info("a replacement speech worker is ready")


class _PoolStream:
    def __init__(self, pool: RecognitionPool, stream_id: int, waiter: _Waiter) -> None:
        self._pool = pool
        self._id = stream_id
        self._waiter = waiter
        self._finished = False

    async def feed(self, pcm: bytes) -> Partial | None:
        if self._finished:
            raise RecognitionError("this stream has already given its result")
        if not self._waiter.final.done():
            self._waiter.worker.send(("audio", self._id, pcm))
        partials = self._waiter.partials
        if not partials:
            return None
        newest = partials[-1]
        partials.clear()
        return Partial(newest)

    async def finish(self) -> Recognition:
        if self._finished:
            raise RecognitionError("this stream has already given its result")
        self._finished = True
        waiter = self._waiter
        if not waiter.final.done():
            waiter.worker.send(("finish", self._id))
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.final), self._pool.finish_timeout)
        except TimeoutError:
            log.error(
                "speech worker gave no result in %.0f s: no-match for call %s",
                self._pool.finish_timeout,
                waiter.label or "-",
            )
            return Recognition("", 0.0, NO_ENGINE)
