"""The real call network: campaign calls placed through Asterisk over ARI (`dialer.call_network`).

    network = AriCallNetwork(ari, router, app="centralita", endpoint_template="PJSIP/{number}@trunk")
    stream = AriEventStream(url, ["centralita"], user, password, router, on_connect=network.resync)

A call, as Asterisk 22 shows it (tests/e2e/test_e2e_dialer.py runs each case against a real one):
- `place`: `POST /channels?endpoint=<template>&app=<app>&appArgs=dialer,<attempt>&channelId=<ours>`, with
  the campaign's caller id and ring time-out, and the channel variables CENTRALITA_ARI_APP and
  CENTRALITA_DIALER_ATTEMPT. The channel belongs to the application from the moment it exists, so every
  event about it arrives: Dial (dial status RINGING, BUSY, CONGESTION, ANSWER ...), then either
  StasisStart (the callee answered) or ChannelDestroyed (never answered).
- AMD on: the answered channel leaves the application (`POST .../continue`) for the rendered context
  `centralita-dialer-amd`, where AMD() listens to the greeting and sends it back with
  `Stasis(<app>,dialer,amd,<attempt>,<AMDSTATUS>,<AMDCAUSE>)`: that second StasisStart is the end of the
  greeting. A channel the application originated still reports its ChannelDestroyed while it is in the
  dialplan, so a callee who hangs up during AMD ends the call as usual. AMD off: the greeting ends at once,
  `unsure`.
- `connect`: the agent's endpoint is originated into the application (`appArgs=agent,<attempt>`, the
  callee's number as caller id); once it answers (its StasisStart), a mixing bridge takes both channels.
  `connect` returns when the two are bridged, so the runner's connection time is the real one, and
  raises `AgentNotConnected` when the agent's leg does not answer (or the callee goes meanwhile): the
  runner then frees that agent and tries another. The hang-up of either side hangs up the other.
- `play_and_hang_up`: `POST .../play?media=sound:<message>`, then DELETE on its PlaybackFinished (a sound
  Asterisk does not have finishes `failed` at once: the call is hung up all the same).
- Recording (with a `recorder`, `routing.recording_calls.CampaignRecording`): once the two are bridged
  and the campaign may record, the recording notice plays to the bridge and, for `always`, the bridge is
  recorded (`POST /bridges/{id}/play`, `/record`), off `connect`'s path; after the call's end was
  reported (the runner has written its interaction), the recording goes on the timeline.
- The end: the callee's ChannelDestroyed, reported once as `ended` (see `call_end` for the causes). A
  Local channel ends with cause 0 when its far half was busy or congested; the Dial event's status says
  what happened then.

Every call has its own task, fed by the router through a queue, so the router is never held up by the
REST calls a call makes or by the campaign runner; a failure in one call is logged with its attempt id,
hangs that call up, and touches no other. Events sent while the event stream was down are lost:
`resync()` (the stream's `on_connect`) ends the calls whose channels went away meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Protocol

from dialer.call_network import AmdVerdict, CallEnd, CallObserver, CallRequest, NetworkUnavailable, PlacedCall
from dialer.clock import Clock, SystemClock
from voice.ari.errors import (
    AriConnectionError,
    AriError,
    AriNotFound,
    AriProtocolError,
    AriUnauthorized,
)
from voice.ari.events import (
    AriEvent,
    ChannelDestroyed,
    ChannelHangupRequest,
    Dial,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from voice.ari.port import AriPort
from voice.ari.router import AriRouter
from voice.subscription import Subscription

logger = logging.getLogger(__name__)

DIALER = "dialer"  # first Stasis argument of a callee's channel (StasisIvr leaves these alone)
AGENT = "agent"  # ... and of an agent's leg
AMD = "amd"  # second argument when the call comes back from the AMD context
AMD_CONTEXT = "centralita-dialer-amd"

_VERDICTS = {"HUMAN": AmdVerdict.HUMAN, "MACHINE": AmdVerdict.MACHINE, "NOTSURE": AmdVerdict.UNSURE}

# Q.850 causes of a call that was never answered (the rest: FAILED).
_BUSY_CAUSES = frozenset({17, 21})  # user busy; call rejected (a callee who declines, as a busy line)
_NO_ANSWER_CAUSES = frozenset({18, 19})  # no user responding; user alerting, no answer (ring time-out)
_BUSY_STATUSES = frozenset({"BUSY"})
_NO_ANSWER_STATUSES = frozenset({"NOANSWER"})
# It rang and then stopped without a cause that says why: the ring time-out, as far as we can tell.
_RANG_STATUSES = frozenset({"RINGING", "PROGRESS"})


class CallRecorder(Protocol):
    """Announces and records campaign calls (`routing.recording_calls.CampaignRecording`)."""

    async def bridged(self, *, campaign_id: int, attempt_id: int, call_ref: str, bridge_id: str) -> None:
        """The callee and the agent are in `bridge_id`: play the notice, record, as the campaign says."""
        ...

    async def ended(self, *, attempt_id: int, call_ref: str) -> None:
        """The call's end was reported (its interaction is written): link its recording."""
        ...


