"""index diet: drop ix_subscription_recipient_id, which the unique (recipient_id, kind, channel) serves

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Every query that finds subscriptions by recipient (the importer's 1,000 recipients at a time, one
recipient's subscriptions in the API, explain, simulate and the dashboard, the erasure, the foreign
key's check when a recipient is deleted) is served by ``uq_subscription_recipient_kind_channel``,
which leads with ``recipient_id`` (``EXPLAIN`` on 1,000,000 subscriptions, ``docs/benchmarks.md``,
"Issue 15, fourth pass"). The planner's cursor update moves ``next_at``, which ``ix_subscription_due``
indexes, so on PostgreSQL no cursor update is HOT and each writes a new entry into every index of
the table: this one was written 100,000 times per 100,000 due and read by no query.
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_subscription_recipient_id", table_name="subscription")


def downgrade() -> None:
    op.create_index("ix_subscription_recipient_id", "subscription", ["recipient_id"], unique=False)
