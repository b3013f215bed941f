"""retention: timeline entries carry their delivery's local date, ad-hoc keys held in their own table,
the maintenance passes' counters; on PostgreSQL the delivery table and its timeline partitioned by month

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-09

Both databases: ``delivery_event.local_date`` (empty on older entries), ``adhoc_key`` (filled from
the ad-hoc deliveries), ``maintenance_state``; the foreign keys from ``digest_event`` and
``provider_event`` to ``delivery`` go (a partitioned delivery is known by its id and local date,
and the retention prunes deliveries those rows still name).

PostgreSQL: the partitioned tables are made beside the old ones with a trigger copying every change
(:mod:`planner.store.partition_copy`, step 1). Up to ``MOVED_AT_ONCE`` deliveries are moved
right here, in this migration's transaction; a larger table is left to ``planner db partition``,
which copies it in batches while the service runs, then swaps the tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

import planner.store.types

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_FK_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def upgrade() -> None:
    with op.batch_alter_table("delivery_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_date", sa.Date(), nullable=True))
    op.create_table(
        "adhoc_key",
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("dedup_key"),
    )
    op.create_index(op.f("ix_adhoc_key_local_date"), "adhoc_key", ["local_date"], unique=False)
    op.create_table(
        "maintenance_state",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("last_at", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("digest_event_delivery_id_fkey", "digest_event", type_="foreignkey")
        op.drop_constraint("provider_event_delivery_id_fkey", "provider_event", type_="foreignkey")
        _partition()
        return
    for table in ("digest_event", "provider_event"):
        with op.batch_alter_table(table, naming_convention=_FK_NAMES, recreate="always") as batch_op:
            batch_op.drop_constraint(f"fk_{table}_delivery_id_delivery", type_="foreignkey")
    op.execute(
        "INSERT OR IGNORE INTO adhoc_key (dedup_key, local_date) SELECT dedup_key,"
        " COALESCE(local_date, date(occurrence_at), date(scheduled_at)) FROM delivery"
        " WHERE subscription_id IS NULL"
    )


def _partition() -> None:
    from planner.clock import utcnow
    from planner.store import partition_copy

    session = Session(bind=op.get_bind())
    partition_copy.prepare(session, utcnow().date())
    at_once = partition_copy.MOVED_AT_ONCE
    bounded = f"SELECT count(*) FROM (SELECT 1 FROM delivery LIMIT {at_once + 1}) AS counted"
    if (session.scalar(sa.text(bounded)) or 0) > at_once:
        return  # `planner db partition` copies it in batches (docs: the benchmarks' history notes)
    positions = {"delivery": 0, "delivery_event": 0}
    while (last := partition_copy.copy_batch(session, "delivery", positions["delivery"], 50_000)) is not None:
        positions["delivery"] = last
    partition_copy.start_event_copy(session)
    partition_copy.swap(session, positions)
    partition_copy.drop_unpartitioned(session)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        from planner.store import partition_copy

        partition_copy.unpartition(Session(bind=bind))
        op.create_foreign_key(None, "digest_event", "delivery", ["delivery_id"], ["id"])
        op.create_foreign_key(None, "provider_event", "delivery", ["delivery_id"], ["id"])
    else:
        for table in ("digest_event", "provider_event"):
            with op.batch_alter_table(table, recreate="always") as batch_op:
                batch_op.create_foreign_key(
                    f"fk_{table}_delivery_id_delivery", "delivery", ["delivery_id"], ["id"]
                )
    op.drop_table("maintenance_state")
    op.drop_index(op.f("ix_adhoc_key_local_date"), table_name="adhoc_key")
    op.drop_table("adhoc_key")
    op.execute("ALTER TABLE delivery_event DROP COLUMN local_date")
