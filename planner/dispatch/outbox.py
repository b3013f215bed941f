"""Hand-off from the database to RQ (a transactional outbox) and its reconciler.

Delivery rows commit first, already carrying the id of the RQ job that will carry them; the jobs are
enqueued after the commit, in one Redis pipeline, and the rows are then marked ``queued``. A crash
between the two leaves rows ``planned`` (or ``queued``) whose job is not in Redis: the reconciler
(:mod:`planner.dispatch.reconcile`) enqueues them again under the same job id. Sending stays
exactly-once whatever RQ does, because a delivery is claimed in the database before any provider call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import redis
import structlog

from planner.core.job_batches import JobBatch
from planner.store import outbox as stored_outbox
from planner.store.db import Session

if TYPE_CHECKING:
    from rq import Queue

log = structlog.get_logger("planner.outbox")

DELIVER_BATCH = "planner.jobs.deliver_batch"
JOB_RESULT_TTL = 3600
JOB_FAILURE_TTL = 7 * 24 * 3600
JOB_TIMEOUT = 600


def enqueue_committed(connection: redis.Redis, batches: Sequence[JobBatch], now: datetime) -> bool:
    """Enqueue the jobs of rows already committed; False when Redis fails: the rows stay queued in
    the database and the reconcile enqueues them under the same job ids."""
    try:
        enqueue_batches(connection, batches, now)
    except redis.RedisError as exc:
        ids = sorted(i for batch in batches for i in batch.delivery_ids)
        log.warning("saved, not enqueued: the reconcile will", deliveries=ids, error=str(exc))
        return False
    return True


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
