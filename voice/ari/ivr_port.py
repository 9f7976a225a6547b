"""The IVR over ARI: the voice port on one channel in the Stasis application, driven by its events.

Asterisk's dialplan sends a call here with `Stasis(<app>,ivr,<flow>,<number>)`; `StasisIvr` (in
`voice.ari.stasis_app`) makes an `AriVoicePort` for the channel and runs the flow on it with the
`CallRunner`, exactly as the FastAGI router does with `AgiVoicePort`. The port listens to the channel's
events through the `AriRouter` from the moment it is made, so no key pressed after StasisStart is missed.

How the port's commands look over ARI:
- `answer`: `POST /channels/{id}/answer`.
- `play`: `POST /channels/{id}/play?media=sound:<file>&playbackId=<our id>` (the prompt's file: see
  `voice.prompts`), then the PlaybackFinished of that id. The id is chosen here so that events that
  overtake the REST reply still match. State `failed` (Asterisk has no such sound: 201, then
  PlaybackFinished `failed`) is ActionNotDone. With `escape_digits`, a key pressed during the prompt
  stops it (`DELETE /playbacks/{id}`) and is returned.
- `collect_digits`: no request at all: ChannelDtmfReceived events, with `timeout_ms` before the first
  key and between keys, up to `max_digits` or the terminator (any key, `*` included).
- Type-ahead: every key the caller presses is kept, in order, until a command takes it. Keys pressed
  during a prompt that cannot be interrupted answer the next question; a key already waiting when an
  interruptible prompt starts answers it at once, without playing it (the caller is ahead of the menu).
  Keys pressed while a recording runs or while the call is with a queue are not for the IVR: dropped;
  so is the terminator pressed right after an entry that was already full ("16 digits, then #").
- `enqueue` to one of Centralita's queues (a queue the live ACD routes: `routing.ivr_queues`, the same
  rule as over FastAGI): the caller stays in the application. `POST .../variable` CHANNEL(language),
  `POST /channels/{id}/moh` (music on hold), and the call joins the live ACD with its priority, skills,
  customer (who handled their open case last is preferred: `routing.preferred_agent`) and what the IVR
  collected. When the ACD offers the call to an agent, the agent's endpoint is originated into the
  application (`POST /channels?endpoint=<agent endpoint>&app=<app>&appArgs=agent,<call id>
  &timeout=<ring seconds>&channelId=<caller's id>-agent-<n>`, the caller's number as caller id) while
  the caller hears the music. The agent's StasisStart is the answer: `POST /bridges?type=mixing`,
  `DELETE .../moh`, `POST /bridges/{id}/addChannel?channel=<caller>,<agent>`, and the ACD counts the
  agent on the call (the timeline gets the queue's `queue_leave` and `agent_connect`). A queue that
  records plays its notice before the call joins, and for `always` records the bridge (`POST
  /bridges/{id}/record`, `routing.recording_calls.QueueRecording.record_bridge`); the recording is on
  the timeline once the agent answers. An agent's leg
  that ends unanswered tells the ACD why (Q.850 cause 17/21 or dial status BUSY: busy; 18/19,
  NOANSWER, or no end within the ring time: no answer; else failed), and the ACD offers the call to the
  next agent while the caller keeps holding. The conversation is over when either side hangs up: the
  other is hung up, the bridge destroyed, the agent goes to wrap-up, and `enqueue` raises CallerGone
  (the call was handed over). A caller who hangs up while holding leaves the queue; a refusal (queue
  full, nobody logged in) or the queue's max wait is ActionNotDone (music stopped), so the flow takes
  its `on_failure` path, as over FastAGI.
- `enqueue` to any other queue (Asterisk's own, in queues.conf): `POST .../variable` CHANNEL(language),
  QUEUE_PRIO, CENTRALITA_SKILLS (when there are skills), CENTRALITA_QUEUE; then
  `POST /channels/{id}/continue` to `<handoff context>,queue,1`.
- `transfer`: CENTRALITA_DIAL (a target without a `/` is dialled as `Local/<target>@<transfer context>`,
  as over AGI) and CENTRALITA_DIAL_SECONDS, then continue to `<handoff context>,dial,1`.
- `ask` (a question by voice, when the port has a speech listener: `voice.speech.listener`): the caller
  goes into a mixing bridge of their own with an external-media channel that Asterisk connects to the
  listener's AudioSocket server — `POST /bridges?type=mixing`, `POST /bridges/{id}/addChannel?channel=
  <caller>`, `POST /channels/externalMedia?app=<app>&external_host=<listener address>&encapsulation=
  audiosocket&transport=tcp&format=slin&data=<uuid>&channelId=<caller's id>-media-<n>` (the UUID is
  expected on the server first: Asterisk connects while it answers the POST), then addChannel for the
  media channel. The listener plays the prompts and hears the answer over the socket; no ARI playback.
  Keys come from ChannelDtmfReceived, as everywhere in this port (Asterisk does not always pass DTMF
  into an external-media channel): the first stops the turn, and keys are collected as `collect_digits`
  does. A key the socket reported first and ARI reports afterwards is not taken twice. Afterwards, in
  every case: `DELETE /channels/<media>`, `POST /bridges/{id}/removeChannel?channel=<caller>`,
  `DELETE /bridges/{id}`. No link within the listener's `connect_timeout`, an Asterisk without
  chan_audiosocket (externalMedia refused) or a failed turn are ActionNotDone: the runner asks again
  with keys. The media channel's own StasisStart is not a call (its name is `AudioSocket/...`:
  `voice.ari.stasis_app`).
- `record`: `POST /channels/{id}/record?name=<dir>/<mailbox>-<call id>&format=wav&terminateOn=#
  &maxDurationSeconds=…&maxSilenceSeconds=…&beep=…&ifExists=overwrite`, then RecordingFinished or
  RecordingFailed. A hang-up while recording keeps the recording: `record` returns its name.
- `hangup`: `DELETE /channels/{id}`.
- `close` (by StasisIvr when the run is over): stops listening; a channel still in the application goes
  on in the dialplan (`POST .../continue`), as a FastAGI call does when its socket closes.

Asterisk's queues and transfers: the channel leaves the application for a small dialplan context that
runs Queue() or Dial() and then comes *back* into the application with the result as Stasis arguments:

    [centralita-handoff]
    exten => queue,1,Queue(${CENTRALITA_QUEUE})
     same => n,Stasis(${CENTRALITA_ARI_APP},handoff,queue,${QUEUESTATUS})
     same => n,Hangup()
    exten => dial,1,Dial(${CENTRALITA_DIAL},${CENTRALITA_DIAL_SECONDS})
     same => n,Stasis(${CENTRALITA_ARI_APP},handoff,dial,${DIALSTATUS})
     same => n,Hangup()

(CENTRALITA_ARI_APP, the application's name, is a global of the rendered dialplan.) That is the ARI form
of AGI's `EXEC Queue` + `GET VARIABLE QUEUESTATUS`: the flow learns that the queue refused the call
(FULL, JOINEMPTY, TIMEOUT…) or that nobody answered the transfer (BUSY, NOANSWER, CHANUNAVAIL…) and
takes its `on_failure` path, while app_queue keeps doing what it does well (agents, penalties,
announcements). A bridge made here instead would tell the same for a transfer but not for a queue,
which ARI does not have. The call's interaction stays open until the call really ends: once the channel
has left the application Asterisk sends the application nothing more about it, so the port asks
`GET /channels/{id}` every `handoff_poll` seconds; a 404 is the end of the call. (Hang-up events, when
the application is subscribed to the channel, end it at once.)

Errors, as the voice port's: `AriNotFound` on the channel, ChannelHangupRequest, ChannelDestroyed and a
StasisEnd outside a handoff are CallerGone; a 409/412/422 ("not in Stasis") is CallerGone when the
channel is gone and ActionNotDone when it is not; other error replies are ActionNotDone; a broken
connection, refused credentials or a reply ARI would not send are CallLost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from routing.ivr_queues import CallLine, IvrQueues, PendingOffer
from routing.live_queues import InboundCall, OfferResult, Outcome
from routing.recording_calls import QueuePlan, RecordingTarget
from voice.ari.errors import (
    AriConflict,
    AriConnectionError,
    AriError,
    AriHttpError,
    AriNotFound,
    AriPreconditionFailed,
    AriUnauthorized,
    AriUnprocessable,
)
from voice.ari.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    Dial,
    PlaybackFinished,
    PlaybackStarted,
    RecordingFailed,
    RecordingFinished,
    RecordingStarted,
    StasisEnd,
    StasisStart,
)
from voice.ari.port import AriPort
from voice.ari.router import AriRouter
from voice.audiosocket.port import AudioLink
from voice.audiosocket.server import AudioLinkUnavailable
from voice.ivr.voice_port import (
    ActionNotDone,
    CallerGone,
    CallLost,
    Heard,
    Question,
    QueueContext,
    QueueProgress,
    VoicePortError,
)
from voice.prompts import PromptAudio
from voice.queue_wait import QueueWait, inbound_call, join_queue, recording_notice
from voice.speech.listener import PendingAudioLink, SpeechListener
from voice.speech.listening import LinkEnded
from voice.subscription import Subscription

logger = logging.getLogger(__name__)

HANDOFF = "handoff"  # the first Stasis argument of a channel coming back from a queue or a transfer
AGENT_LEG = "agent"  # ... and of an agent's phone rung for a call waiting in Centralita's queue
DEFAULT_HANDOFF_CONTEXT = "centralita-handoff"
DEFAULT_TRANSFER_CONTEXT = "centralita-transfer"
DEFAULT_RECORDINGS = "centralita/recordings"
MAX_TYPE_AHEAD = 64  # keys kept for later; a caller leaning on the keypad cannot grow memory
_FILE_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CALL_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# How an agent's phone that never answered ended, as the ACD hears it (the rest: "failed").
_BUSY_CAUSES = frozenset({17, 21})  # user busy; call rejected (an agent who declines)
_NO_ANSWER_CAUSES = frozenset({18, 19})  # no user responding; no answer (the ring time-out)
_DIAL_RESULTS: dict[str, OfferResult] = {
    "BUSY": "busy",
    "NOANSWER": "no_answer",
    "CHANUNAVAIL": "failed",
    "CONGESTION": "failed",
}

MEDIA_LINK_FORMAT = "slin"  # 8 kHz 16-bit PCM: AudioSocket's own format, what the listener reads
ECHO_SECONDS = 2.0  # how late ARI may report a key the audio link reported first

Waiting = Literal["prompt", "digits", "recording", "handoff", "queue", "speech"]


@dataclass(frozen=True, slots=True)
class AriPortOptions:
    """How the port drives Asterisk; one set for every call of a StasisIvr.

    `prompt_limit`: a prompt whose PlaybackFinished has not come after this many seconds is stopped and
    reported as not done (its events were lost, e.g. while the event stream reconnected).
    `handoff_poll`: how often a call with a queue or transfer is checked for its end.
    `poll_failures`: consecutive failed checks (no connection to Asterisk) that make the call lost.
    `agent_ring_margin`: past the offer's ring time, how long an agent's phone whose end was never heard
    may ring before it is hung up as not answered (Asterisk's originate time-out normally ends it).
    """

    handoff_context: str = DEFAULT_HANDOFF_CONTEXT
    transfer_context: str = DEFAULT_TRANSFER_CONTEXT
    recordings: str = DEFAULT_RECORDINGS
    dial_seconds: int = 60
    silence_seconds: int = 4
    prompt_limit: float = 300.0
    recording_grace: float = 10.0
    handoff_poll: float = 5.0
    poll_failures: int = 3
    agent_ring_margin: float = 5.0


@dataclass(slots=True)
class _Playback:
    id: str
    state: str | None = None  # PlaybackFinished's: "done", or "failed" for a sound Asterisk lacks


@dataclass(slots=True)
class _Recording:
    name: str
    started: bool = False
    state: str | None = None  # "done" (RecordingFinished), "failed" (RecordingFailed)
    cause: str | None = None


@dataclass(slots=True)
class _MediaTurn:
    """What one question by voice made in Asterisk, so that everything made is undone."""

    bridge_id: str
    media_id: str
    bridge: bool = False  # created
    caller_in: bool = False  # the caller was added to it
    media: bool = False  # the external-media channel was asked for (it may exist)


@dataclass(slots=True)
class _AgentLeg:
    """An agent's phone rung for the call: originated into the application, answered, bridged."""

    endpoint: str
    channel_id: str
    answered: bool = False  # its StasisStart came
    gone: str | None = None  # why it ended, once it has
    cause: int | None = None  # ChannelDestroyed's Q.850 cause
    dial_status: str = ""


@dataclass(slots=True)
class _Handoff:
    returned: bool = False  # the channel came back into the application
    status: str | None = None  # QUEUESTATUS / DIALSTATUS it brought; None: it brought none


class AriVoicePort:
    """`voice.ivr.voice_port.VoicePort` on one channel of the Stasis application.

    Listens from construction; `close()` (always, when the call is over) stops listening and lets a
    channel still in the application go on in the dialplan. `call_id` names recordings and the call in
    the live ACD (the linkedid, once StasisIvr knows it); `caller` is the caller's number, for the
    agent's phone and screen pop. With `queues` (Centralita's live ACD) and `application` (the Stasis
    application agents' phones are originated into), queue nodes naming one of its queues wait for
    its agents here. With `listener` (and `application`, where the external-media channel is made),
    `ask` puts questions by voice. `waiting_for` says what the call waits for, if anything.
    """

    def __init__(
        self,
        ari: AriPort,
        router: AriRouter,
        channel_id: str,
        *,
        call_id: str | None = None,
        options: AriPortOptions = AriPortOptions(),
        queues: IvrQueues | None = None,
        application: str | None = None,
        caller: str | None = None,
        listener: SpeechListener | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.call_id = call_id or channel_id
        self.caller = caller
        self.waiting_for: Waiting | None = None
        self._ari = ari
        self._router = router
        self._options = options
        self._queues = queues
        self._application = application
        self._agent: _AgentLeg | None = None  # the agent's phone being rung or talked to
        self._agent_legs = 0
        self._recordings = 0  # bridge recordings of this call so far: each file has its number
        self._listener = listener
        self._speech_turns = 0
        self._echo: tuple[str, float] | None = None  # (keys, until): see _ignore_echo
        self._talking_on: str | None = None  # a bridge left to Asterisk when the run was cancelled
        self._digits: deque[str] = deque()
        self._late_terminator: tuple[str, float] | None = None  # (key, until): see _expect_terminator
        self._changed = asyncio.Event()  # set by every event about the call; waits clear it first
        self._gone: str | None = None  # why the call is over for us, once it is
        self._in_app = True  # the channel is in the application (not in the dialplan for a handoff)
        self._playback: _Playback | None = None
        self._recording: _Recording | None = None
        self._handoff: _Handoff | None = None
        self._closed = False
        self._subscription = router.on_channel(channel_id, self._on_event)

    @property
    def gone(self) -> bool:
        return self._gone is not None

    # --- VoicePort ---------------------------------------------------------------------------------

    async def answer(self) -> None:
        self._check_up("answer")
        async with self._ari_errors("answer"):
            await self._ari.answer(self.channel_id)

    async def play(self, prompt: PromptAudio, *, escape_digits: str = "") -> str | None:
        what = f"prompt {prompt.file}"
        self._check_up(what)
        key = self._escape_key(escape_digits)
        if key is not None:
            return key  # typed ahead: the caller already answers what this prompt asks
        playback = self._playback = _Playback(f"centralita-{uuid.uuid4().hex}")
        self.waiting_for = "prompt"
        try:
            async with self._ari_errors(what):
                await self._ari.play(self.channel_id, f"sound:{prompt.file}", playback_id=playback.id)
            deadline = _now() + self._options.prompt_limit
            while True:
                self._changed.clear()
                if playback.state is not None:
                    break
                key = self._escape_key(escape_digits)
                if key is not None:
                    await self._stop_playback(playback.id, what)
                    return key
                self._check_up(what)
                if not await self._next_event(deadline):
                    await self._stop_playback(playback.id, what)
                    raise ActionNotDone(f"{what}: no end of playback after {self._options.prompt_limit:g}s")
        finally:
            self._playback = None
            self.waiting_for = None
        if playback.state == "failed":
            raise ActionNotDone(f"{what}: Asterisk could not play it (missing sound file?)")
        return None

    async def collect_digits(self, *, max_digits: int, timeout_ms: int, terminator: str | None) -> str:
        self._check_up("digit collection")
        collected = ""
        if max_digits <= 0:
            return collected
        wait = timeout_ms / 1000
        deadline = _now() + wait
        self.waiting_for = "digits"
        try:
            while True:
                self._changed.clear()
                while self._digits:
                    digit = self._digits.popleft()
                    if terminator and digit == terminator:
                        return collected
                    collected += digit
                    if len(collected) >= max_digits:
                        self._expect_terminator(terminator, wait)
                        return collected
                    deadline = _now() + wait  # the time-out runs between keys
                self._check_up("digit collection")
                if not await self._next_event(deadline):
                    return collected
        finally:
            self.waiting_for = None

    # --- SpeechPort ---------------------------------------------------------------------------------

    def hears_speech(self, language: str) -> bool:
        """Over ARI a turn is heard only through the AudioSocket server (nothing is recorded instead)."""
        listener = self._listener
        return (
            listener is not None
            and bool(self._application)
            and bool(listener.address)
            and listener.streams_audio()
            and language.split("-")[0] in listener.languages
        )

    async def ask(self, question: Question) -> Heard:
        """The question over an external-media channel bridged with the caller; see the module's text."""
        what = "listening over external media"
        self._check_up(what)
        listener = self._listener
        links = listener.links if listener is not None else None
        if listener is None or links is None or not self._application or not listener.address:
            raise ActionNotDone(f"{what}: this call has no AudioSocket speech listener")
        if self._digits:
            # Typed ahead: the caller answers with keys before the question is even asked.
            return Heard(digits=await self._keys_for(question, listener))
        self._speech_turns += 1
        turn = _MediaTurn(
            f"{self.channel_id}-speech-{self._speech_turns}", f"{self.channel_id}-media-{self._speech_turns}"
        )
        link_uuid = uuid.uuid4()
        try:
            pending = links.expect(link_uuid, timeout=listener.connect_timeout)
        except AudioLinkUnavailable as exc:
            raise ActionNotDone(f"{what}: {exc}") from exc
        self.waiting_for = "speech"
        try:
            await self._bridge_media(turn, listener.address, link_uuid, what)
            link = await self._link(pending, what)
            return await self._listen(listener, link, question, what)
        finally:
            pending.cancel()  # withdraws the UUID, or closes the link that came
            self.waiting_for = None
            await self._undo(turn)

    async def _bridge_media(self, turn: _MediaTurn, address: str, link_uuid: uuid.UUID, what: str) -> None:
        """The caller in a bridge of their own, then the external-media channel that Asterisk connects to
        the listener (it connects while answering the POST: the caller must hear the first prompt)."""
        async with self._ari_errors(what):
            await self._ari.create_bridge("mixing", bridge_id=turn.bridge_id)
            turn.bridge = True
            await self._ari.add_channel(turn.bridge_id, self.channel_id)
            turn.caller_in = True
            turn.media = True  # before the POST: a reply lost on the way may still have made it
            await self._ari.external_media(
                self._application or "",
                address,
                MEDIA_LINK_FORMAT,
                channel_id=turn.media_id,
                encapsulation="audiosocket",
                transport="tcp",
                data=str(link_uuid),
            )
            await self._ari.add_channel(turn.bridge_id, turn.media_id)
        self._check_up(what)

    async def _link(self, pending: PendingAudioLink, what: str) -> AudioLink:
        """The AudioSocket connection of the media channel, unless the caller hangs up first."""
        arriving: asyncio.Future[AudioLink] = asyncio.ensure_future(pending)
        arriving.add_done_callback(self._wake)
        try:
            while True:
                self._changed.clear()
                if arriving.done():
                    break
                self._check_up(what)
                await self._changed.wait()
        finally:
            if not arriving.done():
                arriving.cancel()
        try:
            return arriving.result()
        except AudioLinkUnavailable as exc:
            raise ActionNotDone(f"{what}: Asterisk did not connect to the speech listener ({exc})") from exc

    async def _listen(
        self, listener: SpeechListener, link: AudioLink, question: Question, what: str
    ) -> Heard:
        """The listener's turn on the link, until it answers, the caller presses a key (heard over ARI:
        the turn stops and the keys are collected here) or hangs up."""
        self._echo = None  # keys pressed from the start of the turn (even while connecting) stop it
        listening = asyncio.create_task(listener.ask(link, question), name=f"listen {self.channel_id}")
        listening.add_done_callback(self._wake)
        try:
            while True:
                self._changed.clear()
                if self._digits:
                    break
                if listening.done():
                    return await self._heard(listening, what)
                self._check_up(what)
                await self._changed.wait()
        finally:
            if not listening.done():
                listening.cancel()
                await asyncio.gather(listening, return_exceptions=True)
        # A key over ARI: the turn is over; the prompt stops when the link closes.
        await link.close()
        return Heard(digits=await self._keys_for(question, listener))

    async def _heard(self, listening: asyncio.Task[Heard], what: str) -> Heard:
        self._check_up(what)
        try:
            heard = listening.result()
        except LinkEnded as exc:
            # Asterisk closes the socket when the call ends, maybe before ARI says the caller hung up.
            if not await self._still_up():
                raise CallerGone(f"{what}: the caller hung up") from exc
            raise ActionNotDone(f"{what}: the audio link ended during the turn") from exc
        except Exception as exc:  # the turn failed, not the call: the runner asks with keys
            raise ActionNotDone(f"{what}: {type(exc).__name__}: {exc}") from exc
        if heard.digits:
            # Keys the socket heard first: ARI's report of the same keys must not answer the next question.
            self._ignore_echo(heard.digits)
        return heard

    async def _keys_for(self, question: Question, listener: SpeechListener) -> str:
        """Keys answer the question as in `collect_digits`, the pause between keys as in a speech turn."""
        return await self.collect_digits(
            max_digits=max(question.max_digits, 1),
            timeout_ms=listener.rules.inter_digit_ms,
            terminator=question.terminator,
        )

    def _ignore_echo(self, digits: str) -> None:
        """The socket heard these keys before ARI reported them: ARI's reports of them, in order and
        within ECHO_SECONDS, are the same presses (see `_on_event`)."""
        self._echo = (digits, _now() + ECHO_SECONDS)

    async def _undo(self, turn: _MediaTurn) -> None:
        """Hang up the media channel, take the caller out, destroy the bridge: each step whatever became
        of the one before, so that the caller is never left in a bridge with nobody to talk to."""
        if turn.media:
            await _hang_up(self._ari, turn.media_id)
        if turn.caller_in and self._gone is None:
            try:
                await self._ari.remove_channel(turn.bridge_id, self.channel_id)
            except AriNotFound:
                pass  # the caller or the bridge is gone
            except AriError as exc:
                logger.warning(
                    "channel %s: could not leave bridge %s: %s", self.channel_id, turn.bridge_id, exc
                )
        if turn.bridge:
            await _destroy_bridge(self._ari, turn.bridge_id)

    async def enqueue(
        self,
        *,
        queue: str,
        priority: int,
        skills: list[str],
        language: str,
        context: QueueContext | None = None,
    ) -> None:
        """One of Centralita's queues: the caller waits here, in the application, for the live ACD's
        agents; any other: Asterisk's Queue() through the dialplan (`centralita-handoff`), where
        `context` is not used. See the module docstring."""
        queues = self._queues
        if queues is not None and self._application and queues.routes(queue):
            await self._wait_for_agent(queues, queue, priority, skills, language, context or QueueContext())
            return
        variables = {"CHANNEL(language)": language, "QUEUE_PRIO": str(priority)}
        if skills:
            variables["CENTRALITA_SKILLS"] = ",".join(skills)
        variables["CENTRALITA_QUEUE"] = queue
        status = await self._hand_off(f"queue {queue}", "queue", variables)
        if status is None:
            raise ActionNotDone(f"queue {queue}: came back without a QUEUESTATUS (check the dialplan)")
        if status and status != "CONTINUE":
            raise ActionNotDone(f"queue {queue}: {status}")

    async def transfer(self, target: str) -> None:
        dial = target if "/" in target else f"Local/{target}@{self._options.transfer_context}"
        variables = {"CENTRALITA_DIAL": dial, "CENTRALITA_DIAL_SECONDS": str(self._options.dial_seconds)}
        status = await self._hand_off(f"transfer to {target}", "dial", variables)
        if status is None:
            raise ActionNotDone(f"transfer to {target}: came back without a DIALSTATUS (check the dialplan)")
        if status and status != "ANSWER":
            raise ActionNotDone(f"transfer to {target}: {status}")

    async def record(self, *, mailbox: str, max_seconds: int, beep: bool) -> str:
        options = self._options
        name = f"{options.recordings.rstrip('/')}/{mailbox}-{_FILE_SAFE.sub('_', self.call_id)}"
        what = f"recording {name}"
        self._check_up(what)
        recording = self._recording = _Recording(name)
        self._digits.clear()  # keys pressed from here on belong to the recording ('#' ends it)
        self.waiting_for = "recording"
        try:
            async with self._ari_errors(what):
                await self._ari.record(
                    self.channel_id,
                    name,
                    format="wav",
                    max_duration_seconds=max_seconds,
                    max_silence_seconds=options.silence_seconds,
                    if_exists="overwrite",
                    beep=beep,
                    terminate_on="#",
                )
            deadline = _now() + max_seconds + options.recording_grace
            while True:
                self._changed.clear()
                if recording.state is not None or self._gone is not None:
                    break  # a hang-up ends the recording; what was said is kept
                if not await self._next_event(deadline):
                    await self._stop_recording(name)
                    if recording.started:
                        break
                    raise ActionNotDone(f"{what}: Asterisk never reported it")
        finally:
            self._recording = None
            self._digits.clear()
            self.waiting_for = None
        if recording.state == "failed":
            raise ActionNotDone(f"{what}: {recording.cause or 'failed'}")
        return name

    async def hangup(self) -> None:
        self._check_up("hangup")
        async with self._ari_errors("hangup"):
            await self._ari.hangup(self.channel_id)
        self._mark_gone("hung up by the IVR")

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
        what = f"queue {queue}"
        self._check_up(what)
        call = inbound_call(self.call_id, self.caller, queue, priority, skills, context)
        async with self._ari_errors(what):
            await self._ari.set_variable(self.channel_id, "CHANNEL(language)", language)
        plan = await recording_notice(self.play, queues, queue, language, context, self.call_id)
        line = queues.open_line(call.call_id)  # first: the ACD may offer the call while it joins
        self.waiting_for = "queue"
        try:
            joined = await join_queue(queues, call)
            wait = _AriQueueWait(self, queues, line, call, context, plan)
            wait.joined = joined
            await wait.run()
        finally:
            queues.close_line(call.call_id)
            self._digits.clear()  # keys pressed in the queue were not for the IVR
            self.waiting_for = None

    def _ring_agent(self, endpoint: str) -> tuple[_AgentLeg, Subscription]:
        """A new leg for the agent's phone, listened to before it is originated (Asterisk sends its first
        events before it answers the POST)."""
        self._agent_legs += 1
        leg = self._agent = _AgentLeg(endpoint, f"{self.channel_id}-agent-{self._agent_legs}")
        return leg, self._router.on_channel(leg.channel_id, lambda event: self._on_agent_event(leg, event))

    def _on_agent_event(self, leg: _AgentLeg, event: AriEvent) -> None:
        if isinstance(event, StasisStart) and event.channel.id == leg.channel_id:
            leg.answered = True
        elif isinstance(event, Dial) and event.peer.id == leg.channel_id and event.dialstatus:
            leg.dial_status = event.dialstatus
        elif isinstance(event, ChannelHangupRequest | ChannelDestroyed | StasisEnd):
            if event.channel.id != leg.channel_id:
                return
            if not isinstance(event, StasisEnd) and event.cause:
                leg.cause = event.cause  # 0 says nothing: a later event may tell more
            if leg.gone is None:
                leg.gone = event.type
        else:
            return
        self._changed.set()

    def _wake(self, _: object = None) -> None:
        """A done-callback: what the queue wait waits for changed (an offer, the ACD's outcome)."""
        self._changed.set()

    # --- the end of the call -------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop listening; a channel still in the application goes on in the dialplan (idempotent)."""
        self._subscription.cancel()
        if self._closed:
            return
        self._closed = True
        if self._gone is not None or not self._in_app or self._talking_on is not None:
            return  # hung up, with a queue or transfer, or talking to an agent: nothing to hand back
        try:
            await self._ari.continue_in_dialplan(self.channel_id)
        except AriNotFound:
            pass  # it hung up meanwhile
        except AriError as exc:
            logger.warning("channel %s: could not hand it back to the dialplan: %s", self.channel_id, exc)

    async def check_channel(self) -> None:
        """Ask Asterisk whether the channel still exists (after the event stream reconnected: events
        sent meanwhile are lost). A channel that is gone ends whatever the call waits for."""
        if self._gone is not None:
            return
        try:
            await self._ari.get_channel(self.channel_id)
        except AriNotFound:
            self._mark_gone("the channel is gone")
        except AriError as exc:
            logger.info("channel %s: could not check it: %s", self.channel_id, exc)
        leg = self._agent
        if leg is None or leg.gone is not None:
            return
        try:
            await self._ari.get_channel(leg.channel_id)
        except AriNotFound:
            leg.gone = "the agent's channel is gone"
            self._changed.set()
        except AriError as exc:
            logger.info("channel %s: could not check it: %s", leg.channel_id, exc)

    # --- events -------------------------------------------------------------------------------------

    def _on_event(self, event: AriEvent) -> None:
        """Called by the router for each event about the channel: note it, wake the waiting command."""
        if isinstance(event, ChannelDtmfReceived):
            if event.channel.id != self.channel_id:
                return
            late, self._late_terminator = self._late_terminator, None
            if late is not None and event.digit == late[0] and _now() <= late[1]:
                return  # the caller finishing an entry that was already full, as asked to
            echo, self._echo = self._echo, None
            if echo is not None and event.digit == echo[0][0] and _now() <= echo[1]:
                if len(echo[0]) > 1:
                    self._echo = (echo[0][1:], echo[1])
                return  # a key of the last speech turn, heard over its audio link first
            if len(self._digits) < MAX_TYPE_AHEAD:
                self._digits.append(event.digit)
        elif isinstance(event, PlaybackFinished):
            playback = self._playback
            if playback is not None and event.playback.id == playback.id:
                playback.state = event.playback.state or "done"
        elif isinstance(event, RecordingStarted | RecordingFinished | RecordingFailed):
            self._on_recording(event)
        elif isinstance(event, ChannelHangupRequest | ChannelDestroyed):
            if event.channel.id == self.channel_id:
                self._mark_gone(f"the call was hung up ({event.type}, cause {event.cause})")
        elif isinstance(event, StasisEnd):
            if event.channel.id == self.channel_id:
                self._in_app = False
                if self._handoff is None:
                    self._mark_gone("the channel left the application")
        elif isinstance(event, StasisStart):
            handoff = self._handoff
            if event.channel.id == self.channel_id and handoff is not None:
                self._in_app = True
                handoff.returned = True
                args = event.args
                handoff.status = args[2].strip() if len(args) >= 3 and args[0] == HANDOFF else None
        elif isinstance(event, PlaybackStarted):
            return  # nothing to note: only the end of a prompt matters
        self._changed.set()

    def _on_recording(self, event: RecordingStarted | RecordingFinished | RecordingFailed) -> None:
        recording = self._recording
        if recording is None or event.recording.name != recording.name:
            return
        if isinstance(event, RecordingStarted):
            recording.started = True
        elif isinstance(event, RecordingFinished):
            recording.state = "failed" if event.recording.state == "failed" else "done"
            recording.cause = event.recording.cause
        else:
            recording.state = "failed"
            recording.cause = event.recording.cause

    def _mark_gone(self, why: str) -> None:
        if self._gone is None:
            self._gone = why
        self._in_app = False
        self._changed.set()

    # --- waiting ------------------------------------------------------------------------------------

    async def _next_event(self, deadline: float) -> bool:
        """Wait for the next event about the call (True), or until `deadline` (False). The caller
        clears `_changed` before looking at the state, so no event between look and wait is missed."""
        remaining = deadline - _now()
        if remaining <= 0:
            return False
        try:
            async with asyncio.timeout(remaining):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def _expect_terminator(self, terminator: str | None, wait: float) -> None:
        """Digits ended at `max_digits`: the terminator the caller was asked to press after them is
        theirs, not the start of the next answer (over AGI it is dropped the same way)."""
        if not terminator:
            return
        if self._digits and self._digits[0] == terminator:
            self._digits.popleft()
        elif not self._digits:
            self._late_terminator = (terminator, _now() + wait)

    def _escape_key(self, escape_digits: str) -> str | None:
        """The oldest key waiting, if it may stop a prompt with these escape digits."""
        if escape_digits and self._digits and self._digits[0] in escape_digits:
            return self._digits.popleft()
        return None

    def _check_up(self, what: str) -> None:
        if self._gone is not None:
            raise CallerGone(f"{what}: {self._gone}")

    async def _hand_off(self, what: str, extension: str, variables: Mapping[str, str]) -> str | None:
        """Send the channel to the handoff context; the status it comes back with, once it does.
        Raises CallerGone when the call ends there (the agent or the callee talked to the caller)."""
        self._check_up(what)
        async with self._ari_errors(what):
            for name, value in variables.items():
                await self._ari.set_variable(self.channel_id, name, value)
        handoff = self._handoff = _Handoff()
        self._digits.clear()
        self.waiting_for = "handoff"
        options = self._options
        try:
            async with self._ari_errors(what):
                await self._ari.continue_in_dialplan(
                    self.channel_id, context=options.handoff_context, extension=extension, priority=1
                )
            if not handoff.returned:
                self._in_app = False  # StasisEnd may come later than the reply
            failures = 0
            while True:
                self._changed.clear()
                if handoff.returned:
                    self._digits.clear()  # keys pressed in the queue were not for the IVR
                    return handoff.status
                if self._gone is not None:
                    raise CallerGone(f"{what}: the call ended ({self._gone})")
                if await self._next_event(_now() + options.handoff_poll):
                    continue
                try:
                    await self._ari.get_channel(self.channel_id)
                    failures = 0
                except AriNotFound:
                    self._mark_gone("the channel is gone")
                except AriConnectionError as exc:
                    failures += 1
                    if failures >= options.poll_failures:
                        raise CallLost(f"{what}: no answer from Asterisk ({exc})") from exc
                except AriError as exc:
                    logger.warning("channel %s: %s: could not check it: %s", self.channel_id, what, exc)
        finally:
            self._handoff = None
            self.waiting_for = None

    async def _stop_playback(self, playback_id: str, what: str) -> None:
        try:
            await self._ari.stop_playback(playback_id)
        except AriNotFound:
            pass  # it ended on its own meanwhile
        except AriConnectionError as exc:
            raise CallLost(f"{what}: {exc}") from exc
        except AriError as exc:
            logger.info("channel %s: %s: could not stop the playback: %s", self.channel_id, what, exc)

    async def _stop_recording(self, name: str) -> None:
        try:
            await self._ari.stop_recording(name)
        except AriError as exc:
            logger.info("channel %s: could not stop recording %s: %s", self.channel_id, name, exc)

    # --- errors ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _ari_errors(self, what: str) -> AsyncIterator[None]:
        """ARI errors as the port's: gone, lost, or not done."""
        try:
            yield
        except AriNotFound as exc:
            self._mark_gone("the channel is gone")
            raise CallerGone(f"{what}: the channel is gone ({exc})") from exc
        except (AriConflict, AriPreconditionFailed, AriUnprocessable) as exc:
            # "Channel not in Stasis application" and the like: leaving (a hang-up), or taken elsewhere.
            if not await self._still_up():
                raise CallerGone(f"{what}: the caller hung up ({exc})") from exc
            raise ActionNotDone(f"{what}: Asterisk refused it ({exc})") from exc
        except AriUnauthorized as exc:
            raise CallLost(f"{what}: ARI refused the credentials ({exc})") from exc
        except AriHttpError as exc:
            raise ActionNotDone(f"{what}: Asterisk refused the request ({exc})") from exc
        except AriConnectionError as exc:
            raise CallLost(f"{what}: {exc}") from exc
        except AriError as exc:  # a reply ARI would not send: the link cannot be trusted
            raise CallLost(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def _still_up(self) -> bool:
        await self.check_channel()
        return self._gone is None


class _AriQueueWait(QueueWait):
    """One call on hold in a live queue, until an agent has talked to it, it leaves, or it is refused."""

    def __init__(
        self,
        port: AriVoicePort,
        queues: IvrQueues,
        line: CallLine,
        call: InboundCall,
        context: QueueContext,
        plan: QueuePlan | None = None,
    ) -> None:
        super().__init__(queues, line, call, context)
        self.plan = plan  # the queue's recording plan (None: not recorded)
        self.recording: RecordingTarget | None = None  # the bridge's recording, once it runs
        self.port = port
        self.ari = port._ari
        self.music = False
        self.outcome: asyncio.Future[Outcome] | None = None
        self.bridge_id: str | None = None  # the bridge of the agent's leg, once made

    async def run(self) -> None:
        port, queue = self.port, self.call.queue
        what = f"queue {queue}"
        outcome = self.outcome = asyncio.ensure_future(self.queues.live.wait(self.call.call_id))
        outcome.add_done_callback(port._wake)
        offered: asyncio.Future[PendingOffer] | None = None
        try:
            await self._music(True)
            while True:
                port._changed.clear()
                port._check_up(what)
                if offered is None:
                    offered = asyncio.ensure_future(self.line.next_offer())
                    offered.add_done_callback(port._wake)
                if offered.done():
                    pending, offered = offered.result(), None
                    await self._ring(pending)  # back here: nobody answered, the caller holds on
                    continue
                if outcome.done():
                    self._not_answered(outcome)
                await port._changed.wait()
        except CallerGone:
            self.caller_hung_up()
            raise
        finally:
            self.end(outcome, offered)
            if self.connected is None and not port.gone:
                await self._quietly(self._music(False))  # the flow goes on: its next prompt

    def _not_answered(self, outcome: asyncio.Future[Outcome]) -> None:
        if outcome.cancelled() or outcome.exception() is not None:
            result, waited = "left", self.waited()
        else:
            result, waited = outcome.result().result, outcome.result().waited_s
        why = {"max_wait": "nobody answered within the queue's max wait", "left": "the call left the queue"}
        self.report(QueueProgress("left", self.call.queue, waited, result=result))
        raise ActionNotDone(f"queue {self.call.queue}: {result} ({why.get(result, '')})")

    # --- one offer ----------------------------------------------------------------------------------

    async def _ring(self, pending: PendingOffer) -> None:
        """Rings the agent while the caller holds; returns when the agent did not take the call (the
        ACD has heard why), raises CallerGone when the call is over (the conversation, or a hang-up)."""
        port, offer = self.port, pending.offer
        pending.result.add_done_callback(port._wake)  # a withdrawal ends the ringing
        leg, listening = port._ring_agent(offer.endpoint)
        self.line.ringing = pending
        try:
            if not await self._originate(pending, leg):
                return
            result = await self._answer_of(pending, leg)
            if result is not None:
                pending.settle(result)
                logger.info("call %s: %s did not answer (%s)", self.call.call_id, offer.endpoint, result)
                return
            if pending.withdrawn:  # the ACD gave up on this offer (it rang too long): not this agent's call
                logger.info(
                    "call %s: %s answered after the offer was withdrawn", self.call.call_id, offer.endpoint
                )
                return
            if not await self._bridge(leg):
                pending.settle("failed")
                return
            self.line.ringing = None
            try:
                await self._answered(pending)
                await self._talk(leg)
            except asyncio.CancelledError:
                # The service is stopping: the conversation goes on in Asterisk's bridge, unobserved.
                logger.warning(
                    "call %s: stopped following its conversation with %s", self.call.call_id, leg.endpoint
                )
                port._talking_on = self.bridge_id
                if self.connected is None:
                    self._connect(offer.agent_name, self.waited())
                raise
        finally:
            self.line.ringing = None
            listening.cancel()
            port._agent = None
            if port._talking_on is None:  # else the conversation goes on without us (see _talk)
                if leg.gone is None:
                    await _hang_up(self.ari, leg.channel_id)
                bridge_id, self.bridge_id = self.bridge_id, None
                if bridge_id is not None:
                    await _destroy_bridge(self.ari, bridge_id)

    async def _originate(self, pending: PendingOffer, leg: _AgentLeg) -> bool:
        """The agent's phone rings (False: Asterisk refused it, the ACD is told "failed")."""
        port, offer = self.port, pending.offer
        call_ref = _CALL_ID_SAFE.sub("_", self.call.call_id)
        try:
            await self.ari.originate(
                offer.endpoint,
                app=port._application,
                app_args=[AGENT_LEG, call_ref],
                caller_id=self.call.caller,
                timeout=max(1, math.ceil(offer.ring_timeout_s)),
                channel_id=leg.channel_id,
                variables={"CENTRALITA_ARI_APP": port._application or "", "CENTRALITA_CALL_ID": call_ref},
            )
        except (AriConnectionError, AriUnauthorized) as exc:
            raise CallLost(f"queue {self.call.queue}: ringing {offer.endpoint}: {exc}") from exc
        except AriError as exc:  # this endpoint only (unknown, unreachable): the ACD tries another agent
            logger.warning("call %s: Asterisk would not ring %s: %s", self.call.call_id, offer.endpoint, exc)
            leg.gone = f"originate refused: {exc}"
            pending.settle("failed")
            return False
        return True

    async def _answer_of(self, pending: PendingOffer, leg: _AgentLeg) -> OfferResult | None:
        """None once the agent answered (or the offer was withdrawn); how the phone ended otherwise."""
        port = self.port
        deadline = _now() + pending.offer.ring_timeout_s + port._options.agent_ring_margin
        while True:
            port._changed.clear()
            port._check_up(f"queue {self.call.queue}: ringing {leg.endpoint}")
            if leg.answered or pending.withdrawn:
                return None
            if leg.gone is not None:
                return _leg_result(leg.cause, leg.dial_status)
            if not await port._next_event(deadline):
                logger.warning("call %s: no end of ringing %s heard", self.call.call_id, leg.endpoint)
                return "no_answer"

    async def _bridge(self, leg: _AgentLeg) -> bool:
        """Caller and agent in a mixing bridge (`bridge_id`); False when the agent's side failed (the
        music goes on; the leg and the bridge are cleared by `_ring`). CallerGone / CallLost as the port's."""
        port = self.port
        what = f"queue {self.call.queue}: bridging {leg.endpoint}"
        try:
            bridge = await self.ari.create_bridge(
                "mixing", bridge_id=f"{port.channel_id}-bridge-{port._agent_legs}"
            )
            self.bridge_id = bridge.id
            await self._music(False)
            await self.ari.add_channel(bridge.id, [port.channel_id, leg.channel_id])
        except (AriConnectionError, AriUnauthorized) as exc:
            raise CallLost(f"{what}: {exc}") from exc
        except AriError as exc:
            if not await port._still_up():
                raise CallerGone(f"{what}: the caller hung up") from exc
            logger.warning("call %s: could not bridge %s: %s", self.call.call_id, leg.endpoint, exc)
            await self._music(True)
            return False
        port._check_up(what)
        if leg.gone is not None:
            logger.warning("call %s: %s hung up as soon as it answered", self.call.call_id, leg.endpoint)
            await self._music(True)
            return False
        recording = self.queues.recording
        if self.plan is not None and self.plan.records and recording is not None:
            port._recordings += 1
            self.recording = await recording.record_bridge(bridge.id, self.call.call_id, port._recordings)
        return True

    async def _answered(self, pending: PendingOffer) -> None:
        """The two talk: the ACD counts the agent on the call, the timeline hears who answered."""
        offer = pending.offer
        if pending.settle("answered") and self.outcome is not None:
            try:
                counted = await asyncio.wait_for(asyncio.shield(self.outcome), timeout=5.0)
            except TimeoutError:
                logger.warning(
                    "call %s: the ACD did not count %s's answer", self.call.call_id, offer.endpoint
                )
            else:
                if counted.result == "answered":
                    self._connect(offer.agent_name, counted.waited_s)
                    return
        # The ACD gave up on the offer while the two were being bridged: they talk all the same, and
        # the timeline says so; the call leaves the queue so that nobody else is offered it.
        logger.warning("call %s: %s answered after the ACD gave up", self.call.call_id, offer.endpoint)
        self._connect(offer.agent_name, self.waited())
        self.queues.live.leave(self.call.call_id)

    def _connect(self, agent: str, waited: float) -> None:
        self.connected = agent
        self.report(QueueProgress("left", self.call.queue, waited, agent=agent, result="answered"))
        self.report(QueueProgress("agent_connected", self.call.queue, waited, agent=agent))
        recording, target = self.queues.recording, self.recording
        if recording is not None and target is not None and self.plan is not None:
            recording.started(
                target,
                plan=self.plan,
                call_id=self.call.call_id,
                interaction_id=self.context.interaction_id,
                source="ari_bridge",
            )

    async def _talk(self, leg: _AgentLeg) -> None:
        """Until either side hangs up; then the other is hung up. Always ends with CallerGone: the call
        was handed over, nothing more is said to it."""
        port = self.port
        while True:
            port._changed.clear()
            if port.gone or leg.gone is not None:
                break
            await port._changed.wait()
        who = "the caller" if port.gone else "the agent"
        if not port.gone:
            await _hang_up(self.ari, port.channel_id)
            port._mark_gone(f"hung up after {leg.endpoint} hung up")
        raise CallerGone(f"the call ended after {self.connected} answered it ({who} hung up)")

    # --- plumbing -----------------------------------------------------------------------------------

    async def _music(self, on: bool) -> None:
        """Music on hold on or off. Only a gone channel or a lost Asterisk matter: a caller without
        music still waits for an agent."""
        if on == self.music:
            return
        port = self.port
        try:
            async with port._ari_errors("music on hold"):
                if on:
                    await self.ari.start_moh(port.channel_id)
                else:
                    await self.ari.stop_moh(port.channel_id)
        except ActionNotDone as exc:
            logger.warning("call %s: %s", self.call.call_id, exc)
        self.music = on

    async def _quietly(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except VoicePortError as exc:
            logger.info("call %s: %s", self.call.call_id, exc)


def _leg_result(cause: int | None, dial_status: str) -> OfferResult:
    """How an agent's phone that never answered ended, from its hang-up cause and dial status."""
    if dial_status in _DIAL_RESULTS:
        return _DIAL_RESULTS[dial_status]
    if cause in _BUSY_CAUSES:
        return "busy"
    if cause in _NO_ANSWER_CAUSES or cause is None:  # no cause heard: it rang out, as far as we know
        return "no_answer"
    return "failed"


async def _hang_up(ari: AriPort, channel_id: str) -> None:
    try:
        await ari.hangup(channel_id)
    except AriNotFound:
        pass  # gone already
    except AriError as exc:
        logger.warning("could not hang up channel %s: %s", channel_id, exc)


async def _destroy_bridge(ari: AriPort, bridge_id: str) -> None:
    try:
        await ari.destroy_bridge(bridge_id)
    except AriNotFound:
        pass
    except AriError as exc:
        logger.warning("could not destroy bridge %s: %s", bridge_id, exc)


def _now() -> float:
    return asyncio.get_running_loop().time()
