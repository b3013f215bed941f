"""Frequency caps in the database: the deliveries counted against a cap, and the lock that makes the
count exact when several processes plan the same recipient and channel at once.

The planner's chunks, ad-hoc notify and ``explain`` count through :func:`counted_instants`; the
writers among them take :func:`lock_caps` first, in the transaction that inserts their deliveries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlalchemy import not_, or_, select, text
from sqlalchemy.orm import Session

from planner.core.status import CAP_COUNTED_STATUSES, Channel
from planner.store.dialect import Dialect, one_of
from planner.store.tables import DELIVERIES

_CAP_COUNTED = sorted(s.value for s in CAP_COUNTED_STATUSES)


def cap_lock_key(recipient_id: int, channel: str) -> str:
    """The advisory lock of one recipient's cap on one channel."""
    return f"cap:{recipient_id}:{channel}"


def lock_caps(session: Session, dialect: Dialect, pairs: Iterable[tuple[int, str]]) -> None:
    """Serialise the writers of deliveries on these (recipient, channel) pairs until the commit.

    Caps are counted in the database; without this, two processes deciding sends of one recipient
    could both see room for the last slot. PostgreSQL: transaction-scoped advisory locks, taken in
    key order (no deadlock between two chunks). SQLite: the database's one writer already serialises.
    """
    if dialect != "postgresql":
        return
    keys = sorted(cap_lock_key(r, c) for r, c in pairs)
    if not keys:
        return
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
            "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
        ),
        {"keys": keys},
    )


def counted_instants(
    session: Session,
    dialect: Dialect,
    recipient_ids: Sequence[int],
    after: datetime,
    before: datetime,
    *,
    channel: str | None = None,
    replayed: tuple[Sequence[int], date] | None = None,
) -> dict[tuple[int, str], list[datetime]]:
    """Per (recipient, channel), the sorted instants of deliveries counted against a cap that are due
    strictly between ``after`` and ``before``.

    ``replayed`` (subscription ids and a local date) leaves out those subscriptions' own deliveries
    from that date on: a reader replaying their occurrences (``explain``, ``simulate``) decides them
    again, as the planner did before they existed.
    """
    table = DELIVERIES
    # The (recipient_id, scheduled_at, id) index reads each recipient's window; the channel is
    # filtered on it (a recipient has a few channels).
    channels = [channel] if channel is not None else [c.value for c in Channel]
    stmt = select(table.c.recipient_id, table.c.channel, table.c.scheduled_at).where(
        one_of(table.c.recipient_id, recipient_ids, dialect),
        table.c.channel.in_(channels),
        table.c.status.in_(_CAP_COUNTED),
        table.c.scheduled_at > after,
        table.c.scheduled_at < before,
    )
    if replayed is not None:
        subscription_ids, from_date = replayed
        stmt = stmt.where(
            or_(
                table.c.subscription_id.is_(None),
                not_(one_of(table.c.subscription_id, subscription_ids, dialect)),
                table.c.local_date < from_date,
            )
        )
    counted: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for recipient_id, row_channel, scheduled_at in session.execute(stmt).all():
        counted[(recipient_id, row_channel)].append(scheduled_at)
    for instants in counted.values():
        instants.sort()
    return counted
