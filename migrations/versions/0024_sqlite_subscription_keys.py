"""SQLite: a subscription's deliveries read from the dedup key's index, without their own index

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07

Every planned dedup key starts ``sub:<id>:<local date>``, so the unique index on the key already
holds a subscription's deliveries in date order: the backoff's last send and a schedule change's
cancellations read that range (``planner.store.subscription_keys``). Dropping
``ix_delivery_subscription_date`` spares each planned row one page write in an index whose keys
are scattered over the whole history kept. PostgreSQL keeps it (the key's order there follows the
database's collation). The downgrade builds it again.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

INDEX = "ix_delivery_subscription_date"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON delivery (subscription_id, local_date)")
