"""Lease recovery: deliveries stuck in ``sending`` because their worker died go back to the queue.

A claim carries a lease (``lease_until``), which a live worker renews while it sends. A worker that
dies mid-send never writes an outcome, so its deliveries stay ``sending`` until the lease expires;
then any worker's maintenance pass (or the hourly cron) hands them to a new job. The dead worker's
attempt stays counted, since it may have reached the provider; the retry carries the same Message-ID.
"""

from __future__ import annotations

from datetime import datetime

import redis
import structlog

from planner.core.policy import PlanningPolicy
from planner.core.retry import RetryPolicy
from planner.dispatch.outbox import enqueue_batches
from planner.dispatch.reassign import enqueue_reassigned
from planner.store import leases
from planner.store.db import SessionFactory, transaction

log = structlog.get_logger("planner.delivery")


def recover_expired_leases(
    sessions: SessionFactory,
    connection: redis.Redis,
    now: datetime,
    retry: RetryPolicy,
    *,
    batch_size: int = 100,
    policy: PlanningPolicy | None = None,
) -> int:
    """Hand deliveries stuck in ``sending`` past their lease back to the queue (see
    :func:`planner.store.leases.recover`), then enqueue their new jobs and those of the fallbacks
    the dead ones called (with ``policy``). Returns how many were found."""
    with transaction(sessions) as session:
        recovered = leases.recover(session, now, retry.max_attempts, batch_size, policy)
    if not recovered.found:
        return 0
    enqueue_reassigned(connection, recovered.moved, now)
    enqueue_batches(connection, recovered.fallbacks, now)
    log.warning("recovered deliveries whose worker died", recovered=recovered.found, dead=recovered.dead)
    return recovered.found
