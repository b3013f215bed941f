"""Lease recovery: deliveries stuck in ``sending`` because their worker died go back to the queue.

A claim carries a lease (``lease_until``). A worker that dies mid-send never writes an outcome, so its
deliveries stay ``sending`` until the lease expires; then any worker's maintenance pass (or the hourly
cron) hands them to a new job. The dead worker's attempt stays counted, since it may have reached
the provider; the retry carries the same Message-ID.
"""

from __future__ import annotations

from datetime import datetime

import redis
import structlog
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from planner.core.retry import RetryPolicy
from planner.core.status import DeliveryStatus
from planner.dispatch.outbox import assign_batches, batches_from_rows, enqueue_batches
from planner.store.models import Delivery
from planner.store.timeline import event_row, record_events

log = structlog.get_logger("planner.delivery")


def recover_expired_leases(
    sessions: sessionmaker[Session],
    connection: redis.Redis,
    now: datetime,
    retry: RetryPolicy,
    *,
    batch_size: int = 100,
) -> int:
    """Hand deliveries stuck in ``sending`` past their lease (a worker died) back to the queue.

    The dead worker's attempt stays counted, since it may have reached the provider; when that was
    the last allowed attempt, the delivery is dead. Returns how many were recovered.
    """
    table = Delivery.__table__  # type: ignore[attr-defined]
    with sessions() as session, session.begin():
        stmt = select(table.c.id, table.c.attempts, table.c.queue, table.c.channel).where(
            table.c.status == DeliveryStatus.sending.value, table.c.lease_until < now
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = session.execute(stmt).all()
        if not rows:
            return 0
        exhausted = [r for r in rows if r.attempts >= retry.max_attempts]
        again = [r for r in rows if r.attempts < retry.max_attempts]
        jobs = assign_batches(((now, r.channel, r.queue, r.id) for r in again), batch_size)
        if exhausted:
            session.execute(
                update(table)
                .where(
                    table.c.id.in_([r.id for r in exhausted]), table.c.status == DeliveryStatus.sending.value
                )
                .values(
                    status=DeliveryStatus.dead.value, reason="lease_expired", lease_until=None, updated_at=now
                )
            )
        if again:
            session.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.sending.value)
                .values(
                    status=DeliveryStatus.retrying.value,
                    reason="lease_expired",
                    scheduled_at=now,
                    job_id=bindparam("job_id"),
                    lease_until=None,
                    updated_at=now,
                ),
                [{"b_id": r.id, "job_id": jobs[r.id]} for r in again],
            )
        record_events(
            session,
            [
                event_row(
                    r.id, now, "lease_expired", status=DeliveryStatus.dead.value, reason="lease_expired"
                )
                for r in exhausted
            ]
            + [
                event_row(
                    r.id,
                    now,
                    "lease_expired",
                    status=DeliveryStatus.retrying.value,
                    reason="lease_expired",
                    detail={"attempts_so_far": r.attempts},
                )
                for r in again
            ],
        )
    enqueue_batches(
        connection, batches_from_rows((r.id, jobs[r.id], r.queue, r.channel, now) for r in again), now
    )
    log.warning("recovered deliveries whose worker died", recovered=len(rows), dead=len(exhausted))
    return len(rows)
