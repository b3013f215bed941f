"""a delivery's claim: the token of the worker batch that holds it ``sending``

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06

Every claim writes a new token into ``claim_id``; every outcome, lease extension and release the
worker then writes is conditional on it, so a worker whose lease ran out (and whose deliveries were
recovered and perhaps claimed again) can no longer change them. Existing rows have none: a row
claimed before the upgrade is recovered when its lease expires, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+ too): a batch's copy of the table could not drop
    # the old one while delivery_event rows reference it.
    op.execute("ALTER TABLE delivery DROP COLUMN claim_id")
