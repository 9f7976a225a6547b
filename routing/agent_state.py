"""An agent's state, as a pure state machine: `transition(status, event, now) -> status`.

    logged_out --Login(endpoint)--> ready
    ready --Offer(call, queue)--> offered (the phone rings)
    offered --Answer--> on_call --Hangup(wrap_up_seconds)--> wrap_up (until now + the queue's seconds)
    ready --Dialed(call, campaign)--> on_call (the dialer connected a campaign's call to the agent's phone)
    offered --Withdraw--> ready, keeping its place in the idle order (the caller hung up while ringing)
    offered --Missed(no_answer | busy | failed)--> paused("missed call" | "phone busy" | "phone unreachable")
    wrap_up --Tick (time is up) or Ready--> ready
    ready | wrap_up | paused --Pause(reason)--> paused(reason);  paused --Ready--> ready
    ready | wrap_up | paused --Logout--> logged_out

A missed offer pauses the agent instead of making them ready again: an agent away from the desk would
otherwise be rung for every call in turn, each caller losing the ring time. The agent (or a
supervisor) makes them ready again.

An agent who works both queues and campaigns (a blended agent) is one agent: a campaign's call puts
them on a call as an inbound one does (`Dialed`; its `queue` is `campaign:<campaign id>`), so the ACD
offers them nothing until it ends, and the dialer takes only agents the ACD has ready
(`routing.campaign_agents`).

Anything else (pausing while logged out, logging out in the middle of a call) raises
`IllegalTransition` saying why. A move to the state the agent is already in (Ready while ready) is not
an error: it returns the status unchanged, and callers compare to know whether anything happened.

`idle_since` orders ready agents for the ACD (longest idle first): it is set whenever an agent becomes
ready, except after a withdrawn offer, which was not the agent's doing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from core.errors import Conflict


class AgentState(StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


# States in which the agent is logged in and may be counted as staff of their queues.
LOGGED_IN = frozenset(AgentState) - {AgentState.LOGGED_OUT}
# States in which the agent is busy with a call (offered, talking or finishing it).
BUSY = frozenset({AgentState.OFFERED, AgentState.ON_CALL, AgentState.WRAP_UP})

# A campaign's call on an agent's status: `queue` is this prefix and the campaign's id.
CAMPAIGN_PREFIX = "campaign:"

MISSED_REASONS = {"no_answer": "missed call", "busy": "phone busy", "failed": "phone unreachable"}


class IllegalTransition(Conflict):
    """The agent's state does not allow what was asked; the message says what the state is."""


@dataclass(frozen=True, slots=True)
class AgentStatus:
    state: AgentState = AgentState.LOGGED_OUT
    since: datetime | None = None  # when the agent entered the state
    endpoint: str | None = None  # the phone held while logged in
    reason: str | None = None  # paused: why
    until: datetime | None = None  # wrap_up: when it ends
    call_id: str | None = None  # offered, on_call, wrap_up: the call
    queue: str | None = None  # offered, on_call, wrap_up: the call's queue
    idle_since: datetime | None = None  # ready: the ACD's longest-idle order


@dataclass(frozen=True, slots=True)
class Login:
    endpoint: str


@dataclass(frozen=True, slots=True)
class Logout:
    pass


@dataclass(frozen=True, slots=True)
class Pause:
    reason: str


@dataclass(frozen=True, slots=True)
class Ready:
    """Unpause, or end wrap-up early."""


@dataclass(frozen=True, slots=True)
class Offer:
    call_id: str
    queue: str


@dataclass(frozen=True, slots=True)
class Answer:
    pass


@dataclass(frozen=True, slots=True)
class Dialed:
    """A campaign's call, connected to the ready agent by the dialer."""

    call_id: str
    campaign: str


@dataclass(frozen=True, slots=True)
class Missed:
    cause: Literal["no_answer", "busy", "failed"]


@dataclass(frozen=True, slots=True)
class Withdraw:
    pass


