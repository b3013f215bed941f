"""stored recurrence rules checked by the strict RRULE grammar

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

The rules are now parsed by one strict grammar (planner.core.rrule_grammar). A rule saved before that
may be refused by it: an UNTIL that was silently dropped (``UNTIL=garbage``, an offset), a non-ASCII
digit, an ordinal out of range or with DAILY/WEEKLY, a rule that never occurs. Each saved rule is
parsed once here: one that is accepted is stored in its normal form (an UNTIL date-time becomes the
date it names); one that is refused ends its subscription (``active`` false, no cursor), as a
re-import without it would, and is named in the migration's log with the reason, so that nothing
the planner claims can fail to parse. Downgrade: the normal forms stay (they mean what they meant).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    from planner.core.recurrence import RecurrenceRule
    from planner.errors import InvalidInput

    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, rrule, start_date FROM subscription WHERE rrule IS NOT NULL")
    ).fetchall()
    for sub_id, rrule, start_date in rows:
        start = start_date if start_date is None or not isinstance(start_date, str) else _date(start_date)
        try:
            normal = RecurrenceRule.parse(rrule, start).text
        except InvalidInput as exc:
            log.warning("subscription %s ended: its rule %r is refused (%s)", sub_id, rrule, exc)
            bind.execute(
                sa.text(
                    "UPDATE subscription SET active = :no, next_at = NULL, next_local_date = NULL, "
                    "next_wall_time = NULL WHERE id = :id"
                ),
                {"no": False, "id": sub_id},
            )
            continue
        if normal != rrule:
            bind.execute(
                sa.text("UPDATE subscription SET rrule = :r WHERE id = :id"), {"r": normal, "id": sub_id}
            )


def _date(text: str):  # type: ignore[no-untyped-def]
    from datetime import date

    return date.fromisoformat(text)


def downgrade() -> None:
    pass
