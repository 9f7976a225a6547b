"""The `centralita` command."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from pydantic import ValidationError

from centralita.container import Container, build
from core import migrate
from core.auth import service as keys
from core.auth.roles import Role
from core.db import unit_of_work
from core.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Centralita: a voice-first contact center.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys.")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _container() -> Container:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"CENTRALITA_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.echo(f"error: bad setting: {problems}", err=True)
        raise typer.Exit(2) from None
    return build(settings)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="address to listen on [default: CENTRALITA_HOST or 127.0.0.1]")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port [default: CENTRALITA_PORT or 8000]")] = None,
) -> None:
    """Run the API (OpenAPI docs at /docs). Brings the database schema up to date first."""
    import uvicorn

    container = _container()
    settings = container.settings
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.auto_migrate:
        container.migrate()
    try:
        uvicorn.run(
            container.api(),
            host=host or settings.host,
            port=port or settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
    finally:
        container.close()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "head") -> None:
    """Apply schema migrations to CENTRALITA_DATABASE_URL."""
    container = _container()
    migrate.upgrade(container.engine, revision)
    typer.echo(
        f"database at revision {revision}: {container.engine.url.render_as_string(hide_password=True)}"
    )
    container.close()


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="what the key may do")],
    name: Annotated[str | None, typer.Option(help="who or what uses it [default: the role]")] = None,
) -> None:
    """Make an API key. The key is printed once, alone on the last line; only its hash is kept."""
    container = _container()
    if container.settings.auto_migrate:
        container.migrate()
    with unit_of_work(container.session_factory) as db:
        key, plain = keys.create_key(db=db, role=role, name=name or f"{role.value} key")
        typer.echo(f"created key {key.id} ({key.role}, {key.name!r}); store it now, it is not shown again:")
    container.close()
    typer.echo(plain)


@keys_app.command("list")
def keys_list() -> None:
    """List API keys (never the keys themselves)."""
    container = _container()
    with container.session_factory() as db:
        for key in keys.list_keys(db=db):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            typer.echo(f"{key.id}\t{key.prefix}…\t{key.role}\t{state}\t{key.name}")
    container.close()


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke an API key (other running nodes stop accepting it within CENTRALITA_API_KEY_CACHE_SECONDS)."""
    container = _container()
    with unit_of_work(container.session_factory) as db:
        keys.revoke_key(db=db, key_id=key_id)
    container.close()
    typer.echo(f"revoked key {key_id}")


def main() -> None:
    app()