@dataclass(frozen=True, slots=True)
class Hangup:
    wrap_up_seconds: float


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes: a wrap-up whose time is up ends."""


AgentEvent = Login | Logout | Pause | Ready | Offer | Answer | Dialed | Missed | Withdraw | Hangup | Tick


def transition(status: AgentStatus, event: AgentEvent, now: datetime) -> AgentStatus:
    """The status after `event` at `now`; raises IllegalTransition for a move the state does not allow."""
    state = status.state
    match event:
        case Tick():
            if state is AgentState.WRAP_UP and status.until is not None and status.until <= now:
                return _ready(status, status.until)
            return status
        case Login(endpoint=endpoint):
            if not endpoint.strip():
                raise IllegalTransition("log in needs the endpoint of the agent's phone")
            if state is not AgentState.LOGGED_OUT:
                raise IllegalTransition(f"already logged in on {status.endpoint} ({state})")
            return AgentStatus(AgentState.READY, now, endpoint=endpoint, idle_since=now)
        case Logout():
            if state is AgentState.LOGGED_OUT:
                return status
            if state in (AgentState.OFFERED, AgentState.ON_CALL):
                raise IllegalTransition(f"cannot log out while {_doing(state)}: log out after the call")
            return AgentStatus(AgentState.LOGGED_OUT, now)
        case Pause(reason=reason):
            reason = reason.strip()
            if not reason:
                raise IllegalTransition("a pause needs a reason")
            _require_logged_in(status, "pause")
            if state in (AgentState.OFFERED, AgentState.ON_CALL):
                raise IllegalTransition(f"cannot pause while {_doing(state)}: pause after the call")
            if state is AgentState.PAUSED and status.reason == reason:
                return status
            return AgentStatus(AgentState.PAUSED, now, endpoint=status.endpoint, reason=reason)
        case Ready():
            _require_logged_in(status, "become ready")
            if state is AgentState.READY:
                return status
            if state in (AgentState.OFFERED, AgentState.ON_CALL):
                raise IllegalTransition(f"cannot become ready while {_doing(state)}")
            return _ready(status, now)
        case Offer(call_id=call_id, queue=queue):
            if state is not AgentState.READY:
                raise IllegalTransition(f"only a ready agent can be offered a call (the agent is {state})")
            return replace(status, state=AgentState.OFFERED, since=now, call_id=call_id, queue=queue)
        case Answer():
            _require(status, AgentState.OFFERED, "answer")
            return replace(status, state=AgentState.ON_CALL, since=now)
        case Dialed(call_id=call_id, campaign=campaign):
            if state is not AgentState.READY:
                raise IllegalTransition(f"only a ready agent takes a campaign's call (the agent is {state})")
            queue = f"{CAMPAIGN_PREFIX}{campaign}"
            return replace(status, state=AgentState.ON_CALL, since=now, call_id=call_id, queue=queue)
        case Missed(cause=cause):
            _require(status, AgentState.OFFERED, "miss a call")
            return AgentStatus(AgentState.PAUSED, now, endpoint=status.endpoint, reason=MISSED_REASONS[cause])
        case Withdraw():
            _require(status, AgentState.OFFERED, "have an offer withdrawn")
            # Back where it was in the idle order: the caller went, the agent did nothing wrong.
            return replace(status, state=AgentState.READY, since=now, call_id=None, queue=None)
        case Hangup(wrap_up_seconds=seconds):
            _require(status, AgentState.ON_CALL, "hang up")
            if seconds < 0:
                raise IllegalTransition("wrap-up seconds must not be negative")
            if seconds == 0:
                return _ready(status, now)
            until = now + timedelta(seconds=seconds)
            return replace(status, state=AgentState.WRAP_UP, since=now, until=until)
    raise TypeError(f"not an agent event: {event!r}")  # pragma: no cover  (mypy checks the match)


def _ready(status: AgentStatus, at: datetime) -> AgentStatus:
    return AgentStatus(AgentState.READY, at, endpoint=status.endpoint, idle_since=at)


def _require_logged_in(status: AgentStatus, what: str) -> None:
    if status.state is AgentState.LOGGED_OUT:
        raise IllegalTransition(f"cannot {what} while logged out: log in first")


def _require(status: AgentStatus, state: AgentState, what: str) -> None:
    if status.state is not state:
        raise IllegalTransition(f"cannot {what}: the agent is {status.state}, not {state}")


def _doing(state: AgentState) -> str:
    return "a call is ringing" if state is AgentState.OFFERED else "on a call"
