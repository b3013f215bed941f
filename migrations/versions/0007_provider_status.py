"""provider feedback: the provider's last status on each delivery, the provider callbacks already
applied (unique per provider event and signing token), and the indexes callbacks look up by

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import planner.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_status", sa.String(length=20), nullable=True))
        batch_op.create_index("ix_delivery_provider_message_id", ["provider_message_id"], unique=False)
    with op.batch_alter_table("recipient", schema=None) as batch_op:
        batch_op.create_index("ix_recipient_phone", ["phone"], unique=False)
    op.create_table(
        "provider_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("token", sa.String(length=255), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("received_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "event_id", name="uq_provider_event_id"),
        sa.UniqueConstraint("provider", "token", name="uq_provider_event_token"),
    )


def downgrade() -> None:
    op.drop_table("provider_event")
    with op.batch_alter_table("recipient", schema=None) as batch_op:
        batch_op.drop_index("ix_recipient_phone")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_provider_message_id")
        batch_op.drop_column("provider_status")
