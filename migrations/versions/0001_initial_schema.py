"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import planner.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("created_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "value", name="uq_pause_scope_value"),
    )
    op.create_table(
        "planner_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("window_start", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("window_end", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("started_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id"),
    )
    with op.batch_alter_table("planner_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_planner_run_started_at"), ["started_at"], unique=False)

    op.create_table(
        "recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=16), nullable=True),
        sa.Column("email_quiet_start", sa.Time(), nullable=True),
        sa.Column("email_quiet_end", sa.Time(), nullable=True),
        sa.Column("sms_quiet_start", sa.Time(), nullable=True),
        sa.Column("sms_quiet_end", sa.Time(), nullable=True),
        sa.Column("email_opt_out", sa.Boolean(), nullable=False),
        sa.Column("sms_opt_out", sa.Boolean(), nullable=False),
        sa.Column("email_invalid", sa.String(length=500), nullable=True),
        sa.Column("sms_invalid", sa.String(length=500), nullable=True),
        sa.Column("created_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id"),
    )
    op.create_table(
        "engagement_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=True),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("occurred_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("created_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.create_index("ix_engagement_recipient_time", ["recipient_id", "occurred_at"], unique=False)

    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("send_time", sa.Time(), nullable=False),
        sa.Column("days", sa.String(length=40), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_at", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("next_local_date", sa.Date(), nullable=True),
        sa.Column("created_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recipient_id", "kind", "channel", name="uq_subscription_recipient_kind_channel"),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index("ix_subscription_due", ["active", "next_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_subscription_recipient_id"), ["recipient_id"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("occurrence_at", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("scheduled_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("job_id", sa.String(length=120), nullable=True),
        sa.Column("lease_until", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("sent_at", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["recipient.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscription.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_recipient_channel_scheduled",
            ["recipient_id", "channel", "scheduled_at"],
            unique=False,
        )
        batch_op.create_index("ix_delivery_status_scheduled", ["status", "scheduled_at"], unique=False)
        batch_op.create_index(
            "ix_delivery_subscription_date", ["subscription_id", "local_date"], unique=False
        )

    op.create_table(
        "delivery_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=True),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["delivery.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_event_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_event_delivery_id"))

    op.drop_table("delivery_event")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_subscription_date")
        batch_op.drop_index("ix_delivery_status_scheduled")
        batch_op.drop_index("ix_delivery_recipient_channel_scheduled")

    op.drop_table("delivery")
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_recipient_id"))
        batch_op.drop_index("ix_subscription_due")

    op.drop_table("subscription")
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.drop_index("ix_engagement_recipient_time")

    op.drop_table("engagement_event")
    op.drop_table("recipient")
    with op.batch_alter_table("planner_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_planner_run_started_at"))

    op.drop_table("planner_run")
    op.drop_table("pause")
