"""delivery: an index on (scheduled_at, id) for the dashboard's latest-first lists

The deliveries page lists the latest deliveries first, filtered by kind or channel or not at all;
the existing indexes all lead with another column (status, recipient, subscription), so without
this one every such page sorted the whole table (seconds at a million rows).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_scheduled_id", ["scheduled_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_scheduled_id")
