"""A recipient's opt-outs: the whole channel (a column per channel) or one kind on a channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from planner.store.tables import RECIPIENTS


def set_channel_opt_out(
    session: Session, recipient_id: int, channel: str, opted_out: bool, now: datetime
) -> bool:
    """Opt the recipient out of (or back into) a whole channel; whether anything changed."""
    column = RECIPIENTS.c[f"{channel}_opt_out"]
    changed = session.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id, column.is_not(opted_out))
        .values({column: opted_out, RECIPIENTS.c.updated_at: now})
    )
    return bool(changed.rowcount)  # type: ignore[attr-defined]


def set_kind_opt_out(
    session: Session, recipient_id: int, kind: str, channel: str, opted_out: bool, now: datetime
) -> bool:
    """Opt the recipient out of (or back into) one kind on a channel; whether anything changed.

    The row is locked first: two unsubscribes at once must both land in the list.
    """
    current = session.scalar(
        select(RECIPIENTS.c.opt_outs).where(RECIPIENTS.c.id == recipient_id).with_for_update()
    )
    items = set(current or ())
    item = f"{kind}/{channel}"
    wanted = items | {item} if opted_out else items - {item}
    if wanted == items:
        return False
    session.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id)
        .values(opt_outs=sorted(wanted) or None, updated_at=now)
    )
    return True
