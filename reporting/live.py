"""Today's figures, kept current from the event bus, for the stats API, its event stream and /metrics.

Bus handlers run on the thread that committed, so they only note what changed (an interaction id, "the
cases", "the campaigns") and wake a worker thread of this object's own. The worker lets a burst of
events settle for `settle_seconds`, re-reads just the interactions named (two small queries), recomputes
the figures from what it holds in memory and tells every waiting stream: an update leaves well within a
second of the commit that caused it. A full re-read every `resync_seconds`, and at midnight, picks up
writes this process never heard of (another worker, `centralita` commands) and starts the new day.

"Today" is the local day in the report time zone. Calls still waiting or in the IVR count in "now"
figures however long ago they started (up to `open_lookback`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db import utcnow
from core.events.bus import Event, EventBus, Subscription
from core.timeline.models import Interaction
from dialer import attempts as dialer_attempts
from dialer import campaigns as dialer_campaigns
from dialer.models import Campaign
from reporting import service
from reporting.buckets import Interval, bucket_end, bucket_start
from reporting.kpis import (
    CampaignAttempt,
    Derived,
    GroupBy,
    KpiInputs,
    KpiOptions,
    KpiRow,
    derive,
    ivr_containment,
    ivr_drop_off,
    overall_row,
    ratio,
    summarise_by,
    waiting_now,
)
from reporting.rows import AgentStateSpan, CaseRecord, Contact, QueueVisit

log = logging.getLogger(__name__)

TOPICS = ("interaction.*", "touchpoint.*", "case.*", "campaign.*", "agent.*")


@dataclass(slots=True)
class _Dirty:
    interactions: set[int] = field(default_factory=set)
    cases: bool = False
    campaigns: bool = False
    agents: bool = False

    def any(self) -> bool:
        return bool(self.interactions) or self.cases or self.campaigns or self.agents


class LiveStats:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        bus: EventBus,
        options: service.ReportOptions | None = None,
        clock: Callable[[], datetime] = utcnow,
        settle_seconds: float = 0.05,
        resync_seconds: float = 30.0,
        open_lookback: timedelta = timedelta(hours=12),
    ) -> None:
        self.options = options or service.ReportOptions()
        self._sessions = sessions
        self._bus = bus
        self._clock = clock
        self._settle = settle_seconds
        self._resync = resync_seconds
        self._lookback = open_lookback
        self._lock = threading.Lock()  # guards _dirty, _snapshot, _version, _watchers
        self._work = threading.RLock()  # one reload or refresh at a time (the worker, or a caller's reload)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._started = False
        self._thread: threading.Thread | None = None
        self._subscriptions: list[Subscription] = []
        self._dirty = _Dirty()
        self._watchers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._snapshot: dict[str, Any] = {}
        self._version = 0
        # Worker-thread state.
        self._day_start: datetime | None = None
        self._contacts: dict[int, Contact] = {}
        self._derived: dict[int, tuple[Contact, Derived]] = {}  # per contact, until it changes
        self._cases: list[CaseRecord] = []
        self._attempts: list[CampaignAttempt] = []
        self._windows: dict[str, dict[str, Any]] = {}
        self._spans: list[AgentStateSpan] = []
        self._kpi_options = self.options.kpis

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Loads today, subscribes to the bus and starts the worker; again is a no-op."""
        with self._lock:
            if self._started:
                return
            self._started = True
        self._subscriptions = [self._bus.subscribe(topic, self._on_event) for topic in TOPICS]
        try:
            self.reload()
        except Exception:
            for subscription in self._subscriptions:
                subscription.close()
            self._subscriptions = []
            with self._lock:
                self._started = False  # the next reader tries again
            raise
        self._thread = threading.Thread(target=self._run, name="live-stats", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions = []
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- reading --------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def snapshot(self) -> dict[str, Any]:
        """The current figures (starting the worker first if nobody has)."""
        self.start()
        with self._lock:
            return self._snapshot

    async def wait_for_change(self, version: int, timeout: float) -> int:
        """Returns the version once it differs from `version`, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()
        watcher = (loop, changed)
        with self._lock:
            if self._version != version:
                return self._version
            self._watchers.add(watcher)
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._watchers.discard(watcher)
        return self._version

    # --- events ---------------------------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        payload = event.payload
        with self._lock:
            if event.topic.startswith(("interaction.", "touchpoint.")):
                interaction_id = payload.get("interaction_id")
                if isinstance(interaction_id, int):
                    self._dirty.interactions.add(interaction_id)
                if payload.get("campaign") or payload.get("direction") == "outbound":
                    self._dirty.campaigns = True
                if payload.get("case_id") is not None:
                    self._dirty.cases = True
            elif event.topic.startswith("case."):
                self._dirty.cases = True
            elif event.topic.startswith("campaign."):
                self._dirty.campaigns = True
            elif event.topic.startswith("agent."):
                self._dirty.agents = True
        self._wake.set()

    def _run(self) -> None:
        last_sync = self._clock()
        while not self._stopping.is_set():
            self._wake.wait(timeout=self._resync)
            if self._stopping.is_set():
                return
            if self._wake.is_set():
                self._stopping.wait(self._settle)  # let a burst of events settle into one refresh
            self._wake.clear()
            with self._lock:
                dirty, self._dirty = self._dirty, _Dirty()
            now = self._clock()
            try:
                day = bucket_start(now, Interval.DAY, self.options.zone)
                if now - last_sync >= timedelta(seconds=self._resync) or day != self._day_start:
                    self.reload()
                    last_sync = now
                elif dirty.any():
                    self._refresh(dirty, now)
            except Exception:
                log.exception("live figures not refreshed; retrying shortly")
                with self._lock:
                    self._dirty.interactions |= dirty.interactions
                    self._dirty.cases |= dirty.cases
                    self._dirty.campaigns |= dirty.campaigns
                    self._dirty.agents |= dirty.agents
                self._stopping.wait(1.0)
                self._wake.set()

    # --- loading --------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Reads today again, whole, and publishes the figures."""
        with self._work:
            self._reload()

    def _reload(self) -> None:
        now = self._clock()
        day_start = bucket_start(now, Interval.DAY, self.options.zone)
        with self._sessions() as db:
            contacts = service.contacts_between(db=db, start=day_start, end=now + timedelta(days=1))
            contacts += self._open_before(db, day_start)
            self._contacts = {c.interaction_id: c for c in contacts}
            self._derived = {}
            self._day_start = day_start
            self._kpi_options = service.kpi_options(db=db, options=self.options)
            self._load_cases(db, now)
            self._load_campaigns(db, now)
            self._load_spans(db, now)
        self._publish(now)

    def _open_before(self, db: Session, day_start: datetime) -> list[Contact]:
        """Interactions from before today that have not ended (a call waiting over midnight)."""
        query = select(Interaction.id).where(
            Interaction.started_at >= day_start - self._lookback,
            Interaction.started_at < day_start,
            Interaction.ended_at.is_(None),
        )
        ids = list(db.scalars(query))
        return service.contacts_of_interactions(db=db, interaction_ids=ids)

    def _refresh(self, dirty: _Dirty, now: datetime) -> None:
        with self._work:
            self._refresh_now(dirty, now)

    def _refresh_now(self, dirty: _Dirty, now: datetime) -> None:
        assert self._day_start is not None
        with self._sessions() as db:
            if dirty.interactions:
                for contact in service.contacts_of_interactions(
                    db=db, interaction_ids=sorted(dirty.interactions)
                ):
                    if contact.started_at >= self._day_start or contact.ended_at is None:
                        self._contacts[contact.interaction_id] = contact
                    else:
                        self._contacts.pop(contact.interaction_id, None)
                        self._derived.pop(contact.interaction_id, None)
            if dirty.cases:
                self._load_cases(db, now)
            if dirty.campaigns:
                self._load_campaigns(db, now)
            if dirty.agents:
                self._load_spans(db, now)
        self._publish(now)

    def _load_cases(self, db: Session, now: datetime) -> None:
        assert self._day_start is not None
        self._cases = service.cases_with_contacts_between(
            db=db, start=self._day_start, end=now + timedelta(days=1)
        )

    def _load_campaigns(self, db: Session, now: datetime) -> None:
        assert self._day_start is not None
        names = service.campaign_names(db=db)
        self._attempts = service.attempts_between(
            db=db, start=self._day_start, end=now + timedelta(days=1), campaigns=names
        )
        active = {a.campaign for a in self._attempts}
        windows: dict[str, dict[str, Any]] = {}
        for campaign in db.scalars(select(Campaign).order_by(Campaign.id)):
            name = names[campaign.id]
            if campaign.status != "running" and name not in active:
                continue
            rolling = {
                w.label: w
                for w in dialer_attempts.abandonment_windows(db=db, campaign_id=campaign.id, now=now)
            }
            try:
                target: float | None = dialer_campaigns.settings_of(campaign).abandonment_target
            except ValueError:  # settings written by an older version: the figures still count
                target = None
            windows[name] = {
                "campaign_id": campaign.id,
                "status": campaign.status,
                "abandonment_target": target,
                "abandonment_rate_24h": ratio(rolling["24h"].abandoned, rolling["24h"].answered),
                "abandonment_rate_30d": ratio(rolling["30d"].abandoned, rolling["30d"].answered),
            }
        self._windows = windows

    def _load_spans(self, db: Session, now: datetime) -> None:
        source = self.options.agent_spans
        if source is not None and self._day_start is not None:
            self._spans = list(source(db, self._day_start, now))

    # --- the figures ----------------------------------------------------------------------------------

    def _derive(self, contact: Contact) -> Derived:
        cached = self._derived.get(contact.interaction_id)
        if cached is not None and cached[0] is contact:
            return cached[1]
        facts = derive(contact)
        self._derived[contact.interaction_id] = (contact, facts)
        return facts

    def _publish(self, now: datetime) -> None:
        figures = self._figures(now)
        with self._lock:
            self._version += 1
            figures["version"] = self._version
            self._snapshot = figures
            watchers = list(self._watchers)
        for loop, changed in watchers:
            with contextlib.suppress(RuntimeError):  # that stream's loop has closed
                loop.call_soon_threadsafe(changed.set)

    def _figures(self, now: datetime) -> dict[str, Any]:
        assert self._day_start is not None
        zone = self.options.zone
        start = self._day_start
        end = bucket_end(start, Interval.DAY, zone)
        today = [c for c in self._contacts.values() if c.started_at >= start]
        inputs = KpiInputs(
            contacts=today, cases=self._cases, attempts=self._attempts, agent_spans=self._spans
        )
        options = self._kpi_options
        groupings = (GroupBy.NONE, GroupBy.QUEUE, GroupBy.CHANNEL, GroupBy.AGENT, GroupBy.CAMPAIGN)
        tables = summarise_by(
            inputs, start=start, end=end, interval=Interval.DAY, zone=zone, group_bys=groupings,
            options=options, now=now, derived=self._derive,
        )  # fmt: skip

        overall = tables[GroupBy.NONE]
        empty = KpiInputs()
        totals = overall[0] if overall else overall_row(empty, start=start, end=end, zone=zone, now=now)
        visits = [v for c in self._contacts.values() for v in self._derive(c).visits]
        ivr = ivr_containment(list(self._contacts.values()))
        today_ivr = ivr_containment(today)
        return {
            "at": now,
            "since": start,
            "time_zone": str(zone),
            "totals": _pick(totals, *_KPI_FIELDS),
            "queues": _queues(tables[GroupBy.QUEUE], visits, options, now),
            "channels": [
                {"channel": r.group, **_pick(r, "contacts", "inbound_contacts", "outbound_contacts")}
                for r in tables[GroupBy.CHANNEL]
                if r.group is not None
            ],
            "agents": [
                {"agent": r.group, **_pick(r, "handled", "aht_seconds", "occupancy", "csat_average")}
                for r in tables[GroupBy.AGENT]
                if r.group is not None
            ],
            "campaigns": _campaigns(tables[GroupBy.CAMPAIGN], self._windows),
            "ivr": {
                "in_ivr": ivr.in_ivr,
                "calls": today_ivr.calls,
                "contained": today_ivr.contained,
                "abandoned": today_ivr.abandoned,
                "containment": today_ivr.containment,
                "drop_off": [{"node": node, "calls": calls} for node, calls in ivr_drop_off(today).items()],
            },
        }


_KPI_FIELDS = tuple(
    f for f in KpiRow.__dataclass_fields__ if f not in ("bucket_start", "bucket_end", "group")
)


def _pick(row: KpiRow, *names: str) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


def _queues(
    rows: list[KpiRow], visits: list[QueueVisit], options: KpiOptions, now: datetime
) -> list[dict[str, Any]]:
    by_queue = {r.group: r for r in rows if r.group is not None}
    names = sorted(set(by_queue) | {v.queue for v in visits})
    figures = []
    for name in names:
        waiting = waiting_now([v for v in visits if v.queue == name], now=now)
        row = by_queue.get(name)
        figures.append(
            {
                "queue": name,
                "waiting": waiting.calls,
                "longest_wait_seconds": waiting.longest_wait_seconds,
                "oldest_waiting_since": waiting.oldest_entered_at,
                "service_level_target_seconds": options.service_level_seconds.get(
                    name, options.default_service_level_seconds
                ),
                **(
                    _pick(
                        row,
                        "queue_offered",
                        "queue_answered",
                        "queue_abandoned",
                        "short_abandons",
                        "asa_seconds",
                        "service_level",
                        "abandonment_rate",
                        "aht_seconds",
                    )
                    if row is not None
                    else {
                        "queue_offered": 0,
                        "queue_answered": 0,
                        "queue_abandoned": 0,
                        "short_abandons": 0,
                        "asa_seconds": None,
                        "service_level": None,
                        "abandonment_rate": None,
                        "aht_seconds": None,
                    }
                ),
            }
        )
    return figures


def _campaigns(rows: list[KpiRow], windows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    by_campaign = {r.group: r for r in rows if r.group is not None}
    figures = []
    for name in sorted(set(by_campaign) | set(windows)):
        row = by_campaign.get(name)
        today = (
            _pick(
                row,
                "outbound_dialed",
                "outbound_live_calls",
                "outbound_abandoned",
                "outbound_abandonment_rate",
            )
            if row is not None
            else {
                "outbound_dialed": 0,
                "outbound_live_calls": 0,
                "outbound_abandoned": 0,
                "outbound_abandonment_rate": None,
            }
        )
        figures.append({"campaign": name, **today, **windows.get(name, {})})
    return figures
