"""implied timeline entries: a delivery's first entry ("planned") and the worker's plain "sent"
are read from the delivery row instead of stored as delivery_event rows

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

The delivery row gets the first entry's status, reason and detail (``planned_status``,
``planned_reason``, ``planned_detail``; its instant is ``created_at``). The "sent" entry's instant,
attempt and provider message id were already on the row (``sent_at``, ``attempts``,
``provider_message_id``; a sent delivery never changes again). ``planner.store.queries.timeline``
merges both back into the stored rows.

Existing rows are marked, not backfilled: their ``planned_status`` stays NULL, which tells the reader
that the first entry is the stored "planned" row (as before); a stored "sent" row likewise means
no "sent" entry is implied. So nothing is rewritten (a backfill would rewrite every delivery and
delete most timeline rows in one transaction), no entry shows twice, and a delivery planned before
the upgrade and sent after it shows its stored "planned" row and an implied "sent" one.

The downgrade stores the implied entries as rows again before dropping the columns; an older reader
orders by row id, so in its timelines those entries come after the ones stored since the upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_status", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("planned_reason", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("planned_detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    build = "json_build_object" if op.get_bind().dialect.name == "postgresql" else "json_object"
    op.execute(
        "INSERT INTO delivery_event (delivery_id, at, event, status, reason, detail)"
        " SELECT id, created_at, 'planned', planned_status, planned_reason, planned_detail"
        " FROM delivery WHERE planned_status IS NOT NULL ORDER BY id"
    )
    op.execute(
        "INSERT INTO delivery_event (delivery_id, at, event, status, reason, detail)"
        f" SELECT d.id, d.sent_at, 'sent', 'sent', NULL,"
        f" {build}('provider_message_id', d.provider_message_id, 'attempt', d.attempts)"
        " FROM delivery AS d WHERE d.status = 'sent' AND d.sent_at IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM delivery_event AS e WHERE e.delivery_id = d.id AND e.event = 'sent')"
        " ORDER BY d.id"
    )
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too): a batch's copy of the table could not drop
    # the old one while delivery_event rows reference it.
    for column in ("planned_detail", "planned_reason", "planned_status"):
        op.execute(f"ALTER TABLE delivery DROP COLUMN {column}")
