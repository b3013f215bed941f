"""a recipient's deliveries by (recipient_id, scheduled_at, id) instead of (recipient_id, channel, scheduled_at)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

The same number of indexes on ``delivery``: the cap counts still read one recipient's window (their
channel is filtered on the range, a recipient has a few channels), and a recipient's list, latest
first, now reads its page from the index instead of sorting every delivery of the recipient kept.

PostgreSQL: made on the (partitioned or single) ``delivery`` table; while ``planner db partition``
is copying, on the new table too, under the name its swap expects. On a large table the index build
holds a lock that blocks writes to ``delivery`` while it runs (minutes per 100 million rows): run
the upgrade in a quiet hour, or build it beforehand with ``CREATE INDEX CONCURRENTLY`` per partition.
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

NEW, OLD = "ix_delivery_recipient_scheduled", "ix_delivery_recipient_channel_scheduled"
NEW_COLUMNS, OLD_COLUMNS = "(recipient_id, scheduled_at, id)", "(recipient_id, channel, scheduled_at)"


def upgrade() -> None:
    _swap_index(make=(NEW, NEW_COLUMNS), drop=OLD)


def downgrade() -> None:
    _swap_index(make=(OLD, OLD_COLUMNS), drop=NEW)


def _swap_index(make: tuple[str, str], drop: str) -> None:
    # IF [NOT] EXISTS: migration 0022 builds a partitioned table with the model's indexes of the day.
    name, columns = make
    op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON delivery {columns}")
    op.execute(f"DROP INDEX IF EXISTS {drop}")
    bind = op.get_bind()
    copying = bind.dialect.name == "postgresql" and bind.exec_driver_sql(
        "SELECT to_regclass('delivery_partitioned') IS NOT NULL"
    ).scalar()
    if copying:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name}_new ON delivery_partitioned {columns}")
        op.execute(f"DROP INDEX IF EXISTS {drop}_new")
