"""What an operator paged at night looks at first: the workers and the queues.

- :func:`worker_views`: every worker RQ knows of (its own registry), with its current job, the jobs
  it finished and failed, its last heartbeat; a worker killed without a goodbye stays registered
  until its key expires, and is shown as gone;
- :func:`queue_views`: per queue, the jobs waiting and the age of the oldest, the jobs being
  worked, scheduled (and the next one's time) and failed, and, from the database, the deliveries due
  and waiting for a worker.

RQ stamps jobs and heartbeats with its hosts' wall clocks, so their ages are measured against the
clock every worker shares, Redis's own (``TIME``), not the service's clock (which tests and the demo
simulate). The deliveries' waits are measured against the service's ``now``, as ``planner status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.worker import BaseWorker

from planner.app import App
from planner.core.localtime import UTC
from planner.settings import QUEUES
from planner.store.reports import due_by_queue


def redis_now(connection: redis.Redis) -> datetime:
    """Redis's clock: the one every worker's heartbeat is compared with."""
    seconds, micros = connection.time()
    return datetime.fromtimestamp(seconds + micros / 1e6, UTC)


@dataclass(frozen=True)
class JobView:
    id: str
    description: str
    queue: str
    started_at: datetime | None
    running_for: timedelta | None


@dataclass(frozen=True)
class WorkerView:
    name: str
    #: False: registered, but its key expired (it died without a goodbye); the rest is unknown.
    alive: bool
    hostname: str | None = None
    pid: int | None = None
    state: str = "gone"
    queues: tuple[str, ...] = ()
    current_job: JobView | None = None
    processed: int = 0
    failed: int = 0
    working_seconds: float = 0.0
    born: datetime | None = None
    last_heartbeat: datetime | None = None
    heartbeat_age: timedelta | None = None


def worker_views(connection: redis.Redis) -> tuple[list[WorkerView], datetime]:
    """Every registered worker (the live ones first, by name), and Redis's time they were read at.

    Read only: RQ's own lookup of a worker (``Worker.find_by_key``) drops one whose key has expired
    from its set, which a page must not; each worker is read from its hash, once.
    """
    now = redis_now(connection)
    keys = sorted(k.decode() if isinstance(k, bytes) else k for k in Worker.all_keys(connection=connection))
    views = []
    for key in keys:
        name = key.removeprefix(Worker.redis_worker_namespace_prefix)
        worker = _registered(name, connection)
        views.append(_worker_view(worker, now) if worker is not None else WorkerView(name, alive=False))
    return sorted(views, key=lambda w: (not w.alive, w.name)), now


def _registered(name: str, connection: redis.Redis) -> BaseWorker | None:
    """The worker ``name`` as its hash says, or None when the hash is gone (it died without a
    goodbye and its key expired). One read: a hash that expires while the page is read is either
    read whole or found gone."""
    worker = Worker([], name, connection=connection, prepare_for_work=False)
    worker.refresh()  # type: ignore[no-untyped-call]
    return worker if worker.birth_date is not None else None


def _worker_view(worker: BaseWorker, now: datetime) -> WorkerView:
    job = worker.get_current_job()
    current = None
    if job is not None:
        started = _aware(job.started_at)
        current = JobView(
            job.id, job.description or "", job.origin, started, now - started if started else None
        )
    heartbeat = _aware(worker.last_heartbeat)
    return WorkerView(
        name=worker.name,
        alive=True,
        hostname=worker.hostname,
        pid=worker.pid,
        state=str(worker.get_state()),
        queues=tuple(q.name for q in worker.queues),
        current_job=current,
        processed=int(worker.successful_job_count or 0),
        failed=int(worker.failed_job_count or 0),
        working_seconds=float(worker.total_working_time or 0.0),
        born=_aware(worker.birth_date),
        last_heartbeat=heartbeat,
        heartbeat_age=now - heartbeat if heartbeat else None,
    )


def _aware(value: datetime | None) -> datetime | None:
    """RQ's instants are UTC, some of them naive."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class QueueView:
    name: str
    waiting: int
    oldest_enqueued: datetime | None
    oldest_age: timedelta | None  # by Redis's clock
    started: int
    scheduled: int
    next_scheduled: datetime | None
    failed: int
    due: int  # deliveries due and waiting for a worker (database)
    oldest_due: datetime | None
    due_waited: timedelta | None  # by the service's clock


def queue_views(app: App, now: datetime) -> list[QueueView]:
    """Every queue in priority order: RQ's figures, then the database's due deliveries."""
    connection = app.redis
    clock = redis_now(connection)
    with app.sessions() as session:
        due = due_by_queue(session, now)
    views = []
    for name in QUEUES:
        queue = Queue(name, connection=connection)
        oldest = _oldest_enqueued(queue)
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        upcoming = connection.zrange(scheduled.key, 0, 0, withscores=True)
        next_at = datetime.fromtimestamp(float(upcoming[0][1]), UTC) if upcoming else None
        count, first_due = due.get(name, (0, None))
        views.append(
            QueueView(
                name=name,
                waiting=int(queue.count),
                oldest_enqueued=oldest,
                oldest_age=clock - oldest if oldest else None,
                started=int(StartedJobRegistry(queue=queue).get_job_count(cleanup=False)),
                scheduled=int(scheduled.get_job_count(cleanup=False)),
                next_scheduled=next_at,
                failed=int(FailedJobRegistry(queue=queue).get_job_count(cleanup=False)),
                due=count,
                oldest_due=first_due,
                due_waited=now - first_due if first_due else None,
            )
        )
    return views


def _oldest_enqueued(queue: Queue) -> datetime | None:
    """When the job at the head of the queue (the next one taken) was put there."""
    for job_id in queue.get_job_ids(0, 4):
        try:
            job = Job.fetch(job_id, connection=queue.connection)
        except NoSuchJobError:  # taken or deleted under us: the next one
            continue
        if job.enqueued_at is not None:
            return _aware(job.enqueued_at)
    return None
