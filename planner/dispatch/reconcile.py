"""The outbox's reconciler: pending deliveries whose RQ job is missing from Redis are enqueued again.

Run at the start of every planner run and in every worker's maintenance pass. It asks the database for
the job ids of pending deliveries and Redis which of them exist; only the rows of missing jobs are
read back and enqueued again, under the same job id. Sending stays exactly-once whatever RQ does,
because a delivery is claimed in the database before any provider call.

Only what changed since the last pass is checked, so a pass costs what changed, not the backlog: the
instant up to which every pending row was found in Redis (the watermark) is kept *in Redis itself*.
A Redis that restarts empty (or is flushed) loses its jobs and the watermark together, so the next
pass checks every pending row; a Redis restored from an older snapshot brings back an older
watermark with the jobs of that time. Rows are stamped (``updated_at``) before their transaction
commits, so each pass looks back :data:`OVERLAP` before the watermark for rows that committed late.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from planner.core.status import DeliveryStatus
from planner.dispatch.outbox import batches_from_rows, enqueue_batches, mark_queued
from planner.dispatch.reassign import requeue
from planner.store.models import PENDING_PREDICATE, Delivery

#: Where the watermark lives (an ISO-8601 instant); see the module's docstring.
WATERMARK_KEY = "planner:reconcile:checked-through"
#: How long after its ``updated_at`` stamp a pending row's transaction may still commit.
OVERLAP = timedelta(minutes=10)
#: Present while a full pass is not due: once a day (Redis time) every pending row is checked, so
#: a job lost some other way (a key deleted by hand) is repaired within a day. Only the workers'
#: maintenance pass takes it (``daily_full_pass=True``): it reads every pending row (0.3-0.5 s at
#: 500,000), and the hourly planner run, whose own crash window the watermark covers, should cost
#: what changed.
FULL_PASS_KEY = "planner:reconcile:full-pass-done"
FULL_PASS_EVERY = timedelta(days=1)

_EXISTS_EACH = """
local found = {}
for i, key in ipairs(KEYS) do found[i] = redis.call('EXISTS', key) end
return found
"""


def missing_jobs(connection: redis.Redis, job_ids: Sequence[str], chunk: int = 2000) -> set[str]:
    """Which of these job ids have no job hash in Redis (never enqueued, or Redis lost them)."""
    # One script call per chunk answers for every key: far cheaper than one EXISTS per job.
    exists_each = connection.register_script(_EXISTS_EACH)
    gone: set[str] = set()
    for start in range(0, len(job_ids), chunk):
        part = list(job_ids[start : start + chunk])
        answers = exists_each(keys=[f"rq:job:{job_id}" for job_id in part])
        gone.update(job_id for job_id, present in zip(part, answers, strict=True) if not present)
    return gone


@dataclass
class ReconcileReport:
    checked: int = 0
    reenqueued: int = 0
    jobs: int = 0


def reconcile(
    factory: sessionmaker[Session],
    connection: redis.Redis,
    now: datetime,
    *,
    grace: timedelta = timedelta(seconds=0),
    chunk_size: int = 2000,
    overlap: timedelta = OVERLAP,
    daily_full_pass: bool = False,
) -> ReconcileReport:
    """Re-enqueue every pending delivery whose RQ job is missing from Redis.

    Asks the database for the distinct job ids of ``planned``/``queued`` deliveries and Redis which
    of them exist; only the rows of missing jobs are read back and enqueued again, under the same
    job id. ``grace`` leaves alone rows touched in the last moments (a concurrent run may be between
    its commit and its enqueue); re-enqueueing them would never send twice, only add a no-op job.
    Rows stamped before the watermark (less ``overlap``) are not read at all; ``daily_full_pass``
    (the workers' maintenance) also checks every pending row once a day (:data:`FULL_PASS_KEY`).
    """
    try:
        return _reconcile(factory, connection, now, grace, chunk_size, overlap, daily_full_pass)
    except BaseException:
        if daily_full_pass:
            with contextlib.suppress(redis.RedisError):
                connection.delete(FULL_PASS_KEY)  # the full pass (if it was one) is still due
        raise


def _reconcile(
    factory: sessionmaker[Session],
    connection: redis.Redis,
    now: datetime,
    grace: timedelta,
    chunk_size: int,
    overlap: timedelta,
    daily_full_pass: bool,
) -> ReconcileReport:
    report = ReconcileReport()
    # A retry waiting in RQ's schedule is as easy to lose as a first attempt.
    pending = (DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value)
    # The partial index's own predicate, as literal SQL: SQLite uses a partial index only when the
    # query's terms imply its WHERE, which a bound `status IN (?, ?, ?)` never does (it read every
    # delivery instead: 0.2 s at 500,000). The same statuses as ``pending``; a test checks the plan.
    is_pending = text(PENDING_PREDICATE)
    table = Delivery.__table__  # type: ignore[attr-defined]
    upper = now - grace
    mark = read_watermark(connection)
    settled = table.c.updated_at <= upper
    full_pass = daily_full_pass and bool(connection.set(FULL_PASS_KEY, "1", nx=True, ex=FULL_PASS_EVERY))
    if mark is not None and mark <= upper and not full_pass:
        # Served by the partial index on pending rows' updated_at (ix_delivery_pending_updated).
        settled = settled & (table.c.updated_at > mark - overlap)
    # else: no watermark (a new or emptied Redis), or the clock went back: check every pending row.
    with factory() as session:
        job_ids = list(session.scalars(select(table.c.job_id).where(is_pending, settled).distinct()))
    orphans = [j for j in job_ids if j is None]
    gone = sorted(missing_jobs(connection, [j for j in job_ids if j is not None]))
    report.checked = len(job_ids)
    for start in range(0, len(gone), chunk_size):
        part = gone[start : start + chunk_size]
        with factory() as session:
            rows = session.execute(
                select(
                    table.c.id, table.c.job_id, table.c.queue, table.c.channel, table.c.scheduled_at
                ).where(table.c.job_id.in_(part), table.c.status.in_(pending))
            ).all()
        lost = batches_from_rows(rows)
        enqueue_batches(connection, lost, now)
        with factory() as session, session.begin():
            mark_queued(session, lost, now)
        report.jobs += len(lost)
        report.reenqueued += sum(len(b.delivery_ids) for b in lost)
    if orphans:
        with factory() as session:
            ids = list(
                session.scalars(select(table.c.id).where(is_pending, table.c.job_id.is_(None), settled))
            )
        report.reenqueued += len(
            requeue(
                factory,
                connection,
                ids,
                now,
                event="reconciled",
                from_statuses=[DeliveryStatus.planned, DeliveryStatus.queued],
            )
        )
    # Every pending row stamped up to ``upper`` now has its job in Redis.
    connection.set(WATERMARK_KEY, upper.isoformat())
    return report


def read_watermark(connection: redis.Redis) -> datetime | None:
    raw = connection.get(WATERMARK_KEY)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        return None  # unreadable: check everything, then write a good one
