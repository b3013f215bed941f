"""partial index on pending deliveries' updated_at, for the reconcile's watermark

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

PENDING_PREDICATE = "status IN ('planned', 'queued', 'retrying')"


def upgrade() -> None:
    op.create_index(
        "ix_delivery_pending_updated",
        "delivery",
        ["updated_at"],
        postgresql_where=sa.text(PENDING_PREDICATE),
        sqlite_where=sa.text(PENDING_PREDICATE),
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_pending_updated", table_name="delivery")
