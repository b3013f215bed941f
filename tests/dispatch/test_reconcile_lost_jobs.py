"""A job whose hash is still in Redis but which is on neither its queue nor its schedule is lost as
surely as one whose hash is gone: the reconcile enqueues it again (it used to check only that the
hash existed). Redis loses a job this way when it answers a blocked ``BLPOP`` on the socket of a
client that is dead but not yet disconnected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry

from planner.app import App
from planner.commands.importer import import_lines
from planner.dispatch.reconcile import lost_jobs, reconcile
from tests.helpers import recipient_line, runner

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=2)


def _plan(app: App, at: str) -> tuple[str, Queue]:
    """Two recipients, one subscription each at ``at`` (UTC); returns their one job and its queue."""
    lines = [recipient_line(r, "UTC", [{"kind": "k", "channel": "email", "at": at}]) for r in "ab"]
    import_lines(app.sessions, lines, NOW)
    runner(app).run(NOW, timedelta(hours=1))
    [job_id] = {k.decode().removeprefix("rq:job:") for k in app.redis.keys("rq:job:*")}
    job = Job.fetch(job_id, connection=app.redis)
    return job_id, Queue(job.origin, connection=app.redis)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_queued_job_taken_off_its_queue_unseen_is_enqueued_again(app: App) -> None:
    job_id, queue = _plan(app, "12:00")  # due at the run's now: straight onto its queue
    assert Job.fetch(job_id, connection=app.redis).get_status() == JobStatus.QUEUED
    assert lost_jobs(app.redis, [(job_id, queue.name)]) == set()
    app.redis.lrem(queue.key, 0, job_id)  # what a BLPOP answered to a dead socket leaves
    assert lost_jobs(app.redis, [(job_id, queue.name)]) == {job_id}
    assert reconcile(app.sessions, app.redis, LATER).reenqueued == 2
    assert job_id in queue.get_job_ids()
    assert reconcile(app.sessions, app.redis, LATER).reenqueued == 0, "found in place now"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_scheduled_job_missing_from_its_schedule_is_enqueued_again(app: App) -> None:
    job_id, queue = _plan(app, "12:30")  # later in the hour: in RQ's schedule
    schedule = ScheduledJobRegistry(queue=queue)
    assert job_id in schedule.get_job_ids()
    app.redis.zrem(schedule.key, job_id)
    assert lost_jobs(app.redis, [(job_id, queue.name)]) == {job_id}
    assert reconcile(app.sessions, app.redis, NOW + timedelta(minutes=5)).reenqueued == 2
    assert job_id in schedule.get_job_ids(), "back in the schedule, still for 12:30"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_job_a_worker_is_taking_or_running_is_not_lost(app: App) -> None:
    job_id, queue = _plan(app, "12:00")
    app.redis.lmove(queue.key, queue.intermediate_queue_key)  # popped by a live worker, not yet started
    assert lost_jobs(app.redis, [(job_id, queue.name)]) == set()
    app.redis.lrem(queue.intermediate_queue_key, 0, job_id)
    app.redis.hset(f"rq:job:{job_id}", "status", JobStatus.STARTED.value)
    assert lost_jobs(app.redis, [(job_id, queue.name)]) == set()
    assert lost_jobs(app.redis, [("never-enqueued", queue.name)]) == {"never-enqueued"}
