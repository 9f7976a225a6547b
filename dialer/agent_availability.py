"""Whether a campaign's agent may take its call now, when the same people also answer inbound queues.

A campaign lists its agents' phones. A phone that belongs to an agent of the inbound ACD (logged in on
it, or their own phone) is that agent's: the dialer paces and connects only while the ACD has them
ready, and a call it connects puts them on a call there too, so no queue offers them a call meanwhile
(`routing.campaign_agents` is the ACD's side). A phone no ACD agent has is the dialer's alone, as an
outbound-only team's phones are: `DedicatedAgents`.

    availability(endpoint)          # FREE, AWAY (logged out, paused), BUSY (another call), WRAPPING_UP
    claim(endpoint, call_ref=..., campaign=..., ends_wrap_up=...)  # False if someone got there first
    release(endpoint, call_ref=..., wrap_up_seconds=...)  # the call is over

All three are quick and synchronous (the ACD is in memory, on the same loop). `FakeAgentAvailability`
is the port's fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Availability(StrEnum):
    FREE = "free"  # may take a call now
    AWAY = "away"  # logged out or paused
    BUSY = "busy"  # on another call
    WRAPPING_UP = "wrapping_up"  # after a call; their own preview dial may end it


class AgentAvailability(Protocol):
    def availability(self, endpoint: str) -> Availability: ...

    def claim(self, endpoint: str, *, call_ref: str, campaign: str, ends_wrap_up: bool = False) -> bool:
        """The agent on `endpoint` is taken for this call; False when they are not free (any more).
        `ends_wrap_up`: the agent asked for this call themselves (preview), which ends their wrap-up."""
        ...

    def release(self, endpoint: str, *, call_ref: str, wrap_up_seconds: float) -> None:
        """The call `call_ref` claimed them for is over (wrap-up follows); a no-op for another call."""
        ...


class DedicatedAgents:
    """Phones only the dialer uses: always free as far as anyone else is concerned."""

    def availability(self, endpoint: str) -> Availability:
        return Availability.FREE

    def claim(self, endpoint: str, *, call_ref: str, campaign: str, ends_wrap_up: bool = False) -> bool:
        return True

    def release(self, endpoint: str, *, call_ref: str, wrap_up_seconds: float) -> None:
        return None


@dataclass
class FakeAgentAvailability:
    """The fake: each phone's availability in a dict (FREE when absent); a claim makes it BUSY, a release
    FREE again. `claims` and `releases` record what the dialer said."""

    states: dict[str, Availability] = field(default_factory=dict)
    claims: list[tuple[str, str, str]] = field(default_factory=list)
    releases: list[tuple[str, str, float]] = field(default_factory=list)
    _claimed: dict[str, str] = field(default_factory=dict)

    def availability(self, endpoint: str) -> Availability:
        return self.states.get(endpoint, Availability.FREE)

    def claim(self, endpoint: str, *, call_ref: str, campaign: str, ends_wrap_up: bool = False) -> bool:
        available = self.availability(endpoint)
        if not (available is Availability.FREE or (ends_wrap_up and available is Availability.WRAPPING_UP)):
            return False
        self.claims.append((endpoint, call_ref, campaign))
        self._claimed[endpoint] = call_ref
        self.states[endpoint] = Availability.BUSY
        return True

    def release(self, endpoint: str, *, call_ref: str, wrap_up_seconds: float) -> None:
        if self._claimed.get(endpoint) != call_ref:
            return
        del self._claimed[endpoint]
        self.releases.append((endpoint, call_ref, wrap_up_seconds))
        self.states[endpoint] = Availability.FREE
