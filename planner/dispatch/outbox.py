"""Hand-off from the database to RQ (a transactional outbox) and its reconciler.

Delivery rows commit first, already carrying the id of the RQ job that will carry them; the jobs are
enqueued after the commit, in one Redis pipeline, and the rows are then marked ``queued``. A crash
between the two leaves rows ``planned`` (or ``queued``) whose job is not in Redis: the reconciler
(:mod:`planner.dispatch.reconcile`) enqueues them again under the same job id. Sending stays
exactly-once whatever RQ does, because a delivery is claimed in the database before any provider call.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import redis

from planner.store import outbox as stored_outbox
from planner.store.db import Session

if TYPE_CHECKING:
    from rq import Queue

DELIVER_BATCH = "planner.jobs.deliver_batch"
JOB_RESULT_TTL = 3600
JOB_FAILURE_TTL = 7 * 24 * 3600
JOB_TIMEOUT = 600


@dataclass(frozen=True)
class JobBatch:
    """Deliveries due at the same instant on the same channel and queue, carried by one RQ job."""

    job_id: str
    queue: str
    channel: str
    scheduled_at: datetime
    delivery_ids: tuple[int, ...]


def new_job_id() -> str:
    # RQ job ids may only hold letters, digits, '_' and '-'.
    return f"dlv-{uuid.uuid4().hex}"


def assign_batches(items: Iterable[tuple[datetime, str, str, object]], batch_size: int) -> dict[object, str]:
    """Group items keyed (scheduled_at, channel, queue, key) into batches; returns key -> job id."""
    groups: dict[tuple[datetime, str, str], list[object]] = defaultdict(list)
    for scheduled_at, channel, queue, key in items:
        groups[(scheduled_at, channel, queue)].append(key)
    assignment: dict[object, str] = {}
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            job_id = new_job_id()
            for key in members[start : start + batch_size]:
                assignment[key] = job_id
    return assignment


def batches_from_rows(rows: Iterable[tuple[int, str | None, str, str, datetime]]) -> list[JobBatch]:
    """(id, job_id, queue, channel, scheduled_at) rows -> one JobBatch per job id."""
    grouped: dict[str, list[tuple[int, str, str, datetime]]] = defaultdict(list)
    for delivery_id, job_id, queue, channel, scheduled_at in rows:
        if job_id is None:
            continue
        grouped[job_id].append((delivery_id, queue, channel, scheduled_at))
    return [
        JobBatch(
            job_id=job_id,
            queue=members[0][1],
            channel=members[0][2],
            scheduled_at=min(m[3] for m in members),
            delivery_ids=tuple(sorted(m[0] for m in members)),
        )
        for job_id, members in grouped.items()
    ]


def enqueue_batches(connection: redis.Redis, batches: Sequence[JobBatch], now: datetime) -> None:
    """Enqueue every batch in one pipeline: due ones on their queue, later ones in RQ's schedule."""
    if not batches:
        return
    # Imported here: rq costs about 40 ms of start-up, and a run with nothing due enqueues nothing.
    from rq import Queue

    queues: dict[str, Queue] = {}
    with connection.pipeline() as pipe:
        # One MULTI/EXEC: RQ's enqueue insists on an explicit transaction when handed a pipeline.
        pipe.multi()
        for batch in batches:
            queue = queues.get(batch.queue)
            if queue is None:
                queue = queues[batch.queue] = Queue(batch.queue, connection=connection)
            options = {
                "job_id": batch.job_id,
                "result_ttl": JOB_RESULT_TTL,
                "failure_ttl": JOB_FAILURE_TTL,
                "job_timeout": JOB_TIMEOUT,
                "description": f"deliver {len(batch.delivery_ids)} {batch.channel}",
                "pipeline": pipe,
            }
            if batch.scheduled_at <= now:
                queue.enqueue(DELIVER_BATCH, list(batch.delivery_ids), **options)
            else:
                queue.enqueue_at(batch.scheduled_at, DELIVER_BATCH, list(batch.delivery_ids), **options)
        pipe.execute()


def mark_queued(session: Session, batches: Sequence[JobBatch], now: datetime) -> int:
    """planned -> queued for the deliveries of these jobs, once Redis holds them; how many changed."""
    return stored_outbox.mark_queued(session, [i for batch in batches for i in batch.delivery_ids], now)
