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
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from planner.core.retry import RetryPolicy
from planner.core.status import DeliveryStatus
from planner.dispatch.reassign import Move, enqueue_reassigned, reassign
from planner.store.models import Delivery
from planner.store.timeline import event_row, record_events

log = structlog.get_logger("planner.delivery")

_TABLE = Delivery.__table__  # type: ignore[attr-defined]


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
    c = _TABLE.c
    with sessions() as session, session.begin():
        stmt = select(c.id, c.attempts).where(c.status == DeliveryStatus.sending.value, c.lease_until < now)
        if session.get_bind().dialect.name == "postgresql":
            # Two recoverers (workers, cron) split the work instead of queueing on each other's locks.
            stmt = stmt.with_for_update(skip_locked=True)
        rows = session.execute(stmt).all()
        if not rows:
            return 0
        exhausted = [r.id for r in rows if r.attempts >= retry.max_attempts]
        if exhausted:
            session.execute(
                update(_TABLE)
                .where(c.id.in_(exhausted), c.status == DeliveryStatus.sending.value)
                .values(
                    status=DeliveryStatus.dead.value, reason="lease_expired", lease_until=None, updated_at=now
                )
            )
            record_events(
                session,
                [
                    event_row(
                        i, now, "lease_expired", status=DeliveryStatus.dead.value, reason="lease_expired"
                    )
                    for i in exhausted
                ],
            )
        moved = reassign(
            session,
            [Move(r.id, now) for r in rows if r.attempts < retry.max_attempts],
            now,
            status=DeliveryStatus.retrying,
            reason="lease_expired",
            event="lease_expired",
            from_statuses=[DeliveryStatus.sending],
            batch_size=batch_size,
        )
    enqueue_reassigned(connection, moved, now)
    log.warning("recovered deliveries whose worker died", recovered=len(rows), dead=len(exhausted))
    return len(rows)
