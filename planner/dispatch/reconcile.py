"""The outbox's reconciler: pending deliveries whose RQ job is missing from Redis are enqueued again.

Run at the start of every planner run and in every worker's maintenance pass. It asks the database for
the job ids of pending deliveries and Redis which of them exist; only the rows of missing jobs are
read back and enqueued again, under the same job id. Sending stays exactly-once whatever RQ does,
because a delivery is claimed in the database before any provider call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from planner.core.status import DeliveryStatus
from planner.dispatch.outbox import batches_from_rows, enqueue_batches, mark_queued
from planner.dispatch.reassign import requeue
from planner.store.models import Delivery

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
) -> ReconcileReport:
    """Re-enqueue every pending delivery whose RQ job is missing from Redis.

    Asks the database for the distinct job ids of ``planned``/``queued`` deliveries and Redis which
    of them exist; only the rows of missing jobs are read back and enqueued again, under the same
    job id. ``grace`` leaves alone rows touched in the last moments (a concurrent run may be between
    its commit and its enqueue); re-enqueueing them would never send twice, only add a no-op job.
    """
    report = ReconcileReport()
    # A retry waiting in RQ's schedule is as easy to lose as a first attempt.
    pending = (DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value)
    table = Delivery.__table__  # type: ignore[attr-defined]
    settled = table.c.updated_at <= now - grace
    with factory() as session:
        job_ids = list(
            session.scalars(select(table.c.job_id).where(table.c.status.in_(pending), settled).distinct())
        )
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
                session.scalars(
                    select(table.c.id).where(table.c.status.in_(pending), table.c.job_id.is_(None), settled)
                )
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
    return report
