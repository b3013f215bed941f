"""Recording engagement (opens, clicks, replies) from imports, webhooks and operators.

(recipient, event, instant) is the natural key (a unique constraint): an event recorded twice, by
a repeated import or webhook, is stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import ENGAGEMENT


def record_engagement(session: Session, row: dict[str, Any]) -> int:
    """Store one event; its id, or the id of the same event recorded before."""
    event_id = session.scalar(insert_ignoring_duplicates(session, ENGAGEMENT, [row]))
    if event_id is None:
        c = ENGAGEMENT.c
        event_id = session.scalar(
            select(c.id).where(
                c.recipient_id == row["recipient_id"],
                c.event == row["event"],
                c.occurred_at == row["occurred_at"],
            )
        )
    return int(event_id)


def record_engagement_batch(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Store events in one statement; how many were new (the others were recorded before)."""
    if not rows:
        return 0
    return len(session.execute(insert_ignoring_duplicates(session, ENGAGEMENT, list(rows))).all())
