"""What engagement backoff reads: when recipients last engaged, and when each subscription last sent.

The planner's chunks, ``explain`` and ``simulate`` read both through these functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from planner.core.status import BACKOFF_COUNTED_STATUSES
from planner.store.dialect import Dialect, one_of
from planner.store.tables import DELIVERIES, ENGAGEMENT

#: Statuses that count as "to be sent" for engagement backoff.
TO_BE_SENT = sorted(s.value for s in BACKOFF_COUNTED_STATUSES)


def engagement_instants(
    session: Session, dialect: Dialect, recipient_ids: Sequence[int], earliest: datetime, latest: datetime
) -> dict[int, list[datetime]]:
    """Per recipient, sorted engagement instants: the last one at or before ``earliest`` and every
    one after it up to ``latest`` (what backoff needs for occurrences in that range)."""
    table = ENGAGEMENT
    found: dict[int, list[datetime]] = defaultdict(list)
    before = session.execute(
        select(table.c.recipient_id, func.max(table.c.occurred_at))
        .where(one_of(table.c.recipient_id, recipient_ids, dialect), table.c.occurred_at <= earliest)
        .group_by(table.c.recipient_id)
    ).all()
    for recipient_id, occurred_at in before:
        found[recipient_id].append(occurred_at)
    during = session.execute(
        select(table.c.recipient_id, table.c.occurred_at).where(
            one_of(table.c.recipient_id, recipient_ids, dialect),
            table.c.occurred_at > earliest,
            table.c.occurred_at <= latest,
        )
    ).all()
    for recipient_id, occurred_at in during:
        found[recipient_id].append(occurred_at)
    for instants in found.values():
        instants.sort()
    return found


def last_sent_dates(
    session: Session, dialect: Dialect, subscription_ids: Sequence[int], before: date | None = None
) -> dict[int, date]:
    """Per subscription, the local date of its last to-be-sent delivery (before ``before`` if given)."""
    table = DELIVERIES
    stmt = (
        select(table.c.subscription_id, func.max(table.c.local_date))
        .where(one_of(table.c.subscription_id, subscription_ids, dialect), table.c.status.in_(TO_BE_SENT))
        .group_by(table.c.subscription_id)
    )
    if before is not None:
        stmt = stmt.where(table.c.local_date < before)
    return {sub_id: last for sub_id, last in session.execute(stmt).all() if last is not None}
