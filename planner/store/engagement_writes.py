"""Recording engagement (opens, clicks, replies) from imports, webhooks and operators.

(recipient, event, instant) is the natural key (a unique constraint): an event recorded twice, by
a repeated import or webhook, is stored once. Each new event is also counted, in the same
transaction, in its recipient's engagement statistic by local time of day
(:mod:`planner.core.engagement_slots`, the ``engagement_slots`` column), which learned send times
read: the recipients' rows are locked (PostgreSQL ``FOR NO KEY UPDATE``; SQLite's writers queue on its one
write lock), so two webhooks for one person never lose an event. A repeat adds nothing to it either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from planner.core.engagement_slots import EngagementSlots
from planner.core.localtime import to_local
from planner.store.dialect import dialect_of, one_of
from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import ENGAGEMENT, RECIPIENTS


def record_engagement(session: Session, row: dict[str, Any]) -> int:
    """Store one event; its id, or the id of the same event recorded before."""
    event_id = session.scalar(insert_ignoring_duplicates(session, ENGAGEMENT, [row]))
    if event_id is not None:
        count_in_slots(session, [(row["recipient_id"], row["occurred_at"])])
        return int(event_id)
    c = ENGAGEMENT.c
    found = session.scalar(
        select(c.id).where(
            c.recipient_id == row["recipient_id"],
            c.event == row["event"],
            c.occurred_at == row["occurred_at"],
        )
    )
    assert found is not None  # the insert conflicted with it
    return int(found)


def record_engagement_batch(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Store events in one statement; how many were new (the others were recorded before)."""
    if not rows:
        return 0
    c = ENGAGEMENT.c
    new = session.execute(
        insert_ignoring_duplicates(session, ENGAGEMENT, list(rows), c.recipient_id, c.occurred_at)
    ).all()
    count_in_slots(session, [(recipient_id, at) for _, recipient_id, at in new])
    return len(new)


def count_in_slots(session: Session, events: Iterable[tuple[int, datetime]]) -> None:
    """Add new events (recipient id, instant) to their recipients' statistic, each at its local
    wall time in the recipient's zone. Two statements, whatever the number of recipients."""
    by_recipient: dict[int, list[datetime]] = defaultdict(list)
    for recipient_id, at in events:
        by_recipient[recipient_id].append(at)
    if not by_recipient:
        return
    r = RECIPIENTS.c
    dialect = dialect_of(session)
    stmt = (
        select(r.id, r.timezone, r.engagement_slots)
        .where(one_of(r.id, sorted(by_recipient), dialect))
        .order_by(r.id)
    )
    if dialect == "postgresql":
        # FOR NO KEY UPDATE: the event's insert holds KEY SHARE on the row (its foreign key), which
        # this does not wait for, so two writers queue here instead of deadlocking.
        stmt = stmt.with_for_update(key_share=True)
    rows = [
        {
            "rid": recipient_id,
            "slots": EngagementSlots.from_json(current)
            .with_events((at, to_local(at, zone).time()) for at in by_recipient[recipient_id])
            .to_json(),
        }
        for recipient_id, zone, current in session.execute(stmt).all()
    ]
    if rows:
        session.connection().execute(
            update(RECIPIENTS).where(r.id == bindparam("rid")).values(engagement_slots=bindparam("slots")),
            rows,
        )
