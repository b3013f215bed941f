"""PostgreSQL: the delivery table and its timeline, partitioned by month of the local date.

A delivery lives in the partition of its ``local_date``'s month, and its timeline entries
(``delivery_event``, which copies the date) in the same month of theirs, so a month past the
retention is dropped whole (two ``DROP TABLE``\\s) instead of deleted row by row. Rows that fit no
month (a planner catching up on months already dropped, an ad-hoc send far ahead) go to the
``*_default`` partitions, pruned row by row like SQLite's table.

The maintenance pass (:mod:`planner.commands.retention`) keeps the current month and the next
:data:`MONTHS_AHEAD` created, and drops a month once every day of it is past the retention and
none of its deliveries is still open. Every statement here takes its locks with a short
``lock_timeout``: a month busy now is handled by the next pass.

Nothing here runs on SQLite, or on a PostgreSQL database whose tables are not partitioned yet
(:func:`is_partitioned`; :mod:`planner.store.partition_copy` moves them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from planner.store import dead_letter_days
from planner.store.db import SessionFactory, transaction

log = structlog.get_logger("planner.partitions")
T = TypeVar("T")

#: The tables partitioned by month, the timeline after its deliveries (it references them).
PARTITIONED = ("delivery", "delivery_event")
#: Months created ahead of the current one.
MONTHS_AHEAD = 2
#: How long a maintenance statement waits for a lock before leaving the month to the next pass.
LOCK_TIMEOUT = "2s"
#: Statuses a delivery still moves on from: a month holding one is never dropped.
OPEN_STATUSES = ("planned", "queued", "retrying", "sending")
_OPEN_SQL = "status IN ({})".format(", ".join(f"'{s}'" for s in OPEN_STATUSES))
_MONTH_NAME = re.compile(r"^delivery_p(\d{4})_(\d{2})$")


def month_of(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month:%Y_%m}"


def is_partitioned(session: Session) -> bool:
    """Whether ``delivery`` is the partitioned table (always false on SQLite)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    kind = session.scalar(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('delivery')"))
    return bool(kind == "p")


def existing_months(session: Session) -> list[date]:
    """The months ``delivery`` has a partition for, oldest first (the default partition aside; none
    when the table is not partitioned)."""
    if not is_partitioned(session):
        return []
    names = session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass('delivery')"
        )
    )
    months = []
    for name in names:
        match = _MONTH_NAME.match(name)
        if match:
            months.append(date(int(match.group(1)), int(match.group(2)), 1))
    return sorted(months)


def wanted_months(today: date) -> list[date]:
    """The current month and the :data:`MONTHS_AHEAD` after it."""
    months = [month_of(today)]
    for _ in range(MONTHS_AHEAD):
        months.append(next_month(months[-1]))
    return months


def _bounds(month: date) -> str:
    return f"FOR VALUES FROM ('{month.isoformat()}') TO ('{next_month(month).isoformat()}')"


def create_month(session: Session, month: date) -> int:
    """Create the month's partitions of both tables, in the caller's transaction; returns how many
    rows moved out of the default partitions (ad-hoc sends planned that far ahead) into them.

    PostgreSQL refuses a new partition while the default one holds rows of its range, so those rows
    (and their timelines) are lifted out first and put back through the parent, which routes them
    to the new month: ids, states and job ids unchanged, in one transaction.
    """
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    in_month = f"local_date >= '{month.isoformat()}' AND local_date < '{next_month(month).isoformat()}'"
    strays = int(session.scalar(text(f"SELECT count(*) FROM delivery_default WHERE {in_month}")) or 0)
    if strays:
        for table in reversed(PARTITIONED):  # the timeline first: it references the deliveries
            session.execute(text(f"CREATE TEMPORARY TABLE moving_{table} (LIKE {table}) ON COMMIT DROP"))
            session.execute(
                text(
                    f"WITH gone AS (DELETE FROM {table}_default WHERE {in_month} RETURNING *)"
                    f" INSERT INTO moving_{table} SELECT * FROM gone"
                )
            )
    for table in PARTITIONED:
        session.execute(
            text(f"CREATE TABLE {partition_name(table, month)} PARTITION OF {table} {_bounds(month)}")
        )
    for table in PARTITIONED if strays else ():
        session.execute(text(f"INSERT INTO {table} SELECT * FROM moving_{table}"))
    return strays


@dataclass(frozen=True)
class DroppedMonth:
    month: date
    deliveries: int
    events: int
    adhoc_keys: int


def month_is_droppable(session: Session, month: date, before: datetime) -> bool:
    """Whether no delivery of the month is open and every one was due before ``before``."""
    name = partition_name("delivery", month)
    still_open = session.scalar(text(f"SELECT 1 FROM {name} WHERE {_OPEN_SQL} LIMIT 1"))
    if still_open is not None:
        return False
    latest = session.scalar(text(f"SELECT max(scheduled_at) FROM {name}"))
    return latest is None or latest < before


def drop_month(session: Session, month: date, before: datetime) -> DroppedMonth | None:
    """Drop the month's partitions of both tables, in the caller's transaction, when
    :func:`month_is_droppable` still holds under their locks (an operator may have redriven a dead
    delivery meanwhile); None when it does not. Its ad-hoc keys go with it."""
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    deliveries, events = (partition_name(table, month) for table in PARTITIONED)
    # The timeline first: it references the deliveries. Readers wait a moment, then find the month gone.
    session.execute(text(f"LOCK TABLE {deliveries}, {events} IN ACCESS EXCLUSIVE MODE"))
    if not month_is_droppable(session, month, before):
        return None
    counts = [int(session.scalar(text(f"SELECT count(*) FROM {name}")) or 0) for name in (deliveries, events)]
    keys = session.execute(
        text("DELETE FROM adhoc_key WHERE local_date >= :start AND local_date < :end"),
        {"start": month, "end": next_month(month)},
    )
    dead_letter_days.forget_partition(session, deliveries)  # a dropped table fires no trigger
    session.execute(text(f"DROP TABLE {events}"))
    session.execute(text(f"ALTER TABLE delivery DETACH PARTITION {deliveries}"))
    session.execute(text(f"DROP TABLE {deliveries}"))
    return DroppedMonth(month, counts[0], counts[1], int(keys.rowcount))  # type: ignore[attr-defined]


def one_step(factory: SessionFactory, step: Callable[[Session], T]) -> T | None:
    """One month's DDL (:func:`create_month`, :func:`drop_month`) in its own transaction, by one
    process at a time; None when another process holds the partitions' maintenance, or when a lock
    did not come within :data:`LOCK_TIMEOUT` (the next pass tries again)."""
    try:
        with transaction(factory) as session:
            if not session.scalar(text("SELECT pg_try_advisory_xact_lock(hashtext('planner:partitions'))")):
                return None
            return step(session)
    except DBAPIError as exc:
        log.warning("partition maintenance deferred to the next pass", error=str(exc.orig).splitlines()[0])
        return None


def default_partition_rows(session: Session) -> int:
    """Rows in the delivery table's default partition (the planner's estimate)."""
    value = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('delivery_default')"))
    return max(0, int(value or 0))
