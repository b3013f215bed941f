"""The kit's stand-in for RQ's scheduler and worker, on simulated time.

Jobs scheduled for later wait in RQ's ``ScheduledJobRegistry`` as in production; at each instant the
clock stops at, the due ones are moved to their queues (what RQ's scheduler does, but against the
simulated clock instead of the Redis server's) and every queued job runs in-process, with the
service's deliverer (:func:`planner.jobs.serving`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import redis
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.timeouts import BaseDeathPenalty

from planner import jobs
from planner.delivery.deliverer import Deliverer
from planner.settings import QUEUES
from planner.testing.errors import JobFailed, KitError

MAX_JOBS_PER_INSTANT: Final = 10_000


class _NoTimeout(BaseDeathPenalty):
    # RQ's default alarm needs the main thread and real seconds; a kit job is never killed.
    def setup_death_penalty(self) -> None:
        pass

    def cancel_death_penalty(self) -> None:
        pass


class _KitWorker(SimpleWorker):
    """Used without ``work()``: no birth registration, pubsub thread or signal handlers."""

    death_penalty_class = _NoTimeout
    log_result_lifespan = False


class SimulatedScheduler:
    """Runs a service's RQ jobs at their simulated instants."""

    def __init__(self, connection: redis.Redis, deliverer: Deliverer, now: Callable[[], datetime]) -> None:
        self.redis = connection
        self.deliverer = deliverer
        self.now = now
        self._queues = [Queue(name, connection=connection) for name in QUEUES]
        self._worker = _KitWorker(
            self._queues,
            connection=connection,
            exception_handlers=[self._remember_job_error],
            disable_default_exception_handler=True,
        )
        # RQ pins its own logger at INFO; a line per job would flood a failing test's report.
        self._worker.log = logging.getLogger("planner.testing.worker")
        self._job_error: BaseException | None = None
        self._idle_state: tuple[datetime | None, bool] | None = None

    def forget_idle_state(self) -> None:
        self._idle_state = None

    def _job_state(self) -> tuple[datetime | None, bool]:
        """(the earliest instant a scheduled job waits for, whether any job is queued), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in self._queues:
                pipe.zrange(ScheduledJobRegistry(queue=queue).key, 0, 0, withscores=True)  # type: ignore[no-untyped-call]
                pipe.llen(queue.key)
            answers = pipe.execute()
        scores = [float(first[0][1]) for first in answers[0::2] if first]
        waiting_at = datetime.fromtimestamp(min(scores), UTC) if scores else None
        return waiting_at, any(answers[1::2])

    def next_job_at(self) -> datetime | None:
        """The earliest instant a job waits for in RQ's scheduled registries (None: none waits)."""
        idle, self._idle_state = self._idle_state, None
        if idle is not None:
            return idle[0]
        return self._job_state()[0]

    def run_due_jobs(self, now: datetime | None = None) -> int:
        """Move the scheduled jobs due by ``now`` (default: the simulated now) to their queues and
        run every queued job; returns how many ran."""
        at = self.now() if now is None else now
        state = waiting_at, queued = self._job_state()
        if waiting_at is not None and waiting_at <= at:
            self._enqueue_due(at)
            queued = True
        if not queued:
            # Nothing ran, so Redis still looks like this when the clock asks what comes next.
            self._idle_state = state
            return 0
        return self._work_queued()

    def _enqueue_due(self, now: datetime) -> None:
        # What RQ's scheduler does, against the simulated clock instead of the server's.
        connection = self.redis
        cutoff = int(now.timestamp())
        for queue in self._queues:
            registry = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
            while job_ids := registry.get_jobs_to_schedule(cutoff):
                fetched: list[Job | None] = Job.fetch_many(job_ids, connection=connection)
                with connection.pipeline() as pipe:
                    for job_id, job in zip(job_ids, fetched, strict=True):
                        if job is not None:
                            queue.enqueue_job(job, pipeline=pipe)
                        registry.remove(job_id, pipeline=pipe)
                    pipe.execute()

    def _work_queued(self) -> int:
        connection = self.redis
        ran = 0
        with jobs.serving(self.deliverer):
            while (found := Queue.dequeue_any(self._queues, None, connection=connection)) is not None:
                job, queue = found
                self._job_error = None
                self._worker.execute_job(job, queue)
                error, self._job_error = self._job_error, None
                if error is not None:
                    raise JobFailed(
                        f"RQ job {job.id} ({job.description}) raised {type(error).__name__}: {error}"
                    ) from error
                ran += 1
                if ran > MAX_JOBS_PER_INSTANT:
                    raise KitError(
                        f"more than {MAX_JOBS_PER_INSTANT} jobs ran at {self.now().isoformat()} "
                        "without time moving: a job keeps re-enqueueing itself for now"
                    )
        return ran

    def _remember_job_error(
        self, job: Job, exc_type: type[BaseException], exc: BaseException, tb: Any
    ) -> bool:
        self._job_error = exc
        return False
