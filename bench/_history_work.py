"""The worker's part of ``history_bench``: deliveries due now, enqueued as the planner enqueues them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def enqueue_due(url: str, redis_url: str, n: int, batch_size: int) -> None:
    """``n`` email deliveries due now (the real clock: the worker reads it), one per recipient in
    id order (round again past the last), ``queued`` with their jobs in Redis, as a planner run
    leaves them."""
    import redis
    from sqlalchemy import insert, select

    from planner.core.job_batches import assign_batches, batches_from_rows
    from planner.dispatch.outbox import enqueue_batches
    from planner.store.db import create_db_engine
    from planner.store.tables import DELIVERIES as D
    from planner.store.tables import RECIPIENTS as R

    now = datetime.now(UTC)
    due = now - timedelta(seconds=1)
    keys = [f"bench:{i}:{due.date().isoformat()}" for i in range(n)]
    jobs = assign_batches(((due, "email", "default", key) for key in keys), batch_size)
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            recipients = conn.execute(select(R.c.id).order_by(R.c.id)).scalars().all()
            ids = conn.execute(
                insert(D).returning(D.c.id),
                [
                    {"dedup_key": key, "recipient_id": recipients[i % len(recipients)],
                     "subscription_id": None, "kind": "daily_brief", "channel": "email", "queue": "default",
                     "local_date": due.date(), "occurrence_at": due, "scheduled_at": due, "status": "queued",
                     "attempts": 0, "job_id": jobs[key], "created_at": now, "updated_at": now}
                    for i, key in enumerate(keys)
                ],
            ).scalars().all()  # fmt: skip
        with engine.connect() as conn:
            rows = conn.execute(
                select(D.c.id, D.c.job_id, D.c.queue, D.c.channel, D.c.scheduled_at).where(
                    D.c.id.in_(list(ids))
                )
            ).all()
    finally:
        engine.dispose()
    connection = redis.Redis.from_url(redis_url)
    try:
        enqueue_batches(connection, batches_from_rows(rows), now)
    finally:
        connection.close()
