"""The worker's RQ scheduler runs as a thread of the worker (see ``SchedulerThread``): it moves due
scheduled jobs onto their queues, holds RQ's scheduler lock so one scheduler per queue does so, and
lets go of the lock when it stops."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue

from planner.app import App
from planner.processes.worker import SchedulerThread

LOCK = "rq:scheduler-lock:default"


def _until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_scheduler_thread_moves_due_jobs_to_their_queue_and_releases_its_lock(
    app: App, redis_conn: redis.Redis
) -> None:
    queue = Queue("default", connection=redis_conn)
    soon = datetime.now(UTC) + timedelta(seconds=1.2)
    job = queue.enqueue_at(soon, "planner.jobs.deliver_batch", [1], job_id="dlv-scheduled")
    assert job.id not in queue.job_ids
    first, second = SchedulerThread(app, ["default"], interval=0.05), SchedulerThread(app, ["default"])
    first.start()
    try:
        _until(lambda: redis_conn.get(LOCK), "the first scheduler to take the lock")
        second.start()
        _until(lambda: job.id in queue.job_ids, "the due job to be moved onto its queue")
        # RQ's schedule counts whole seconds: due from the start of the job's second.
        assert datetime.now(UTC) >= soon.replace(microsecond=0), "moved when due, not before"
        assert redis_conn.get(LOCK) == first.scheduler.name.encode(), "one scheduler per queue"
    finally:
        first.stop()
        second.stop()
    assert not first.is_alive() and not second.is_alive()
    assert redis_conn.get(LOCK) is None, "a stopped scheduler lets go of its lock at once"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_lock_left_by_a_killed_worker_is_taken_over_once_it_expires(
    app: App, redis_conn: redis.Redis
) -> None:
    # A SIGKILLed worker's scheduler never releases its lock; it expires (RQ gives it a minute).
    redis_conn.set(LOCK, "killed-worker", px=800)
    thread = SchedulerThread(app, ["default"], interval=0.05)
    thread.start()
    try:
        assert redis_conn.get(LOCK) in (b"killed-worker", None)
        taken = thread.scheduler.name.encode()
        _until(lambda: redis_conn.get(LOCK) == taken, "the lock to be taken over", timeout=10)
    finally:
        thread.stop()
