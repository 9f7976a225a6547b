"""Speech turns recorded by Asterisk: the fallback for AGI-only deployments, where the call's audio cannot
stream to Centralita over AudioSocket (no AudioSocket server here, or Asterisk without AudioSocket()).

    heard = await turns.ask(line, question, call_id=call.call_id, turn=3)

A turn, with the commands the voice port sends for it (`RecordingLine`):
1. the question's prompts, `STREAM FILE <prompt> "0123456789*#"`: a key stops the prompt and answers the
   question (the rest of the keys with `GET DATA`, as a keys-only menu would take them);
2. `RECORD FILE <asterisk_recordings_path>/speech/<call id>-<n> sln "0123456789*#" <max ms> s=<silence>`:
   Asterisk records until its own silence detector has heard `silence` seconds of quiet, a key (which
   answers the question with keys), or the time limit. `sln` is raw 8 kHz signed 16-bit audio, what the
   recognisers take: nothing to decode;
3. the file is read where Centralita sees the same directory (`asterisk_recordings_dir`), after waiting
   briefly for it (Asterisk replies to RECORD FILE a moment before it closes the file), and deleted;
4. voice activity (Silero, as on AudioSocket) says whether the caller spoke; if so the whole recording
   goes to a recognition stream with the question's grammar, in the recognition workers.
`Heard.latency_ms` counts from the end of the recording (RECORD FILE's reply) to the final result.

Asterisk counts the silence from the start of the recording, so one number is both the time the caller
has to begin and the pause that ends the answer: `silence_seconds` (3 s) is the compromise, never more than
the question's own no-input time. The caller hears no beep: the prompt ends and the IVR listens.

A missing or empty recording (the directory is not shared, Asterisk cannot write there) raises
`RecordingUnusable`, an ActionNotDone, with what was looked for where: the runner asks again with keys.

Where the logic lives: here, beside the AudioSocket listener, rather than in the AGI port. The port knows
AGI and nothing of audio; the turn knows audio, files and recognition and nothing of AGI: it asks the
line for prompts, a recording and keys through a small protocol, so it is tested with a fake line that
writes files, and an ARI port could drive the same turn with its own recordings. The pure parts have no
I/O: what to ask Asterisk for (`take_command`) and whether the recording holds speech
(`holds_speech`); `RecordingsMount` is the file system; `RecordedTurns.ask` strings them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from core.settings import Settings
from voice.ivr.voice_port import ActionNotDone, Heard, Question
from voice.prompts import PromptAudio
from voice.speech.recognition import Grammar
from voice.speech.recognition_pool import SpeechRecognition
from voice.speech.utterance import SpeechStarted, UtteranceDetector, UtteranceRules
from voice.speech.voice_activity import VoiceActivityDetector

logger = logging.getLogger(__name__)

KEYS = "0123456789*#"  # every key stops a prompt or a recording: keys always answer
SPEECH_DIR = "speech"  # under the recordings directory: speech turns' recordings (deleted once heard)
FORMAT = "sln"  # raw 8 kHz signed 16-bit little-endian: no decoding
_FILE_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class RecordingUnusable(ActionNotDone):
    """The recording Asterisk should have written cannot be read, or holds nothing."""


@dataclass(frozen=True, slots=True)
class RecordedTurnRules:
    silence_seconds: int = 3  # Asterisk's s=: the caller's time to begin, and the pause that ends them
    max_answer_ms: int = 10_000  # the recording's limit beyond the no-input time: no monologues
    file_wait_seconds: float = 1.0  # for Asterisk to close the file after its reply
    inter_digit_ms: int = 3000  # after a key, GET DATA waits this long for the next one
    utterance: UtteranceRules = field(default_factory=lambda: UtteranceRules(no_input_ms=None))

    def __post_init__(self) -> None:
        if self.silence_seconds < 1:
            raise ValueError("Asterisk counts silence in whole seconds: silence_seconds must be >= 1")


@dataclass(frozen=True, slots=True)
class TakeCommand:
    """One RECORD FILE: `name` as Asterisk sees it, without the extension Asterisk adds."""

    name: str
    file_format: str
    escape_digits: str
    max_ms: int
    silence_seconds: int


def take_command(
    question: Question, rules: RecordedTurnRules, *, directory: str, call_id: str, turn: int
) -> TakeCommand:
    """What to ask Asterisk to record for `question` (pure)."""
    no_input_s = max(1, math.ceil(question.timeout_ms / 1000))
    silence = min(rules.silence_seconds, no_input_s)
    stem = f"{_FILE_SAFE.sub('_', call_id)[:100]}-{turn}"
    return TakeCommand(
        name=f"{directory.rstrip('/')}/{stem}",
        file_format=FORMAT,
        escape_digits=KEYS,
        max_ms=question.timeout_ms + rules.max_answer_ms,
        silence_seconds=silence,
    )


def holds_speech(pcm: bytes, vad: VoiceActivityDetector, rules: UtteranceRules) -> bool:
    """Whether the recording holds speech: the end-of-utterance detector of the live turns, run over the
    voice-activity probabilities of the whole file, sees a start (`min_speech_ms` of speech)."""
    detector = UtteranceDetector(rules)
    for probability in vad.feed(pcm):
        for event in detector.step(probability, vad.window_ms):
            if isinstance(event, SpeechStarted):
                return True
    return False


class RecordingLine(Protocol):
    """What a turn needs from the call: the voice port's side (AGI: STREAM FILE, RECORD FILE, GET DATA).
    Each raises CallerGone when the caller hangs up, ActionNotDone when Asterisk cannot do it."""

    async def play(self, prompt: PromptAudio, *, escape_digits: str) -> str | None:
        """Play the prompt; the key in `escape_digits` that stopped it, or None."""
        ...

    async def record(self, take: TakeCommand) -> str | None:
        """Record as `take` says; the key that ended the recording, or None (silence, time limit)."""
        ...

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str: ...


@dataclass(frozen=True, slots=True)
class RecordingsMount:
    """The directory Asterisk records into, seen from both sides: `asterisk_path` is how Asterisk names
    it (`CENTRALITA_ASTERISK_RECORDINGS_PATH`), `local_dir` where this process reads it
    (`CENTRALITA_ASTERISK_RECORDINGS_DIR`): a volume both mount."""

    local_dir: Path
    asterisk_path: str

    def asterisk_name(self, *parts: str) -> str:
        return "/".join([self.asterisk_path.rstrip("/"), *parts])

    def local_path(self, asterisk_name: str, file_format: str) -> Path | None:
        """Where Asterisk's file `<asterisk_name>.<file_format>` is here; None when it is not under the
        shared directory (a name relative to Asterisk's sounds directory, say)."""
        prefix = self.asterisk_path.rstrip("/") + "/"
        if not asterisk_name.startswith(prefix):
            return None
        relative = PurePosixPath(asterisk_name[len(prefix) :])
        if not relative.parts or ".." in relative.parts or relative.is_absolute():
            return None
        return self.local_dir.joinpath(*relative.parts).with_name(f"{relative.name}.{file_format}")

    def prepare(self, subdirectory: str) -> None:
        """Make `subdirectory` (Asterisk's RECORD FILE does not make directories) with the shared
        directory's permissions, so that Asterisk may write where this process made it."""
        target = self.local_dir / subdirectory
        if target.is_dir():
            return
        target.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):  # best effort: the operator may have set it up already
            os.chmod(target, stat.S_IMODE(self.local_dir.stat().st_mode))

    async def read(self, path: Path, *, wait_seconds: float) -> bytes:
        """The file's bytes, once it exists and has stopped growing (within `wait_seconds`).
        Raises RecordingUnusable when it never appears or stays empty."""
        deadline = time.monotonic() + wait_seconds
        last_size = -1
        while True:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = -1
            except OSError as exc:
                raise RecordingUnusable(f"cannot read the recording {path}: {exc}") from exc
            if size > 0 and size == last_size:
                break
            if time.monotonic() >= deadline:
                if size < 0:
                    raise RecordingUnusable(
                        f"the recording {path} is not there: does Asterisk write to the directory "
                        "CENTRALITA_ASTERISK_RECORDINGS_DIR names (CENTRALITA_ASTERISK_RECORDINGS_PATH "
                        "as Asterisk sees it)?"
                    )
                if size == 0:
                    raise RecordingUnusable(f"the recording {path} is empty")
                break  # still growing at the deadline: take what there is
            last_size = size
            await asyncio.sleep(0.02)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise RecordingUnusable(f"cannot read the recording {path}: {exc}") from exc


