"""The live ACD as the IVR uses it: which queues it routes, the estimated wait, and each waiting call's
line for the offers the ACD makes.

The live ACD has one `AgentConnector` for every offer it makes. `IvrQueues` is that connector: a call
waiting on a voice port (the caller in a FastAGI session, on hold) opens a `CallLine` under its call id,
and every offer of that call goes down its line, where the port takes it, rings the agent's phone from
the caller's own channel (Dial) and says how it went. Offers of calls nobody opened a line for (a
callback's virtual position, a test's call) go to the connector that was there before (`fallback`).

    queues = IvrQueues.install(routing.live)     # once; again returns the same one
    line = queues.open_line(call_id)             # before join(): the first offer can come at once
    pending = await line.next_offer()            # the port rings pending.offer.endpoint ...
    pending.settle("answered")                   # ... or "no_answer", "busy", "failed"
    queues.close_line(call_id)

The dialplan can tell the moment the agent picks up, before the two are bridged (Dial's `U()`
subroutine calls back over FastAGI: `agent_answered(call_id)`), so the ACD counts the agent on the call
while they talk rather than when the conversation is over.

Which queues go through the ACD: those in Centralita's `queues` table (the live ACD's copy). A flow's
queue the ACD does not know stays with Asterisk's Queue() (see `voice.agi.ivr_port`).

The voice ports join calls through `await queues.join(call)`: a caller with an open case is preferred
to the agent who handled that case's latest answered call (the ACD gives that agent the call only if
they are ready: `routing.acd`), and their priority goes up by the queue's `open_case_priority_boost`,
never above the IVR's highest (`routing.preferred_agent`, one read for both). The lookup never keeps a
caller out of the queue: when it fails or takes longer than `PREFERENCE_LOOKUP_S`, the call joins as
the IVR sent it, without a preference or a raise.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from core.errors import NotFound
from routing.live_queues import (
    AgentConnector,
    CallOffer,
    InboundCall,
    Joined,
    LiveQueues,
    OfferResult,
    Refused,
)
from routing.preferred_agent import OpenCase, OpenCaseLookup, raised_priority
from routing.recording_calls import QueueRecording
from voice.ivr.call_runner import WaitForecast

log = logging.getLogger(__name__)

PREFERENCE_LOOKUP_S = 2.0  # the longest a joining caller waits for the open case's lookup


@dataclass(slots=True)
class PendingOffer:
    """One offer of a waiting call to an agent, until the port settles it (or the ACD withdraws it)."""

    offer: CallOffer
    result: asyncio.Future[OfferResult]

    @property
    def withdrawn(self) -> bool:
        """The ACD gave up on it (the caller left, or it waited past the ring time)."""
        return self.result.cancelled()

    def settle(self, result: OfferResult) -> bool:
        """Says how the offer went; False if it was settled or withdrawn already."""
        if self.result.done():
            return False
        self.result.set_result(result)
        return True


class CallLine:
    """A waiting call's end of its offers; the voice port is its only reader."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.ringing: PendingOffer | None = None  # set by the port while it rings the agent
        self._offers: asyncio.Queue[PendingOffer] = asyncio.Queue()

    async def offer(self, offer: CallOffer) -> OfferResult:
        """The ACD's side: returns once the port settles the offer (cancelled: withdrawn)."""
        pending = PendingOffer(offer, asyncio.get_running_loop().create_future())
        self._offers.put_nowait(pending)
        return await pending.result

    async def next_offer(self) -> PendingOffer:
        """The port's side: the next offer still standing."""
        while True:
            pending = await self._offers.get()
            if not pending.withdrawn:
                return pending

    def close(self) -> None:
        """The call is off the port: offers not taken yet fail, so the ACD offers the call no further."""
        while not self._offers.empty():
            self._offers.get_nowait().settle("failed")
        if self.ringing is not None:
            self.ringing.settle("failed")


