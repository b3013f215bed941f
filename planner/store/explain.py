"""What ``explain`` reads besides the planner's own inputs: the delivery of one occurrence, and the
ad-hoc deliveries of a local day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from planner.store.queries import delivery_dict, fallback_delivery, timeline
from planner.store.tables import DELIVERIES


def delivery_row(session: Session, dedup_key: str) -> Row[Any] | None:
    """The delivery of one occurrence, as a row of every column."""
    return session.execute(select(DELIVERIES).where(DELIVERIES.c.dedup_key == dedup_key)).first()


def shown_delivery(session: Session, row: Row[Any], recipient_external_id: str) -> dict[str, Any]:
    """A delivery row as the read side shows it, with its timeline."""
    shown = delivery_dict(row, recipient_external_id)
    shown["timeline"] = timeline(session, row.id, row)
    shown["fallback_delivery"] = fallback_delivery(shown["timeline"])
    return shown


def adhoc_between(
    session: Session, recipient_id: int, start: datetime, end: datetime, kind: str | None
) -> list[Row[Any]]:
    """The recipient's ad-hoc deliveries due in ``[start, end)`` (of ``kind`` when given)."""
    c = DELIVERIES.c
    stmt = (
        select(DELIVERIES)
        .where(
            c.recipient_id == recipient_id,
            c.subscription_id.is_(None),
            c.scheduled_at >= start,
            c.scheduled_at < end,
        )
        .order_by(c.scheduled_at, c.id)
    )
    if kind is not None:
        stmt = stmt.where(c.kind == kind)
    return list(session.execute(stmt))
