"""`centralita recordings purge` as an operator runs it: a dry run first, then the real one, on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from served import run_cli

from centralita.container import build
from core.channels import Channel, Direction
from core.db import unit_of_work
from core.settings import Settings
from core.timeline import service as timeline
from core.timeline.schemas import InteractionCreate
from routing.recordings import RecordingStart, note_started


def recorded_call(database_url: str, root: Path, ages: dict[str, int]) -> dict[str, Path]:
    """A call with a recording per entry of `ages` (name -> days old), their files under `root`."""
    container = build(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    now = datetime.now(UTC)
    files: dict[str, Path] = {}
    try:
        container.migrate()
        with unit_of_work(container.session_factory) as db:
            interaction, _ = timeline.record_interaction(
                db=db,
                data=InteractionCreate(channel=Channel.VOICE, direction=Direction.INBOUND, started_at=now),
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
                files[call] = root / name
                files[call].parent.mkdir(parents=True, exist_ok=True)
                files[call].write_bytes(b"RIFF")
    finally:
        container.close()
    return files


def test_the_command_purges_and_says_what_it_did(env: dict[str, str], tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.mkdir()
    env = env | {"CENTRALITA_ASTERISK_RECORDINGS_DIR": str(root), "CENTRALITA_RECORDING_RETENTION_DAYS": "30"}
    files = recorded_call(env["CENTRALITA_DATABASE_URL"], root, {"old": 45, "new": 2})
    old = files["old"]

    dry = run_cli("recordings", "purge", "--dry-run", env=env, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "1 expired; would delete 1" in dry.stdout and old.exists()

    done = run_cli("recordings", "purge", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "1 expired; deleted 1" in done.stdout and not old.exists()
    assert len(list(root.rglob("*.wav"))) == 1

    unset = {name: value for name, value in env.items() if name != "CENTRALITA_ASTERISK_RECORDINGS_DIR"}
    no_dir = run_cli("recordings", "purge", env=unset, cwd=tmp_path)
    assert no_dir.returncode == 2 and "CENTRALITA_ASTERISK_RECORDINGS_DIR" in no_dir.stderr
