"""The retention job on real files, on SQLite and PostgreSQL: expired recordings deleted and marked, fresh
ones kept, an audit row per run with its counts; a dry run that changes nothing; the daily schedule.
(The command: tests/integration/test_recordings_cli.py.)"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from centralita.container import Container
from core.audit.models import AuditEntry
from core.channels import Channel, Direction
from core.db import unit_of_work
from core.timeline import service as timeline
from core.timeline.models import Touchpoint
from core.timeline.schemas import InteractionCreate, TouchpointCreate, TouchpointKind
from routing.recording_retention import RetentionSchedule, purge_expired
from routing.recordings import RecordingStart, note_started

NOW = datetime(2026, 8, 10, 3, 0, tzinfo=UTC)


def call_with_recordings(
    container: Container, root: Path, ages: dict[str, int], *, files: bool = True, now: datetime = NOW
) -> int:
    """A call with one recording per entry of `ages` (name -> days old at `now`); their files in `root`."""
    with unit_of_work(container.session_factory) as db:
        interaction, _ = timeline.record_interaction(
            db=db,
            data=InteractionCreate(channel=Channel.VOICE, direction=Direction.INBOUND, started_at=NOW),
            region="ES",
        )
        for number, (call, age) in enumerate(ages.items(), start=1):
            started = now - timedelta(days=age)
            name = f"{started:%Y/%m/%d}/{call}-{number}.wav"
            note_started(
                db=db,
                start=RecordingStart(
                    file=name,
                    number=number,
                    started_at=started,
                    policy="always",
                    requested_by="policy",
                    source="mixmonitor",
                    interaction_id=interaction.id,
                ),
            )
            if files:
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(b"RIFF")
        return interaction.id


def recordings_of(container: Container, interaction_id: int) -> dict[str, dict[str, object]]:
    with container.read_session_factory() as db:
        rows = db.query(Touchpoint).filter_by(interaction_id=interaction_id, kind="recording").all()
        return {str(row.attributes["file"]).rsplit("/", 1)[1]: row.attributes for row in rows}


def purges(container: Container) -> list[dict[str, object]]:
    with container.read_session_factory() as db:
        return [
            e.details
            for e in db.query(AuditEntry).filter_by(action="recordings.purged").order_by(AuditEntry.id)
        ]


def test_expired_recordings_are_deleted_and_marked_fresh_ones_kept_and_the_run_audited(
    container: Container, tmp_path: Path
) -> None:
    call = call_with_recordings(container, tmp_path, {"old": 120, "older": 400, "fresh": 10})
    report = purge_expired(container.session_factory, root=tmp_path, days=90, now=NOW)
    assert (report.expired, report.deleted, report.missing, report.refused, report.failed) == (2, 2, 0, 0, 0)

    kept = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.wav"))
    assert kept == [f"{NOW - timedelta(days=10):%Y/%m/%d}/fresh-3.wav"]
    marks = recordings_of(container, call)
    assert marks["old-1.wav"]["deleted_at"] == NOW.isoformat()
    assert marks["older-2.wav"]["deleted_by"] == "retention"
    assert "deleted_at" not in marks["fresh-3.wav"]
    (audit,) = purges(container)
    assert (audit["expired"], audit["deleted"], audit["retention_days"]) == (2, 2, 90)

    again = purge_expired(container.session_factory, root=tmp_path, days=90, now=NOW)
    assert (again.expired, again.deleted) == (0, 0)  # deleted once; the next run finds nothing
    assert len(purges(container)) == 2  # but says that it ran


def test_a_dry_run_counts_and_changes_nothing(container: Container, tmp_path: Path) -> None:
    call = call_with_recordings(container, tmp_path, {"old": 120, "fresh": 1})
    report = purge_expired(container.session_factory, root=tmp_path, days=90, now=NOW, dry_run=True)
    assert (report.dry_run, report.expired, report.deleted) == (True, 1, 1)
    assert len(list(tmp_path.rglob("*.wav"))) == 2
    assert all("deleted_at" not in marks for marks in recordings_of(container, call).values())
    assert purges(container) == []


def test_missing_files_and_names_that_are_not_recordings_are_counted_never_followed(
    container: Container, tmp_path: Path
) -> None:
    call = call_with_recordings(container, tmp_path, {"gone": 200}, files=False)
    root = tmp_path / "recordings"
    root.mkdir()
    bait = tmp_path / "keep-me.wav"
    bait.write_bytes(b"precious")
    with unit_of_work(container.session_factory) as db:
        timeline.add_touchpoint(
            db=db,
            interaction_id=call,
            data=TouchpointCreate(
                kind=TouchpointKind.RECORDING,
                occurred_at=NOW - timedelta(days=300),
                attributes={"file": "../keep-me.wav", "number": 9},
            ),
        )
    report = purge_expired(container.session_factory, root=root, days=30, now=NOW)
    assert (report.expired, report.deleted, report.missing, report.refused) == (2, 0, 1, 1)
    assert bait.read_bytes() == b"precious"
    assert recordings_of(container, call)["gone-1.wav"]["deleted_at"] == NOW.isoformat()


def test_zero_days_keeps_everything(container: Container, tmp_path: Path) -> None:
    call_with_recordings(container, tmp_path, {"ancient": 3000})
    report = purge_expired(container.session_factory, root=tmp_path, days=0, now=NOW)
    assert report.cutoff is None and report.expired == 0
    assert len(list(tmp_path.rglob("*.wav"))) == 1


def test_the_daily_schedule_runs_the_job_in_the_background(container: Container, tmp_path: Path) -> None:
    call_with_recordings(container, tmp_path, {"old": 120})
    schedule = RetentionSchedule(
        container.session_factory,
        root=tmp_path,
        days=90,
        every_seconds=3600,
        first_delay=0,
        clock=lambda: NOW,
    )

    async def main() -> None:
        schedule.start()
        async with asyncio.timeout(10):
            while schedule.last is None:
                await asyncio.sleep(0.01)
        await schedule.stop()

    asyncio.run(main())
    assert schedule.last is not None and schedule.last.deleted == 1
    assert list(tmp_path.rglob("*.wav")) == []
