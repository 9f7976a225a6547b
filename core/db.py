"""Database engine, session factory and the column types every model shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast, get_args

import orjson
from pydantic import BaseModel
from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import CursorResult, Dialect, Engine, create_engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names, so Alembic migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JsonDoc = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every database.

    SQLite stores no offset, so values are normalised to UTC on the way in and given UTC back on
    the way out; a naive datetime is refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: timestamps must carry a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def columns_of(model: type[Base], schema: type[BaseModel]) -> list[Any]:
    """The table columns a read schema shows, in the schema's order, for reads that skip the ORM."""
    table = model.__table__
    return [table.c[name] for name in schema.model_fields]


def timestamp_fields(schema: type[BaseModel]) -> tuple[str, ...]:
    """The fields of a read schema that hold timestamps."""
    return tuple(
        name
        for name, field in schema.model_fields.items()
        if datetime in (field.annotation, *get_args(field.annotation))
    )


def utc_timestamps(document: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """PostgreSQL's JSON writes timestamps as text in the session's time zone; the API speaks UTC."""
    for name in fields:
        if document[name] is not None:
            document[name] = datetime.fromisoformat(document[name]).astimezone(UTC)
    return document


def affected_rows(db: Session, statement: Executable) -> int:
    """Runs a bulk UPDATE or DELETE and says how many rows it touched."""
    result = db.execute(statement)
    return cast(CursorResult[Any], result).rowcount


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_engine(database_url: str, *, autocommit: bool = False) -> Engine:
    """An engine for writes, or with `autocommit` one for reads that sends no BEGIN and COMMIT.

    Reads that need no snapshot (a screen pop, a timeline page) save two round trips that way.
    """
    options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    # orjson decodes JSON columns several times faster than the json module (timeline pages).
    options |= {"json_serializer": _json_text, "json_deserializer": orjson.loads}
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"check_same_thread": False}, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # No pre-ping: it would cost a round trip on every request. A connection the server dropped
    # fails one request and is replaced; pool_recycle retires connections before idle timeouts.
    return create_engine(database_url, pool_size=20, max_overflow=10, pool_recycle=1800, **options)


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The edge's transaction: commit when the block ends, roll back if it raises.

    Services only flush; this is the one place (with the request dependency) that commits.
    """
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
