"""Alembic environment. Run through `centralita db upgrade` (core.migrate), not the alembic CLI."""

from alembic import context
from sqlalchemy import Connection, create_engine

import core.models  # noqa: F401  (registers every table on Base.metadata)
from core.db import Base

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite can only ALTER a table by copying it; batch mode does that
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
        conn.commit()
    engine.dispose()
