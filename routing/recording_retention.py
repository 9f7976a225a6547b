"""The retention job: deletes call recordings older than `CENTRALITA_RECORDING_RETENTION_DAYS` and says so.

    report = purge_expired(sessions, root=Path("/mnt/recordings"), days=90, now=utcnow())
    report = purge_expired(sessions, root=..., days=90, now=..., dry_run=True)   # counts only

Each expired recording's file is deleted and its touchpoint marked (`deleted_at`, `deleted_by`), in
batches, each batch its own transaction; then one audit row (`recordings.purged`) says what the run
did: how many expired, were deleted, were already gone, were refused (a touchpoint whose `file` is not
a recording name is never turned into a path: see `routing.recording_policy.resolve`) or could not be
deleted (kept unmarked, so the next run tries again). A dry run changes nothing and writes no audit row.

The file goes before the mark: if the transaction then fails, the next run finds the file gone and
marks it (`missing`). Nothing that retention did not mean to delete is ever lost.

`RetentionSchedule` runs it once a day in `serve` (an asyncio task in the process that runs the dialer:
see its docstring); `centralita recordings purge` runs it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.audit import service as audit
from core.db import unit_of_work, utcnow
from core.timeline.models import Touchpoint
from routing.recording_policy import UnsafeRecordingName, resolve, retention_cutoff
from routing.recording_schemas import PurgeReport
from routing.recordings import RECORDING, is_call_recording

log = logging.getLogger(__name__)

RETENTION_ACTOR = "retention"
BATCH = 500


@dataclass
class _Counts:
    expired: int = 0
    deleted: int = 0
    missing: int = 0
    refused: int = 0
    failed: int = 0


def _expired_batch(db: Session, cutoff: datetime, after_id: int) -> list[Touchpoint]:
    query = (
        select(Touchpoint)
        .where(
            Touchpoint.kind == RECORDING,
            Touchpoint.occurred_at < cutoff,
            Touchpoint.id > after_id,
            Touchpoint.attributes["file"].as_string().is_not(None),
            Touchpoint.attributes["deleted_at"].as_string().is_(None),
        )
        .order_by(Touchpoint.id)
        .limit(BATCH)
    )
    return list(db.scalars(query))


def _purge_one(touchpoint: Touchpoint, root: Path, now: datetime, dry_run: bool, counts: _Counts) -> None:
    if not is_call_recording(touchpoint):
        return
    counts.expired += 1
    name = touchpoint.attributes["file"]
    try:
        path = resolve(root, name)
    except UnsafeRecordingName as exc:
        counts.refused += 1
        log.warning("recording touchpoint %d left alone: %s", touchpoint.id, exc)
        return
    gone = not path.exists()
    if dry_run:
        counts.missing += gone
        counts.deleted += not gone
        return
    if not gone:
        try:
            path.unlink()
        except FileNotFoundError:
            gone = True
        except OSError as exc:
            counts.failed += 1
            log.error("could not delete recording %s: %s", name, exc)
            return
    counts.missing += gone
    counts.deleted += not gone
    # A new dict: the ORM notices a replaced JSON value, not one changed in place.
    touchpoint.attributes = touchpoint.attributes | {
        "deleted_at": now.isoformat(),
        "deleted_by": RETENTION_ACTOR,
        **({"deleted_missing": True} if gone else {}),
    }


def purge_expired(
    sessions: sessionmaker[Session],
    *,
    root: Path,
    days: int,
    now: datetime,
    dry_run: bool = False,
    actor: str = RETENTION_ACTOR,
) -> PurgeReport:
    """One run of the job (see the module docstring). `root`: the recordings directory as this machine
    sees it (CENTRALITA_ASTERISK_RECORDINGS_DIR)."""
    if not root.is_dir():
        raise FileNotFoundError(f"the recordings directory {root} does not exist (or is not a directory)")
    cutoff = retention_cutoff(now, days)
    counts = _Counts()
    if cutoff is not None:
        after = 0
        while True:
            with unit_of_work(sessions) as db:
                batch = _expired_batch(db, cutoff, after)
                for touchpoint in batch:
                    _purge_one(touchpoint, root, now, dry_run, counts)
            if len(batch) < BATCH:
                break
            after = batch[-1].id
    report = PurgeReport(
        dry_run=dry_run,
        retention_days=days,
        cutoff=cutoff,
        expired=counts.expired,
        deleted=counts.deleted,
        missing=counts.missing,
        refused=counts.refused,
        failed=counts.failed,
    )
    if not dry_run:
        with unit_of_work(sessions) as db:
            audit.record(
                db=db,
                actor=actor,
                action="recordings.purged",
                subject_type="recordings",
                subject_id=None,
                details=report.model_dump(mode="json"),
            )
    return report


class RetentionSchedule:
    """Runs the retention job in the background once every `every_seconds` (a day), first `first_delay`
    seconds after `start()` (let the service come up first), in a worker thread so calls never wait.

    An asyncio task rather than the dialer's APScheduler: that scheduler runs only with the dialer on
    (CENTRALITA_DIALER_NETWORK) and keeps campaign jobs in the database; this job must run whatever the
    dialer does, needs no persistence (a missed day is caught up by the next run: it deletes everything
    expired, not one day's worth) and is started by `serve` in one process only (worker 0, as the
    dialer), so two runs never race."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        root: Path,
        days: int,
        every_seconds: float = 86_400.0,
        first_delay: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.root = root
        self.days = days
        self.every_seconds = every_seconds
        self.first_delay = first_delay
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.last: PurgeReport | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="recording retention")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> PurgeReport | None:
        try:
            report = await asyncio.to_thread(
                purge_expired, self._sessions, root=self.root, days=self.days, now=self._clock()
            )
        except Exception:
            log.exception("the recording retention job failed; it runs again in %gs", self.every_seconds)
            return None
        self.last = report
        log.info(
            "recording retention: %d expired, %d deleted, %d already gone, %d refused, %d failed",
            report.expired,
            report.deleted,
            report.missing,
            report.refused,
            report.failed,
        )
        return report

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        while True:
            await self.run_once()
            await asyncio.sleep(self.every_seconds)
