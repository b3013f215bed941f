"""schedules people write: several wall times a day, recurrence rules, start and end dates, snooze,
and a cursor that advances by (local date, wall time)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every column is nullable with no default: existing subscriptions keep their meaning (one wall
    # time on weekdays, no limits, not snoozed) and their dedup keys ('sub:<id>:<date>').
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("times", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("rrule", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("start_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("end_date", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("snooze_until", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("next_wall_time", sa.Time(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        for name in ("next_wall_time", "snooze_until", "end_date", "start_date", "rrule", "times"):
            batch_op.drop_column(name)
