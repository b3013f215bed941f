"""provider callbacks' retention: an index on provider_event.received_at

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

Applied provider callbacks were kept for ever; the workers' maintenance pass now forgets those
older than PLANNER_PROVIDER_EVENT_RETENTION (7 days), and finds them by when they arrived.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_provider_event_received_at", "provider_event", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_provider_event_received_at", table_name="provider_event")
