"""channel fallback rules (subscriptions and ad-hoc deliveries) and the template locale of a delivery

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10

``subscription.fallback`` and ``delivery.fallback`` hold a fallback rule as JSON (``{"channel":
"sms", "on": [...], "within": "1d"}``; ad-hoc deliveries carry their own, planned deliveries read
their subscription's). A fallback delivery is linked to its first delivery by its dedup key
(``fallback:`` and the first one's) and by its first timeline entry. ``delivery.template_locale``
records the language of the templates a sent message was rendered from. Columns only: nothing to
backfill, no table rewritten on PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscription", sa.Column("fallback", sa.JSON(), nullable=True))
    op.add_column("delivery", sa.Column("fallback", sa.JSON(), nullable=True))
    op.add_column("delivery", sa.Column("template_locale", sa.String(length=35), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too): a batch's copy of the table could not drop
    # the old one while delivery_event rows reference it.
    op.execute("ALTER TABLE delivery DROP COLUMN template_locale")
    op.execute("ALTER TABLE delivery DROP COLUMN fallback")
    op.execute("ALTER TABLE subscription DROP COLUMN fallback")
