"""Upgrading an empty database yields exactly the SQLModel metadata, on SQLite and PostgreSQL (where
the delivery table and its timeline are partitioned by month, which the models do not describe)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from planner.store.db import create_db_engine, current_revision, upgrade
from planner.store.models import metadata
from tests.conftest import new_pg_database
from tests.servers import PostgresServer

_PARTITION = re.compile(r"_(p\d{4}_\d{2}|default)$")
#: What partitioning by month changes from the models, on PostgreSQL (planner.store.partition_copy):
#: the local date is required (the partition key), the dedup key is unique with it, and a timeline
#: entry references its delivery by (id, local_date).
PARTITIONED = [
    ("modify_nullable", "delivery", "local_date"),
    ("remove_constraint", "delivery", ("dedup_key", "local_date")),
    ("add_constraint", "delivery", ("dedup_key",)),
    ("modify_nullable", "delivery_event", "local_date"),
    ("remove_fk", "delivery_event", ("delivery_id", "local_date")),
    ("add_fk", "delivery_event", ("delivery_id",)),
]


def _not_a_partition(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Compare the partitioned tables, not their months (nor the foreign keys PostgreSQL gives each)."""
    if type_ == "table":
        return not _PARTITION.search(str(name))
    if type_ == "foreign_key_constraint":
        return not _PARTITION.search(obj.referred_table.name)
    return not _PARTITION.search(obj.table.name) if hasattr(obj, "table") else True


def _summary(diff: Any) -> tuple[object, ...]:
    if isinstance(diff, list):  # a column change: [(kind, schema, table, column, ...)]
        return (diff[0][0], diff[0][2], diff[0][3])
    kind, constraint = diff[0], diff[1]
    return (kind, constraint.table.name, tuple(c.name for c in constraint.columns))


def _on(dialect: str) -> Any:
    """Leave out the model's indexes made on another database only (``Index.ddl_if``), which
    autogenerate does not read."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        only = getattr(obj, "_ddl_if", None) if type_ == "index" and not reflected else None
        if only is not None and only.dialect not in (None, dialect):
            return False
        return _not_a_partition(obj, name, type_, reflected, compare_to)

    return include


def _diff(url: str) -> list[object]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            opts = {"compare_type": True, "include_object": _on(engine.dialect.name)}
            context = MigrationContext.configure(connection, opts=opts)
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
    assert [_summary(d) for d in _diff(url)] == PARTITIONED


def test_upgrade_is_idempotent(pg: PostgresServer) -> None:
    url = new_pg_database(pg)
    engine = create_db_engine(url)
    before = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == before
    engine.dispose()
