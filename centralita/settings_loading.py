"""Settings for a command: read once, or the command stops with every bad setting named."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from core.settings import Settings


def settings_or_exit() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CENTRALITA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error: bad setting: {problems}", err=True)
        raise typer.Exit(2) from None
