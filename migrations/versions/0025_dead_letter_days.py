"""dead letters counted per reason, error and day by triggers on the delivery table

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07

``dead_letter_day`` holds how many dead deliveries were scheduled on each UTC day, per reason and
error; triggers on ``delivery`` keep it in the transaction of every change
(:mod:`planner.store.dead_letter_days`). Filled here from the dead deliveries kept. A PostgreSQL
database still copying into its partitioned tables (``planner db partition``) gets the triggers on
the table in use; the swap moves them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from planner.store import dead_letter_days

    op.create_table(
        "dead_letter_day",
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("deaths", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("reason", "error", "day"),
    )
    dialect = op.get_bind().dialect.name
    op.execute(dead_letter_days.count_all_sql(dialect))
    for statement in dead_letter_days.trigger_ddl(dialect):
        op.execute(statement)


def downgrade() -> None:
    from planner.store import dead_letter_days

    dialect = op.get_bind().dialect.name
    for statement in dead_letter_days.drop_triggers_ddl(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS dead_letter_day_count()")
    op.drop_table("dead_letter_day")
