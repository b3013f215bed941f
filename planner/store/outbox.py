"""The outbox's one statement: deliveries whose RQ jobs Redis now holds go from planned to queued."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Integer, any_, bindparam, update
from sqlalchemy.orm import Session

from planner.core.status import DeliveryStatus
from planner.store.dialect import dialect_of
from planner.store.tables import DELIVERIES


def mark_queued(session: Session, delivery_ids: Sequence[int], now: datetime) -> int:
    """planned -> queued for these deliveries; how many changed.

    Addressed by primary key: the job id is not indexed, and this runs for every planner chunk.
    """
    if not delivery_ids:
        return 0
    c = DELIVERIES.c
    ids = list(delivery_ids)
    if dialect_of(session) == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        # One array parameter instead of a thousand: psycopg parses a short statement once.
        matches = c.id == any_(bindparam("ids", ids, type_=ARRAY(Integer)))
    else:
        matches = c.id.in_(ids)
    result = session.execute(
        update(DELIVERIES)
        .where(matches, c.status == DeliveryStatus.planned.value)
        .values(status=DeliveryStatus.queued.value, updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
