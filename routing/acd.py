"""Which waiting call goes to which ready agent, now (pure: the live ACD calls it on every change).

Order of calls: higher priority first (the queue's priority plus the call's own: the IVR's, an open
case's), then the longest waiting, then the call id (so ties are decided the same way every time).
Each call, in that order, takes one agent among those still free:

1. its preferred agent (e.g. who handled the customer's open case last), if that agent is ready and
   has the call's required skills at any level. No call waits for a busy preferred agent: it goes
   to whoever matches, so a preference never costs the caller time;
2. otherwise the longest-idle ready agent (earliest `idle_since`, then agent id) who matches.

What "matches" means widens with the call's wait, in steps of the queue's `widen_after` seconds:

    stage 0 (strict)           every skill the call needs, required and optional, at its minimum level
    stage 1 (after 1 x widen)  every skill, at any level (the minimum levels are dropped)
    stage 2 (after 2 x widen)  the required skills only, at any level (optional skills are dropped)

A queue without `widen_after` never widens. An agent without one of the required skills is never
offered the call, however long it waits: a Spanish-speaking caller must not reach an agent who
cannot speak Spanish; max wait and overflow are what end such a wait.

One call per agent and one agent per call per decision; calls that find nobody stay waiting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

STRICT, ANY_LEVEL, REQUIRED_ONLY = 0, 1, 2


@dataclass(frozen=True, slots=True)
class SkillNeed:
    skill: str
    min_level: int = 1
    optional: bool = False


@dataclass(frozen=True, slots=True)
class WaitingCall:
    call_id: str
    queue: str
    priority: int
    entered_at: datetime
    needs: tuple[SkillNeed, ...] = ()
    widen_after_s: float | None = None
    preferred_agent: int | None = None


@dataclass(frozen=True, slots=True)
class ReadyAgent:
    agent_id: int
    skills: Mapping[str, int]  # skill -> level (1..10)
    idle_since: datetime


@dataclass(frozen=True, slots=True)
class Assignment:
    call_id: str
    agent_id: int
    stage: int  # how far the call's skill match had widened (STRICT, ANY_LEVEL, REQUIRED_ONLY)
    preferred: bool  # the agent was the call's preferred agent


def merge_needs(queue_needs: Iterable[SkillNeed], call_skills: Iterable[str]) -> tuple[SkillNeed, ...]:
    """The queue's skill needs plus the skills the IVR asked for (required, any level), each once."""
    needs = {need.skill: need for need in queue_needs}
    for skill in call_skills:
        known = needs.get(skill)
        if known is None:
            needs[skill] = SkillNeed(skill)
        elif known.optional:  # the IVR asked for it: no longer optional for this call
            needs[skill] = SkillNeed(skill, known.min_level)
    return tuple(needs.values())


def stage_of(call: WaitingCall, now: datetime) -> int:
    """How far the call's match has widened after its wait so far."""
    if call.widen_after_s is None:
        return STRICT
    waited = (now - call.entered_at).total_seconds()
    if call.widen_after_s <= 0:
        return REQUIRED_ONLY
    return min(REQUIRED_ONLY, int(waited // call.widen_after_s))


def matches(agent: ReadyAgent, needs: Sequence[SkillNeed], stage: int) -> bool:
    for need in needs:
        level = agent.skills.get(need.skill)
        if need.optional and stage >= REQUIRED_ONLY:
            continue
        if level is None:
            return False
        if stage == STRICT and level < need.min_level:
            return False
    return True


def call_order(calls: Iterable[WaitingCall]) -> list[WaitingCall]:
    """Who is served first: higher priority, then longest waiting, then the call id."""
    return sorted(calls, key=lambda c: (-c.priority, c.entered_at, c.call_id))


def assign(calls: Iterable[WaitingCall], agents: Iterable[ReadyAgent], now: datetime) -> list[Assignment]:
    """The offers to make now, in the order the calls are served."""
    free = {agent.agent_id: agent for agent in agents}
    decisions: list[Assignment] = []
    for call in call_order(calls):
        if not free:
            break
        stage = stage_of(call, now)
        preferred = free.get(call.preferred_agent) if call.preferred_agent is not None else None
        if preferred is not None and matches(preferred, call.needs, REQUIRED_ONLY):
            chosen, is_preferred = preferred, True
        else:
            candidates = [agent for agent in free.values() if matches(agent, call.needs, stage)]
            if not candidates:
                continue
            chosen = min(candidates, key=lambda a: (a.idle_since, a.agent_id))
            is_preferred = chosen.agent_id == call.preferred_agent
        del free[chosen.agent_id]
        decisions.append(Assignment(call.call_id, chosen.agent_id, stage, is_preferred))
    return decisions


def next_widening(calls: Iterable[WaitingCall], now: datetime) -> datetime | None:
    """When a waiting call's match next widens (the live ACD decides again then); None if never."""
    moments = []
    for call in calls:
        if call.widen_after_s is None or call.widen_after_s <= 0:
            continue
        stage = stage_of(call, now)
        if stage < REQUIRED_ONLY:
            moments.append(call.entered_at + timedelta(seconds=call.widen_after_s * (stage + 1)))
    return min(moments, default=None)
