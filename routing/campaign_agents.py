"""The ACD's side of blended agents: `dialer.agent_availability.AgentAvailability` on the live queues.

A campaign's phone is an ACD agent's when an agent is logged in on it, or when it is an agent's own
phone (`home_endpoint`) and nobody is logged in on it: then that agent's state decides (ready: free;
paused or logged out: away; offered or on a call: busy; wrap-up: wrapping up). Any other phone is the dialer's
alone and always free here. Claiming puts the agent on the campaign's call (`Dialed`, their `queue`
`campaign:<campaign id>`), so no queue offers them a call; releasing starts their wrap-up (`Hangup`).
"""

from __future__ import annotations

from dialer.agent_availability import Availability
from routing.agent_state import BUSY, AgentState
from routing.live_queues import LiveQueues


class AcdCampaignAgents:
    def __init__(self, live: LiveQueues) -> None:
        self.live = live

    def _agent_on(self, endpoint: str) -> int | None:
        """The agent the phone belongs to now; None for a phone no agent has."""
        logged_in = self.live.agent_for_endpoint(endpoint)
        return logged_in if logged_in is not None else self.live.home_of(endpoint)

    def availability(self, endpoint: str) -> Availability:
        agent = self._agent_on(endpoint)
        if agent is None:
            return Availability.FREE
        status = self.live.status_of(agent)
        if status.endpoint != endpoint:  # logged out, or logged in on another phone
            return Availability.AWAY
        if status.state is AgentState.READY:
            return Availability.FREE
        if status.state is AgentState.WRAP_UP:
            return Availability.WRAPPING_UP
        return Availability.BUSY if status.state in BUSY else Availability.AWAY

    def claim(self, endpoint: str, *, call_ref: str, campaign: str, ends_wrap_up: bool = False) -> bool:
        agent = self._agent_on(endpoint)
        if agent is None:
            return True
        if self.live.status_of(agent).endpoint != endpoint:
            return False
        return self.live.campaign_call_started(agent, call_ref, campaign, ends_wrap_up=ends_wrap_up)

    def release(self, endpoint: str, *, call_ref: str, wrap_up_seconds: float) -> None:
        agent = self.live.agent_for_endpoint(endpoint)
        if agent is not None:
            self.live.campaign_call_ended(agent, call_ref, wrap_up_seconds)
