"""each learned send time's leading slot, kept with the engagement statistic

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07

``learned_leader`` holds, per subscription with a learned send time, the leading slot of its window
and the window's weight as of the recipient's last engagement (planner.core.learned_time.Leader),
written with the statistic when engagement is recorded; the planner reads it instead of the
statistic. Empty here: until a recipient's next engagement, the planner reads the statistic, as
before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner.store.types import UTCDateTime

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learned_leader",
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=True),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("window_weight", sa.Float(), nullable=False),
        sa.Column("window_events", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscription.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscription_id"),
    )


def downgrade() -> None:
    op.drop_table("learned_leader")
