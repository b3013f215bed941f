"""each recipient's engagement statistic names its half hours by number

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07

``recipient.engagement_slots`` (planner.core.engagement_slots) wrote each half-hour slot as 'HH:MM'
("19:30"); it now writes the slot's number (39), which a planner run reads without converting. The
statistic is rewritten here in batches of recipients; the downgrade writes 'HH:MM' again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_BATCH = 1000
_RECIPIENTS = sa.table("recipient", sa.column("id", sa.Integer()), sa.column("engagement_slots", sa.JSON()))


def upgrade() -> None:
    from planner.core.engagement_slots import numbered

    _rewrite(lambda cells: numbered(cells) if cells and isinstance(cells[0], str) else cells)


def downgrade() -> None:
    from planner.core.engagement_slots import slot_text

    def texts(cells: list[Any]) -> list[Any]:
        return [slot_text(v) if i % 3 == 0 and isinstance(v, int) else v for i, v in enumerate(cells)]

    _rewrite(texts)


def _rewrite(convert: Callable[[list[Any]], list[Any]]) -> None:
    """Every recipient's statistic with its slots converted, ``_BATCH`` recipients a statement."""
    bind = op.get_bind()
    r = _RECIPIENTS.c
    after = 0
    while True:
        rows = bind.execute(
            sa.select(r.id, r.engagement_slots)
            .where(r.id > after, r.engagement_slots.is_not(None))
            .order_by(r.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1][0]
        changed = [
            {"rid": rid, "slots": {**stored, "slots": convert(stored["slots"])}}
            for rid, stored in rows
            if stored is not None  # a JSON null stored by an erasure
        ]
        if changed:
            stmt = _RECIPIENTS.update().where(r.id == sa.bindparam("rid"))
            bind.execute(stmt.values(engagement_slots=sa.bindparam("slots")), changed)