class AgentNotConnected(Exception):
    """The agent's leg could not be bridged to the call: it did not answer, or the call ended first."""


class CallNotReady(Exception):
    """The call cannot do that now (not answered yet, or its greeting is still being analysed)."""


def call_end(*, answered: bool, cause: int, dial_status: str) -> CallEnd:
    """How a call ended, from what Asterisk said: whether it was answered, the channel's hang-up cause and
    the last status of its Dial event ("" when there was none)."""
    if answered:
        return CallEnd.COMPLETED
    if dial_status in _BUSY_STATUSES or cause in _BUSY_CAUSES:
        return CallEnd.BUSY
    if dial_status in _NO_ANSWER_STATUSES or cause in _NO_ANSWER_CAUSES:
        return CallEnd.NO_ANSWER
    if dial_status in _RANG_STATUSES and cause in (0, 16):
        return CallEnd.NO_ANSWER
    return CallEnd.FAILED


def cause_text(cause: int, cause_txt: str, dial_status: str) -> str:
    """ "17 User busy"; "0 Unknown (dial status BUSY)" when the cause alone does not say it."""
    text = f"{cause} {cause_txt}".strip()
    if dial_status and dial_status not in ("ANSWER", "RINGING", "PROGRESS"):
        text += f" (dial status {dial_status})"
    return text


# --- what a call's task handles, besides ARI events -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Refused:
    """Asterisk refused to originate the call."""

    reason: str


@dataclass(frozen=True, slots=True)
class _Lost:
    """The callee's channel is gone and its ChannelDestroyed was never seen (found by `resync`)."""

    reason: str


@dataclass(frozen=True, slots=True)
class _AgentGone:
    leg: _AgentLeg
    reason: str


@dataclass(frozen=True, slots=True)
class _MessageOverdue:
    playback_id: str


_Item = AriEvent | _Refused | _Lost | _AgentGone | _MessageOverdue


@dataclass(eq=False)
class _AgentLeg:
    endpoint: str
    channel_id: str
    subscription: Subscription | None = None
    in_stasis: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    why_gone: str = ""
    dial_status: str = ""
    bridged: bool = False


@dataclass(eq=False)
class _Call:
    placed: PlacedCall
    request: CallRequest
    observer: CallObserver
    events: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    subscription: Subscription | None = None
    task: asyncio.Task[None] | None = None
    dial_status: str = ""
    answered: bool = False
    detecting: bool = False  # in the AMD context, out of the application
    hanging_up: bool = False  # hang_up or play_and_hang_up was asked: no more greeting_ended / connect
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the callee hung up (or was hung up)
    agent: _AgentLeg | None = None
    agent_legs: int = 0
    bridge_id: str | None = None
    playback_id: str | None = None
    message_guard: asyncio.TimerHandle | None = None
    recording: asyncio.Task[None] | None = None  # the recorder's work once bridged
    failure: str | None = None
    ended: bool = False

    @property
    def channel_id(self) -> str:
        return self.placed.call_ref


