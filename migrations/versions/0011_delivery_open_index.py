"""index diet: a partial index on open deliveries' (status, scheduled_at) instead of every row's

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

``ix_delivery_status_scheduled`` indexed every delivery, so every planner insert of a skipped or
suppressed delivery and every worker update to ``sent`` wrote an entry that no query reads: the
queries that filter on status look for open rows (pending, sending, dead; see
``planner.store.models.Delivery``), and the settled ones are found by ``scheduled_at``
(``ix_delivery_scheduled_id``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

OPEN_PREDICATE = "status IN ('planned', 'queued', 'retrying', 'sending', 'dead')"


def upgrade() -> None:
    op.create_index(
        "ix_delivery_open_scheduled",
        "delivery",
        ["status", "scheduled_at"],
        postgresql_where=sa.text(OPEN_PREDICATE),
        sqlite_where=sa.text(OPEN_PREDICATE),
    )
    op.drop_index("ix_delivery_status_scheduled", table_name="delivery")


def downgrade() -> None:
    op.create_index("ix_delivery_status_scheduled", "delivery", ["status", "scheduled_at"])
    op.drop_index("ix_delivery_open_scheduled", table_name="delivery")