class IvrQueues:
    """The live ACD's connector (see the module docstring), and the ACD's answers to the IVR."""

    def __init__(
        self, live: LiveQueues, *, fallback: AgentConnector, preferred_agents: OpenCaseLookup | None = None
    ) -> None:
        self.live = live
        self.fallback = fallback
        # What a caller's open case asks (preferred agent, priority boost); set by the composition root.
        self.preferred_agents = preferred_agents
        # Whether a queue records its calls (and so announces it); set by the composition root.
        self.recording: QueueRecording | None = None
        self._lines: dict[str, CallLine] = {}

    @classmethod
    def install(cls, live: LiveQueues) -> IvrQueues:
        """Makes (once) the connector that `live` offers calls through; the one it had stays the fallback."""
        connector = live.connector
        if isinstance(connector, IvrQueues):
            return connector
        queues = cls(live, fallback=connector)
        live.connector = queues
        return queues

    # --- AgentConnector ---------------------------------------------------------------------------------

    async def offer(self, offer: CallOffer) -> OfferResult:
        line = self._lines.get(offer.call.call_id)
        if line is None:
            return await self.fallback.offer(offer)
        return await line.offer(offer)

    # --- for the IVR ------------------------------------------------------------------------------------

    def routes(self, queue: str) -> bool:
        """Whether the ACD routes `queue` (Centralita has a queue of that name)."""
        return self.forecast(queue) is not None

    def forecast(self, queue: str) -> WaitForecast | None:
        """The estimated wait of a caller joining `queue` now, and whether to offer overflow instead;
        None for a queue the ACD does not route."""
        try:
            estimate = self.live.estimate(queue)
        except NotFound:
            return None
        return WaitForecast(estimate.announce_minutes, estimate.overflow, estimate.reason)

    async def join(self, call: InboundCall) -> Joined | Refused:
        """The call joins the live ACD; a caller with an open case is preferred to the agent who handled
        it last (unless the call names a preferred agent already) and raised by the queue's open-case
        boost. See the module docstring."""
        finder = self.preferred_agents
        if call.customer_id is not None and finder is not None:
            try:
                async with asyncio.timeout(PREFERENCE_LOOKUP_S):
                    case = await finder.open_case(call.customer_id, call.queue)
            except Exception:  # the caller still joins, as the IVR sent them
                log.exception(
                    "call %s: no preferred agent or open-case priority (the lookup failed)", call.call_id
                )
                case = None
            if case is not None:
                raised = _for_open_case(call, case)
                joined = self.live.join(raised)
                if isinstance(joined, Joined) and raised.priority != call.priority:
                    return replace(joined, open_case_raised_from=call.priority)  # for the timeline
                return joined
        return self.live.join(call)

    def open_line(self, call_id: str) -> CallLine:
        line = self._lines.get(call_id)
        if line is None:
            line = self._lines[call_id] = CallLine(call_id)
        return line

    def close_line(self, call_id: str) -> None:
        line = self._lines.pop(call_id, None)
        if line is not None:
            line.close()

    def agent_answered(self, call_id: str) -> str | None:
        """The dialplan's word that the agent being rung for `call_id` picked up: the offer is answered.
        Returns the agent's name; None when no offer of that call is ringing (the caller hung up, or
        the offer was withdrawn): the agent's leg must then not be bridged."""
        line = self._lines.get(call_id)
        ringing = line.ringing if line is not None else None
        if ringing is None or not ringing.settle("answered"):
            log.warning("an agent answered call %s, but no offer of it is ringing", call_id)
            return None
        return ringing.offer.agent_name

    def lines(self) -> list[str]:
        """Call ids with an open line (for tests and diagnostics)."""
        return sorted(self._lines)


def _for_open_case(call: InboundCall, case: OpenCase) -> InboundCall:
    """The call as the customer's open case has it join: its preferred agent (unless it names one) and
    its priority raised by the queue's boost."""
    preferred = call.preferred_agent if call.preferred_agent is not None else case.preferred_agent
    priority = raised_priority(call.priority, case.priority_boost)
    if priority != call.priority:
        log.info(
            "call %s: priority %d -> %d in queue %s (open case, boost %d)",
            call.call_id,
            call.priority,
            priority,
            call.queue,
            case.priority_boost,
        )
    return replace(call, preferred_agent=preferred, priority=priority)
