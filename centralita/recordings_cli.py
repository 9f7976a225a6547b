"""`centralita recordings`: call recordings kept by Asterisk, and the retention job run by hand."""

from __future__ import annotations

from typing import Annotated

import typer

from centralita.container import build
from centralita.settings_loading import settings_or_exit
from core.db import utcnow
from routing.recording_retention import purge_expired

recordings_app = typer.Typer(no_args_is_help=True, help="Call recordings.")


@recordings_app.command("purge")
def recordings_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be deleted; delete and write nothing")
    ] = False,
    days: Annotated[
        int | None,
        typer.Option(min=0, help="retention in days [default: CENTRALITA_RECORDING_RETENTION_DAYS or 90]"),
    ] = None,
) -> None:
    """Delete the call recordings older than the retention (0 days: keep them all), mark their
    touchpoints deleted and write an audit row with the counts (what `serve` does once a day). Reads
    and deletes under CENTRALITA_ASTERISK_RECORDINGS_DIR. Exits 1 if a file could not be deleted."""
    settings = settings_or_exit()
    root = settings.asterisk_recordings_dir
    if root is None:
        typer.echo(
            "error: CENTRALITA_ASTERISK_RECORDINGS_DIR is not set: this machine cannot see the recordings",
            err=True,
        )
        raise typer.Exit(2)
    retention = settings.recording_retention_days if days is None else days
    container = build(settings)
    try:
        if settings.auto_migrate:
            container.migrate()
        report = purge_expired(
            container.session_factory, root=root, days=retention, now=utcnow(), dry_run=dry_run
        )
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        container.close()
    if report.cutoff is None:
        typer.echo("retention is 0 days: recordings are kept; nothing to do")
        return
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"recordings started before {report.cutoff:%Y-%m-%d %H:%M} UTC ({retention} days): "
        f"{report.expired} expired; {verb} {report.deleted}; {report.missing} already gone; "
        f"{report.refused} refused (not a recording name); {report.failed} could not be deleted"
    )
    if report.failed:
        raise typer.Exit(1)
