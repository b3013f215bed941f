"""Upgrading an empty database yields exactly the SQLModel metadata, on SQLite and PostgreSQL (where
the delivery table and its timeline are partitioned by month, which the models do not describe)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect

from planner.store.db import Session, create_db_engine, current_revision, upgrade
from planner.store.models import metadata
from planner.store.tables import DELIVERIES, RECIPIENTS
from tests.conftest import new_pg_database
from tests.servers import PostgresServer
from tests.store.test_dead_letter_days import kept, recounted

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


def _dead_deliveries_kept_then_upgraded(url: str) -> None:
    """At 0024, three dead deliveries and a sent one; then 0025 fills the counts from them."""
    day = datetime(2026, 7, 10, 9, tzinfo=UTC)
    engine = create_db_engine(url)
    try:
        upgrade(engine, "0024")
        with engine.begin() as connection:
            recipient_id = connection.scalar(
                insert(RECIPIENTS).values(external_id="u-1", timezone="UTC", created_at=day, updated_at=day)
                .returning(RECIPIENTS.c.id)
            )  # fmt: skip
            failed = "permanent_failure"
            kept_rows = [(day, "dead", failed), (day + timedelta(hours=3), "dead", failed),
                         (day + timedelta(days=1), "dead", None), (day, "sent", None)]  # fmt: skip
            connection.execute(insert(DELIVERIES), [
                {"dedup_key": f"order-{n}", "recipient_id": recipient_id, "kind": "reminder",
                 "channel": "email", "queue": "default", "local_date": at.date(), "scheduled_at": at,
                 "status": status, "reason": reason, "last_error": "550 mailbox full" if reason else None,
                 "attempts": 1, "created_at": at, "updated_at": at}
                for n, (at, status, reason) in enumerate(kept_rows)
            ])  # fmt: skip
        upgrade(engine)
        with Session(engine) as session:
            assert kept(session) == recounted(session) == {
                ("permanent_failure", "550 mailbox full", day.date()): 2,
                ("", "", day.date() + timedelta(days=1)): 1,
            }
    finally:
        engine.dispose()


def test_sqlite_upgrade_counts_the_dead_deliveries_kept(tmp_path: Path) -> None:
    _dead_deliveries_kept_then_upgraded(f"sqlite:///{tmp_path / 'kept.db'}")


def test_postgres_upgrade_counts_the_dead_deliveries_kept(pg: PostgresServer) -> None:
    pg.create_database("dead_letters_kept")
    _dead_deliveries_kept_then_upgraded(pg.url("dead_letters_kept"))
