"""The IVR as an ARI application: every call that enters `Stasis(<app>,ivr,<flow>,<number>)` (as the
rendered dialplan in asterisk/ sends it) or `Stasis(<app>,<flow>)` runs its flow.

    ivr = StasisIvr(ari, router, runner, catalogue.get, application="centralita")
    await ivr.start()
    stream = AriEventStream(url, ["centralita"], user, password, router, on_connect=ivr.resync)
    ...
    await ivr.stop(grace_seconds=10)

`StasisIvr` listens to the application's StasisStart events. For a call it makes an `AriVoicePort` at
once (so the keys pressed right after StasisStart are kept) and runs the flow the Stasis arguments name
with the `CallRunner`, one task per call. A flow nobody has gets the fallback: `fallback_flow` when one
is given, else the call is hung up, as the FastAGI server does. A call that fails is logged with its
channel and never touches another call.

Which StasisStart events are IVR calls: the application also receives the channels that Centralita
makes for other purposes (dialer legs, agent legs, snoop and external-media channels, a call coming back
from a queue). They are told apart by their first Stasis argument, a reserved word that is not a flow
(`OTHER_PURPOSES`; whoever originates such a channel passes it as `app_args`), and, for snoop and media
channels, by their technology. A caller coming back from a handoff belongs to its running call's port.

The call's id is the channel's linkedid, shared by every channel of the call, as over AGI. Asterisk 22
does not put it in the channel of an event (see the recordings in ../shared/fixtures/asterisk/), unless
`ari.conf` lists `CHANNEL(linkedid)` in `channelvars`; otherwise it is asked for
(`GET .../variable?variable=CHANNEL(linkedid)`), and the channel id is the fallback.

`stop()` stops taking calls, lets running calls finish for a grace period, then cancels the rest; a call
in Asterisk's queue stays there, a caller talking to an agent of Centralita's queue stays in the bridge,
and one still holding for an agent leaves the queue and goes on in the dialplan after Stasis(). A call
the IVR cannot take (it is stopping, or a return from a handoff nobody waits for any more) goes to
`failed_context` (`s`, 1) when one is given, as a FastAGI call the server refuses goes on with
AGISTATUS=FAILURE; else on in the dialplan after Stasis(). `resync()` is the event
stream's `on_connect`: it checks the running calls' channels, since events sent while the stream was
down are lost.

With `queues` (Centralita's live ACD: `routing.ivr_queues`), a flow's queue node naming one of its
queues keeps the caller in the application until an agent has talked to them: the agents' phones are
originated into this same application (first Stasis argument `agent`, so they are not taken for
calls) and bridged to the caller (see `voice.ari.ivr_port`).

With `listener` (`voice.speech.listener.SpeechListener`, its AudioSocket server in this process), menus
that listen for speech ask by voice: each question bridges the caller with an external-media channel
made in this same application. Its StasisStart is not a call: Asterisk names it `AudioSocket/<host>-<uuid>`
(`MEDIA_TECHNOLOGIES`), and it carries no Stasis arguments.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from core.timeline.schemas import RefKind
from routing.ivr_queues import IvrQueues
from voice.ari.errors import AriError, AriNotFound
from voice.ari.events import AriEvent, Channel, StasisStart
from voice.ari.ivr_port import AGENT_LEG, HANDOFF, AriPortOptions, AriVoicePort
from voice.ari.port import AriPort
from voice.ari.router import AriRouter
from voice.ivr.schema import Flow
from voice.ivr.voice_port import CallerGone, CallInfo, VoicePort, VoicePortError
from voice.speech.listener import SpeechListener
from voice.subscription import Subscription

logger = logging.getLogger(__name__)

IVR = "ivr"  # Stasis(<app>,ivr,<flow>,<number>): an IVR call, as the rendered dialplan sends it
# First Stasis arguments that are not flows: channels made for something else than an IVR call.
OTHER_PURPOSES = frozenset({HANDOFF, "dialer", AGENT_LEG, "snoop", "media"})
# Channels that never are a caller, whatever their arguments.
MEDIA_TECHNOLOGIES = ("Snoop/", "UnicastRTP/", "AudioSocket/", "WebSocket/")
LINKEDID = "CHANNEL(linkedid)"


class FlowRunner(Protocol):
    """What runs a flow on a port: `voice.ivr.call_runner.CallRunner`."""

    async def run(self, flow: Flow, port: VoicePort, call: CallInfo) -> object: ...


class StasisIvr:
    """Runs a flow for every IVR call of the Stasis application `application`; see the module's text."""

    def __init__(
        self,
        ari: AriPort,
        router: AriRouter,
        runner: FlowRunner,
        flows: Callable[[str], Flow | None],
        *,
        application: str,
        fallback_flow: str | None = None,
        failed_context: str | None = None,
        options: AriPortOptions = AriPortOptions(),
        other_purposes: Iterable[str] = OTHER_PURPOSES,
        queues: IvrQueues | None = None,
        listener: SpeechListener | None = None,
    ) -> None:
        self._ari = ari
        self._router = router
        self._runner = runner
        self._flows = flows
        self.application = application
        self._fallback_flow = fallback_flow
        self._failed_context = failed_context
        self._options = options
        self._other_purposes = frozenset(other_purposes) | {HANDOFF, AGENT_LEG}
        self._queues = queues
        self._listener = listener
        self._subscription: Subscription | None = None
        self._ports: dict[str, AriVoicePort] = {}  # channel id -> the port of its running call
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        if self._subscription is not None:
            raise RuntimeError("the Stasis IVR is already running")
        self._stopping = False
        self._subscription = self._router.subscribe(
            self._on_stasis_start, application=self.application, types=[StasisStart]
        )
        logger.info("ARI: the IVR answers the calls of Stasis application %r", self.application)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking calls, let running ones finish for `grace_seconds`, then cancel the rest."""
        if self._subscription is None:
            return
        self._stopping = True
        running = set(self._tasks)
        if running:
            logger.info("ARI IVR stopping: waiting up to %gs for %d calls", grace_seconds, len(running))
            _, pending = await asyncio.wait(running, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            if pending:
                logger.warning("ARI IVR stopped: cancelled %d calls still running", len(pending))
        self._subscription.cancel()
        self._subscription = None
        while self._tasks:  # the cancelled ones, and calls handed back to the dialplan meanwhile
            await asyncio.gather(*set(self._tasks), return_exceptions=True)

    async def __aenter__(self) -> StasisIvr:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @property
    def active_calls(self) -> int:
        return len(self._ports)

    def port(self, channel_id: str) -> AriVoicePort | None:
        """The port of the call running on this channel, if any."""
        return self._ports.get(channel_id)

    async def resync(self) -> None:
        """After the event stream (re)connected: end the calls whose channel went away meanwhile."""
        ports = list(self._ports.values())
        if ports:
            await asyncio.gather(*(port.check_channel() for port in ports))

    # --- one StasisStart -----------------------------------------------------------------------------

    def _on_stasis_start(self, event: AriEvent) -> None:
        if not isinstance(event, StasisStart):
            return
        channel = event.channel
        if channel.id in self._ports:
            return  # back from a queue or transfer: its port takes it
        purpose = event.args[0] if event.args else ""
        if purpose == HANDOFF:
            logger.warning("ARI: channel %s came back from a handoff nobody waits for", channel.id)
            self._spawn(self._hand_back(channel.id), f"hand back {channel.id}")
            return
        if purpose in self._other_purposes or channel.name.startswith(MEDIA_TECHNOLOGIES):
            logger.debug("ARI: channel %s (%s) is not an IVR call", channel.id, purpose or channel.name)
            return
        if self._stopping:
            logger.warning("ARI: call on channel %s refused, the IVR is stopping", channel.id)
            self._spawn(self._hand_back(channel.id), f"hand back {channel.id}")
            return
        # The port listens from now on: keys pressed before the flow starts are kept for it.
        port = AriVoicePort(
            self._ari,
            self._router,
            channel.id,
            options=self._options,
            queues=self._queues,
            application=self.application,
            listener=self._listener,
        )
        self._ports[channel.id] = port
        self._spawn(self._serve(port, event), f"IVR call {channel.id}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, port: AriVoicePort, event: StasisStart) -> None:
        channel = event.channel
        requested, _ = requested_flow(event.args)
        where = f"flow {requested!r}, channel {channel.name or channel.id} ({channel.id})"
        try:
            flow = self._flow_for(requested, where)
            if flow is None:
                await _hang_up_politely(port)
                return
            call = await call_info(self._ari, event)
            port.call_id, port.caller = call.call_id, call.caller
            logger.debug("ARI call started: %s, call %s", where, call.call_id)
            await self._runner.run(flow, port, call)
        except asyncio.CancelledError:
            logger.warning("ARI call cancelled: %s", where)
            raise
        except Exception:
            logger.exception("ARI call failed: %s", where)
        finally:
            try:
                await port.close()
            finally:
                self._ports.pop(channel.id, None)

    def _flow_for(self, requested: str, where: str) -> Flow | None:
        try:
            flow = self._flows(requested) if requested else None
            if flow is not None:
                return flow
            fallback = self._fallback_flow
            if fallback is None:
                logger.warning("ARI: no flow for %s; hanging up", where)
                return None
            logger.warning("ARI: no flow for %s; running the fallback flow %r", where, fallback)
            flow = self._flows(fallback)
        except Exception:
            logger.exception("ARI: finding the flow failed for %s; hanging up", where)
            return None
        if flow is None:
            logger.error("ARI: the fallback flow %r does not exist either; hanging up", fallback)
        return flow

    async def _hand_back(self, channel_id: str) -> None:
        """A call the IVR does not take: to the failure context, or on after Stasis()."""
        context = self._failed_context
        try:
            await self._ari.continue_in_dialplan(
                channel_id,
                context=context,
                extension="s" if context else None,
                priority=1 if context else None,
            )
        except AriNotFound:
            pass
        except AriError as exc:
            logger.warning("ARI: could not hand channel %s back to the dialplan: %s", channel_id, exc)


async def _hang_up_politely(port: AriVoicePort) -> None:
    """The fallback for a flow nobody has, as over FastAGI: end the call cleanly."""
    try:
        await port.hangup()
    except CallerGone:
        pass  # it ended by itself
    except VoicePortError as exc:
        logger.warning("ARI: could not hang up channel %s: %s", port.channel_id, exc)


async def call_info(ari: AriPort, event: StasisStart) -> CallInfo:
    """Who is calling, and the id of the call: the linkedid (shared by every channel of the call), from
    the event's channel variables or else asked for; the channel id if that fails."""
    channel = event.channel
    linkedid = _carried_linkedid(channel)
    if linkedid is None:
        try:
            linkedid = await ari.get_variable(channel.id, LINKEDID) or None
        except AriError as exc:
            logger.info(
                "no linkedid for channel %s (%s); the call is known by its channel id", channel.id, exc
            )
    number = channel.caller.number.strip()
    flow, called = requested_flow(event.args)
    if called is None and channel.dialplan is not None and channel.dialplan.exten not in ("", "s"):
        called = channel.dialplan.exten
    return CallInfo(
        call_id=linkedid or channel.id,
        ref_kind=(RefKind.ASTERISK_LINKEDID if linkedid else RefKind.ASTERISK_UNIQUEID).value,
        caller=number if number and number.lower() != "unknown" else None,
        called=called,
        channel=channel.name,
        flow=flow,
    )


def requested_flow(args: tuple[str, ...]) -> tuple[str, str | None]:
    """The flow a call asks for, and the number dialled when the dialplan passes it:
    ("ivr", flow, number) from the rendered dialplan, or (flow,)."""
    if args and args[0] == IVR:
        flow = args[1] if len(args) > 1 else ""
        return flow, (args[2] or None) if len(args) > 2 else None
    return (args[0] if args else ""), None


def _carried_linkedid(channel: Channel) -> str | None:
    """The linkedid if the event carries it: `channelvars` (ari.conf) or a field of a newer Asterisk."""
    extra = channel.model_extra or {}
    for value in ((channel.channelvars or {}).get(LINKEDID), extra.get("linkedid")):
        if isinstance(value, str) and value:
            return value
    return None
