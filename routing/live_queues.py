"""The live ACD: calls waiting in queues, agents' live states, and the offers that join them.

In memory, one instance per process (the composition root makes it; the API and the voice layer share
it). Everything runs on one asyncio loop: the public methods are plain methods to call on that loop
(`submit` hands work over from another thread), and nothing here touches the database. Three small
ports connect it to the world:

- `AgentConnector.offer(offer)` rings the agent's endpoint and, when answered, bridges the call to it
  (the ARI adapter comes with the voice glue; `FakeAgentConnector` is beside this module);
- `RoutingEvents.state_changed(change)` records every agent state change (the history row, the audit
  row and the `agent.state_changed` event: `routing.recorder`), in order;
- `RoutingEvents.call_offered(offer)` publishes the screen pop.

Whenever something changes (a call joins or leaves, an agent becomes ready, a wrap-up or a widening
step is due, a max wait runs out) the ACD decides again with `routing.acd.assign` and offers each
chosen call to its agent. An offer nobody answers pauses the agent ("missed call": see
`routing.agent_state`) and the call goes back to waiting with its place (its entry time) kept, so the
next decision offers it to the next agent at once.

For the IVR: `join(call)` answers `Joined` (position and estimated wait) or `Refused` (unknown queue,
queue full, no agent logged in who could take it); `await wait(call_id)` answers when the call is
answered (`answered`, with the agent), its max wait ran out (`max_wait`), or it left (`left`); then
`call_ended(call_id)` when the conversation is over puts the agent in the queue's wrap-up.

Callbacks keep the caller's place as *virtual positions* (`join_virtual`): an entry ordered with the
calls by the same priority and entry time (the caller's own, when they were in the queue before), so it
reaches the front when the caller would have. The ACD routes it like a waiting call, but the agent it
chooses is only reserved (offered): the entry's `VirtualCaller` dials the customer and bridges them to
the agent when they answer. A customer who does not answer releases the agent, who keeps their place
in the idle order, and the entry leaves (the callback desk retries it later, with its place). Virtual
entries never time out on max wait, are never refused for a full queue or for nobody being logged in
(the callback was already promised), and count in no service level. `place_of(call_id)` tells the
booker where a call that is waiting, or left lately without an answer, had its place.

The service level "so far today" counts, per queue since midnight UTC, calls answered (and those
within the target) and calls that left unanswered (hung up or max wait): answered within the target
over answered plus unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from core.db import utcnow
from core.errors import Conflict, NotFound
from routing import acd
from routing.acd import SkillNeed
from routing.agent_state import (
    BUSY,
    AgentEvent,
    AgentState,
    AgentStatus,
    Answer,
    Dialed,
    Hangup,
    IllegalTransition,
    Login,
    Missed,
    Offer,
    Ready,
    Tick,
    Withdraw,
    transition,
)
from routing.wait_estimate import HandledCall, QueueLoad, WaitEstimate, estimate, expected_free_in
from routing.wait_estimate import recent_handle_times as _recent_handle_times

log = logging.getLogger(__name__)

OfferResult = Literal["answered", "no_answer", "busy", "failed"]
# How a virtual position's call went: with the agent; the customer did not answer (busy, no answer,
# failed, or a number that may not be called now); the customer answered but the agent did not.
VirtualResult = Literal["connected", "not_reached", "agent_missed"]
ACD_ACTOR = "acd"
DIALER_ACTOR = "dialer"
FINISHED_KEPT = 1000
RING_GRACE_S = 10.0  # on top of the ring time, before an offer the connector never answers is given up


@dataclass(frozen=True, slots=True)
class AgentProfile:
    agent_id: int
    name: str
    skills: Mapping[str, int] = field(default_factory=dict)
    home_endpoint: str | None = None  # the agent's own phone (a campaign may list it)


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    needs: tuple[SkillNeed, ...] = ()
    priority: int = 0
    service_level_s: int = 20
    service_level_percent: int = 80
    max_wait_s: int | None = None
    max_length: int | None = None
    wrap_up_s: int = 30
    overflow_wait_s: int | None = None
    widen_after_s: int | None = None


@dataclass(frozen=True, slots=True)
class InboundCall:
    call_id: str  # e.g. the Asterisk linkedid
    queue: str
    caller: str | None = None  # the number, for the screen pop's lookup
    customer_id: int | None = None
    priority: int = 0  # the IVR's, an open case's: added to the queue's
    skills: tuple[str, ...] = ()  # asked for by the IVR: required, any level
    preferred_agent: int | None = None  # e.g. who handled the customer's open case last
    context: Mapping[str, Any] = field(default_factory=dict)  # what the IVR collected
    interaction_id: int | None = None


@dataclass(frozen=True, slots=True)
class CallOffer:
    call: InboundCall
    agent_id: int
    agent_name: str
    endpoint: str
    waited_s: float
    ring_timeout_s: float
    preferred: bool


class VirtualCaller(Protocol):
    """Makes the call behind a virtual position: dial the customer, bridge them to the reserved agent."""

    @property
    def ring_timeout_s(self) -> float:
        """The longest `dial` may take to answer (the customer's ring, then the agent's)."""
        ...

    async def dial(self, offer: CallOffer) -> VirtualResult:
        """Dial the customer for `offer.call`; when they answer, bridge them to `offer.endpoint`.
        Returns once that is decided; cancelled when the entry leaves (then hang up)."""
        ...


@dataclass(frozen=True, slots=True)
class Place:
    """Where a call had its place in a queue: what a callback booked for it keeps."""

    queue: str
    entered_at: datetime
    priority: int  # the call's own (the IVR's, an open case's), without the queue's
    skills: tuple[str, ...] = ()
    preferred_agent: int | None = None


class AgentConnector(Protocol):
    async def offer(self, offer: CallOffer) -> OfferResult:
        """Ring `offer.endpoint` for up to `offer.ring_timeout_s`; when answered, bridge the call to it."""
        ...


@dataclass(frozen=True, slots=True)
class StateChange:
    agent_id: int
    agent_name: str
    before: AgentStatus
    after: AgentStatus
    actor: str
    at: datetime


class RoutingEvents(Protocol):
    def state_changed(self, change: StateChange) -> Awaitable[None]: ...

    def call_offered(self, offer: CallOffer) -> Awaitable[None]: ...


@dataclass(frozen=True, slots=True)
class Joined:
    call_id: str
    position: int
    estimate: WaitEstimate
    priority: int = 0  # the call's priority in the queue
    open_case_raised_from: int | None = None  # the IVR's priority, when an open case raised it


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Literal["unknown_queue", "queue_full", "no_agents", "duplicate"]
    detail: str


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Literal["answered", "max_wait", "left"]
    waited_s: float
    agent_id: int | None = None


@dataclass(frozen=True, slots=True)
class ServiceLevelSoFar:
    answered: int
    answered_within_target: int
    abandoned: int

    @property
    def percent(self) -> float | None:
        handled = self.answered + self.abandoned
        return None if handled == 0 else round(100 * self.answered_within_target / handled, 1)


@dataclass(frozen=True, slots=True)
class QueueLive:
    config: QueueConfig
    waiting: int
    longest_wait_s: float
    estimate: WaitEstimate  # for a caller joining now
    agents: dict[str, int]  # agents who can take the queue's calls, by state
    service_level: ServiceLevelSoFar
    callbacks_waiting: int = 0  # of `waiting`: virtual positions (callbacks keeping their place)


@dataclass(slots=True)
class _Agent:
    profile: AgentProfile
    status: AgentStatus
    talk: tuple[str, float, datetime] | None = None  # after a call: queue, talk seconds, wrap-up start


@dataclass(slots=True)
class _Call:
    call: InboundCall
    entered_at: datetime
    needs: tuple[SkillNeed, ...]
    priority: int
    done: asyncio.Future[Outcome]
    agent_id: int | None = None  # offered to, then connected to
    answered_at: datetime | None = None
    offer_task: asyncio.Task[None] | None = None
    virtual: VirtualCaller | None = None  # a callback's position: dialed instead of bridged


@dataclass(slots=True)
class _Today:
    day: date
    answered: int = 0
    within: int = 0
    abandoned: int = 0


class LiveQueues:
    def __init__(
        self,
        connector: AgentConnector,
        events: RoutingEvents,
        *,
        clock: Callable[[], datetime] = utcnow,
        ring_timeout_s: float = 15.0,
    ) -> None:
        self.connector = connector
        self._events = events
        self._clock = clock
        self.ring_timeout_s = ring_timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Future[Any]] = set()
        self._queues: dict[str, QueueConfig] = {}
        self._agents: dict[int, _Agent] = {}
        self._calls: dict[str, _Call] = {}
        self._handled: dict[str, deque[HandledCall]] = {}
        self._today: dict[str, _Today] = {}
        # Outcomes of calls that left their queue lately, for a wait() that comes after the fact.
        self._finished: OrderedDict[str, Outcome] = OrderedDict()
        # Places of calls that left unanswered lately, for a callback booked after they left.
        self._left: OrderedDict[str, Place] = OrderedDict()

    # --- set-up ---------------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the ACD runs on (the first one that used it), for work from other threads."""
        return self._loop

    def submit(self, work: Callable[[], None]) -> None:
        """Runs `work` on the ACD's loop; from any thread. Before the loop is known: at once."""
        loop = self._loop
        if loop is None or loop.is_closed() or _running_loop() is loop:
            work()
        else:
            loop.call_soon_threadsafe(work)

    def set_queue(self, config: QueueConfig) -> None:
        self._queues[config.name] = config
        self._handled.setdefault(config.name, deque(maxlen=500))
        self._decide()

    def set_agent(self, profile: AgentProfile, status: AgentStatus | None = None) -> None:
        """A new or changed agent (name, skills); `status` restores a state read back at start-up."""
        known = self._agents.get(profile.agent_id)
        if known is None:
            self._agents[profile.agent_id] = _Agent(profile, status or AgentStatus())
        else:
            known.profile = profile
            if status is not None:
                known.status = status
        self._decide()

    def clear(self) -> None:
        """Forgets every queue, agent and call (calls still waiting are told they left)."""
        for live in list(self._calls.values()):
            if live.virtual is not None and live.offer_task is not None:
                live.offer_task.cancel()  # the agents go too: the callback desk joins it again
            self._finish(live, Outcome("left", 0.0))
        self._queues.clear()
        self._agents.clear()
        self._handled.clear()
        self._today.clear()

    # --- agents ---------------------------------------------------------------------------------------

    def status_of(self, agent_id: int) -> AgentStatus:
        return self._agent(agent_id).status

    def agent_for_endpoint(self, endpoint: str) -> int | None:
        """The agent logged in on `endpoint`, if any."""
        for agent in self._agents.values():
            if agent.status.endpoint == endpoint and agent.status.state is not AgentState.LOGGED_OUT:
                return agent.profile.agent_id
        return None

    def home_of(self, endpoint: str) -> int | None:
        """The agent whose own phone `endpoint` is, logged in or not."""
        for agent in self._agents.values():
            if agent.profile.home_endpoint == endpoint:
                return agent.profile.agent_id
        return None

    def campaign_call_started(
        self, agent_id: int, call_id: str, campaign: str, *, ends_wrap_up: bool = False
    ) -> bool:
        """The dialer connects a campaign's call to the agent: ready -> on call, so that the ACD offers
        them nothing meanwhile. False when the agent is not ready (an inbound call, a pause, got there
        first): the dialer must take someone else. `ends_wrap_up`: the agent asked for the call (a
        preview dial), which ends their wrap-up first."""
        self._bind()
        agent = self._agent(agent_id)
        now = self._clock()
        if ends_wrap_up and agent.status.state is AgentState.WRAP_UP:
            self._change(agent, Ready(), DIALER_ACTOR, now)
        try:
            self._change(agent, Dialed(call_id, campaign), DIALER_ACTOR, now)
        except IllegalTransition:
            return False
        return True

    def campaign_call_ended(self, agent_id: int, call_id: str, wrap_up_seconds: float) -> None:
        """The campaign's call `call_id` is over: the agent wraps up, then the ACD may offer them calls.
        Nothing happens when the agent is no longer on that call."""
        self._bind()
        agent = self._agents.get(agent_id)
        if agent is None or agent.status.state is not AgentState.ON_CALL or agent.status.call_id != call_id:
            return
        self._change(agent, Hangup(max(0.0, wrap_up_seconds)), DIALER_ACTOR, self._clock())
        self._decide()

    async def change(self, agent_id: int, event: AgentEvent, *, actor: str) -> AgentStatus:
        """An agent's own or a supervisor's change (log in, log out, pause, ready); raises
        IllegalTransition or EndpointHeld. Returns once the change is recorded."""
        self._bind()
        agent = self._agent(agent_id)
        if isinstance(event, Login):
            holder = self.agent_for_endpoint(event.endpoint)
            if holder is not None and holder != agent_id:
                name = self._agents[holder].profile.name
                raise EndpointHeld(f"{event.endpoint} is held by agent {name!r}: they must log out first")
        recorded = self._change(agent, event, actor, self._clock())
        self._decide()
        if recorded is not None:
            await recorded
        return agent.status

    # --- calls ----------------------------------------------------------------------------------------

    def join(self, call: InboundCall) -> Joined | Refused:
        self._bind()
        config = self._queues.get(call.queue)
        if config is None:
            return Refused("unknown_queue", f"there is no queue {call.queue!r}")
        if call.call_id in self._calls:
            return Refused(
                "duplicate",
                f"call {call.call_id} is already in queue {self._calls[call.call_id].call.queue!r}",
            )
        now = self._clock()
        self._expire(now)
        waiting = self._waiting(call.queue)
        if config.max_length is not None and len(waiting) >= config.max_length:
            return Refused("queue_full", f"queue {call.queue!r} already has {len(waiting)} calls waiting")
        needs = acd.merge_needs(config.needs, call.skills)
        if not any(self._can_take(agent, needs) and _logged_in(agent) for agent in self._agents.values()):
            return Refused("no_agents", f"no agent who can take queue {call.queue!r} calls is logged in")
        loop = asyncio.get_running_loop()
        live = _Call(call, now, needs, config.priority + call.priority, loop.create_future())
        self._calls[call.call_id] = live
        joined = Joined(
            call.call_id,
            self._position(live),
            self.estimate(call.queue, call_id=call.call_id),
            priority=call.priority,
        )
        self._decide()
        return joined

    async def wait(self, call_id: str) -> Outcome:
        """Until the call is answered by an agent, its max wait runs out, or it leaves."""
        live = self._calls.get(call_id)
        if live is None:
            finished = self._finished.get(call_id)
            if finished is None:
                raise NotFound(f"call {call_id} is not in a queue")
            return finished
        return await asyncio.shield(live.done)

    def leave(self, call_id: str) -> None:
        """The caller hung up (or chose a callback) before an agent answered: the call leaves its queue."""
        live = self._calls.get(call_id)
        if live is None or live.answered_at is not None:
            return
        now = self._clock()
        if live.offer_task is not None:
            live.offer_task.cancel()
            live.offer_task = None
            if live.agent_id is not None and live.agent_id in self._agents:
                self._change(self._agents[live.agent_id], Withdraw(), ACD_ACTOR, now)
        if live.virtual is None:
            self._count_abandoned(live.call.queue, now)
        self._finish(live, Outcome("left", _seconds(now - live.entered_at)))
        self._decide()

    def call_ended(self, call_id: str) -> None:
        """The conversation with the agent is over: the agent goes to the queue's wrap-up."""
        live = self._calls.get(call_id)
        if live is None:
            return
        if live.answered_at is None:
            self.leave(call_id)
            return
        del self._calls[call_id]
        now = self._clock()
        if live.agent_id is not None and live.agent_id in self._agents:
            agent = self._agents[live.agent_id]
            config = self._queues.get(live.call.queue)
            wrap_up = config.wrap_up_s if config is not None else 0
            agent.talk = (live.call.queue, _seconds(now - live.answered_at), now)
            self._change(agent, Hangup(wrap_up), ACD_ACTOR, now)
        self._decide()

    def join_virtual(
        self,
        call: InboundCall,
        *,
        entered_at: datetime,
        caller: VirtualCaller,
        replaces: str | None = None,
    ) -> Joined | Refused:
        """A callback takes its place: ordered by `entered_at` and the call's priority like a waiting
        call. `replaces`: the caller's own call, if still waiting in the queue, leaves it (not counted
        as abandoned: the caller chose the callback) and the callback keeps its place."""
        self._bind()
        if call.queue not in self._queues:
            return Refused("unknown_queue", f"there is no queue {call.queue!r}")
        if call.call_id in self._calls:
            return Refused(
                "duplicate",
                f"call {call.call_id} is already in queue {self._calls[call.call_id].call.queue!r}",
            )
        config = self._queues[call.queue]
        now = self._clock()
        if replaces is not None:
            own = self._calls.get(replaces)
            if own is not None and own.agent_id is None and own.call.queue == call.queue:
                entered_at = min(entered_at, own.entered_at)
                self._finish(own, Outcome("left", _seconds(now - own.entered_at)))
        loop = asyncio.get_running_loop()
        needs = acd.merge_needs(config.needs, call.skills)
        live = _Call(call, entered_at, needs, config.priority + call.priority, loop.create_future())
        live.virtual = caller
        self._calls[call.call_id] = live
        joined = Joined(
            call.call_id,
            self._position(live),
            self.estimate(call.queue, call_id=call.call_id),
            priority=call.priority,
        )
        self._decide()
        return joined

    def virtual_ids(self) -> set[str]:
        """The virtual positions in every queue (waiting, or with an agent)."""
        return {call_id for call_id, live in self._calls.items() if live.virtual is not None}

    def place_of(self, call_id: str) -> Place | None:
        """Where the call has (waiting) or had (left lately without an answer) its place."""
        live = self._calls.get(call_id)
        if live is not None:
            if live.answered_at is not None:
                return None
            return _place(live)
        return self._left.get(call_id)

    def position_of(self, call_id: str) -> int | None:
        live = self._calls.get(call_id)
        return None if live is None or live.agent_id is not None else self._position(live)

    # --- figures --------------------------------------------------------------------------------------

    def estimate(self, queue: str, *, call_id: str | None = None) -> WaitEstimate:
        """The estimated wait of call `call_id` in `queue`, or of a caller joining it now; says whether
        to offer overflow (see routing.wait_estimate)."""
        config = self._config(queue)
        now = self._clock()
        waiting = self._waiting(queue)
        position = None if call_id is None else self.position_of(call_id)
        handle = _recent_handle_times(self._handled.get(queue, ()), now, default_wrap_up_s=config.wrap_up_s)
        agents = [a for a in self._agents.values() if self._can_take(a, config.needs)]
        busy = []
        for agent in agents:
            status = agent.status
            if status.state is AgentState.OFFERED:
                busy.append(expected_free_in(handle=handle, ringing=True, wrap_up_s=config.wrap_up_s))
            elif status.state is AgentState.ON_CALL:
                talking = _seconds(now - (status.since or now))
                busy.append(
                    expected_free_in(handle=handle, talking_for_s=talking, wrap_up_s=config.wrap_up_s)
                )
            elif status.state is AgentState.WRAP_UP:
                busy.append(
                    expected_free_in(handle=handle, wrap_up_left_s=_seconds((status.until or now) - now))
                )
        return estimate(
            QueueLoad(
                waiting=len(waiting),
                position=position,
                logged_in=sum(_logged_in(a) for a in agents),
                ready=sum(a.status.state is AgentState.READY for a in agents),
                busy_free_in_s=busy,
                handle=handle,
                max_length=config.max_length,
                overflow_wait_s=config.overflow_wait_s,
                max_wait_s=config.max_wait_s,
            )
        )

    def queue_status(self, queue: str) -> QueueLive:
        config = self._config(queue)
        now = self._clock()
        waiting = self._waiting(queue)
        agents = Counter(
            a.status.state.value for a in self._agents.values() if self._can_take(a, config.needs)
        )
        today = self._day(queue, now)
        return QueueLive(
            config=config,
            waiting=len(waiting),
            longest_wait_s=max(
                (_seconds(now - c.entered_at) for c in waiting if c.virtual is None), default=0.0
            ),
            estimate=self.estimate(queue),
            agents={state.value: agents.get(state.value, 0) for state in AgentState},
            service_level=ServiceLevelSoFar(today.answered, today.within, today.abandoned),
            callbacks_waiting=sum(c.virtual is not None for c in waiting),
        )

    def tick(self) -> None:
        """Re-evaluate now: wrap-ups that ended, max waits that ran out, widened matches."""
        self._decide()

    # --- inside ---------------------------------------------------------------------------------------

    def _bind(self) -> None:
        loop = _running_loop()
        if loop is not None and (self._loop is None or self._loop.is_closed()):
            self._loop = loop
            self._timer = None

    def _agent(self, agent_id: int) -> _Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise NotFound(f"agent {agent_id} not found")
        return agent

    def _config(self, queue: str) -> QueueConfig:
        config = self._queues.get(queue)
        if config is None:
            raise NotFound(f"queue {queue!r} not found")
        return config

    def _waiting(self, queue: str) -> list[_Call]:
        """The queue's calls not yet with an agent, in the order they are served."""
        calls = [c for c in self._calls.values() if c.call.queue == queue and c.agent_id is None]
        return sorted(calls, key=lambda c: (-c.priority, c.entered_at, c.call.call_id))

    def _position(self, live: _Call) -> int:
        return self._waiting(live.call.queue).index(live) + 1

    @staticmethod
    def _can_take(agent: _Agent, needs: Iterable[SkillNeed]) -> bool:
        """Could ever take the calls (has the required skills at some level)."""
        return all(need.optional or need.skill in agent.profile.skills for need in needs)

    def _change(
        self, agent: _Agent, event: AgentEvent, actor: str, now: datetime
    ) -> asyncio.Future[None] | None:
        before = agent.status
        after = transition(before, event, now)
        if after == before:
            return None
        if agent.talk is not None and after.state is not AgentState.WRAP_UP:
            self._handled_call(agent, after.since or now)  # the call and its wrap-up are over
        agent.status = after
        change = StateChange(agent.profile.agent_id, agent.profile.name, before, after, actor, now)
        return self._background_task(self._events.state_changed(change), f"recording {change}")

    def _handled_call(self, agent: _Agent, ended_at: datetime) -> None:
        if agent.talk is None:
            return
        queue, talk_s, wrap_started = agent.talk
        agent.talk = None
        if queue in self._handled:
            wrap_s = max(0.0, _seconds(ended_at - wrap_started))
            self._handled[queue].append(HandledCall(ended_at, talk_s, wrap_s))

    def _background_task(self, work: Awaitable[None], what: str) -> asyncio.Future[None]:
        future = asyncio.ensure_future(work)  # always on the loop: see _decide
        self._background.add(future)

        def done(finished: asyncio.Future[None]) -> None:
            self._background.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("%s failed", what, exc_info=finished.exception())

        future.add_done_callback(done)
        return future

    def _tick_agents(self, now: datetime) -> None:
        for agent in self._agents.values():
            if agent.status.state is AgentState.WRAP_UP:
                self._change(agent, Tick(), ACD_ACTOR, now)

    def _expire(self, now: datetime) -> None:
        for live in list(self._calls.values()):
            config = self._queues.get(live.call.queue)
            if live.agent_id is not None or live.virtual is not None:
                continue  # a callback waits without anyone on hold: max wait is not its limit
            if config is None or config.max_wait_s is None:
                continue
            if now - live.entered_at >= timedelta(seconds=config.max_wait_s):
                self._count_abandoned(live.call.queue, now)
                self._finish(live, Outcome("max_wait", _seconds(now - live.entered_at)))

    def _decide(self) -> None:
        """Decide and make offers; then set the timer for the next moment something is due.
        Only on the loop: before it is known (set-up), the first decision on it catches up."""
        if _running_loop() is None:
            return
        now = self._clock()
        self._tick_agents(now)
        self._expire(now)
        waiting = [self._waiting_call(c) for c in self._calls.values() if c.agent_id is None]
        ready = [
            acd.ReadyAgent(a.profile.agent_id, a.profile.skills, a.status.idle_since or now)
            for a in self._agents.values()
            if a.status.state is AgentState.READY
        ]
        if waiting and ready:
            for assignment in acd.assign(waiting, ready, now):
                self._offer(
                    self._calls[assignment.call_id], self._agents[assignment.agent_id], assignment, now
                )
        self._set_timer(now)

    def _waiting_call(self, live: _Call) -> acd.WaitingCall:
        config = self._queues.get(live.call.queue)
        return acd.WaitingCall(
            live.call.call_id,
            live.call.queue,
            live.priority,
            live.entered_at,
            live.needs,
            config.widen_after_s if config is not None else None,
            live.call.preferred_agent,
        )

    def _offer(self, live: _Call, agent: _Agent, assignment: acd.Assignment, now: datetime) -> None:
        self._change(agent, Offer(live.call.call_id, live.call.queue), ACD_ACTOR, now)
        live.agent_id = agent.profile.agent_id
        offer = CallOffer(
            call=live.call,
            agent_id=agent.profile.agent_id,
            agent_name=agent.profile.name,
            endpoint=agent.status.endpoint or "",
            waited_s=_seconds(now - live.entered_at),
            ring_timeout_s=self.ring_timeout_s if live.virtual is None else live.virtual.ring_timeout_s,
            preferred=assignment.preferred,
        )
        self._background_task(self._events.call_offered(offer), f"screen pop of {live.call.call_id}")
        ring = self._ring(live, agent, offer) if live.virtual is None else self._dial(live, agent, offer)
        live.offer_task = asyncio.create_task(ring, name=f"offer {live.call.call_id}")

    async def _ring(self, live: _Call, agent: _Agent, offer: CallOffer) -> None:
        try:
            result = await asyncio.wait_for(
                self.connector.offer(offer), timeout=offer.ring_timeout_s + RING_GRACE_S
            )
        except TimeoutError:
            result = "no_answer"
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("offering call %s to %s failed", live.call.call_id, offer.endpoint)
            result = "failed"
        live.offer_task = None
        if self._calls.get(live.call.call_id) is not live or agent.status.call_id != live.call.call_id:
            return  # it left, or the state was reset, while the phone rang
        now = self._clock()
        if result == "answered":
            live.answered_at = now
            self._change(agent, Answer(), ACD_ACTOR, now)
            waited = _seconds(now - live.entered_at)
            today = self._day(live.call.queue, now)
            config = self._queues.get(live.call.queue)
            today.answered += 1
            today.within += int(config is not None and waited <= config.service_level_s)
            self._finished[live.call.call_id] = Outcome("answered", waited, agent.profile.agent_id)
            if not live.done.done():
                live.done.set_result(self._finished[live.call.call_id])
        else:
            self._change(agent, Missed(result), ACD_ACTOR, now)
            live.agent_id = None  # back to waiting, its entry time (and so its place) kept
        self._decide()

    async def _dial(self, live: _Call, agent: _Agent, offer: CallOffer) -> None:
        """A virtual position's offer: the agent is reserved while its caller dials the customer."""
        assert live.virtual is not None
        try:
            result = await asyncio.wait_for(
                live.virtual.dial(offer), timeout=offer.ring_timeout_s + RING_GRACE_S
            )
        except TimeoutError:
            log.error("callback %s: the dial did not finish in time", live.call.call_id)
            result = "not_reached"
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dialing callback %s for %s failed", live.call.call_id, offer.endpoint)
            result = "not_reached"
        live.offer_task = None
        if self._calls.get(live.call.call_id) is not live or agent.status.call_id != live.call.call_id:
            return  # it left, or the state was reset, while the phones rang
        now = self._clock()
        if result == "connected":
            live.answered_at = now
            self._change(agent, Answer(), ACD_ACTOR, now)
            outcome = Outcome("answered", _seconds(now - live.entered_at), agent.profile.agent_id)
            self._finished[live.call.call_id] = outcome
            if not live.done.done():
                live.done.set_result(outcome)
        else:
            # Busy, no answer: not the agent's doing, so they keep their place in the idle order.
            # The entry leaves; the callback desk joins it again, with its place, when a retry is due.
            event: AgentEvent = Missed("no_answer") if result == "agent_missed" else Withdraw()
            self._change(agent, event, ACD_ACTOR, now)
            self._finish(live, Outcome("left", _seconds(now - live.entered_at)))
        self._decide()

    def _finish(self, live: _Call, outcome: Outcome) -> None:
        self._calls.pop(live.call.call_id, None)
        self._finished[live.call.call_id] = outcome
        while len(self._finished) > FINISHED_KEPT:
            self._finished.popitem(last=False)
        if outcome.result != "answered" and live.virtual is None:
            self._left[live.call.call_id] = _place(live)
            while len(self._left) > FINISHED_KEPT:
                self._left.popitem(last=False)
        if not live.done.done() and not live.done.get_loop().is_closed():
            live.done.set_result(outcome)

    def _count_abandoned(self, queue: str, now: datetime) -> None:
        self._day(queue, now).abandoned += 1

    def _day(self, queue: str, now: datetime) -> _Today:
        today = self._today.get(queue)
        if today is None or today.day != now.date():
            today = self._today[queue] = _Today(now.date())
        return today

    def _set_timer(self, now: datetime) -> None:
        loop = _running_loop()
        if loop is None:
            return
        moments: list[datetime] = []
        for agent in self._agents.values():
            if agent.status.state is AgentState.WRAP_UP and agent.status.until is not None:
                moments.append(agent.status.until)
        waiting = [c for c in self._calls.values() if c.agent_id is None]
        widening = acd.next_widening([self._waiting_call(c) for c in waiting], now)
        if widening is not None:
            moments.append(widening)
        for live in waiting:
            config = self._queues.get(live.call.queue)
            if config is not None and config.max_wait_s is not None:
                moments.append(live.entered_at + timedelta(seconds=config.max_wait_s))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if moments:
            delay = max(0.0, _seconds(min(moments) - now))
            self._timer = loop.call_later(delay + 0.001, self._decide)


