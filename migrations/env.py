"""Alembic environment: runs against the connection handed in by ``planner.db.upgrade``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import planner.store.models  # noqa: F401  (registers the tables on the metadata)
from planner.store.models import metadata

config = context.config
target_metadata = metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///./planner.db")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
