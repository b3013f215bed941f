"""dashboard sessions kept in the database: revocable, shared by every ``planner serve`` process

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08

The dashboard's cookie now names a row of ``dashboard_session`` (by the SHA-256 of a random id);
each request checks the row and the API token it was opened with. Sessions signed in before the
upgrade carried everything in the cookie: they are not rows, so their holders sign in again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import planner.store.types

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=100), nullable=False),
        sa.Column("created_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", planner.store.types.UTCDateTime(), nullable=False),
        sa.Column("ended_at", planner.store.types.UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_hash"),
    )
    with op.batch_alter_table("dashboard_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_session_token_hash"), ["token_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_dashboard_session_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_session_expires_at"))
        batch_op.drop_index(batch_op.f("ix_dashboard_session_token_hash"))
    op.drop_table("dashboard_session")
