"""The agents serving one campaign and their states, as the dialer sees them (pure: time is an argument).

    idle -> reserved (a call was answered for them) -> talking -> wrap_up (until a time) -> idle
    reserved -> idle (the call turned out to be a machine, or the callee hung up first)
    any -> paused / logged out (the agent says so) and back to idle

The longest-idle agent is the one reserved, so work spreads evenly; in preview, the agent who placed
the call is (`reserve_agent`). Pacing reads `snapshot()`; the
campaign runner moves agents along as the calls they serve progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class AgentState(StrEnum):
    IDLE = "idle"
    RESERVED = "reserved"
    TALKING = "talking"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


@dataclass(slots=True)
class DialerAgent:
    endpoint: str  # how the network reaches the agent, e.g. PJSIP/1001
    state: AgentState = AgentState.IDLE
    since: datetime | None = None  # when the agent entered the state
    until: datetime | None = None  # wrap-up: when it ends
    attempt_id: int | None = None  # the call the agent is reserved for or talking on


@dataclass(frozen=True, slots=True)
class AgentSnapshot:
    idle: int
    reserved: int
    talking_elapsed_s: tuple[float, ...]  # one per agent on a call: seconds since it was connected
    wrap_up_remaining_s: tuple[float, ...]  # one per agent in wrap-up: seconds until idle
    paused: int

    @property
    def staffed(self) -> int:
        """Agents working the campaign (not paused)."""
        return self.idle + self.reserved + len(self.talking_elapsed_s) + len(self.wrap_up_remaining_s)


class AgentPool:
    def __init__(self, endpoints: Iterable[str], *, wrap_up_s: float, now: datetime) -> None:
        if wrap_up_s < 0:
            raise ValueError("wrap_up_s must not be negative")
        self.wrap_up = timedelta(seconds=wrap_up_s)
        self._agents = {endpoint: DialerAgent(endpoint, since=now) for endpoint in endpoints}
        if not self._agents:
            raise ValueError("a campaign needs at least one agent")

    def __iter__(self) -> Iterator[DialerAgent]:
        return iter(self._agents.values())

    def agent(self, endpoint: str) -> DialerAgent:
        try:
            return self._agents[endpoint]
        except KeyError:
            raise LookupError(f"{endpoint} is not an agent of this campaign") from None

    def advance(self, now: datetime) -> None:
        """Agents whose wrap-up is over become idle."""
        for agent in self._agents.values():
            if agent.state is AgentState.WRAP_UP and agent.until is not None and agent.until <= now:
                self._set(agent, AgentState.IDLE, agent.until)

    def reserve(self, attempt_id: int, now: datetime) -> DialerAgent | None:
        """The longest-idle agent, now reserved for the call; None when nobody is free."""
        self.advance(now)
        idle = [agent for agent in self._agents.values() if agent.state is AgentState.IDLE]
        if not idle:
            return None
        agent = min(idle, key=lambda a: (a.since or now, a.endpoint))
        self._set(agent, AgentState.RESERVED, now, attempt_id=attempt_id)
        return agent

    def reserve_agent(self, endpoint: str, attempt_id: int, now: datetime) -> DialerAgent:
        """Reserve this agent for a call they placed themselves (preview). Their asking to dial ends
        their wrap-up; an agent on another call or paused cannot be reserved (ValueError)."""
        self.advance(now)
        agent = self.agent(endpoint)
        if agent.state not in (AgentState.IDLE, AgentState.WRAP_UP):
            raise ValueError(f"{endpoint} is {agent.state.value}")
        self._set(agent, AgentState.RESERVED, now, attempt_id=attempt_id)
        return agent

    def connected(self, endpoint: str, now: datetime) -> None:
        agent = self.agent(endpoint)
        if agent.state is not AgentState.RESERVED:
            raise ValueError(f"{endpoint} is {agent.state}, not reserved")
        self._set(agent, AgentState.TALKING, now, attempt_id=agent.attempt_id)

    def release(self, endpoint: str, now: datetime) -> None:
        """The reservation or the call is over: wrap-up after talking, straight back to idle otherwise."""
        agent = self.agent(endpoint)
        if agent.state is AgentState.TALKING:
            self._set(agent, AgentState.WRAP_UP, now, until=now + self.wrap_up)
            self.advance(now)
        elif agent.state is AgentState.RESERVED:
            self._set(agent, AgentState.IDLE, now)

    def pause(self, endpoint: str, now: datetime) -> None:
        agent = self.agent(endpoint)
        if agent.state in (AgentState.RESERVED, AgentState.TALKING):
            raise ValueError(f"{endpoint} is on a call; pause after it")
        self._set(agent, AgentState.PAUSED, now)

    def resume(self, endpoint: str, now: datetime) -> None:
        agent = self.agent(endpoint)
        if agent.state is AgentState.PAUSED:
            self._set(agent, AgentState.IDLE, now)

    def snapshot(self, now: datetime) -> AgentSnapshot:
        self.advance(now)
        agents = list(self._agents.values())
        return AgentSnapshot(
            idle=sum(a.state is AgentState.IDLE for a in agents),
            reserved=sum(a.state is AgentState.RESERVED for a in agents),
            talking_elapsed_s=tuple(
                (now - (a.since or now)).total_seconds() for a in agents if a.state is AgentState.TALKING
            ),
            wrap_up_remaining_s=tuple(
                max(0.0, ((a.until or now) - now).total_seconds())
                for a in agents
                if a.state is AgentState.WRAP_UP
            ),
            paused=sum(a.state is AgentState.PAUSED for a in agents),
        )

    @staticmethod
    def _set(
        agent: DialerAgent,
        state: AgentState,
        now: datetime,
        *,
        until: datetime | None = None,
        attempt_id: int | None = None,
    ) -> None:
        agent.state, agent.since, agent.until, agent.attempt_id = state, now, until, attempt_id
