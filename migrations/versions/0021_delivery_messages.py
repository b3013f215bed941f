"""kept copies of sent messages: delivery_message

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

What a delivery's last attempt handed to its provider (subject, bodies, headers, a digest's
events), bounded by PLANNER_STORED_MESSAGE_MAX_BYTES and written with the worker's final outcome,
so `planner deliveries show`, the API and the dashboard can show it. The workers' maintenance pass
drops copies older than PLANNER_STORED_MESSAGE_RETENTION, found by ``kept_at``. Deliveries sent
before the upgrade have no copy.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import planner.store.types

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_message",
        sa.Column("delivery_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kept_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body_text", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=True),
        sa.Column("digest", sa.JSON(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("cut", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    with op.batch_alter_table("delivery_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_message_kept_at"), ["kept_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_message_kept_at"))
    op.drop_table("delivery_message")
