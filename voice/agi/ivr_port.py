"""The IVR over FastAGI: the voice port on an AgiSession, and the router that runs a flow per call.

Asterisk's dialplan sends a call here with `AGI(agi://<host>:4573/<flow>)`; `ivr_router` picks the flow
named in the URL and runs it with the `CallRunner`. An unknown flow gets the server's fallback.

How the port's commands look on the wire:
- `play`: `STREAM FILE <file> "<escape digits>"` (the prompt's file: see `voice.prompts`).
- `collect_digits`: `GET DATA silence/1 <timeout_ms> <max_digits>`: the prompt has been played already,
  so GET DATA plays one second of Asterisk's stock silence while it listens. Asterisk ends GET DATA on
  `#` only; a `*` terminator is collected as a digit and the engine strips it.
- `enqueue`: `SET VARIABLE CHANNEL(language) <lang>`, `SET VARIABLE QUEUE_PRIO <n>`, `SET VARIABLE
  CENTRALITA_SKILLS <a,b>` (for the dialplan or queue rules; app_queue has no skills of its own), then
  `EXEC Queue <queue>` and `GET VARIABLE QUEUESTATUS`.
- `transfer`: `EXEC Dial <target>,<seconds>` (a target without a `/` is dialled as
  `Local/<target>@<transfer context>`, so the dialplan picks the trunk), then `GET VARIABLE DIALSTATUS`.
- `record`: `RECORD FILE <dir>/<mailbox>-<call id> wav "#" <ms> BEEP s=<silence>`.

Queues and transfers run *inside* the AGI session (EXEC) rather than ending AGI so the dialplan carries
on: that way the flow learns that a queue refused the call (QUEUESTATUS FULL, JOINEMPTY, TIMEOUT…) or
that a transfer was not answered (DIALSTATUS BUSY, NOANSWER…) and takes its `on_failure` path, and the
call's interaction stays open until the call really ends. The price is one idle socket and task per
queued call; if this process stops, the caller stays in the queue (Asterisk notices the closed socket only
when Queue() returns).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from core.timeline.schemas import RefKind
from voice.agi.errors import (
    AgiApplicationNotFound,
    AgiChannelGone,
    AgiCommandError,
    AgiCommandFailed,
    AgiError,
    AgiTimeout,
)
from voice.agi.protocol import AgiEnvironment
from voice.agi.server import Handler, Router
from voice.agi.session import AgiSession
from voice.ivr.call_runner import CallRunner
from voice.ivr.schema import Flow
from voice.ivr.voice_port import ActionNotDone, CallerGone, CallInfo, CallLost
from voice.prompts import PromptAudio

logger = logging.getLogger(__name__)

SILENCE = "silence/1"  # in Asterisk's core sounds
DEFAULT_TRANSFER_CONTEXT = "centralita-transfer"
DEFAULT_RECORDINGS = "centralita/recordings"
_FILE_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class AgiVoicePort:
    """`voice.ivr.voice_port.VoicePort` on one FastAGI session."""

    def __init__(
        self,
        session: AgiSession,
        *,
        call_id: str | None = None,
        transfer_context: str = DEFAULT_TRANSFER_CONTEXT,
        recordings: str = DEFAULT_RECORDINGS,
        dial_seconds: int = 60,
        silence_seconds: int = 4,
    ) -> None:
        self._session = session
        self._call_id = call_id or session.env.uniqueid
        self._transfer_context = transfer_context
        self._recordings = recordings.rstrip("/")
        self._dial_seconds = dial_seconds
        self._silence_seconds = silence_seconds

    async def answer(self) -> None:
        async with self._agi("ANSWER"):
            await self._session.answer()

    async def play(self, prompt: PromptAudio, *, escape_digits: str = "") -> str | None:
        async with self._agi(f"prompt {prompt.file}"):
            playback = await self._session.stream_file(prompt.file, escape_digits)
        return playback.digit

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        async with self._agi("digit collection"):
            return await self._session.get_data(SILENCE, timeout_ms, max_digits)

    async def enqueue(self, *, queue: str, priority: int, skills: list[str], language: str) -> None:
        session = self._session
        async with self._agi(f"queue {queue}"):
            await session.set_variable("CHANNEL(language)", language)
            await session.set_variable("QUEUE_PRIO", str(priority))
            if skills:
                await session.set_variable("CENTRALITA_SKILLS", ",".join(skills))
            result = await session.exec_("Queue", queue)
            if result < 0:
                raise CallerGone(f"the call ended in queue {queue}")
            status = await session.get_variable("QUEUESTATUS")
        if status and status != "CONTINUE":
            raise ActionNotDone(f"queue {queue}: {status}")

    async def transfer(self, target: str) -> None:
        dial = target if "/" in target else f"Local/{target}@{self._transfer_context}"
        session = self._session
        async with self._agi(f"transfer to {target}"):
            result = await session.exec_("Dial", f"{dial},{self._dial_seconds}")
            if result < 0:
                raise CallerGone(f"the call ended after the transfer to {target}")
            status = await session.get_variable("DIALSTATUS")
        if status and status != "ANSWER":
            raise ActionNotDone(f"transfer to {target}: {status}")

    async def record(self, *, mailbox: str, max_seconds: int, beep: bool) -> str:
        name = f"{self._recordings}/{mailbox}-{_FILE_SAFE.sub('_', self._call_id)}"
        async with self._agi(f"recording {name}"):
            await self._session.record_file(
                name, "wav", "#", max_seconds * 1000, beep=beep, silence_seconds=self._silence_seconds
            )
        return name

    async def hangup(self) -> None:
        async with self._agi("HANGUP"):
            await self._session.hangup()

    # --- errors ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _agi(self, what: str) -> AsyncIterator[None]:
        """AGI errors as the port's: gone, lost, or not done."""
        try:
            yield
        except AgiChannelGone as exc:
            raise CallerGone(f"{what}: {exc}") from exc
        except AgiApplicationNotFound as exc:
            raise ActionNotDone(f"{what}: Asterisk has no such application ({exc})") from exc
        except AgiCommandFailed as exc:
            # result=-1: the file is missing, or the caller hung up. Only asking tells which.
            if not await self._still_up():
                raise CallerGone(f"{what}: the caller hung up") from exc
            raise ActionNotDone(f"{what}: Asterisk could not do it (missing file?)") from exc
        except AgiCommandError as exc:
            raise ActionNotDone(f"{what}: Asterisk refused the command ({exc})") from exc
        except AgiTimeout as exc:
            raise CallLost(f"{what}: {exc}") from exc
        except AgiError as exc:  # protocol errors and the like: the session cannot be trusted
            raise CallLost(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def _still_up(self) -> bool:
        if self._session.hung_up or not self._session.usable:
            return False
        try:
            await self._session.channel_status()
        except AgiError:
            return False
        return not self._session.hung_up


async def call_info(session: AgiSession) -> CallInfo:
    """Who is calling, and the id of the call: the linkedid (shared by every channel of the call), which
    Asterisk does not put in the AGI environment, so it is asked for; the uniqueid if that fails."""
    env = session.env
    linkedid = env.linkedid
    if linkedid is None:
        try:
            linkedid = await session.get_variable("CHANNEL(linkedid)") or None
        except AgiError as exc:
            logger.info("no linkedid for %s (%s); the call is known by its uniqueid", env.uniqueid, exc)
    return CallInfo(
        call_id=linkedid or env.uniqueid,
        ref_kind=(RefKind.ASTERISK_LINKEDID if linkedid else RefKind.ASTERISK_UNIQUEID).value,
        caller=env.callerid,
        called=env.dnid or (env.extension if env.extension not in ("", "s") else None),
        channel=env.channel,
        flow=env.flow,
    )


def ivr_router(
    flows: Callable[[str], Flow | None],
    runner: CallRunner,
    *,
    transfer_context: str = DEFAULT_TRANSFER_CONTEXT,
    recordings: str = DEFAULT_RECORDINGS,
) -> Router:
    """A FastAgiServer router: the flow named in the AGI URL, run by `runner`; None (the server's
    fallback) for a flow nobody has."""

    def route(env: AgiEnvironment) -> Handler | None:
        flow = flows(env.flow)
        if flow is None:
            return None

        async def run_flow(session: AgiSession) -> None:
            call = await call_info(session)
            port = AgiVoicePort(
                session, call_id=call.call_id, transfer_context=transfer_context, recordings=recordings
            )
            await runner.run(flow, port, call)

        return run_flow

    return route
