"""The IVR over FastAGI: the voice port on an AgiSession, and the router that runs a flow per call.

Asterisk's dialplan sends a call here with `AGI(agi://<host>:4573/<flow>)`; `ivr_router` picks the flow
named in the URL and runs it with the `CallRunner`. An unknown flow gets the server's fallback.

How the port's commands look on the wire:
- `play`: `STREAM FILE <file> "<escape digits>"` (the prompt's file: see `voice.prompts`).
- `collect_digits`: `GET DATA silence/1 <timeout_ms> <max_digits>`: the prompt has been played already,
  so GET DATA plays one second of Asterisk's stock silence while it listens. Asterisk ends GET DATA on
  `#` only; a `*` terminator is collected as a digit and the engine strips it.
- `enqueue` to one of Centralita's queues (a queue the live ACD routes: `routing.ivr_queues`): the
  call joins the live ACD with its priority, skills, customer and what the IVR collected, and waits
  here, inside the AGI session: `SET MUSIC on`, then a `CHANNEL STATUS` every second or so to notice a
  hang-up. When the ACD offers the call to an agent: `SET MUSIC off`, `EXEC Dial <agent endpoint>,
  <ring seconds>,mU(centralita-agent-answered^<call id>)` (music while the phone rings; Dial's `U()`
  subroutine on the agent's leg calls `agi://…/agent-answered` with the call id the moment the agent
  picks up, before the bridge, so the ACD counts them on the call while they talk), `GET VARIABLE
  DIALSTATUS`. NOANSWER, BUSY and the like go back to the ACD, which offers the call to the next agent
  while the caller hears the music again; ANSWER: the conversation is over when Dial returns. A queue
  that may record (`queues.recording`: `always` or `on_demand`) first plays the recording notice
  (`STREAM FILE centralita/<lang>/<hash> ""`, `voice.ivr.recording_consent`), before the call joins; one
  that always records runs `EXEC MixMonitor <recordings path>/<yyyy>/<mm>/<dd>/<call id>-<n>.wav,b`
  before the first Dial (`b`: only while bridged to an agent), and the recording reaches the call's
  timeline when an agent answers (`routing.recording_calls`). A notice that cannot be played (its file
  is missing) leaves the call unrecorded; a MixMonitor Asterisk refuses leaves it unrecorded too. A queue
  that refuses the call (unknown to it by then, full, nobody logged in) or a max wait that runs out
  raises ActionNotDone, so the flow takes its `on_failure` path, as with Queue()'s QUEUESTATUS.
- `enqueue` to any other queue (Asterisk's own, in queues.conf): `SET VARIABLE CHANNEL(language) <lang>`,
  `SET VARIABLE QUEUE_PRIO <n>`, `SET VARIABLE CENTRALITA_SKILLS <a,b>` (for the dialplan or queue
  rules; app_queue has no skills of its own), then `EXEC Queue <queue>` and `GET VARIABLE QUEUESTATUS`.
- `transfer`: `EXEC Dial <target>,<seconds>` (a target without a `/` is dialled as
  `Local/<target>@<transfer context>`, so the dialplan picks the trunk), then `GET VARIABLE DIALSTATUS`.
- `record`: `RECORD FILE <dir>/<mailbox>-<call id> wav "#" <ms> BEEP s=<silence>` (`<dir>`: under
  Asterisk's sounds directory, or `<CENTRALITA_ASTERISK_RECORDINGS_PATH>/voicemail` when Centralita reads
  the recordings, for the transcript).
- `ask` (speech): over AudioSocket, `EXEC AudioSocket <uuid>,<host:port>`; without it (no server here,
  or Asterisk has no AudioSocket()), recorded: the prompts with `STREAM FILE`, then `RECORD FILE
  <recordings path>/speech/<call id>-<n> sln "0123456789*#" <ms> s=<silence>` (`voice.speech.recorded_turn`).

Queues and transfers run *inside* the AGI session (EXEC) rather than ending AGI so the dialplan carries
on: that way the flow learns that a queue refused the call (QUEUESTATUS FULL, JOINEMPTY, TIMEOUT…) or
that a transfer was not answered (DIALSTATUS BUSY, NOANSWER…) and takes its `on_failure` path, and the
call's interaction stays open until the call really ends. The price is one idle socket and task per
queued call; if this process stops, the caller stays in the queue (Asterisk notices the closed socket only
when Queue() returns).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from core.timeline.schemas import RefKind
from routing.ivr_queues import CallLine, IvrQueues, PendingOffer
from routing.live_queues import InboundCall, OfferResult, Outcome
from routing.recording_calls import QueuePlan, RecordingTarget
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
from voice.audiosocket.server import AudioLinkUnavailable
from voice.ivr.call_runner import CallRunner
from voice.ivr.schema import Flow
from voice.ivr.voice_port import (
    ActionNotDone,
    CallerGone,
    CallInfo,
    CallLost,
    Heard,
    Question,
    QueueContext,
    QueueProgress,
)
from voice.prompts import PromptAudio
from voice.queue_wait import QueueWait, inbound_call, join_queue, recording_notice
from voice.speech.listener import SpeechListener
from voice.speech.listening import LinkEnded
from voice.speech.recorded_turn import RecordingsMount, TakeCommand

logger = logging.getLogger(__name__)

SILENCE = "silence/1"  # in Asterisk's core sounds
DEFAULT_TRANSFER_CONTEXT = "centralita-transfer"
DEFAULT_RECORDINGS = "centralita/recordings"
VOICEMAIL_DIR = "voicemail"  # under the shared recordings directory (CENTRALITA_ASTERISK_RECORDINGS_PATH)
# Dial's U() subroutine on the agent's leg (asterisk/templates/extensions.conf) and the AGI script it runs.
AGENT_ANSWERED_CONTEXT = "centralita-agent-answered"
AGENT_ANSWERED_SCRIPT = "agent-answered"
# Dial's result when the agent did not pick up, as the ACD hears it.
_DIAL_RESULTS: dict[str, OfferResult] = {"NOANSWER": "no_answer", "BUSY": "busy"}
_CALL_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
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
        listener: SpeechListener | None = None,
        queues: IvrQueues | None = None,
        caller: str | None = None,
        hold_check_seconds: float = 1.0,
    ) -> None:
        self._session = session
        self._listener = listener
        self._queues = queues
        self._caller = caller
        self._hold_check_seconds = hold_check_seconds
        self._call_id = call_id or session.env.uniqueid
        self._transfer_context = transfer_context
        self._recordings = recordings.rstrip("/")
        self._dial_seconds = dial_seconds
        self._silence_seconds = silence_seconds
        self._call_recordings = 0  # MixMonitor recordings of this call so far: each file has its number
        self._speech_turns = 0  # recorded speech turns so far: each recording's name has its number

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

    def hears_speech(self, language: str) -> bool:
        return self._listener is not None and self._listener.hears(language)

    async def ask(self, question: Question) -> Heard:
        """The question over AudioSocket when it can stream (see `_ask_over_audiosocket`); otherwise, or
        when AudioSocket() cannot be had, recorded by Asterisk and recognised from the file
        (`voice.speech.recorded_turn`), when the recordings directory is shared."""
        listener = self._listener
        if listener is None:
            raise ActionNotDone("this call has no speech listener")
        if listener.streams_audio():
            try:
                return await self._ask_over_audiosocket(listener, question)
            except _AudioSocketUnavailable as exc:
                if listener.recorded is None:
                    raise
                logger.info("call %s: %s; recording the answer instead", self._call_id, exc)
        recorded = listener.recorded
        if recorded is None:
            raise ActionNotDone("no AudioSocket and no shared recordings directory: keys only")
        self._speech_turns += 1
        return await recorded.ask(
            _AgiRecordingLine(self), question, call_id=self._call_id, turn=self._speech_turns
        )

    async def _ask_over_audiosocket(self, listener: SpeechListener, question: Question) -> Heard:
        """`EXEC AudioSocket <uuid>,<host:port>` hands the call's audio to the listener until it closes
        the link; then AudioSocket() returns and AGI goes on. Raises _AudioSocketUnavailable when the
        audio never came (no server, no AudioSocket() in Asterisk, no connection)."""
        links = listener.links
        if links is None:
            raise _AudioSocketUnavailable("no AudioSocket server")
        link_uuid = uuid.uuid4()
        try:
            pending = links.expect(link_uuid, timeout=listener.connect_timeout)
        except AudioLinkUnavailable as exc:
            raise _AudioSocketUnavailable(f"no speech listener: {exc}") from exc
        heard: Heard | None = None
        failure: Exception | None = None
        async with self._agi("listening over AudioSocket"):
            running = asyncio.create_task(
                self._session.exec_("AudioSocket", f"{link_uuid},{listener.address}")
            )
            arriving = asyncio.ensure_future(pending)
            try:
                await asyncio.wait({arriving, running}, return_when=asyncio.FIRST_COMPLETED)
                if not arriving.done() or arriving.exception() is not None:
                    # AudioSocket() could not connect (it returns at once), or nothing came in time.
                    pending.cancel()
                    try:
                        result = await running
                    except AgiApplicationNotFound:
                        listener.audiosocket_missing()
                        raise _AudioSocketUnavailable("Asterisk has no AudioSocket() application") from None
                    if result < 0 and not await self._still_up():
                        raise CallerGone("the caller hung up before AudioSocket() connected")
                    raise _AudioSocketUnavailable("AudioSocket() did not connect to the speech listener")
                link = arriving.result()
                try:
                    heard = await listener.ask(link, question)
                except LinkEnded:
                    pass
                except Exception as exc:  # the turn failed, not the call: AGI must still get its reply
                    failure = exc
                finally:
                    await link.close()
                result = await running
            finally:
                pending.cancel()
                if not running.done():
                    running.cancel()
        if result < 0 or (heard is None and failure is None):
            raise CallerGone("the caller hung up while being listened to")
        if heard is None:
            raise ActionNotDone(f"listening failed: {type(failure).__name__}: {failure}")
        return heard

    async def enqueue(
        self,
        *,
        queue: str,
        priority: int,
        skills: list[str],
        language: str,
        context: QueueContext | None = None,
    ) -> None:
        queues = self._queues
        if queues is not None and queues.routes(queue):
            await self._wait_for_agent(queues, queue, priority, skills, language, context or QueueContext())
            return
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

    # --- Centralita's queues --------------------------------------------------------------------------

    async def _wait_for_agent(
        self,
        queues: IvrQueues,
        queue: str,
        priority: int,
        skills: list[str],
        language: str,
        context: QueueContext,
    ) -> None:
        call = inbound_call(self._call_id, self._caller, queue, priority, skills, context)
        async with self._agi(f"queue {queue}"):
            await self._session.set_variable("CHANNEL(language)", language)
        plan = await recording_notice(self.play, queues, queue, language, context, self._call_id)
        line = queues.open_line(call.call_id)  # first: the ACD may offer the call while it joins
        try:
            joined = await join_queue(queues, call)
            wait = _QueueWait(self, queues, line, call, context, plan)
            wait.joined = joined
            await wait.run()
        finally:
            queues.close_line(call.call_id)

    def _next_recording(self) -> int:
        self._call_recordings += 1
        return self._call_recordings

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


class _AudioSocketUnavailable(ActionNotDone):
    """The call's audio never reached the listener: no server, no AudioSocket() in Asterisk, no connection."""


