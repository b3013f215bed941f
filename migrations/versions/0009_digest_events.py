"""digests: events waiting for a recipient's next digest, the digest flag on subscriptions, and the
counts of events dropped past the retention

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from planner.store.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        # Existing subscriptions stay ordinary ones.
        batch_op.add_column(sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "digest_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["recipient_id"], ["recipient.id"]),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipient_id", "kind", "idempotency_key", name="uq_digest_event_key"),
    )
    with op.batch_alter_table("digest_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_digest_event_recipient_kind", ["recipient_id", "kind", "delivery_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_digest_event_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_digest_event_received_at"), ["received_at"], unique=False)
    op.create_table(
        "digest_drop",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("unsent", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("digest_drop")
    with op.batch_alter_table("digest_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_digest_event_received_at"))
        batch_op.drop_index(batch_op.f("ix_digest_event_delivery_id"))
        batch_op.drop_index("ix_digest_event_recipient_kind")
    op.drop_table("digest_event")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("digest")
