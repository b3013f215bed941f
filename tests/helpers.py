"""Shared helpers for the planner's own tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import Engine, event

from planner.app import App
from planner.run.runner import PlannerRunner, RunOptions
from planner.settings import QUEUES, Settings


class Clock:
    """A clock the test moves by hand (``clock.now += HOUR``), for ``App(settings, clock=clock)``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def unthrottled_app(settings: Settings, clock: Clock) -> App:
    """An app on the test's clock whose provider rate limits never defer a send (1000/second)."""
    unlimited = {"rate_limit_email": "1000/second", "rate_limit_sms": "1000/second"}
    return App(settings.model_copy(update=unlimited), clock=clock)


def recipient_line(rid: str, tz: str, subs: list[dict[str, Any]], **extra: Any) -> str:
    base: dict[str, Any] = {
        "type": "recipient",
        "id": rid,
        "timezone": tz,
        "email": f"{rid}@example.com",
        "phone": "+12125550100",
        "subscriptions": subs,
    }
    base.update(extra)
    return json.dumps(base)


def runner(app: App, **options: Any) -> PlannerRunner:
    return PlannerRunner(app.sessions, app.redis, app.policy, RunOptions(**options))


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement sent to the database while the block runs (executemany counts once)."""
    seen: list[str] = []

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def jobs_in_redis(connection: redis.Redis) -> dict[str, list[int]]:
    """job id -> delivery ids, for every delivery job waiting in a queue or in RQ's schedule."""
    found: dict[str, list[int]] = {}
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        ids = list(queue.get_job_ids()) + list(ScheduledJobRegistry(queue=queue).get_job_ids())
        for job_id in ids:
            job = Job.fetch(job_id, connection=connection)
            found.setdefault(job_id, [])
            found[job_id].extend(job.args[0])
    return found


def job_id_occurrences(connection: redis.Redis) -> list[str]:
    """Every job id as often as RQ holds it (a queue list can hold one id twice)."""
    ids: list[str] = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        ids += list(queue.get_job_ids()) + list(ScheduledJobRegistry(queue=queue).get_job_ids())
    return ids


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def timelines(app: App) -> dict[int, list[dict[str, Any]]]:
    """Every delivery's timeline as the API shows it (stored and implied entries), by delivery id."""
    from sqlalchemy import select

    from planner.store.queries import timeline
    from planner.store.tables import DELIVERIES

    with app.sessions() as session:
        return {d_id: timeline(session, d_id) for d_id in session.scalars(select(DELIVERIES.c.id))}