class _AgiRecordingLine:
    """`voice.speech.recorded_turn.RecordingLine` on the port: STREAM FILE, RECORD FILE, GET DATA."""

    def __init__(self, port: AgiVoicePort) -> None:
        self._port = port

    async def play(self, prompt: PromptAudio, *, escape_digits: str) -> str | None:
        return await self._port.play(prompt, escape_digits=escape_digits)

    async def record(self, take: TakeCommand) -> str | None:
        port = self._port
        async with port._agi(f"recording the answer to {take.name}"):
            recording = await port._session.record_file(
                take.name,
                take.file_format,
                take.escape_digits,
                take.max_ms,
                silence_seconds=take.silence_seconds,
            )
        if recording.reason == "hangup":
            raise CallerGone("the caller hung up while being recorded")
        return recording.digit

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        return await self._port.collect_digits(
            max_digits=max_digits, timeout_ms=timeout_ms, terminator=terminator
        )


class _QueueWait(QueueWait):
    """One call on hold in a live queue, until an agent has talked to it, it leaves, or it is refused."""

    def __init__(
        self,
        port: AgiVoicePort,
        queues: IvrQueues,
        line: CallLine,
        call: InboundCall,
        context: QueueContext,
        plan: QueuePlan | None = None,
    ) -> None:
        self.plan = plan  # the queue's recording plan (None: not recorded)
        self.recording: RecordingTarget | None = None  # MixMonitor's file, once it runs
        self.recording_noted = False
        super().__init__(queues, line, call, context)
        self.port = port
        self.session = port._session
        self.rung: str | None = None  # the agent of the latest offer

    async def run(self) -> None:
        queue = self.call.queue
        outcome = asyncio.ensure_future(self.queues.live.wait(self.call.call_id))
        outcome.add_done_callback(self._on_outcome)
        offered: asyncio.Future[PendingOffer] | None = None
        try:
            async with self.port._agi(f"queue {queue}"):
                await self.session.set_music(True)
                while True:
                    if offered is None:
                        offered = asyncio.ensure_future(self.line.next_offer())
                    waiting: set[asyncio.Future[Any]] = {outcome, offered}
                    done, _ = await asyncio.wait(
                        waiting,
                        timeout=self.port._hold_check_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if offered in done:
                        pending, offered = offered.result(), None
                        if await self._ring(pending, outcome):
                            return
                        await self.session.set_music(True)
                    elif outcome in done:
                        self._not_answered(outcome.result())
                    elif not done:
                        await self.session.channel_status()  # a hang-up on hold shows here
        except CallerGone:
            self.caller_hung_up()
            raise
        finally:
            self.end(outcome, offered)

    def _on_outcome(self, done: asyncio.Future[Outcome]) -> None:
        """The moment the ACD counts the call answered (during Dial, with the dialplan's signal)."""
        if done.cancelled() or done.exception() is not None or done.result().result != "answered":
            return
        self._connect(self.rung or "an agent", done.result().waited_s)

    def _connect(self, agent: str, waited: float) -> None:
        self.connected = agent
        self.report(QueueProgress("left", self.call.queue, waited, agent=agent, result="answered"))
        self.report(QueueProgress("agent_connected", self.call.queue, waited, agent=agent))
        recording = self.queues.recording
        if self.recording is not None and self.plan is not None and recording and not self.recording_noted:
            self.recording_noted = True
            recording.started(
                self.recording,
                plan=self.plan,
                call_id=self.call.call_id,
                interaction_id=self.context.interaction_id,
            )

    def _not_answered(self, outcome: Outcome) -> None:
        why = {"max_wait": "nobody answered within the queue's max wait", "left": "the call left the queue"}
        self.report(QueueProgress("left", self.call.queue, outcome.waited_s, result=outcome.result))
        raise ActionNotDone(f"queue {self.call.queue}: {outcome.result} ({why.get(outcome.result, '')})")

    async def _ring(self, pending: PendingOffer, outcome: asyncio.Future[Outcome]) -> bool:
        """Rings the agent from the caller's channel; True once an agent has talked to the caller."""
        offer = pending.offer
        session = self.session
        seconds = max(1, math.ceil(offer.ring_timeout_s))
        call_ref = _CALL_ID_SAFE.sub("_", self.call.call_id)
        self.line.ringing, self.rung = pending, offer.agent_name
        try:
            await session.set_music(False)
            await self._record()
            result = await session.exec_(
                "Dial", f"{offer.endpoint},{seconds},mU({AGENT_ANSWERED_CONTEXT}^{call_ref})"
            )
            status = await self._dial_status()
        finally:
            self.line.ringing = None
        if status != "ANSWER":
            if result < 0 or status == "CANCEL":  # the caller hung up while it rang: not the agent's doing
                raise CallerGone(f"the caller hung up while {offer.endpoint} rang")
            pending.settle(_DIAL_RESULTS.get(status, "failed"))
            logger.info("call %s: %s did not answer (%s)", self.call.call_id, offer.endpoint, status or "?")
            return False
        # The conversation is over. Without the dialplan's signal the ACD hears of the answer only now.
        if not pending.withdrawn:
            pending.settle("answered")
            await self._counted(outcome, offer.endpoint)
        if self.connected is None:
            # The ACD gave up on the offer (no word of the answer within the ring time): the agent
            # talked to the caller all the same, and the timeline says so.
            logger.warning("call %s: %s answered after the ACD gave up", self.call.call_id, offer.endpoint)
            self._connect(offer.agent_name, self.waited())
            self.queues.live.leave(self.call.call_id)
        self.queues.live.call_ended(self.call.call_id)
        if result < 0:
            raise CallerGone(f"the call ended after {offer.agent_name} answered it")
        return True

    async def _record(self) -> None:
        """MixMonitor on the caller's channel before the first Dial, when the queue always records; a
        refusal leaves the call unrecorded and is no reason to keep the caller from the agent."""
        recording = self.queues.recording
        if self.plan is None or not self.plan.records or self.recording is not None or recording is None:
            return
        target = recording.target(self.call.call_id, self.port._next_recording())
        try:
            result = await self.session.exec_("MixMonitor", f"{target.file},b")
        except (AgiCommandError, AgiCommandFailed) as exc:
            logger.warning("call %s: MixMonitor refused (%s): not recorded", self.call.call_id, exc)
            return
        if result < 0:
            logger.warning("call %s: MixMonitor failed: not recorded", self.call.call_id)
            return
        self.recording = target

    async def _dial_status(self) -> str:
        """DIALSTATUS, also once the caller has hung up: the HANGUP notice that comes first fails the
        first read, and Asterisk still answers GET VARIABLE on a dead channel."""
        try:
            return await self.session.get_variable("DIALSTATUS") or ""
        except AgiChannelGone:
            return await self.session.get_variable("DIALSTATUS") or ""

    async def _counted(self, outcome: asyncio.Future[Outcome], endpoint: str) -> None:
        """Until the ACD has counted the answer (at once when the dialplan signalled it already)."""
        try:
            await asyncio.wait_for(asyncio.shield(outcome), timeout=5.0)
        except TimeoutError:
            logger.warning("call %s: the ACD did not count %s's answer", self.call.call_id, endpoint)


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


def voicemail_recordings(mount: RecordingsMount | None) -> str:
    """Where voicemail is recorded: under the recordings directory Centralita shares with Asterisk, when
    it does (its `voicemail/` is made here: RECORD FILE makes no directories), so that the message can be
    transcribed; otherwise under Asterisk's sounds directory, as before."""
    if mount is None:
        return DEFAULT_RECORDINGS
    try:
        mount.prepare(VOICEMAIL_DIR)
    except OSError as exc:
        logger.error("voicemail goes to %s: cannot make %s: %s", DEFAULT_RECORDINGS, mount.local_dir, exc)
        return DEFAULT_RECORDINGS
    return mount.asterisk_name(VOICEMAIL_DIR)


def ivr_router(
    flows: Callable[[str], Flow | None],
    runner: CallRunner,
    *,
    transfer_context: str = DEFAULT_TRANSFER_CONTEXT,
    recordings: str = DEFAULT_RECORDINGS,
    listener: SpeechListener | None = None,
    queues: IvrQueues | None = None,
) -> Router:
    """A FastAgiServer router: the flow named in the AGI URL, run by `runner`; None (the server's
    fallback) for a flow nobody has. With `queues` (Centralita's live ACD), queue nodes naming one of
    its queues wait for its agents, and `agent-answered` (Dial's U() subroutine) is served too."""

    def route(env: AgiEnvironment) -> Handler | None:
        if env.flow == AGENT_ANSWERED_SCRIPT and queues is not None:
            return _agent_answered(queues)
        flow = flows(env.flow)
        if flow is None:
            return None

        async def run_flow(session: AgiSession) -> None:
            call = await call_info(session)
            port = AgiVoicePort(
                session,
                call_id=call.call_id,
                transfer_context=transfer_context,
                recordings=recordings,
                listener=listener,
                queues=queues,
                caller=call.caller,
            )
            await runner.run(flow, port, call)

        return run_flow

    return route


def _agent_answered(queues: IvrQueues) -> Handler:
    """`AGI(agi://…/agent-answered,<call id>)` on the agent's leg, from Dial's U() subroutine: the ACD
    counts the answer; when no offer of that call is ringing any more (the caller hung up a moment
    before), `GOSUB_RESULT=CONTINUE` makes Dial hang up the agent instead of bridging them (a caller still
    there goes on with the dialplan: back to this AGI session)."""

    async def answered(session: AgiSession) -> None:
        env = session.env
        call_id = env.arguments[0] if env.arguments else ""
        agent = queues.agent_answered(call_id) if call_id else None
        if agent is None:
            await session.set_variable("GOSUB_RESULT", "CONTINUE")
        else:
            logger.info("call %s answered by %s on %s", call_id, agent, env.channel)

    return answered
