"""The retention's deletes: one bounded batch per call, in the caller's (short) transaction.

Each function removes at most ``limit`` rows of one kind of record, oldest first, through an index,
and returns how many it removed; :mod:`planner.commands.retention` commits each batch on its own
and calls again until a batch comes back short. Deliveries go with everything that names them:
their timeline entries, their ad-hoc key, and the digest events bound to them (deleted when the
digest was sent, counted as dropped; unbound otherwise, so the next digest takes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from planner.core.status import FINAL_STATUSES, DeliveryStatus
from planner.store import dead_letter_days
from planner.store.dialect import dialect_of, one_of
from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import (
    ADHOC_KEYS,
    AUDIT,
    DELIVERIES,
    DELIVERY_EVENTS,
    DIGEST_DROPS,
    DIGEST_EVENTS,
    ENGAGEMENT,
    IDEMPOTENCY,
    MAINTENANCE_STATE,
    RUNS,
)

#: Statuses a delivery never leaves on its own: only those are pruned.
FINAL = sorted(s.value for s in FINAL_STATUSES)
#: The retention pass's own row in ``maintenance_state``: when it last ran, and how many times.
PASS = "retention_pass"
#: SQLite's ``auto_vacuum`` mode that gives free pages back on ``PRAGMA incremental_vacuum``.
INCREMENTAL = 2
#: The append-only tables pruned by age, each by its indexed instant.
_APPEND_ONLY: dict[str, tuple[Table, Any]] = {
    "audit": (AUDIT, AUDIT.c.at),
    "idempotency_keys": (IDEMPOTENCY, IDEMPOTENCY.c.created_at),
    "runs": (RUNS, RUNS.c.started_at),
}


@dataclass
class PrunedDeliveries:
    deliveries: int = 0
    events: int = 0
    adhoc_keys: int = 0
    digest_events: int = 0

    def as_counts(self) -> dict[str, int]:
        return {
            "deliveries": self.deliveries,
            "delivery_events": self.events,
            "adhoc_keys": self.adhoc_keys,
            "digest_events": self.digest_events,
        }


def _removed(result: Any) -> int:
    return int(result.rowcount)


def prune_deliveries(
    session: Session, before: datetime, limit: int, now: datetime, *, dated_before: date | None = None
) -> PrunedDeliveries:
    """Remove up to ``limit`` final deliveries due before ``before``, oldest first
    (``ix_delivery_scheduled_id``), with what names them. ``dated_before`` keeps the batch to local
    dates before it: on a partitioned table, the months that could not be dropped whole (and the
    default partition); the others wait to go whole."""
    c = DELIVERIES.c
    dialect = dialect_of(session)
    stmt = select(c.id, c.dedup_key, c.subscription_id).where(c.scheduled_at < before, c.status.in_(FINAL))
    if dated_before is not None:
        stmt = stmt.where(c.local_date < dated_before)
    stmt = stmt.order_by(c.scheduled_at).limit(limit)
    if dialect == "postgresql":
        # Two workers' passes split the work; a delivery an operator is redriving is left alone.
        stmt = stmt.with_for_update(skip_locked=True)
    rows = session.execute(stmt).all()
    if not rows:
        return PrunedDeliveries()
    ids = [row.id for row in rows]
    pruned = PrunedDeliveries(digest_events=release_digest_events(session, ids, now))
    events = delete(DELIVERY_EVENTS).where(one_of(DELIVERY_EVENTS.c.delivery_id, ids, dialect))
    if dated_before is not None:  # the months the deliveries are in: the others' partitions are not read
        events = events.where(DELIVERY_EVENTS.c.local_date < dated_before)
    pruned.events = _removed(session.execute(events))
    adhoc = [row.dedup_key for row in rows if row.subscription_id is None]
    if adhoc:
        pruned.adhoc_keys = _removed(
            session.execute(delete(ADHOC_KEYS).where(ADHOC_KEYS.c.dedup_key.in_(adhoc)))
        )
    dead_letter_days.lock_counts(session, ids)
    gone = delete(DELIVERIES).where(one_of(c.id, ids, dialect), c.status.in_(FINAL))
    pruned.deliveries = _removed(session.execute(gone))
    return pruned


def release_digest_events(session: Session, delivery_ids: Sequence[int], now: datetime) -> int:
    """Before these deliveries go: the digest events they carried out are deleted (and counted
    dropped, as sent), those bound to one that ended without a send are unbound. Returns how many
    were deleted."""
    e, d = DIGEST_EVENTS.c, DELIVERIES.c
    dialect = dialect_of(session)
    bound = one_of(e.delivery_id, delivery_ids, dialect)
    was_sent = exists().where(d.id == e.delivery_id, d.status == DeliveryStatus.sent.value)
    sent = _removed(session.execute(delete(DIGEST_EVENTS).where(bound, was_sent)))
    session.execute(update(DIGEST_EVENTS).where(bound).values(delivery_id=None))
    if sent:
        session.execute(insert(DIGEST_DROPS).values(at=now, unsent=0, sent=sent))
    return sent


def prune_oldest(session: Session, table: str, before: datetime, limit: int) -> int:
    """Remove up to ``limit`` rows of an append-only table older than ``before``, oldest first: the
    audit log (by ``at``), idempotency keys (``created_at``), planner runs (``started_at``)."""
    target, column = _APPEND_ONLY[table]
    oldest = select(target.c.id).where(column < before).order_by(column).limit(limit)
    ids = list(session.scalars(oldest))
    if not ids:
        return 0
    return _removed(session.execute(delete(target).where(one_of(target.c.id, ids, dialect_of(session)))))


def prune_engagement(
    session: Session, before: datetime, after_recipient: int, recipients: int
) -> tuple[int, int | None]:
    """Sweep the recipients with ids after ``after_recipient`` (at most ``recipients`` of them):
    their engagement events older than ``before`` go, except each one's latest (engagement backoff
    reads only that one). Returns (removed, the last recipient swept, None once past the last)."""
    e = ENGAGEMENT.c
    swept = (
        select(e.recipient_id)
        .where(e.recipient_id > after_recipient)
        .group_by(e.recipient_id)
        .order_by(e.recipient_id)
        .limit(recipients)
        .subquery()
    )
    last = session.scalar(select(func.max(swept.c.recipient_id)))
    if last is None:
        return 0, None
    newer = ENGAGEMENT.alias("newer")
    has_newer = exists().where(newer.c.recipient_id == e.recipient_id, newer.c.occurred_at > e.occurred_at)
    removed = session.execute(
        delete(ENGAGEMENT).where(
            e.recipient_id > after_recipient, e.recipient_id <= last, e.occurred_at < before, has_newer
        )
    )
    return _removed(removed), int(last)


def fold_digest_drops(session: Session, before: datetime) -> int:
    """The digest drop counts recorded before ``before`` become one row with their sums (the metrics
    read the sums, which must not go down); returns how many rows went."""
    c = DIGEST_DROPS.c
    old = c.at < before
    count, unsent, sent, oldest = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(c.unsent), 0),
            func.coalesce(func.sum(c.sent), 0),
            func.min(c.at),
        ).where(old)
    ).one()
    if count < 2:
        return 0
    session.execute(delete(DIGEST_DROPS).where(old))
    session.execute(insert(DIGEST_DROPS).values(at=oldest, unsent=unsent, sent=sent))
    return int(count) - 1


# ----------------------------------------------------------------------------- counters, positions


def add_counts(session: Session, counts: dict[str, int], now: datetime) -> None:
    """Add what a batch removed to the running totals (one row per kind)."""
    c = MAINTENANCE_STATE.c
    for name, rows in counts.items():
        if not rows:
            continue
        changed = session.execute(
            update(MAINTENANCE_STATE).where(c.name == name).values(rows=c.rows + rows, last_at=now)
        )
        if not _removed(changed):
            session.execute(insert(MAINTENANCE_STATE).values(name=name, rows=rows, last_at=now))


def position(session: Session, name: str) -> int:
    return int(
        session.scalar(select(MAINTENANCE_STATE.c.position).where(MAINTENANCE_STATE.c.name == name)) or 0
    )


def set_position(session: Session, name: str, value: int | None, now: datetime) -> None:
    c = MAINTENANCE_STATE.c
    changed = session.execute(
        update(MAINTENANCE_STATE).where(c.name == name).values(position=value, last_at=now)
    )
    if not _removed(changed):
        session.execute(insert(MAINTENANCE_STATE).values(name=name, rows=0, position=value, last_at=now))


def totals(session: Session) -> dict[str, tuple[int, datetime | None]]:
    """Every counter: name -> (rows, when it last moved)."""
    c = MAINTENANCE_STATE.c
    return {
        str(name): (int(rows), last_at)
        for name, rows, last_at in session.execute(select(c.name, c.rows, c.last_at))
    }


# ----------------------------------------------------------------------------- the pass itself


def claim_pass(session: Session, now: datetime, every: timedelta) -> bool:
    """Whether this process runs the retention pass now: at most one per ``every`` across all
    workers (the conditional update on ``maintenance_state`` decides)."""
    c = MAINTENANCE_STATE.c
    due = or_(c.last_at.is_(None), c.last_at <= now - every)
    claimed = session.execute(
        update(MAINTENANCE_STATE).where(c.name == PASS, due).values(rows=c.rows + 1, last_at=now)
    )
    if _removed(claimed):
        return True
    row = {"name": PASS, "rows": 1, "last_at": now}
    claim = insert_ignoring_duplicates(session, MAINTENANCE_STATE, [row], returning=c.name)
    return session.scalar(claim) is not None


def last_pass(session: Session) -> datetime | None:
    c = MAINTENANCE_STATE.c
    value = session.scalar(select(c.last_at).where(c.name == PASS))
    return value if isinstance(value, datetime) else None


def sqlite_vacuum(session: Session, pages: int) -> int:
    """SQLite in incremental auto-vacuum: give up to ``pages`` free pages back to the file system;
    returns the free pages left (0 when the file is not in that mode: its free pages are reused)."""
    if session.scalar(text("PRAGMA auto_vacuum")) != INCREMENTAL:
        return 0
    session.execute(text(f"PRAGMA incremental_vacuum({int(pages)})"))
    return int(session.scalar(text("PRAGMA freelist_count")) or 0)


def sqlite_file_pages(session: Session) -> tuple[int, int, int]:
    """(pages, free pages, auto_vacuum mode) of the SQLite file."""
    pages = int(session.scalar(text("PRAGMA page_count")) or 0)
    free = int(session.scalar(text("PRAGMA freelist_count")) or 0)
    return pages, free, int(session.scalar(text("PRAGMA auto_vacuum")) or 0)


# ----------------------------------------------------------------------------- counted, not removed


def count_prunable_deliveries(session: Session, before: datetime, dated_before: date | None = None) -> int:
    c = DELIVERIES.c
    stmt = select(func.count()).where(c.scheduled_at < before, c.status.in_(FINAL))
    if dated_before is not None:
        stmt = stmt.where(c.local_date < dated_before)
    return int(session.scalar(stmt) or 0)


def count_older(session: Session, table: str, before: datetime) -> int:
    target, column = _APPEND_ONLY[table]
    return int(session.scalar(select(func.count()).select_from(target).where(column < before)) or 0)


def count_engagement(session: Session, before: datetime) -> int:
    e = ENGAGEMENT.c
    newer = ENGAGEMENT.alias("newer")
    has_newer = exists().where(newer.c.recipient_id == e.recipient_id, newer.c.occurred_at > e.occurred_at)
    return int(session.scalar(select(func.count()).where(e.occurred_at < before, has_newer)) or 0)
