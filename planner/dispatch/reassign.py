"""Giving deliveries new RQ jobs and enqueueing them once the database has committed.

The database side (lock, update, timeline entry) is :func:`planner.store.reassign.reassign`, called
inside the caller's transaction; :func:`enqueue_reassigned` hands the new jobs to Redis after the
commit, and :func:`requeue` does both for a set of pending deliveries.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

import redis

from planner.core.status import DeliveryStatus
from planner.dispatch.outbox import enqueue_batches
from planner.store.db import SessionFactory, transaction
from planner.store.reassign import PENDING, Move, Reassigned, reassign


def enqueue_reassigned(connection: redis.Redis, reassigned: Reassigned, now: datetime) -> None:
    """Hand the new jobs to Redis; call after the transaction that made them has committed."""
    enqueue_batches(connection, reassigned.batches, now)


def requeue(
    factory: SessionFactory,
    connection: redis.Redis,
    delivery_ids: Sequence[int],
    now: datetime,
    *,
    at: datetime | None = None,
    status: DeliveryStatus = DeliveryStatus.queued,
    reason: str | None = None,
    event: str = "requeued",
    batch_size: int = 100,
    from_statuses: Collection[DeliveryStatus] | None = None,
) -> list[int]:
    """:func:`reassign` in a transaction of its own, then the enqueue: a fresh job due at ``at``
    (default now) for deliveries in ``from_statuses`` (default: any pending one). Returns the ids moved.
    """
    if not delivery_ids:
        return []
    due = at or now
    allowed = from_statuses if from_statuses is not None else PENDING
    with transaction(factory) as session:
        moved = reassign(
            session,
            [Move(i, due) for i in delivery_ids],
            now,
            status=status,
            reason=reason,
            event=event,
            from_statuses=allowed,
            batch_size=batch_size,
        )
    enqueue_reassigned(connection, moved, now)
    return moved.ids
