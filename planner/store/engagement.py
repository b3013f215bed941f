"""What engagement backoff reads: when recipients last engaged, and when each subscription last sent.

The planner's chunks, ``explain`` and ``simulate`` read both through these functions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from planner.core.status import BACKOFF_COUNTED_STATUSES
from planner.store.dialect import Dialect, id_rows, one_of
from planner.store.subscription_keys import key_range
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
    # Each recipient's last one: one step down its index, however long its history.
    ids = id_rows(recipient_ids, dialect)
    last = (
        select(func.max(table.c.occurred_at))
        .where(table.c.recipient_id == ids.c.id, table.c.occurred_at <= earliest)
        .scalar_subquery()
    )
    for recipient_id, occurred_at in session.execute(select(ids.c.id, last)).all():
        if occurred_at is not None:
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
    session: Session,
    dialect: Dialect,
    subscription_ids: Sequence[int],
    before: date | None = None,
    recent_from: date | None = None,
    older: Collection[int] | None = None,
) -> dict[int, date]:
    """Per subscription, the local date of its last to-be-sent delivery (before ``before`` if given).

    Each subscription's is found by walking its deliveries latest first (``ix_delivery_subscription_date``;
    on SQLite its range of the dedup key, :mod:`planner.store.subscription_keys`) to the first
    to-be-sent one: a few rows (backoff skips at most its longest interval in a row), not its whole
    history. Given ``recent_from``, the walk first looks from that date on only (on
    PostgreSQL: the months of delivery partitions from that date, not every month kept, for each
    subscription); those with none there, among ``older`` (the ones that may have sent before
    ``recent_from``; None: every one), are then looked up over everything kept. The answer is the
    same: a latest date found from ``recent_from`` on is the latest of all.
    """
    found: dict[int, date] = {}
    if recent_from is not None:
        found = _last_sent(session, dialect, subscription_ids, before, recent_from)
    rest = [i for i in subscription_ids if i not in found and (older is None or i in older)]
    if rest:
        found.update(_last_sent(session, dialect, rest, before, None))
    return found


def _last_sent(
    session: Session, dialect: Dialect, subscriptions: Sequence[int], before: date | None, since: date | None
) -> dict[int, date]:
    table = DELIVERIES
    ids = id_rows(subscriptions, dialect)
    latest = select(table.c.local_date).where(
        table.c.subscription_id == ids.c.id, table.c.status.in_(TO_BE_SENT)
    )
    if before is not None:
        latest = latest.where(table.c.local_date < before)
    if since is not None:
        latest = latest.where(table.c.local_date >= since)
    order = table.c.local_date.desc()
    if dialect == "sqlite":  # the subscription's range of the dedup key, latest date first
        latest = latest.where(*key_range(ids.c.id, since, before))
        order = table.c.dedup_key.desc()
    last = latest.order_by(order).limit(1).scalar_subquery()
    return {
        int(sub_id): value
        for sub_id, value in session.execute(select(ids.c.id, last)).all()
        if value is not None
    }
