"""engagement events keyed by (recipient, event, instant)

Importing the same file twice, or a provider repeating a webhook, recorded an event twice.
Existing duplicates are removed (the first recorded is kept), then a unique constraint holds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "DELETE FROM engagement_event WHERE id NOT IN ("
        " SELECT MIN(id) FROM engagement_event GROUP BY recipient_id, event, occurred_at)"
    )
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_engagement_recipient_event_at", ["recipient_id", "event", "occurred_at"]
        )


def downgrade() -> None:
    with op.batch_alter_table("engagement_event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_engagement_recipient_event_at", type_="unique")
