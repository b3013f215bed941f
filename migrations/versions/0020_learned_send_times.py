"""learned send times: a subscription's window and default, a recipient's engagement by local time of day

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-09

``subscription.auto_until`` and ``auto_default`` hold a learned send time (the window is
``send_time`` to ``auto_until``; both None for a fixed time), checked whole and alone by
``ck_subscription_learned_time``. ``recipient.engagement_slots`` holds the recipient's engagement per
local half-hour slot (planner.core.engagement_slots), built here from the engagement already
recorded, each event in the local wall time of the recipient's zone, recipient by recipient.
Downgrade drops the three columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import planner.store.types

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_CHECK = (
    "(auto_until IS NULL AND auto_default IS NULL)"
    " OR (auto_until IS NOT NULL AND auto_default IS NOT NULL AND times IS NULL)"
)
#: Recipients whose history is read and written at a time.
_BATCH = 1000


def upgrade() -> None:
    # Columns are added in place, never by copying a table: recipient and subscription are referenced
    # by other tables, and SQLite (foreign keys on) refuses to drop a referenced table it copies.
    op.add_column("subscription", sa.Column("auto_until", sa.Time(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a constraint only with a column: the check rides on auto_default.
        op.execute(
            "ALTER TABLE subscription ADD COLUMN auto_default TIME"
            f" CONSTRAINT ck_subscription_learned_time CHECK ({_CHECK})"
        )
    else:
        op.add_column("subscription", sa.Column("auto_default", sa.Time(), nullable=True))
        op.create_check_constraint("ck_subscription_learned_time", "subscription", _CHECK)
    op.add_column("recipient", sa.Column("engagement_slots", sa.JSON(), nullable=True))
    _build_slots()


def _build_slots() -> None:
    from planner.core.engagement_slots import NO_ENGAGEMENT
    from planner.core.localtime import to_local

    bind = op.get_bind()
    events = sa.table(
        "engagement_event",
        sa.column("recipient_id", sa.Integer()),
        sa.column("occurred_at", planner.store.types.UTCDateTime()),
    )
    recipients = sa.table(
        "recipient",
        sa.column("id", sa.Integer()),
        sa.column("timezone", sa.String()),
        sa.column("engagement_slots", sa.JSON()),
    )
    engaged = [
        (rid, zone)
        for rid, zone in bind.execute(
            sa.select(recipients.c.id, recipients.c.timezone)
            .where(recipients.c.id.in_(sa.select(events.c.recipient_id).distinct()))
            .order_by(recipients.c.id)
        )
    ]
    for start in range(0, len(engaged), _BATCH):
        batch = dict(engaged[start : start + _BATCH])
        instants: dict[int, list[object]] = {rid: [] for rid in batch}
        for rid, at in bind.execute(
            sa.select(events.c.recipient_id, events.c.occurred_at).where(events.c.recipient_id.in_(list(batch)))
        ):
            instants[rid].append(at)
        rows = [
            {
                "rid": rid,
                "slots": NO_ENGAGEMENT.with_events(
                    (at, to_local(at, batch[rid]).time()) for at in found  # type: ignore[arg-type]
                ).to_json(),
            }
            for rid, found in instants.items()
        ]
        bind.execute(
            recipients.update()
            .where(recipients.c.id == sa.bindparam("rid"))
            .values(engagement_slots=sa.bindparam("slots", type_=sa.JSON())),
            rows,
        )


def downgrade() -> None:
    # In place too (SQLite 3.35+ drops a column); auto_default first, which takes its check along.
    op.drop_column("recipient", "engagement_slots")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("ck_subscription_learned_time", "subscription", type_="check")
    op.drop_column("subscription", "auto_default")
    op.drop_column("subscription", "auto_until")
