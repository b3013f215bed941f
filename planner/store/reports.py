"""Aggregates over deliveries for operators: the dashboard's counts and the metrics' last-day
histograms (:mod:`planner.readmodels.dashboard`, :mod:`planner.readmodels.metrics`).
Each is a constant number of grouped queries, whatever the number of deliveries."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Integer, case, cast, func, select, text
from sqlalchemy.orm import Session

from planner.core.status import DeliveryStatus
from planner.store.dialect import dialect_of
from planner.store.models import OPEN_PREDICATE, OPEN_STATUSES
from planner.store.tables import DELIVERIES

#: Statuses counted together, over the deliveries scheduled since an instant (None: all of them).
CountWindow = tuple[Collection[str], datetime | None]


def delivery_counts(session: Session, windows: Sequence[CountWindow]) -> dict[str, int]:
    """Deliveries per status, each window's statuses over its deliveries (one query a window)."""
    counts: dict[str, int] = {}
    for statuses, since in windows:
        for status, n in session.execute(_counted((DELIVERIES.c.status,), statuses, since)):
            counts[str(status)] = int(n)
    return counts


def status_reason_counts(
    session: Session, windows: Sequence[CountWindow]
) -> list[tuple[str, str | None, int]]:
    """(status, reason, deliveries), each window's statuses over its deliveries (the metrics' gauge)."""
    key = (DELIVERIES.c.status, DELIVERIES.c.reason)
    return [
        (str(status), reason, int(n))
        for statuses, since in windows
        for status, reason, n in session.execute(_counted(key, statuses, since))
    ]


def _counted(key: tuple[Any, ...], statuses: Collection[str], since: datetime | None) -> Any:
    c = DELIVERIES.c
    stmt = select(*key, func.count()).where(c.status.in_(list(statuses))).group_by(*key)
    if all(status in OPEN_STATUSES for status in statuses):
        # The open-status index's own predicate, literal: SQLite uses a partial index only then (the
        # settled rows, nearly all of a year's history, are not in it).
        stmt = stmt.where(text(OPEN_PREDICATE))
    return stmt if since is None else stmt.where(c.scheduled_at >= since)


#: Sends (and ends) counted since an instant are found among the deliveries due from this long
#: before it (``ix_delivery_scheduled_id``), not among the whole history: a delivery sent more than
#: this late is left out of the last day's histograms (long before, readiness reports it stuck).
SENT_REACH = timedelta(days=2)


class LatenessCounts(NamedTuple):
    """One channel's deliveries sent in the window: how many, their total lateness in seconds,
    and how many were at most each bound late (cumulative, in the bounds' order)."""

    channel: str
    sent: int
    seconds: float
    at_most: list[int]


def lateness_counts(session: Session, since: datetime, bounds: Sequence[float]) -> list[LatenessCounts]:
    """Sent minus scheduled time of the deliveries sent since ``since``, counted per channel by the
    database (one bucket column per bound)."""
    c = DELIVERIES.c
    lateness = _epoch(session, c.sent_at) - _epoch(session, c.scheduled_at)
    columns = [func.sum(case((lateness <= bound, 1), else_=0)) for bound in bounds]
    rows = session.execute(
        select(c.channel, func.count(), func.sum(lateness), *columns)
        .where(
            c.status == DeliveryStatus.sent.value, c.sent_at >= since, c.scheduled_at >= since - SENT_REACH
        )
        .group_by(c.channel)
    )
    return [
        LatenessCounts(str(channel), int(total), float(seconds or 0.0), [int(n or 0) for n in cumulative])
        for channel, total, seconds, *cumulative in rows
    ]


def attempts_used(session: Session, since: datetime) -> list[tuple[str, int, int]]:
    """(channel, attempts, deliveries) of the deliveries that ended (sent or dead) since ``since``."""
    c = DELIVERIES.c
    rows = session.execute(
        select(c.channel, c.attempts, func.count())
        .where(
            c.status.in_([DeliveryStatus.sent.value, DeliveryStatus.dead.value]),
            c.updated_at >= since,
            c.scheduled_at >= since - SENT_REACH,
        )
        .group_by(c.channel, c.attempts)
    )
    return [(str(channel), int(attempts), int(count)) for channel, attempts, count in rows]


def provider_status_counts(session: Session, since: datetime) -> list[tuple[str, str, int]]:
    """(channel, provider status, deliveries) of the messages sent since ``since`` that a provider
    reported on, sorted."""
    c = DELIVERIES.c
    rows = session.execute(
        select(c.channel, c.provider_status, func.count())
        .where(c.provider_status.is_not(None), c.sent_at >= since, c.scheduled_at >= since - SENT_REACH)
        .group_by(c.channel, c.provider_status)
    )
    return sorted((str(channel), str(status), int(count)) for channel, status, count in rows)


def _epoch(session: Session, column: Any) -> Any:
    """Seconds since 1970 of an instant column, computed by the database."""
    if dialect_of(session) == "postgresql":
        return func.extract("epoch", column)
    # SQLite stores UTC instants as text; julianday reads them as days (2440587.5 is 1970-01-01).
    return (func.julianday(column) - 2440587.5) * 86400.0


class SentBucket(NamedTuple):
    """The deliveries of one channel sent in one time bucket, and how long after their due time."""

    bucket: int  # the number of the ``size``-second bucket from ``since``
    channel: str
    sent: int
    mean_seconds: float
    max_seconds: float


def sent_per_bucket(session: Session, since: datetime, until: datetime, size: int) -> list[SentBucket]:
    """Deliveries sent in ``[since, until)`` per ``size``-second bucket and channel, with the mean and
    longest time from due (``scheduled_at``) to sent; grouped by the database."""
    c = DELIVERIES.c
    offset = (_epoch(session, c.sent_at) - since.timestamp()) / size
    # Offsets are never negative here: a cast truncates (SQLite), PostgreSQL's would round.
    index = func.floor(offset) if dialect_of(session) == "postgresql" else cast(offset, Integer)
    latency = _epoch(session, c.sent_at) - _epoch(session, c.scheduled_at)
    rows = session.execute(
        select(index.label("bucket"), c.channel, func.count(), func.avg(latency), func.max(latency))
        .where(c.status == DeliveryStatus.sent.value, c.sent_at >= since, c.sent_at < until)
        .group_by(index, c.channel)
    )
    return [
        SentBucket(int(bucket), str(channel), int(n), float(mean or 0.0), float(longest or 0.0))
        for bucket, channel, n, mean, longest in rows
    ]


def due_by_queue(session: Session, now: datetime) -> dict[str, tuple[int, datetime]]:
    """Per queue: how many deliveries are due and waiting for a worker (pending, due before
    ``now``), and the due time of the oldest."""
    c = DELIVERIES.c
    waiting = [DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value]
    rows = session.execute(
        # The open-status index's own predicate, literal: SQLite uses a partial index only then.
        select(c.queue, func.count(), func.min(c.scheduled_at))
        .where(text(OPEN_PREDICATE), c.status.in_(waiting), c.scheduled_at < now)
        .group_by(c.queue)
    )
    return {str(queue): (int(n), oldest) for queue, n, oldest in rows}
