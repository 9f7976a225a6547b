"""Runs one campaign: each tick asks pacing how many calls to place, claims that many callable contacts,
places the calls, and follows each one to its end.

    runner = CampaignRunner(campaign_id, sessions, network, clock, region="ES")
    await runner.start()          # loads the campaign, finishes attempts a previous process left open
    await runner.tick()           # one pacing step (the supervisor's scheduler calls it every second)
    await runner.drain()          # no new calls; wait for the calls in progress to end

A call's life, as the network reports it (dialer.call_network):
- answered: the callee picked up; nothing to do until their greeting ends;
- greeting ended: a machine (AMD) is hung up on; a person gets the longest-idle agent at once, or waits
  for one until `drop_wait_seconds` after the greeting; then the call is abandoned: it hears the
  campaign's message (naming the company and a number to call back) and is hung up;
- ended: the agent goes to wrap-up, the attempt and the contact's next attempt are written, and the call
  lands on the customer's timeline.

Preview campaigns place no calls of their own (pacing says 0): each tick places the dials agents asked for
through the API (`dialer.preview`, attempts that name their agent and have no call yet), reserving that
agent, and bridges each answered call to them. Nobody else may take such a call, and its agent is
waiting for it, so it is connected as soon as the greeting ends; only an agent whose phone cannot be
connected leaves the callee to hear the abandoned-call message.

What the runner learns from its calls (ring times, answer rate, talk times) feeds the pacing. Database
work runs in a worker thread, so the event loop (shared with the API and FastAGI) never waits on it; a
failure in one call's bookkeeping is logged with the attempt id and never stops the campaign.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work
from dialer import attempts, campaigns
from dialer.agent_availability import AgentAvailability, Availability, DedicatedAgents
from dialer.agent_pool import AgentPool
from dialer.agent_pool import AgentState as PoolState
from dialer.call_network import (
    AmdVerdict,
    CallEnd,
    CallNetwork,
    CallRequest,
    NetworkUnavailable,
    PlacedCall,
)
from dialer.call_statistics import CallStatistics, StatisticsPrior
from dialer.calling_window import CallingPolicy
from dialer.campaign_rules import CampaignSettings, DialMode
from dialer.campaigns import CampaignStatus
from dialer.clock import Clock
from dialer.pacing import (
    AbandonmentWindow,
    FloorSnapshot,
    PacingDecision,
    PacingMode,
    PacingSettings,
    calls_to_place,
    lines_to_release,
)
from voice.prompts import prompt_name

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How often the rolling abandonment rates are read again from the database (seconds of the clock).
_WINDOWS_EVERY = 5.0
# How often a call waiting for an agent looks for one (seconds of the clock).
_AGENT_POLL = 0.1


@dataclass
class LiveCall:
    request: CallRequest
    contact_id: int
    dialed_at: datetime
    placed: PlacedCall | None = None
    answered_at: datetime | None = None
    greeting_ended_at: datetime | None = None
    amd: AmdVerdict | None = None
    agent: str | None = None
    connected_at: datetime | None = None
    message_played_at: datetime | None = None
    waiting: asyncio.Task[None] | None = None
    preview: bool = False  # placed by `agent`, who takes it: no other agent is looked for
    released: bool = False  # hung up while ringing: pacing no longer wanted it answered
    ended: bool = False

    @property
    def waiting_for_agent(self) -> bool:
        """Answered by a person (or not known to be a machine) and not with an agent yet."""
        return (
            self.answered_at is not None
            and not self.ended
            and self.agent is None
            and self.amd is not AmdVerdict.MACHINE
            and self.message_played_at is None
        )


class CampaignRunner:
    def __init__(
        self,
        campaign_id: int,
        sessions: sessionmaker[Session],
        network: CallNetwork,
        clock: Clock,
        *,
        region: str,
        on_pause: Callable[[int, str], None] | None = None,
        agents: AgentAvailability | None = None,
    ) -> None:
        self.campaign_id = campaign_id
        # Whether the campaign's agents are free as far as the inbound queues are concerned.
        self.agents: AgentAvailability = agents or DedicatedAgents()
        self.sessions = sessions
        self.network = network
        self.clock = clock
        self.region = region
        self.on_pause = on_pause
        self.calls: dict[int, LiveCall] = {}
        self.statistics = CallStatistics.cold_start()
        self.last_decision: PacingDecision | None = None
        self.placed = self.answered = self.abandoned = 0
        self._settings: CampaignSettings | None = None
        self._name = ""
        self._policy: CallingPolicy | None = None
        self._pool: AgentPool | None = None
        self._windows: list[AbandonmentWindow] = []
        self._windows_read_at: datetime | None = None
        self._ticking = asyncio.Lock()
        self._draining = False

    # --- lifecycle ----------------------------------------------------------------------------------

    @property
    def pool(self) -> AgentPool:
        if self._pool is None:
            raise RuntimeError("the runner has not started")
        return self._pool

    @property
    def settings(self) -> CampaignSettings:
        if self._settings is None:
            raise RuntimeError("the runner has not started")
        return self._settings

    async def start(self) -> None:
        now = self.clock.now()
        await self._db(self._load)
        self._pool = AgentPool(self.settings.agents, wrap_up_s=self.settings.wrap_up_seconds, now=now)
        # The ring-time histogram spans the campaign's own ring time-out.
        prior = StatisticsPrior(ring_timeout=float(self.settings.ring_timeout_seconds))
        self.statistics = CallStatistics.cold_start(prior)
        recovered = await self._db(lambda db: self._recover(db, now))
        if recovered:
            logger.warning(
                "campaign %s: finished %d attempts a stopped process left open", self.campaign_id, recovered
            )

    async def drain(self, timeout: float | None = None) -> None:
        """Place no new calls and wait (up to `timeout` seconds of real time) for the calls in progress."""
        self._draining = True
        async with self._ticking:  # a tick in progress finishes its claims and placements first
            pass
        if self._settings is not None and self._settings.mode is DialMode.PREVIEW:
            try:
                await self._db(self._release_requested(self.clock.now(), stale_before=None))
            except Exception:
                logger.exception(
                    "campaign %s: could not give back the dials agents asked for", self.campaign_id
                )
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self.calls:
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)

    def _load(self, db: Session) -> None:
        campaign = campaigns.get_campaign(db=db, campaign_id=self.campaign_id)
        self._settings = campaigns.settings_of(campaign)
        self._name = campaign.name
        self._policy = self._settings.calling_policy()

    def _recover(self, db: Session, now: datetime) -> int:
        left = attempts.interrupted_attempts(db=db, campaign_id=self.campaign_id)
        for attempt in left:
            # Nobody knows how these calls went: a person who answered is counted abandoned (the safe
            # side of the law), and the contact is scheduled again like a failed call.
            result = attempts.CallResult(
                attempt_id=attempt.id,
                ended_at=max(now, attempt.dialed_at),
                end=CallEnd.FAILED,
                cause="interrupted: the dialer stopped during the call",
                call_ref=attempt.call_ref,
                answered_at=attempt.answered_at,
                greeting_ended_at=attempt.greeting_ended_at,
            )
            attempts.finish_call(
                db=db, result=result, settings=self.settings, campaign_name=self._name, region=self.region
            )
        # Dials agents asked for lately are placed by the next tick (the agent is still waiting); older
        # ones were left by a stopped process and are given back uncounted.
        stale = now - timedelta(seconds=self.settings.preview_timeout_seconds)
        self._release_requested(now, stale_before=stale)(db)
        return len(left)

    def _release_requested(
        self, now: datetime, *, stale_before: datetime | None
    ) -> Callable[[Session], None]:
        def release(db: Session) -> None:
            for attempt in attempts.requested_dials(db=db, campaign_id=self.campaign_id):
                if attempt.id in self.calls or (
                    stale_before is not None and attempt.dialed_at >= stale_before
                ):
                    continue
                attempts.release_unplaced(
                    db=db, attempt_id=attempt.id, reason="the campaign stopped dialing", now=now
                )

        return release

    # --- pacing -------------------------------------------------------------------------------------

    async def tick(self) -> PacingDecision | None:
        """One pacing step: place the calls pacing asks for. None when the campaign is not running."""
        if self._draining or self._ticking.locked():
            return None
        async with self._ticking:
            now = self.clock.now()
            status = await self._db(self._status_and_windows(now))
            if status is not CampaignStatus.RUNNING:
                return None
            now = self.clock.now()  # calls went on while the database answered
            self._follow_agents(now)
            floor, ringing = self._floor(now)
            pacing = self._pacing()
            decision = calls_to_place(floor, self.statistics, self._windows, pacing)
            self.last_decision = decision
            for index in lines_to_release(floor, decision, pacing):
                await self._release(ringing[index], now)
            if decision.calls > 0:
                await self._place(decision.calls, now)
            if self.settings.mode is DialMode.PREVIEW:
                await self._place_requested()
            return decision

    def _follow_agents(self, now: datetime) -> None:
        """Pace only for agents the inbound queues have not taken: one paused or logged out there, or on
        an inbound call, is paused here until they are ready again."""
        for agent in self.pool:
            available = self.agents.availability(agent.endpoint)
            if agent.state is PoolState.PAUSED:
                if available is Availability.FREE:
                    self.pool.resume(agent.endpoint, now)
            elif agent.state is PoolState.IDLE and available is not Availability.FREE:
                self.pool.pause(agent.endpoint, now)
            elif agent.state is PoolState.WRAP_UP and available is Availability.AWAY:
                self.pool.pause(agent.endpoint, now)  # paused during the campaign's wrap-up

    async def _release(self, live: LiveCall, now: datetime) -> None:
        """Hang up a line that has rung the legal minimum and that pacing no longer wants answered (more
        answers are coming than agents). Not an abandonment: nobody answered. It ends as a no-answer."""
        if live.placed is None or live.answered_at is not None or live.ended:
            return
        live.released = True
        self.statistics = self.statistics.with_released(max(0.0, (now - live.dialed_at).total_seconds()))
        try:
            await self.network.hang_up(live.placed)
        except Exception:
            logger.exception("attempt %s: could not release the line", live.request.attempt_id)

    def _status_and_windows(self, now: datetime) -> Callable[[Session], CampaignStatus]:
        def read(db: Session) -> CampaignStatus:
            campaign = campaigns.get_campaign(db=db, campaign_id=self.campaign_id)
            stale = (
                self._windows_read_at is None
                or (now - self._windows_read_at).total_seconds() >= _WINDOWS_EVERY
            )
            if stale:
                self._windows = attempts.abandonment_windows(db=db, campaign_id=self.campaign_id, now=now)
                self._windows_read_at = now
            return CampaignStatus(campaign.status)

        return read

    def _pacing(self) -> PacingSettings:
        settings = self.settings
        return PacingSettings(
            mode=PacingMode(settings.mode.value),
            abandonment_target=settings.abandonment_target,
            answer_window=settings.drop_wait_seconds,
            max_lines=settings.max_lines,
            # Predictive hangs up surplus lines once they have rung the legal minimum of 15 s
            # (docs/dialer_pacing.md): it is what gets occupancy from 83% to 84.5% at 20 agents.
            release_surplus_lines=True,
        )

    def _floor(self, now: datetime) -> tuple[FloorSnapshot, list[LiveCall]]:
        """The snapshot pacing decides on, and the ringing calls in the order of its `ring_starts`."""
        agents = self.pool.snapshot(now)
        at = now.timestamp()
        ringing = [call for call in self.calls.values() if call.answered_at is None and not call.released]
        floor = FloorSnapshot(
            now=at,
            idle_agents=agents.idle,
            wrap_up_ends=tuple(at + left for left in agents.wrap_up_remaining_s),
            talk_starts=tuple(at - elapsed for elapsed in agents.talking_elapsed_s),
            ring_starts=tuple(min(at, call.dialed_at.timestamp()) for call in ringing),
            answered_waiting=sum(call.waiting_for_agent for call in self.calls.values()),
        )
        return floor, ringing

    async def _place(self, wanted: int, now: datetime) -> None:
        policy = self._policy
        assert policy is not None  # set by start()

        def claim(db: Session) -> attempts.Claim:
            campaign = campaigns.get_campaign(db=db, campaign_id=self.campaign_id)
            return attempts.claim_calls(
                db=db, campaign=campaign, settings=self.settings, policy=policy, wanted=wanted, now=now
            )

        claimed = await self._db(claim)
        for index, call in enumerate(claimed.calls):
            request = CallRequest(
                attempt_id=call.attempt_id,
                phone=call.phone,
                caller_id=self.settings.caller_id,
                ring_timeout_s=self.settings.ring_timeout_seconds,
                amd=self.settings.amd,
                campaign_id=self.campaign_id,
            )
            live = LiveCall(request, call.contact_id, call.dialed_at)
            self.calls[call.attempt_id] = live
            try:
                live.placed = await self.network.place(request, _Observer(self, live))
            except NetworkUnavailable as exc:
                # Dialing blind is worse than not dialing: give back every claimed contact and pause.
                unplaced = [c.attempt_id for c in claimed.calls[index:]]
                for attempt_id in unplaced:
                    self.calls.pop(attempt_id, None)
                await self._db(self._give_back(unplaced, str(exc), now))
                await self._pause(f"the call network is unavailable: {exc}")
                return
            self.placed += 1

    async def _place_requested(self) -> None:
        """Place the dials agents asked for (preview), each bridged to its agent when answered."""

        def read(db: Session) -> list[tuple[int, int, str, str]]:
            found = attempts.requested_dials(db=db, campaign_id=self.campaign_id)
            return [(a.id, a.contact_id, a.phone, a.agent or "") for a in found if a.id not in self.calls]

        requested = await self._db(read)
        for index, (attempt_id, contact_id, phone, agent) in enumerate(requested):
            now = self.clock.now()
            try:
                self.pool.reserve_agent(agent, attempt_id, now)
            except (LookupError, ValueError) as exc:
                await self._db(self._give_back([attempt_id], f"agent busy: {exc}", now))
                continue
            # The agent is on this call from the dial: no queue may ring them while it rings.
            if not self._claim(agent, attempt_id, ends_wrap_up=True):
                self.pool.release(agent, now)
                state = self.agents.availability(agent).value
                reason = f"agent busy: {agent} is {state} in the inbound queues"
                await self._db(self._give_back([attempt_id], reason, now))
                continue
            request = CallRequest(
                attempt_id=attempt_id,
                phone=phone,
                caller_id=self.settings.caller_id,
                ring_timeout_s=self.settings.ring_timeout_seconds,
                amd=self.settings.amd,
                campaign_id=self.campaign_id,
            )
            live = LiveCall(request, contact_id, now, agent=agent, preview=True)
            self.calls[attempt_id] = live
            try:
                live.placed = await self.network.place(request, _Observer(self, live))
            except NetworkUnavailable as exc:
                self.calls.pop(attempt_id, None)
                self._free(agent, attempt_id, now, wrap_up_seconds=0.0)
                await self._db(self._give_back([r[0] for r in requested[index:]], str(exc), now))
                await self._pause(f"the call network is unavailable: {exc}")
                return
            except Exception as exc:
                # This one call could not be placed (a bad number, a refused originate): the others go on.
                logger.exception("attempt %s: could not be placed", attempt_id)
                self.calls.pop(attempt_id, None)
                self._free(agent, attempt_id, now, wrap_up_seconds=0.0)
                await self._db(self._give_back([attempt_id], f"not placed: {exc}", now))
                continue
            self.placed += 1
            call_ref = live.placed.call_ref
            try:
                await self._db(self._mark_placed(attempt_id, call_ref, now))
            except Exception:
                # The call goes on and ends normally; only a restart in the meantime would miss it.
                logger.exception("attempt %s: could not record that it was placed", attempt_id)

    @staticmethod
    def _mark_placed(attempt_id: int, call_ref: str, now: datetime) -> Callable[[Session], None]:
        def mark(db: Session) -> None:
            attempts.mark_placed(db=db, attempt_id=attempt_id, call_ref=call_ref, now=now)

        return mark

    @staticmethod
    def _give_back(attempt_ids: list[int], reason: str, now: datetime) -> Callable[[Session], None]:
        def release(db: Session) -> None:
            for attempt_id in attempt_ids:
                attempts.release_unplaced(db=db, attempt_id=attempt_id, reason=reason, now=now)

        return release

    async def _pause(self, reason: str) -> None:
        logger.error("campaign %s pauses itself: %s", self.campaign_id, reason)

        def pause(db: Session) -> None:
            campaigns.change_status(
                db=db,
                campaign_id=self.campaign_id,
                action="pause",
                actor="dialer",
                now=self.clock.now(),
                reason=reason,
            )

        try:
            await self._db(pause)
        except Exception:
            logger.exception("campaign %s: could not record the pause", self.campaign_id)
        if self.on_pause is not None:
            self.on_pause(self.campaign_id, reason)

    # --- a call's events ------------------------------------------------------------------------------

    async def _greeting_ended(self, live: LiveCall, at: datetime, verdict: AmdVerdict) -> None:
        live.greeting_ended_at = at
        live.amd = verdict if live.request.amd else None
        placed = live.placed
        if placed is None or live.ended:
            return
        if live.amd is AmdVerdict.MACHINE:
            await self.network.hang_up(placed)
            return
        if live.preview:
            await self._connect_preview(live, placed)
            return
        if not await self._try_connect(live, at):
            deadline = at + timedelta(seconds=self.settings.drop_wait_seconds)
            live.waiting = asyncio.get_running_loop().create_task(self._wait_for_agent(live, deadline))

    async def _try_connect(self, live: LiveCall, now: datetime) -> bool:
        attempt_id = live.request.attempt_id
        while True:
            agent = self.pool.reserve(attempt_id, now)
            if agent is None:
                return False
            if self._claim(agent.endpoint, attempt_id):
                break
            # An inbound call (or a pause) took them since the last tick: the next agent, if any.
            self.pool.release(agent.endpoint, now)
            self.pool.pause(agent.endpoint, now)
        live.agent = agent.endpoint
        assert live.placed is not None
        try:
            await self.network.connect(live.placed, agent.endpoint)
        except Exception:
            logger.exception("attempt %s: could not connect %s", attempt_id, agent.endpoint)
            self._free(agent.endpoint, attempt_id, self.clock.now(), wrap_up_seconds=0.0)
            live.agent = None
            return False
        live.connected_at = self.clock.now()
        self.pool.connected(agent.endpoint, live.connected_at)
        return True

    async def _connect_preview(self, live: LiveCall, placed: PlacedCall) -> None:
        assert live.agent is not None  # a preview call is placed with its agent
        try:
            await self.network.connect(placed, live.agent)
        except Exception:
            # The agent who placed the call did not take it, and no other agent may: the callee hears
            # the campaign's message rather than silence (and the call counts as abandoned).
            logger.exception("attempt %s: could not connect %s", live.request.attempt_id, live.agent)
            await self._abandon(live, self.clock.now())
            return
        live.connected_at = self.clock.now()
        self.pool.connected(live.agent, live.connected_at)

    async def _wait_for_agent(self, live: LiveCall, deadline: datetime) -> None:
        while not live.ended:
            now = self.clock.now()
            if await self._try_connect(live, now):
                return
            if now >= deadline:
                await self._abandon(live, now)
                return
            await self.clock.sleep(min(_AGENT_POLL, (deadline - now).total_seconds()))

    async def _abandon(self, live: LiveCall, now: datetime) -> None:
        live.message_played_at = now
        language = self.settings.prompt_language()
        assert live.placed is not None
        try:
            await self.network.play_and_hang_up(
                live.placed, prompt_name(language, self.settings.abandon_message)
            )
        except Exception:
            logger.exception("attempt %s: could not play the abandoned-call message", live.request.attempt_id)

    async def _ended(self, live: LiveCall, at: datetime, how: CallEnd, cause: str) -> None:
        live.ended = True
        if live.waiting is not None and live.waiting is not asyncio.current_task():
            live.waiting.cancel()
        stats = self.statistics
        if live.answered_at is not None and live.amd is not AmdVerdict.MACHINE:
            stats = stats.with_answered(
                ring_seconds=max(0.0, (live.answered_at - live.dialed_at).total_seconds())
            )
            self.answered += 1
        elif not live.released:  # a released line was counted when it was released
            stats = stats.with_unanswered()
        if live.agent is not None:
            if live.connected_at is not None:
                stats = stats.with_talk(max(0.0, (at - live.connected_at).total_seconds()))
                stats = stats.with_wrap(self.settings.wrap_up_seconds)
            wrap_up = float(self.settings.wrap_up_seconds) if live.connected_at is not None else 0.0
            self._free(live.agent, live.request.attempt_id, at, wrap_up_seconds=wrap_up)
        self.statistics = stats
        result = attempts.CallResult(
            attempt_id=live.request.attempt_id,
            ended_at=at,
            end=how,
            cause=cause,
            call_ref=live.placed.call_ref if live.placed else None,
            answered_at=live.answered_at,
            greeting_ended_at=live.greeting_ended_at,
            amd=live.amd,
            connected_at=live.connected_at,
            agent=live.agent,
            message_played_at=live.message_played_at,
        )

        def finish(db: Session) -> None:
            call_class = attempts.finish_call(
                db=db, result=result, settings=self.settings, campaign_name=self._name, region=self.region
            )
            if call_class is attempts.CallClass.ABANDONED:
                self.abandoned += 1

        try:
            await self._db(finish)
        except Exception:
            # The attempt stays open in the database; the next start() finishes it on the safe side.
            logger.exception("attempt %s: could not record its end", live.request.attempt_id)
        finally:
            self.calls.pop(live.request.attempt_id, None)

    # --- plumbing -----------------------------------------------------------------------------------

    def _claim(self, endpoint: str, attempt_id: int, *, ends_wrap_up: bool = False) -> bool:
        """The agent on `endpoint` is taken for `attempt_id` in the inbound queues too; False: not free."""
        call = _agent_call(attempt_id)
        campaign = str(self.campaign_id)
        return self.agents.claim(endpoint, call_ref=call, campaign=campaign, ends_wrap_up=ends_wrap_up)

    def _free(self, endpoint: str, attempt_id: int, now: datetime, *, wrap_up_seconds: float) -> None:
        """The agent's reservation or call for `attempt_id` is over, here and in the inbound queues."""
        self.pool.release(endpoint, now)
        self.agents.release(endpoint, call_ref=_agent_call(attempt_id), wrap_up_seconds=wrap_up_seconds)

    async def _db(self, work: Callable[[Session], T]) -> T:
        def run() -> T:
            with unit_of_work(self.sessions) as db:
                return work(db)

        return await asyncio.to_thread(run)


class _Observer:
    """One call's events, delivered to its runner (dialer.call_network.CallObserver)."""

    def __init__(self, runner: CampaignRunner, live: LiveCall) -> None:
        self.runner, self.live = runner, live

    async def answered(self, call: PlacedCall, at: datetime) -> None:
        self.live.answered_at = at

    async def greeting_ended(self, call: PlacedCall, at: datetime, verdict: AmdVerdict) -> None:
        try:
            await self.runner._greeting_ended(self.live, at, verdict)
        except Exception:
            logger.exception("attempt %s: handling the end of the greeting failed", call.attempt_id)

    async def ended(self, call: PlacedCall, at: datetime, how: CallEnd, cause: str) -> None:
        if self.live.ended:
            return
        await self.runner._ended(self.live, at, how, cause)


def _agent_call(attempt_id: int) -> str:
    """The call an agent is on while they serve `attempt_id`, as the inbound queues name it."""
    return f"attempt-{attempt_id}"