class AriCallNetwork:
    """Campaign calls through Asterisk's ARI; see the module's text.

    `endpoint_template` makes the callee's endpoint from the number: `{number}` is the E.164 number,
    `{digits}` the same without "+" ("PJSIP/{number}@trunk", "Local/{digits}@centralita-outbound").
    `agent_ring_timeout_s` is how long an agent's phone may ring before Asterisk gives up on it, and
    `connect` waits that long plus `lost_event_margin_s` (in case the end of the ringing is never heard);
    `message_limit_s` how long `play_and_hang_up` waits for the end of the message before hanging up.
    `recorder` announces and records the calls of campaigns that record (None: nothing is recorded).
    """

    def __init__(
        self,
        ari: AriPort,
        router: AriRouter,
        *,
        app: str,
        endpoint_template: str,
        amd_context: str = AMD_CONTEXT,
        agent_ring_timeout_s: int = 15,
        lost_event_margin_s: float = 5.0,
        message_limit_s: float = 60.0,
        clock: Clock | None = None,
        recorder: CallRecorder | None = None,
    ) -> None:
        if not app:
            raise ValueError("the ARI application name cannot be empty")
        if "{number}" not in endpoint_template and "{digits}" not in endpoint_template:
            raise ValueError(f"endpoint_template {endpoint_template!r} has neither {{number}} nor {{digits}}")
        if agent_ring_timeout_s <= 0 or message_limit_s <= 0 or lost_event_margin_s < 0:
            raise ValueError(
                "agent_ring_timeout_s and message_limit_s must be positive, the margin not negative"
            )
        self._ari = ari
        self._router = router
        self.app = app
        self.endpoint_template = endpoint_template
        self.amd_context = amd_context
        self.agent_ring_timeout_s = agent_ring_timeout_s
        self.lost_event_margin_s = lost_event_margin_s
        self.message_limit_s = message_limit_s
        self._clock = clock if clock is not None else SystemClock()
        self.recorder = recorder
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def endpoint(self, phone: str) -> str:
        return self.endpoint_template.format(number=phone, digits=phone.lstrip("+"))

    # --- CallNetwork ----------------------------------------------------------------------------------

    async def place(self, request: CallRequest, observer: CallObserver) -> PlacedCall:
        channel_id = f"dialer-{request.attempt_id}-{uuid.uuid4().hex[:12]}"
        call = _Call(PlacedCall(request.attempt_id, channel_id), request, observer)
        # Listen before asking: Asterisk sends the first events before it answers the POST.
        call.subscription = self._router.on_channel(channel_id, lambda event: _callee_event(call, event))
        try:
            await self._ari.originate(
                self.endpoint(request.phone),
                app=self.app,
                app_args=[DIALER, str(request.attempt_id)],
                caller_id=request.caller_id,
                timeout=request.ring_timeout_s,
                channel_id=channel_id,
                variables={
                    "CENTRALITA_ARI_APP": self.app,
                    "CENTRALITA_DIALER_ATTEMPT": str(request.attempt_id),
                },
            )
        except (AriConnectionError, AriUnauthorized, AriProtocolError) as exc:
            call.subscription.cancel()
            if isinstance(exc, AriConnectionError):
                # A request that timed out may still have made the call: nobody would follow it.
                with contextlib.suppress(AriError):
                    await self._ari.hangup(channel_id)
            raise NetworkUnavailable(f"ARI: {exc}") from exc
        except AriError as exc:
            # This call only (a number the trunk refuses, an endpoint that does not exist): it fails.
            logger.warning("attempt %s: Asterisk refused to originate it: %s", request.attempt_id, exc)
            call.events.put_nowait(_Refused(str(exc)))
        self._calls[channel_id] = call
        self._start(call)
        return call.placed

    async def connect(self, call: PlacedCall, agent: str) -> None:
        live = self._live(call)
        if not live.answered or live.detecting:
            raise CallNotReady(f"call {call.call_ref}: {'not answered' if not live.answered else 'in AMD'}")
        if live.hanging_up or live.gone.is_set():
            raise AgentNotConnected(f"call {call.call_ref} is ending")
        if live.agent is not None:
            raise CallNotReady(f"call {call.call_ref} is already with {live.agent.endpoint}")
        live.agent_legs += 1
        leg = _AgentLeg(agent, f"{live.channel_id}-agent-{live.agent_legs}")
        live.agent = leg
        leg.subscription = self._router.on_channel(
            leg.channel_id, lambda event: _agent_event(live, leg, event)
        )
        try:
            await self._ari.originate(
                agent,
                app=self.app,
                app_args=[AGENT, str(call.attempt_id)],
                caller_id=live.request.phone,
                timeout=self.agent_ring_timeout_s,
                channel_id=leg.channel_id,
                variables={"CENTRALITA_ARI_APP": self.app},
            )
            await self._agent_answers(live, leg)
            bridge = await self._ari.create_bridge("mixing", bridge_id=f"{live.channel_id}-bridge")
            live.bridge_id = bridge.id
            await self._ari.add_channel(bridge.id, [live.channel_id, leg.channel_id])
            if leg.gone.is_set() or live.gone.is_set():
                raise AgentNotConnected(f"{'the agent' if leg.gone.is_set() else 'the callee'} hung up")
            leg.bridged = True
        except BaseException as exc:
            await self._drop_agent(live, leg)
            if isinstance(exc, AriError):
                raise AgentNotConnected(f"could not connect {agent}: {exc}") from exc
            raise
        logger.info("attempt %s: connected to %s", call.attempt_id, agent)
        if self.recorder is not None and live.recording is None:
            live.recording = asyncio.get_running_loop().create_task(
                self._record(live, bridge.id), name=f"recording of {live.channel_id}"
            )

    async def _record(self, call: _Call, bridge_id: str) -> None:
        assert self.recorder is not None
        try:
            await self.recorder.bridged(
                campaign_id=call.request.campaign_id,
                attempt_id=call.placed.attempt_id,
                call_ref=call.channel_id,
                bridge_id=bridge_id,
            )
        except Exception:  # the conversation goes on unrecorded
            logger.exception("attempt %s: recording failed", call.placed.attempt_id)

    async def play_and_hang_up(self, call: PlacedCall, message: str) -> None:
        live = self._live(call)
        if live.detecting:
            raise CallNotReady(f"call {call.call_ref} is in AMD")
        live.hanging_up = True
        playback_id = f"{live.channel_id}-message"
        live.playback_id = playback_id
        try:
            await self._ari.play(live.channel_id, f"sound:{message}", playback_id=playback_id)
        except AriNotFound:
            return  # the callee has gone: ChannelDestroyed ends the call
        except AriError:
            await self._hang_up_channel(live.channel_id)  # never leave the callee in silence
            raise
        # A lost PlaybackFinished must not keep the callee on the line.
        live.message_guard = asyncio.get_running_loop().call_later(
            self.message_limit_s, live.events.put_nowait, _MessageOverdue(playback_id)
        )

    async def hang_up(self, call: PlacedCall) -> None:
        live = self._live(call)
        live.hanging_up = True
        await self._hang_up_channel(live.channel_id)

    # --- the event stream -----------------------------------------------------------------------------

    async def resync(self) -> None:
        """After the event stream (re)connected: end the calls (and drop the agents) whose channels went
        away while it was down."""
        for live in list(self._calls.values()):
            if not await self._exists(live.channel_id):
                live.events.put_nowait(_Lost("the channel went away while the ARI event stream was down"))
                continue
            leg = live.agent
            if leg is not None and leg.bridged and not await self._exists(leg.channel_id):
                live.events.put_nowait(_AgentGone(leg, "the agent's channel went away"))

    async def close(self, grace_seconds: float = 5.0) -> None:
        """Hang up every call in progress and wait (up to `grace_seconds`) for their ends; the calls
        still running then are dropped without their `ended`."""
        for live in list(self._calls.values()):
            live.hanging_up = True
            with contextlib.suppress(AriError):
                await self._hang_up_channel(live.channel_id)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # --- a call's life ----------------------------------------------------------------------------

    def _start(self, call: _Call) -> None:
        task = asyncio.get_running_loop().create_task(self._run(call), name=f"dialer call {call.channel_id}")
        call.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: _Call) -> None:
        try:
            while not call.ended:
                item = await call.events.get()
                try:
                    await self._handle(call, item)
                except Exception:
                    logger.exception("attempt %s: handling %s failed", call.placed.attempt_id, _name(item))
                    await self._give_up(call, "the dialer failed")
        finally:
            if not call.ended:  # cancelled (close): let go of everything all the same
                await self._release(call)
            if call.recording is not None and not call.recording.done():
                call.recording.cancel()

    async def _handle(self, call: _Call, item: _Item) -> None:
        attempt = call.placed.attempt_id
        match item:
            case _Refused(reason=reason):
                await self._finish(call, CallEnd.FAILED, f"originate refused: {reason}")
            case _Lost(reason=reason):
                await self._finish(call, CallEnd.COMPLETED if call.answered else CallEnd.FAILED, reason)
            case _AgentGone(leg=leg, reason=reason) if leg is call.agent and leg.bridged:
                if not call.hanging_up:
                    logger.info("attempt %s: %s; hanging up the callee", attempt, reason)
                    call.hanging_up = True
                    await self._hang_up_channel(call.channel_id)
            case _MessageOverdue(playback_id=playback_id) if playback_id == call.playback_id:
                logger.warning("attempt %s: the message did not end in %gs", attempt, self.message_limit_s)
                await self._hang_up_channel(call.channel_id)
            case Dial() if item.peer.id == call.channel_id and item.dialstatus:
                call.dial_status = item.dialstatus
            case StasisStart() if item.channel.id == call.channel_id:
                await self._stasis_start(call, item)
            case ChannelDestroyed() if item.channel.id == call.channel_id:
                how = call_end(answered=call.answered, cause=item.cause, dial_status=call.dial_status)
                await self._finish(call, how, cause_text(item.cause, item.cause_txt, call.dial_status))
            case PlaybackFinished() if item.playback.id == call.playback_id:
                if item.playback.failed:
                    logger.warning("attempt %s: Asterisk could not play %s", attempt, item.playback.media_uri)
                await self._hang_up_channel(call.channel_id)

    async def _stasis_start(self, call: _Call, event: StasisStart) -> None:
        if not event.args or event.args[0] != DIALER:
            return
        if len(event.args) >= 2 and event.args[1] == AMD:
            call.detecting = False
            status = event.args[3] if len(event.args) > 3 else ""
            detail = event.args[4] if len(event.args) > 4 else ""
            await self._amd_verdict(call, status, detail)
            return
        if call.answered:
            return
        call.answered = True
        await self._notify(call, call.observer.answered(call.placed, self._clock.now()))
        if call.hanging_up or call.ended:
            return
        if not call.request.amd:
            await self._greeting_ended(call, AmdVerdict.UNSURE)
            return
        try:
            call.detecting = True
            await self._ari.continue_in_dialplan(
                call.channel_id, context=self.amd_context, extension="s", priority=1
            )
        except AriNotFound:
            call.detecting = False  # the callee hung up: ChannelDestroyed follows
        except AriError as exc:
            call.detecting = False
            logger.warning("attempt %s: AMD could not run (%s): unsure", call.placed.attempt_id, exc)
            await self._greeting_ended(call, AmdVerdict.UNSURE)

    async def _amd_verdict(self, call: _Call, status: str, detail: str) -> None:
        if status == "HANGUP":
            return  # the callee hung up during the greeting: ChannelDestroyed follows
        verdict = _VERDICTS.get(status)
        if verdict is None:
            logger.warning("attempt %s: AMD said %r: taken as unsure", call.placed.attempt_id, status)
            verdict = AmdVerdict.UNSURE
        logger.info("attempt %s: AMD %s (%s)", call.placed.attempt_id, status, detail)
        await self._greeting_ended(call, verdict)

    async def _greeting_ended(self, call: _Call, verdict: AmdVerdict) -> None:
        if call.hanging_up or call.ended or call.gone.is_set():
            return
        await self._notify(call, call.observer.greeting_ended(call.placed, self._clock.now(), verdict))

    async def _notify(self, call: _Call, news: Awaitable[None]) -> None:
        """Tell the observer; one that fails must not leave the callee on the line for ever."""
        try:
            await news
        except Exception:
            logger.exception("attempt %s: the observer failed", call.placed.attempt_id)
            await self._give_up(call, "observer failed")

    async def _give_up(self, call: _Call, why: str) -> None:
        call.failure = call.failure or why
        call.hanging_up = True
        try:
            await self._hang_up_channel(call.channel_id)
        except AriError:
            logger.exception("attempt %s: could not hang up after: %s", call.placed.attempt_id, why)

    async def _finish(self, call: _Call, how: CallEnd, cause: str) -> None:
        if call.ended:
            return
        await self._release(call)
        if call.failure:
            cause = f"{cause}; {call.failure}"
        logger.info("attempt %s ended: %s, %s", call.placed.attempt_id, how.value, cause)
        try:
            await call.observer.ended(call.placed, self._clock.now(), how, cause)
        except Exception:
            logger.exception("attempt %s: the observer failed on the end of the call", call.placed.attempt_id)
        if call.recording is not None and self.recorder is not None:
            await self._recorded(call, self.recorder)

    async def _recorded(self, call: _Call, recorder: CallRecorder) -> None:
        """After the observer wrote the call's end: its recording joins the timeline."""
        assert call.recording is not None
        await asyncio.wait({call.recording}, timeout=self.lost_event_margin_s)
        call.recording.cancel()  # still asking Asterisk after the call ended: nothing left to record
        try:
            await recorder.ended(attempt_id=call.placed.attempt_id, call_ref=call.channel_id)
        except Exception:
            logger.exception("attempt %s: its recording was not linked", call.placed.attempt_id)

    async def _release(self, call: _Call) -> None:
        """Forget the call: its subscriptions, its agent's leg, its bridge, its timers."""
        call.ended = True
        self._calls.pop(call.channel_id, None)
        if call.subscription is not None:
            call.subscription.cancel()
        if call.message_guard is not None:
            call.message_guard.cancel()
        if call.agent is not None:
            await self._drop_agent(call, call.agent)
        elif call.bridge_id is not None:
            await self._destroy_bridge(call)

    # --- the agent's leg --------------------------------------------------------------------------

    async def _agent_answers(self, call: _Call, leg: _AgentLeg) -> None:
        """Until the agent's leg enters the application; AgentNotConnected when it will not."""
        waits = [asyncio.ensure_future(flag.wait()) for flag in (leg.in_stasis, leg.gone, call.gone)]
        try:
            await asyncio.wait(
                waits,
                timeout=self.agent_ring_timeout_s + self.lost_event_margin_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for wait in waits:
                wait.cancel()
        if call.gone.is_set():
            raise AgentNotConnected("the callee hung up before the agent answered")
        if leg.gone.is_set():
            raise AgentNotConnected(f"{leg.endpoint} did not answer: {leg.why_gone}")
        if not leg.in_stasis.is_set():
            raise AgentNotConnected(f"{leg.endpoint} did not answer in {self.agent_ring_timeout_s}s")

    async def _drop_agent(self, call: _Call, leg: _AgentLeg) -> None:
        if call.agent is leg:
            call.agent = None
        if leg.subscription is not None:
            leg.subscription.cancel()
        if not leg.gone.is_set():
            leg.gone.set()
            await self._hang_up_channel(leg.channel_id, quiet=True)
        await self._destroy_bridge(call)

    async def _destroy_bridge(self, call: _Call) -> None:
        bridge_id, call.bridge_id = call.bridge_id, None
        if bridge_id is not None:
            try:
                await self._ari.destroy_bridge(bridge_id)
            except AriNotFound:
                pass
            except AriError as exc:
                logger.warning(
                    "attempt %s: could not destroy bridge %s: %s", call.placed.attempt_id, bridge_id, exc
                )

    # --- plumbing ---------------------------------------------------------------------------------

    def _live(self, call: PlacedCall) -> _Call:
        live = self._calls.get(call.call_ref)
        if live is None:
            raise LookupError(f"call {call.call_ref} has ended")
        return live

    async def _hang_up_channel(self, channel_id: str, *, quiet: bool = False) -> None:
        """DELETE the channel; one that is already gone is fine. `quiet`: log other errors, do not raise."""
        try:
            await self._ari.hangup(channel_id)
        except AriNotFound:
            pass
        except AriError as exc:
            if not quiet:
                raise
            logger.warning("could not hang up %s: %s", channel_id, exc)

    async def _exists(self, channel_id: str) -> bool:
        try:
            await self._ari.get_channel(channel_id)
        except AriNotFound:
            return False
        except AriError:
            return True  # unknown: Asterisk cannot be asked now; the next resync will tell
        return True


# The router's handlers. They only set flags and queue the event: `connect` waits on the flags while the
# call's own task (the one that reads the queue) may be the one running it.


def _callee_event(call: _Call, event: AriEvent) -> None:
    if isinstance(event, ChannelHangupRequest | ChannelDestroyed) and event.channel.id == call.channel_id:
        call.gone.set()
    elif isinstance(event, StasisEnd) and event.channel.id == call.channel_id and not call.detecting:
        call.gone.set()  # out of the application, and not for AMD: hung up
    call.events.put_nowait(event)


def _agent_event(call: _Call, leg: _AgentLeg, event: AriEvent) -> None:
    if isinstance(event, StasisStart) and event.channel.id == leg.channel_id:
        leg.in_stasis.set()
    elif isinstance(event, Dial) and event.peer.id == leg.channel_id and event.dialstatus:
        leg.dial_status = event.dialstatus
    elif isinstance(event, ChannelHangupRequest | ChannelDestroyed | StasisEnd):
        if event.channel.id != leg.channel_id or leg.gone.is_set():
            return
        if isinstance(event, ChannelDestroyed):
            leg.why_gone = cause_text(event.cause, event.cause_txt, leg.dial_status)
        elif isinstance(event, ChannelHangupRequest):
            leg.why_gone = f"hang-up request, cause {event.cause}"
        else:
            leg.why_gone = "left the application"
        leg.gone.set()
        call.events.put_nowait(_AgentGone(leg, f"the agent {leg.endpoint} hung up ({leg.why_gone})"))


def _name(item: _Item) -> str:
    return getattr(item, "type", None) or type(item).__name__
