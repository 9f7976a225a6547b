"""`centralita demo`: fill the configured database with a made-up month and say what it made."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Annotated

import typer

from centralita.container import build
from centralita.demo import DEFAULT_CUSTOMERS, DEFAULT_DAYS, DatabaseNotEmpty, DemoOptions, generate
from centralita.settings_loading import settings_or_exit
from core.errors import DomainError

demo_app = typer.Typer(
    invoke_without_command=True,
    help="Fill the database with a realistic month of made-up contacts, to look around.",
)


@demo_app.callback()
def demo(
    days: Annotated[int, typer.Option(min=1, max=366, help="how many days, up to --end")] = DEFAULT_DAYS,
    customers: Annotated[
        int, typer.Option(min=10, max=200_000, help="customers to make (Spanish and British)")
    ] = DEFAULT_CUSTOMERS,
    seed: Annotated[int, typer.Option(help="the same seed makes the same month")] = 1,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="the last day, YYYY-MM-DD", show_default="today, up to now"),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="add to a database that already holds data")] = False,
) -> None:
    """Customers with phones, emails and consents; calls through the shipped IVR flows (banco_es,
    support_en) to queues and agents; SMS, WhatsApp, email and web contacts on cases; callbacks; two
    outbound campaigns. Then prints what it made and the pages to look at."""
    settings = settings_or_exit()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The IVR logs every call it runs at INFO; a month of them would drown the summary.
    logging.getLogger("voice").setLevel(logging.WARNING)
    last: date | None = end.date() if end is not None else None
    try:
        options = DemoOptions(days=days, customers=customers, seed=seed, end=last, force=force)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    container = build(settings)
    try:
        if settings.auto_migrate:
            container.migrate()
        where = container.engine.url.render_as_string(hide_password=True)
        typer.echo(f"making {days} days of {customers} customers (seed {seed}) in {where} …")
        summary = asyncio.run(generate(container, options))
    except DatabaseNotEmpty as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    except (DomainError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        container.close()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    for line in summary.lines(settings.public_url or f"http://{host}:{settings.port}"):
        typer.echo(line)
