"""Upgrading an empty database yields exactly the SQLModel metadata, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from planner.store.db import create_db_engine, current_revision, upgrade
from planner.store.models import metadata
from tests.conftest import new_pg_database
from tests.servers import PostgresServer


def _diff(url: str) -> list[object]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_sqlite_upgrade_from_nothing_matches_models(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "fresh.db"
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    assert path.exists()
    assert current_revision(engine) is not None
    assert set(inspect(engine).get_table_names()) >= set(metadata.tables)
    engine.dispose()
    assert _diff(f"sqlite:///{path}") == []


def test_postgres_upgrade_from_nothing_matches_models(pg: PostgresServer) -> None:
    pg.create_database("migration_fresh")
    url = pg.url("migration_fresh")
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    assert _diff(url) == []


def test_upgrade_is_idempotent(pg: PostgresServer) -> None:
    url = new_pg_database(pg)
    engine = create_db_engine(url)
    before = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == before
    engine.dispose()
