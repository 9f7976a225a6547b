"""The IVR runner: drives one call through a flow by executing the engine's actions on a voice port.

    report = await runner.run(flow, port, call)

It starts the engine with CallStarted, executes the actions in order, and feeds back the event the new
state awaits (see `voice.ivr.engine` for the contract), until the call is over or handed to a queue or a
transfer. Every step reaches the customer timeline through the call journal, written by a task of its own
so that a slow database never makes a caller wait; only a lookup waits for its answer.

How a call ends:
- the caller hangs up (`CallerGone` from the port): the engine hears CallerHungUp, nothing more is sent;
- the flow hangs up, or hands the call to a queue or a transfer that takes it: the run ends there;
- something unexpected fails in an action: it is logged with the call id and reported to the engine as
  ActionFailed, so the flow's own failure path (re-ask, fall back to a queue, hang up) takes over;
- the engine itself fails (a bug, a broken flow): logged with the call id, the call is hung up.
No exception leaves `run` except cancellation, so one call can never disturb another.

Queues: an EstimateWait asks `queues` (Centralita's live ACD, `routing.ivr_queues`) for the estimated
wait; an EnqueueCall hands the port the customer and what the IVR collected (`ivr_context`: sensitive
digits masked) and a `progress` callback, through which the port reports the agent who answered and the
call leaving the queue (the `agent_connect` and `queue_leave` touchpoints). A caller who hangs up while
waiting in one of Centralita's queues abandoned the call; in Asterisk's Queue() nobody can tell, so it
counts as transferred. An accepted callback is booked through `callback_booker`; a booking that fails
is logged with the call id and the flow goes on (the caller hears the flow's confirmation either way:
the failure is for the operators).

Voicemail: with a `transcriber` that can hear the call's language, the recording is transcribed in a task
of its own once the caller has left it (the call does not wait), and the transcript is added to the
call's interaction as a `recording` touchpoint (input `transcript`), even when the call has ended by then.

The interaction is closed with an outcome: `transferred` (a queue or transfer took the call),
`abandoned` (the caller hung up before the flow was done), `callback_requested`, `contained` (the IVR
finished the call itself), or `failed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.db import utcnow
from core.timeline.schemas import Outcome, TouchpointCreate, TouchpointKind
from voice.call_journal import CallJournal, OpenedCall, action_touchpoint, queue_touchpoint, step_touchpoint
from voice.ivr.actions import (
    Action,
    CollectDigits,
    EnqueueCall,
    EstimateWait,
    Hangup,
    Listen,
    LookupCustomer,
    OfferCallback,
    Play,
    Record,
    RecordStep,
    SendLink,
    Transfer,
)
from voice.ivr.engine import Awaiting, State, masked, step
from voice.ivr.events import (
    ActionFailed,
    CallerHungUp,
    CallStarted,
    CustomerInfo,
    DigitsReceived,
    Event,
    LookupResult,
    NoInput,
    NoMatch,
    PromptFinished,
    QueueWaitEstimated,
    SpeechRecognised,
)
from voice.ivr.schema import CollectNode, Flow, LookupBy
from voice.ivr.voice_port import (
    DTMF_KEYS,
    ActionNotDone,
    CallerGone,
    CallInfo,
    CallLost,
    Question,
    QueueContext,
    QueueProgress,
    SpeechPort,
    VoicePort,
)
from voice.prompts import prompt_audio

logger = logging.getLogger(__name__)


class LinkSender(Protocol):
    """Sends the SMS or WhatsApp message of a SendLink action (its text holds `{link}`); raises
    ActionNotDone (or anything) when it cannot."""

    async def send_link(self, link: SendLink, call: CallInfo) -> None: ...


class CallbackBooker(Protocol):
    """Books the callback a caller accepted (`routing.callbacks`); raises when it cannot. `context`: what
    the IVR collected, plus the flow and node (`ivr_context`)."""

    async def book_callback(
        self, action: OfferCallback, call: CallInfo, *, context: Mapping[str, str]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class VoicemailTranscript:
    text: str  # "" when nothing was recognised
    confidence: float  # 0..1
    engine: str  # e.g. "vosk-es"
    audio_ms: int  # how long the recording is
    latency_ms: int  # from the start of the transcription to the transcript


class VoicemailTranscriber(Protocol):
    """Turns a voicemail into text (`voice.speech.voicemail_transcripts`)."""

    def transcribes(self, recording: str, language: str) -> bool:
        """Whether `recording` (the port's name for it) in `language` can be transcribed here."""
        ...

    async def transcribe(self, recording: str, language: str, *, call_id: str) -> VoicemailTranscript: ...


@dataclass(frozen=True, slots=True)
class WaitForecast:
    """The ACD's estimated wait for a caller joining a queue now."""

    minutes: int | None  # rounded up; None: no estimate (nobody who could answer is serving)
    overflow: bool  # offer the alternatives instead of joining
    reason: str | None = None  # why overflow: no_agents, queue_full, long_wait


class QueueForecaster(Protocol):
    def forecast(self, queue: str) -> WaitForecast | None:
        """The estimated wait in `queue`; None when the ACD does not route that queue."""
        ...


def ivr_context(flow: Flow, state: State) -> dict[str, str]:
    """What the IVR collected, for an agent's screen pop or a callback: the variables (the digits of a
    `sensitive` collect node masked to their last 4), then the flow, the node, the language and what the
    lookup found (these names win over a variable of the same name)."""
    sensitive = {n.variable for n in flow.nodes.values() if isinstance(n, CollectNode) and n.sensitive}
    context = {name: masked(value) if name in sensitive else value for name, value in state.variables.items()}
    context.update(flow=flow.name, node=state.node or "", language=state.language)
    customer = state.customer
    if customer is not None:
        context.update(
            customer_id=str(customer.customer_id),
            vip="yes" if customer.vip else "no",
            open_cases=str(customer.open_case_count),
        )
        if customer.name:
            context["customer_name"] = customer.name
    return context


@dataclass(frozen=True, slots=True)
class CallReport:
    call_id: str
    outcome: Outcome
    state: State
    interaction_id: int | None


class CallRunner:
    """Runs calls; one instance serves every call of a process.

    `journal_grace`: how long the end of a call waits for its timeline writes before leaving them to
    finish in the background (`drain` waits for those). `max_events`: a call that takes more engine
    steps than this is hung up as failed (a flow that would loop for ever).
    """

    def __init__(
        self,
        journal: CallJournal,
        *,
        link_sender: LinkSender | None = None,
        queues: QueueForecaster | None = None,
        callback_booker: CallbackBooker | None = None,
        transcriber: VoicemailTranscriber | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_events: int = 1000,
        journal_grace: float = 5.0,
        hangup_timeout: float = 5.0,
    ) -> None:
        self.journal = journal
        self.link_sender = link_sender
        self.queues = queues
        self.callback_booker = callback_booker
        self.transcriber = transcriber
        self.clock = clock
        self.max_events = max_events
        self.journal_grace = journal_grace
        self.hangup_timeout = hangup_timeout
        self._writers: set[asyncio.Task[None]] = set()
        self._transcripts: set[asyncio.Task[None]] = set()

    async def run(self, flow: Flow, port: VoicePort, call: CallInfo) -> CallReport:
        started_at = self.clock()
        log = _CallLog(logger, {"call": call.call_id, "flow": flow.name})
        writer = _TimelineWriter(self.journal, call, flow, started_at, log)
        self._writers.add(writer.task)
        writer.task.add_done_callback(self._writers.discard)
        active = _ActiveCall(self, flow, port, call, writer, log)
        try:
            await active.drive(started_at)
        except asyncio.CancelledError:
            active.log.warning(
                "cancelled while %s", "with a queue or transfer" if active.in_handoff else "in the IVR"
            )
            active.cut_off()
            raise
        except Exception:
            active.log.exception("the IVR failed; hanging up")
            active.failed = True
            await active.hang_up_quietly()
        finally:
            writer.finish(active.outcome(), self.clock())
            await asyncio.wait({writer.task}, timeout=self.journal_grace)
            if not writer.task.done():
                log.warning("timeline writes still running after %gs; left to finish", self.journal_grace)
        opened = writer.opened_now()
        return CallReport(
            call.call_id, active.outcome(), active.state, opened.interaction_id if opened else None
        )

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the timeline writes of ended calls and their voicemail transcripts (at shutdown, and
        in tests)."""
        if self._writers:
            await asyncio.wait(set(self._writers), timeout=timeout)
        if self._transcripts:
            await asyncio.wait(set(self._transcripts), timeout=timeout)


class _CallLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = self.extra or {}
        return f"call {extra.get('call')} ({extra.get('flow')}): {msg}", kwargs


@dataclass(frozen=True, slots=True)
class _Close:
    outcome: Outcome
    ended_at: datetime


class _TimelineWriter:
    """Opens the call's interaction, adds its touchpoints in order, closes it: one task per call."""

    def __init__(
        self, journal: CallJournal, call: CallInfo, flow: Flow, started_at: datetime, log: _CallLog
    ) -> None:
        self._journal = journal
        self._log = log
        self._jobs: asyncio.Queue[TouchpointCreate | _Close] = asyncio.Queue()
        self.opened: asyncio.Future[OpenedCall | None] = asyncio.get_running_loop().create_future()
        self.finishing = False  # the close is queued: later steps must wait for the task, then write
        self.task = asyncio.create_task(
            self._write(call, flow, started_at), name=f"timeline of {call.call_id}"
        )

    def add(self, touchpoint: TouchpointCreate) -> None:
        self._jobs.put_nowait(touchpoint)

    def finish(self, outcome: Outcome, ended_at: datetime) -> None:
        self.finishing = True
        self._jobs.put_nowait(_Close(outcome, ended_at))

    def opened_now(self) -> OpenedCall | None:
        if self.opened.done() and not self.opened.cancelled():
            return self.opened.result()
        return None

    async def opened_within(self, seconds: float) -> OpenedCall | None:
        await asyncio.wait({self.opened}, timeout=seconds)
        return self.opened_now()

    async def _write(self, call: CallInfo, flow: Flow, started_at: datetime) -> None:
        opened: OpenedCall | None = None
        try:
            opened = await self._journal.open(
                call,
                flow=flow.name,
                flow_version=flow.version,
                language=flow.default_language,
                started_at=started_at,
            )
        except Exception:
            self._log.exception("could not record the call on the timeline; it goes on unrecorded")
        finally:
            self.opened.set_result(opened)
        while True:
            job = await self._jobs.get()
            if opened is None:
                if isinstance(job, _Close):
                    return
                continue
            try:
                if isinstance(job, _Close):
                    await self._journal.close(opened.interaction_id, job.outcome, job.ended_at)
                    return
                await self._journal.add_step(opened.interaction_id, job)
            except Exception:
                what = f"close it ({job.outcome})" if isinstance(job, _Close) else f"add a {job.kind} step"
                self._log.exception("could not %s on interaction %d", what, opened.interaction_id)
                if isinstance(job, _Close):
                    return


@dataclass
class _ActiveCall:
    runner: CallRunner
    flow: Flow
    port: VoicePort
    call: CallInfo
    writer: _TimelineWriter
    log: _CallLog
    state: State = field(default_factory=State)
    gone: bool = False  # the caller hung up, or the link to the call broke
    in_handoff: bool = False  # a queue or transfer is running
    handed_off: bool = False
    abandoned: bool = False
    failed: bool = False
    callback: bool = False
    left_queue: bool = False  # the caller hung up waiting in one of Centralita's queues
    recording: str | None = None
    recognition: dict[str, Any] | None = None  # engine and latency of the latest speech, for its step
    at_node: str | None = None  # the node of the latest step: where the actions after it come from
    entered: dict[str, float] = field(default_factory=dict)  # node -> monotonic time it was entered

    def outcome(self) -> Outcome:
        if self.handed_off:
            return Outcome.TRANSFERRED
        if self.failed:
            return Outcome.FAILED
        if self.abandoned:
            return Outcome.ABANDONED
        if self.callback:
            return Outcome.CALLBACK_REQUESTED
        return Outcome.CONTAINED

    def cut_off(self) -> None:
        """The run was cancelled (the server is stopping)."""
        if self.in_handoff:
            self.handed_off = True  # the queue keeps the caller; only this side of the call stops
        else:
            self.failed = True

    async def drive(self, started_at: datetime) -> None:
        call = self.call
        self.state, actions = step(
            self.flow,
            State(),
            CallStarted(
                caller_number=(call.caller or "")[:64], called_number=(call.called or "")[:64], now=started_at
            ),
        )
        self.log.info("started at node %s", self.state.node)
        try:
            await self.port.answer()
        except CallerGone as exc:
            event: Event | None = self._caller_gone(exc)
            await self._perform(actions)  # the caller is gone: only the timeline hears of the start
        else:
            event = await self._perform(actions)
        for _ in range(self.runner.max_events):
            if event is None:
                self.log.info("ended at node %s: %s", self.state.node, self.outcome().value)
                return
            self.state, actions = step(self.flow, self.state, event)
            event = await self._perform(actions)
        self.log.error("more than %d engine steps: hanging up", self.runner.max_events)
        self.failed = True
        await self.hang_up_quietly()

    async def hang_up_quietly(self) -> None:
        if self.gone:
            return
        try:
            await asyncio.wait_for(self.port.hangup(), self.runner.hangup_timeout)
        except Exception as exc:
            self.log.info("hang-up after a failure did not go through: %s", exc)
        self.gone = True

    # --- one engine step --------------------------------------------------------------------------

    async def _perform(self, actions: list[Action]) -> Event | None:
        if self.gone:  # only the timeline still hears about the call
            for action in actions:
                if isinstance(action, RecordStep):
                    self._record(action)
            return None
        try:
            return await self._perform_live(actions)
        except CallerGone as exc:
            return self._caller_gone(exc)

    def _caller_gone(self, exc: CallerGone) -> Event:
        self.gone = True
        if self.in_handoff and self.left_queue:
            self.abandoned = True
            self.log.info("caller hung up waiting in the queue: %s", exc)
        elif self.in_handoff:
            self.handed_off = True
            self.log.info("call over after the handoff: %s", exc)
        elif isinstance(exc, CallLost):
            self.failed = True
            self.log.warning("lost the call: %s", exc)
        else:
            done = self.state.finished and self.state.awaiting is Awaiting.NOTHING
            self.abandoned = not done
            self.log.info("caller hung up at node %s: %s", self.state.node, exc)
        self.in_handoff = False
        return CallerHungUp()

    async def _perform_live(self, actions: list[Action]) -> Event | None:
        typed: str | None = None  # a key that stopped a prompt: the start of the caller's answer
        answer: Event | None = None
        last = len(actions) - 1
        # A question the port can hear spoken: its interruptible prompts and its digit collection wait
        # for the Listen that ends it, and the three go to the port as one `ask`.
        speech = self._speech_port(actions)
        asked: list[Play] = []
        collect: CollectDigits | None = None
        for index, action in enumerate(actions):
            if isinstance(action, RecordStep):
                self._record(action)
                continue
            if isinstance(action, Listen):
                if speech is None or collect is None:
                    continue  # this port hears keys only: the keypad answers
                try:
                    answer = await self._ask(speech, asked, collect, action)
                except (CallerGone, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    if isinstance(exc, ActionNotDone):
                        self.log.warning("cannot listen (%s); asking with keys only", exc)
                    else:
                        self.log.exception("listening failed; asking with keys only")
                    answer = await self._ask_with_keys(asked, collect)
                continue
            if speech is not None and isinstance(action, Play) and action.barge_in:
                asked.append(action)
                continue
            if speech is not None and isinstance(action, CollectDigits):
                collect = action
                continue
            if isinstance(action, OfferCallback):
                await self._book(action)
                continue
            try:
                if isinstance(action, Play):
                    if typed is not None and action.barge_in:
                        continue  # the caller is already answering
                    key = await self.port.play(
                        prompt_audio(action), escape_digits=DTMF_KEYS if action.barge_in else ""
                    )
                    typed = key if key is not None else typed
                elif isinstance(action, CollectDigits):
                    answer = await self._collect(action, typed)
                    typed = None
                elif isinstance(action, LookupCustomer):
                    answer = LookupResult(customer=await self._lookup(action))
                elif isinstance(action, EstimateWait):
                    answer = self._estimate(action)
                else:
                    await self._act(action)
            except (CallerGone, asyncio.CancelledError):
                raise
            except ActionNotDone as exc:
                reason = str(exc) or type(exc).__name__
                self.log.warning("%s failed: %s", action.type, reason)
            except Exception as exc:
                reason = f"internal error ({type(exc).__name__})"
                self.log.exception("%s failed unexpectedly", action.type)
            else:
                continue
            self.in_handoff = False
            if isinstance(action, Play) and index != last:
                continue  # better silence than a stuck caller: go on with what follows
            return ActionFailed(reason=reason[:500], action=action.type)
        return self._awaited(typed, answer)

    def _speech_port(self, actions: list[Action]) -> SpeechPort | None:
        listen = next((action for action in actions if isinstance(action, Listen)), None)
        port = self.port
        if listen is None or not isinstance(port, SpeechPort) or not port.hears_speech(listen.language):
            return None
        return port

    async def _ask(
        self, port: SpeechPort, prompts: list[Play], collect: CollectDigits, listen: Listen
    ) -> Event:
        heard = await port.ask(
            Question(
                prompts=tuple(prompt_audio(play) for play in prompts),
                phrases=listen.phrases,
                language=listen.language,
                max_digits=collect.max_digits,
                terminator=collect.terminator,
                timeout_ms=max(collect.timeout_ms, listen.timeout_ms),
            )
        )
        digits = "".join(char for char in heard.digits if char in DTMF_KEYS)[:64]
        if digits:
            return DigitsReceived(digits=digits)
        if not heard.spoke:
            return NoInput()
        self.recognition = {"engine": heard.engine, "latency_ms": heard.latency_ms}
        if not heard.text:
            return NoMatch()
        return SpeechRecognised(text=heard.text[:1000], confidence=min(max(heard.confidence, 0.0), 1.0))

    async def _ask_with_keys(self, prompts: list[Play], collect: CollectDigits) -> Event:
        typed: str | None = None
        for play in prompts:
            if typed is not None:
                break
            try:
                typed = await self.port.play(prompt_audio(play), escape_digits=DTMF_KEYS)
            except ActionNotDone as exc:
                self.log.warning("play failed: %s", exc)
        return await self._collect(collect, typed)

    async def _act(self, action: Action) -> None:
        port = self.port
        if isinstance(action, EnqueueCall):
            self._note(action)
            self.in_handoff = True
            opened = self.writer.opened_now()
            await port.enqueue(
                queue=action.queue,
                priority=action.priority,
                skills=list(action.skills),
                language=action.language,
                context=QueueContext(
                    customer_id=self.state.customer.customer_id if self.state.customer else None,
                    interaction_id=opened.interaction_id if opened else None,
                    collected=ivr_context(self.flow, self.state),
                    progress=self._queue_progress,
                ),
            )
            self.handed_off, self.in_handoff = True, False
        elif isinstance(action, Transfer):
            self._note(action)
            self.in_handoff = True
            await port.transfer(action.target)
            self.handed_off, self.in_handoff = True, False
        elif isinstance(action, SendLink):
            sender = self.runner.link_sender
            if sender is None:
                raise ActionNotDone(f"no {action.channel.value} sender is configured")
            await sender.send_link(action, self.call)
            self._note(action)
        elif isinstance(action, Record):
            self.recording = await port.record(
                mailbox=action.mailbox, max_seconds=action.max_seconds, beep=action.beep
            )
            self._transcribe(self.recording)
        elif isinstance(action, Hangup):
            self.gone = True  # whatever the port answers, nothing more is said to this call
            await port.hangup()
        else:
            raise TypeError(f"the runner does not know the action {action.type!r}")

    def _transcribe(self, recording: str) -> None:
        """The voicemail's transcript, off the call's path: a task the runner's `drain` waits for."""
        transcriber = self.runner.transcriber
        language = self.state.language
        if transcriber is None or not transcriber.transcribes(recording, language):
            return
        node = self.at_node or self.state.node
        task = asyncio.create_task(
            self._add_transcript(transcriber, recording, language, node), name=f"transcript of {recording}"
        )
        self.runner._transcripts.add(task)
        task.add_done_callback(self.runner._transcripts.discard)

    async def _add_transcript(
        self, transcriber: VoicemailTranscriber, recording: str, language: str, node: str | None
    ) -> None:
        try:
            transcript = await transcriber.transcribe(recording, language, call_id=self.call.call_id)
            touchpoint = TouchpointCreate(
                kind=TouchpointKind.RECORDING,
                occurred_at=self.runner.clock(),
                node=node,
                input="transcript",
                text=transcript.text[:20_000] or None,
                confidence=min(max(transcript.confidence, 0.0), 1.0) if transcript.text else None,
                attributes={
                    "recording": recording,
                    "transcript": transcript.text[:20_000],
                    "engine": transcript.engine,
                    "confidence": transcript.confidence,
                    "audio_ms": transcript.audio_ms,
                    "latency_ms": transcript.latency_ms,
                },
            )
            writer = self.writer
            if not writer.finishing:
                writer.add(touchpoint)  # the call goes on: its own writer keeps the steps in order
                return
            await asyncio.wait({writer.task})  # one writer at a time: the call's last steps and close first
            opened = writer.opened_now()
            if opened is not None:  # else the call is not on the timeline: nowhere to put it
                await self.runner.journal.add_step(opened.interaction_id, touchpoint)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("voicemail %s: no transcript", recording)

    def _estimate(self, action: EstimateWait) -> QueueWaitEstimated:
        queues = self.runner.queues
        forecast = queues.forecast(action.queue) if queues is not None else None
        if forecast is None:
            return QueueWaitEstimated(routed=False)
        return QueueWaitEstimated(
            routed=True,
            minutes=forecast.minutes,
            overflow=forecast.overflow,
            reason=(forecast.reason or None) and forecast.reason[:32],
        )

    def _queue_progress(self, progress: QueueProgress) -> None:
        if progress.what == "left" and progress.result == "caller hung up":
            self.left_queue = True
        node = self.at_node or self.state.node
        self.writer.add(queue_touchpoint(progress, node=node, occurred_at=self.runner.clock()))

    async def _book(self, action: OfferCallback) -> None:
        booker = self.runner.callback_booker
        if booker is not None:
            context = ivr_context(self.flow, self.state)
            context["node"] = self.at_node or context["node"]  # the offer's, not where the flow went next
            try:
                await booker.book_callback(action, self.call, context=context)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("the callback to %s could not be booked", action.number)
                return
        self.callback = True
        self._note(action)

    async def _collect(self, action: CollectDigits, typed: str | None) -> Event:
        digits = typed or ""
        complete = typed is not None and (len(typed) >= action.max_digits or typed == action.terminator)
        if not complete:
            digits += await self.port.collect_digits(
                max_digits=action.max_digits - len(digits),
                timeout_ms=action.timeout_ms,
                terminator=action.terminator,
            )
        digits = "".join(char for char in digits if char in DTMF_KEYS)[:64]
        return DigitsReceived(digits=digits) if digits else NoInput()

    async def _lookup(self, action: LookupCustomer) -> CustomerInfo | None:
        opened = await self.writer.opened_within(self.runner.journal_grace)
        customer = await self.runner.journal.lookup(action.by, action.value)
        if (
            customer is not None
            and action.by is LookupBy.CALLER
            and opened is not None
            and opened.new_customer
            and opened.customer_id == customer.customer_id
        ):
            return None  # the record this very call made for a new number: nobody the flow knows yet
        return customer

    def _awaited(self, typed: str | None, answer: Event | None) -> Event | None:
        awaiting = self.state.awaiting
        if awaiting is Awaiting.PROMPT:
            return DigitsReceived(digits=typed) if typed else PromptFinished()
        if awaiting is Awaiting.INPUT:
            return answer or NoInput()
        if awaiting is Awaiting.LOOKUP:
            return answer or ActionFailed(reason="no lookup was made", action="lookup_customer")
        if awaiting is Awaiting.ESTIMATE:
            return answer or ActionFailed(reason="no estimate was made", action="estimate_wait")
        return None  # HANDOFF (the queue or transfer took the call) or NOTHING: the run is over

    # --- the timeline -----------------------------------------------------------------------------

    def _record(self, action: RecordStep) -> None:
        self.at_node = action.node
        now = time.monotonic()
        duration_ms = None
        if action.input is None:
            self.entered[action.node] = now
        elif action.node in self.entered:
            duration_ms = round((now - self.entered[action.node]) * 1000)
        extra: dict[str, Any] | None = None
        if action.input == "recorded" and self.recording:
            extra = {"recording": self.recording}
        elif action.input in ("speech", "no-match") and self.recognition is not None:
            extra = {key: value for key, value in self.recognition.items() if value is not None}
            self.recognition = None
        try:
            touchpoint = step_touchpoint(
                action, occurred_at=self.runner.clock(), duration_ms=duration_ms, extra=extra
            )
        except ValueError:
            self.log.exception("step at node %s not recorded", action.node)
            return
        self.writer.add(touchpoint)

    def _note(self, action: EnqueueCall | Transfer | SendLink | OfferCallback) -> None:
        node = self.at_node or self.state.node
        self.writer.add(action_touchpoint(action, node=node, occurred_at=self.runner.clock()))
