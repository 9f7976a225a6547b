"""Shared fixtures. Data and API tests run twice: on SQLite and on PostgreSQL.

PostgreSQL comes from CENTRALITA_TEST_DATABASE_URL (default: this machine's `test` database).
Each run works in a schema of its own, dropped at the end, so no run sees another's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from centralita.container import Container, build
from core.auth import service as keys
from core.auth.roles import Role
from core.db import Base, unit_of_work
from core.settings import Settings

POSTGRES_URL = os.environ.get(
    "CENTRALITA_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'centralita.db'}"
        return
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # the suite must run on PostgreSQL too: say how to get one
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} is needed (set CENTRALITA_TEST_DATABASE_URL): {exc}")
    try:
        yield _with_search_path(POSTGRES_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_container(database_url: str) -> Iterator[Container]:
    container = build(Settings(database_url=database_url, api_key_cache_seconds=0, _env_file=None))  # type: ignore[call-arg]
    container.migrate()
    yield container
    container.close()


@pytest.fixture
def container(migrated_container: Container) -> Iterator[Container]:
    yield migrated_container
    with migrated_container.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    # The live ACD is the session container's too: queues a test made there would route the next test's
    # calls (a flow's queue of the same name goes to Centralita's ACD instead of Asterisk's Queue()).
    live = migrated_container.routing().live
    live.submit(live.clear)


@pytest.fixture
def make_key(container: Container):  # type: ignore[no-untyped-def]
    def make(role: Role = Role.ADMIN, name: str | None = None) -> str:
        with unit_of_work(container.session_factory) as db:
            _, plain = keys.create_key(db=db, role=role, name=name or f"test {role.value}")
        return plain

    return make


@pytest.fixture
def client(container: Container, make_key) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(container.api()) as test_client:
        test_client.headers["Authorization"] = f"Bearer {make_key(Role.ADMIN, 'test admin')}"
        yield test_client


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "shared" / "fixtures"