def discard(path: Path | None) -> None:
    if path is None:
        return
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # left behind, not fatal: the caller's words are in a file nobody reads
        logger.warning("could not delete the recording %s: %s", path, exc)


@dataclass
class RecordedTurns:
    """Speech turns over recordings, built once per process (`SpeechListener.recorded`)."""

    recognition: SpeechRecognition
    mount: RecordingsMount
    new_vad: Callable[[], VoiceActivityDetector]
    rules: RecordedTurnRules = field(default_factory=RecordedTurnRules)

    _idle_vads: list[VoiceActivityDetector] = field(default_factory=list, init=False, repr=False)
    _prepared: bool = field(default=False, init=False, repr=False)

    async def ask(self, line: RecordingLine, question: Question, *, call_id: str, turn: int) -> Heard:
        """Ask `question` on `line` and hear the answer from Asterisk's recording. Raises CallerGone
        (from the line), RecordingUnusable or ActionNotDone (the runner then asks with keys)."""
        for prompt in question.prompts:
            key = await line.play(prompt, escape_digits=KEYS)
            if key is not None:
                return await self._keys(line, question, key)
        take = take_command(
            question, self.rules, directory=self.mount.asterisk_name(SPEECH_DIR), call_id=call_id, turn=turn
        )
        local = self.mount.local_path(take.name, take.file_format)
        if local is None:  # cannot happen with a name made from the mount; a clear error if it does
            raise RecordingUnusable(f"{take.name} is not under {self.mount.asterisk_path}")
        self._prepare()
        try:
            key = await line.record(take)
            ended = time.perf_counter()
            if key is not None:
                return await self._keys(line, question, key)
            pcm = await self.mount.read(local, wait_seconds=self.rules.file_wait_seconds)
            if not self._holds_speech(pcm):
                return Heard()
            async with self.recognition.stream(Grammar(question.language, question.phrases)) as stream:
                await stream.feed(pcm[: len(pcm) - len(pcm) % 2])
                result = await stream.finish()
            return Heard(
                spoke=True,
                text=result.text,
                confidence=result.confidence if result.text else 0.0,
                engine=result.engine,
                latency_ms=round((time.perf_counter() - ended) * 1000),
            )
        finally:
            discard(local)

    def _prepare(self) -> None:
        if self._prepared:
            return
        try:
            self.mount.prepare(SPEECH_DIR)
        except OSError as exc:
            raise RecordingUnusable(
                f"cannot make {self.mount.local_dir / SPEECH_DIR} for Asterisk's recordings: {exc}"
            ) from exc
        self._prepared = True

    def _holds_speech(self, pcm: bytes) -> bool:
        # Detectors are reused (reset between turns): loading Silero's model costs ~40 ms a time.
        vad = self._idle_vads.pop() if self._idle_vads else self.new_vad()
        try:
            return holds_speech(pcm, vad, self.rules.utterance)
        finally:
            vad.reset()
            self._idle_vads.append(vad)

    async def _keys(self, line: RecordingLine, question: Question, first: str) -> Heard:
        """A key answered: it and the ones that follow (GET DATA), until the terminator or max_digits."""
        digits = ""
        for key in first:
            if question.terminator and key == question.terminator:
                return Heard(digits=digits)
            digits += key
        if len(digits) >= question.max_digits:
            return Heard(digits=digits[: question.max_digits])
        more = await line.collect_digits(
            max_digits=question.max_digits - len(digits),
            timeout_ms=self.rules.inter_digit_ms,
            terminator=question.terminator,
        )
        return Heard(digits=digits + more)


def recordings_mount(settings: Settings) -> RecordingsMount | None:
    """The shared recordings directory the settings name; None when Centralita cannot read it."""
    if settings.asterisk_recordings_dir is None:
        return None
    return RecordingsMount(settings.asterisk_recordings_dir, settings.asterisk_recordings_path)
