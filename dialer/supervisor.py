"""The dialer's supervisor: runs every campaign whose status is `running`, on an APScheduler scheduler.

- At start it runs the campaigns the database says are running (a restart resumes them), and follows
  the campaign events after that: started or resumed -> run; paused or stopped -> drain. Every few
  seconds it also reads the statuses again, for changes made by another process.
- The pacing loop of each campaign is an interval job (every `tick_seconds` of the campaign's clock) in
  a memory job store: it is rebuilt from the campaign's status at every start.
- A campaign's end date is a job in the SQLAlchemy job store (the `apscheduler_jobs` table): it survives
  restarts and stops the campaign when its schedule ends, even if the service was down at that moment.

Campaign events arrive from whatever thread committed the change, so they are handed to the
supervisor's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import unit_of_work
from core.errors import Conflict
from core.events.bus import Event, EventBus, Subscription
from dialer import campaigns
from dialer.agent_availability import AgentAvailability
from dialer.call_network import CallNetwork
from dialer.calling_window import load_zone
from dialer.campaign_runner import CampaignRunner
from dialer.clock import Clock, ScaledClock

logger = logging.getLogger(__name__)

_FASTEST_TICK = 0.05  # seconds of real time
_SYNC_SECONDS = 5.0  # how often the running campaigns are read from the database

# The supervisor that persistent jobs reach: a job in the database holds a function name and arguments,
# not objects, so the function finds the running supervisor here.
_current: DialerSupervisor | None = None


def end_campaign(campaign_id: int) -> None:
    """The end-date job: stop the campaign (its schedule is over)."""
    if _current is not None:
        _current.stop_campaign(campaign_id, "the schedule's end date has passed")


class DialerSupervisor:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: Engine,
        network: CallNetwork,
        clock: Clock,
        *,
        region: str,
        bus: EventBus | None = None,
        tick_seconds: float = 1.0,
        drain_seconds: float = 30.0,
        agents: AgentAvailability | None = None,
    ) -> None:
        self.sessions = sessions
        self.agents = agents  # the inbound ACD's word on blended agents (None: phones only the dialer uses)
        self.network = network
        self.clock = clock
        self.region = region
        self.bus = bus
        self.tick_seconds = tick_seconds
        self.drain_seconds = drain_seconds
        self.runners: dict[int, CampaignRunner] = {}
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine), "pacing": MemoryJobStore()},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: list[Subscription] = []
        self._pending: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        global _current
        self._loop = asyncio.get_running_loop()
        _current = self
        self.scheduler.start()
        if self.bus is not None:
            self._subscriptions = [
                self.bus.subscribe("campaign.running", self._on_event),
                self.bus.subscribe("campaign.paused", self._on_event),
                self.bus.subscribe("campaign.stopped", self._on_event),
            ]
        await self.sync()
        # Events reach only the process that committed the change; with `serve --workers N` the API
        # that started a campaign may be another process. Reading the statuses now and then catches it.
        self.scheduler.add_job(
            self.sync, IntervalTrigger(seconds=_SYNC_SECONDS), id="campaign-sync", jobstore="pacing"
        )

    async def sync(self) -> None:
        """Run the campaigns the database says are running; halt the ones it says are not."""
        running = set(
            await asyncio.to_thread(
                self._db, lambda db: [c.id for c in campaigns.list_campaigns(db=db, statuses=["running"])]
            )
        )
        for campaign_id in sorted(running - set(self.runners)):
            await self.run_campaign(campaign_id)
        for campaign_id in set(self.runners) - running:
            await self.halt_campaign(campaign_id)

    async def stop(self) -> None:
        global _current
        for subscription in self._subscriptions:
            subscription.close()
        await asyncio.gather(*(self.halt_campaign(cid) for cid in list(self.runners)), return_exceptions=True)
        await asyncio.gather(*self._pending, return_exceptions=True)
        self.scheduler.shutdown(wait=False)
        if _current is self:
            _current = None

    async def run_campaign(self, campaign_id: int) -> None:
        if campaign_id in self.runners:
            return
        runner = CampaignRunner(
            campaign_id,
            self.sessions,
            self.network,
            self.clock,
            region=self.region,
            on_pause=self._paused,
            agents=self.agents,
        )
        try:
            await runner.start()
        except Exception:
            logger.exception("campaign %s could not start", campaign_id)
            return
        self.runners[campaign_id] = runner
        speed = self.clock.speed if isinstance(self.clock, ScaledClock) else 1.0
        # A faster clock ticks more often, but not more often than a tick can run (the scheduler would
        # skip runs, and say so every time).
        self.scheduler.add_job(
            runner.tick,
            IntervalTrigger(seconds=max(self.tick_seconds / speed, _FASTEST_TICK)),
            id=f"pacing-{campaign_id}",
            jobstore="pacing",
            replace_existing=True,
            next_run_time=datetime.now().astimezone(),
        )
        end = _end_of(runner.settings.schedule.end_date, runner.settings.schedule.time_zone)
        if end is not None:
            self.scheduler.add_job(
                "dialer.supervisor:end_campaign",
                DateTrigger(run_date=end),
                args=[campaign_id],
                id=f"campaign-end-{campaign_id}",
                replace_existing=True,
                misfire_grace_time=None,  # a service that was down at the end date stops it when back
            )
        logger.info("campaign %s running (%s)", campaign_id, runner.settings.mode.value)

    async def halt_campaign(self, campaign_id: int) -> None:
        runner = self.runners.pop(campaign_id, None)
        if runner is None:
            return
        job = self.scheduler.get_job(f"pacing-{campaign_id}", jobstore="pacing")
        if job is not None:
            job.remove()
        await runner.drain(timeout=self.drain_seconds)
        logger.info("campaign %s halted", campaign_id)

    def stop_campaign(self, campaign_id: int, reason: str) -> None:
        def stop(db: Session) -> None:
            campaigns.change_status(
                db=db,
                campaign_id=campaign_id,
                action="stop",
                actor="scheduler",
                now=self.clock.now(),
                reason=reason,
            )

        with contextlib.suppress(Conflict):  # already stopped
            self._db(stop)
        self._schedule(self.halt_campaign(campaign_id))

    # --- events -------------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        campaign_id = int(event.payload["campaign_id"])
        work = self.run_campaign if event.topic == "campaign.running" else self.halt_campaign
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: self._schedule(work(campaign_id)))

    def _paused(self, campaign_id: int, reason: str) -> None:
        self._schedule(self.halt_campaign(campaign_id))

    def _schedule(self, work: Any) -> None:
        task = (
            asyncio.get_running_loop().create_task(work)
            if self._loop is None
            else self._loop.create_task(work)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _db(self, work: Callable[[Session], Any]) -> Any:
        with unit_of_work(self.sessions) as db:
            return work(db)


def _end_of(day: date | None, zone: str) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=load_zone(zone))