class EndpointHeld(Conflict):
    """Another agent is logged in on that phone."""


def _place(live: _Call) -> Place:
    return Place(
        queue=live.call.queue,
        entered_at=live.entered_at,
        priority=live.call.priority,
        skills=live.call.skills,
        preferred_agent=live.call.preferred_agent,
    )


def _logged_in(agent: _Agent) -> bool:
    return agent.status.state is not AgentState.LOGGED_OUT


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# --- a connector for tests and demonstrations ---------------------------------------------------------


class FakeAgentConnector:
    """Answers offers as scripted per endpoint ("answered" unless told otherwise), at once or when a
    test releases them (`hold=True`: each offer waits until `answer(endpoint, result)`)."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.results: dict[str, list[OfferResult]] = {}
        self.offers: list[CallOffer] = []
        self._pending: dict[str, asyncio.Future[OfferResult]] = {}
        self._lock = threading.Lock()

    def script(self, endpoint: str, *results: OfferResult) -> None:
        self.results.setdefault(endpoint, []).extend(results)

    async def offer(self, offer: CallOffer) -> OfferResult:
        self.offers.append(offer)
        if self.hold:
            future: asyncio.Future[OfferResult] = asyncio.get_running_loop().create_future()
            self._pending[offer.endpoint] = future
            try:
                return await future
            finally:
                self._pending.pop(offer.endpoint, None)
        scripted = self.results.get(offer.endpoint)
        return scripted.pop(0) if scripted else "answered"

    def ringing(self) -> list[str]:
        return sorted(self._pending)

    def answer(self, endpoint: str, result: OfferResult = "answered") -> None:
        self._pending[endpoint].set_result(result)


@dataclass
class FakeRoutingEvents:
    """Keeps the changes and offers instead of recording them."""

    changes: list[StateChange] = field(default_factory=list)
    offers: list[CallOffer] = field(default_factory=list)

    async def state_changed(self, change: StateChange) -> None:
        self.changes.append(change)

    async def call_offered(self, offer: CallOffer) -> None:
        self.offers.append(offer)

    def states(self, agent_id: int) -> list[str]:
        return [c.after.state.value for c in self.changes if c.agent_id == agent_id]


def restored(status: AgentStatus, now: datetime) -> AgentStatus:
    """A state read back at start-up: calls did not survive, so anyone busy is ready again."""
    if status.state in BUSY:
        return AgentStatus(AgentState.READY, now, endpoint=status.endpoint, idle_since=now)
    return replace(status)
