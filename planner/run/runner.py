"""The hourly planner run: claim due subscriptions in chunks, plan them, write, hand off to RQ.

Each chunk costs a constant number of statements whatever its size: claim the due subscriptions
(on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several planner processes share one run), fetch
recipients, engagement, last sends and cap counts in bulk, decide in the pure core
(:mod:`planner.core.planning`), insert deliveries in one statement that ignores dedup conflicts, record
their first timeline entry, advance the cursors, commit; then enqueue (see :mod:`planner.dispatch.outbox`).
"""

from __future__ import annotations

import gc
import threading
import time as monotonic_time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog

from planner.core.job_batches import RunJobs, batches_from_rows
from planner.core.planning import (
    ChunkPlan,
    PlannedDelivery,
    SubscriptionState,
    plan_chunk,
)
from planner.core.policy import PlanningPolicy
from planner.dispatch.outbox import enqueue_batches
from planner.dispatch.reconcile import reconcile
from planner.store import runs
from planner.store.db import Session, SessionFactory

log = structlog.get_logger("planner.run")


@dataclass
class RunOptions:
    chunk_size: int = 1000
    concurrency: int = 4
    batch_size: int = 100
    reconcile_grace: timedelta = timedelta(seconds=60)


@dataclass
class RunReport:
    run_id: str
    now: datetime
    window_end: datetime
    subscriptions: int = 0
    occurrences: int = 0
    inserted: int = 0
    duplicates: int = 0
    enqueued_jobs: int = 0
    reconciled: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    dst_adjusted: int = 0
    deferred: int = 0
    duration_seconds: float = 0.0
    status: str = "running"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "now": self.now.isoformat(),
            "window_end": self.window_end.isoformat(),
            "status": self.status,
            "subscriptions": self.subscriptions,
            "occurrences": self.occurrences,
            "deliveries_created": self.inserted,
            "already_planned": self.duplicates,
            "enqueued_jobs": self.enqueued_jobs,
            "reconciled_deliveries": self.reconciled,
            "outcomes": dict(sorted(self.outcomes.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "dst_adjusted": self.dst_adjusted,
            "quiet_hours_deferred": self.deferred,
            "duration_seconds": round(self.duration_seconds, 3),
        }


class PlannerRunner:
    """Plans one window. Dependencies come in; nothing here reads the clock."""

    def __init__(
        self,
        sessions: SessionFactory,
        connection: redis.Redis,
        policy: PlanningPolicy,
        options: RunOptions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.policy = policy
        self.options = options or RunOptions()
        self.progress = progress
        self.store = runs.chunk_store(sessions)
        self._lock = threading.Lock()

    # -- the run -------------------------------------------------------------------------------

    def run(self, now: datetime, horizon: timedelta) -> RunReport:
        window_end = now + horizon
        report = RunReport(run_id=uuid.uuid4().hex, now=now, window_end=window_end)
        started = monotonic_time.perf_counter()
        logger = log.bind(run_id=report.run_id)
        with self.sessions() as session, session.begin():
            runs.start_run(session, report.run_id, window_end, now)
        try:
            reconciled = reconcile(self.sessions, self.redis, now, grace=self.options.reconcile_grace)
            report.reconciled = reconciled.reenqueued
            jobs = RunJobs(self.options.batch_size, hold_after=window_end)
            with _collector_tuned_for_the_run():
                try:
                    self._plan_all(now, window_end, report, jobs)
                finally:
                    self._enqueue_held(jobs, now, report)
            report.status = "succeeded"
        except Exception as exc:
            report.status = "failed"
            report.duration_seconds = monotonic_time.perf_counter() - started
            self._finish(report, now, error=f"{type(exc).__name__}: {exc}")
            logger.exception("planner run failed", **report.as_dict())
            raise
        report.duration_seconds = monotonic_time.perf_counter() - started
        self._finish(report, now)
        logger.info("planner run finished", **report.as_dict())
        return report

    def _finish(self, report: RunReport, now: datetime, error: str | None = None) -> None:
        with self.sessions() as session, session.begin():
            runs.finish_run(
                session,
                report.run_id,
                status=report.status,
                finished_at=now + timedelta(seconds=report.duration_seconds),
                occurrences=report.occurrences,
                counts=report.as_dict(),
                error=error,
            )

    def _plan_all(self, now: datetime, window_end: datetime, report: RunReport, jobs: RunJobs) -> None:
        workers = runs.chunk_writers(self.sessions, self.options.concurrency)

        def worker() -> None:
            while self.plan_one_chunk(now, window_end, report, jobs):
                pass

        if workers == 1:
            worker()
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="planner-chunk") as pool:
            for future in [pool.submit(worker) for _ in range(workers)]:
                future.result()

    # -- one chunk -----------------------------------------------------------------------------

    def plan_recipients(self, now: datetime, recipient_ids: Sequence[int]) -> RunReport:
        """Plan, now, the subscriptions of these recipients that fall inside the window the last
        successful run already covered (a subscription created or changed after that run): without
        this, "today at 10:45" added at 10:20 would wait for the next run. Same chunk code as a run.
        """
        with self.sessions() as session:
            covered = runs.covered_until(session)
        report = RunReport(run_id="change", now=now, window_end=covered or now)
        if covered is None or covered <= now:
            return report
        jobs = RunJobs(self.options.batch_size, hold_after=covered)
        try:
            for start in range(0, len(recipient_ids), self.options.chunk_size):
                batch = recipient_ids[start : start + self.options.chunk_size]
                while self.plan_one_chunk(now, covered, report, jobs, recipient_ids=batch):
                    pass
        finally:
            self._enqueue_held(jobs, now, report)
        return report

    def plan_one_chunk(
        self,
        now: datetime,
        window_end: datetime,
        report: RunReport,
        jobs: RunJobs,
        recipient_ids: Sequence[int] | None = None,
    ) -> bool:
        """Claim, plan, write and commit one chunk, then enqueue its jobs (those of later sends wait
        for the run's end: :class:`~planner.core.job_batches.RunJobs`). False when nothing is due."""
        with self.sessions() as session, session.begin():
            subs = self.store.claim_due(session, window_end, self.options.chunk_size, recipient_ids)
            if not subs:
                return False
            plan, inserted = self._plan_and_write(session, subs, now, window_end, jobs)
        batches = batches_from_rows(
            (d_id, job_id, d.queue, d.channel, d.scheduled_at) for d, d_id, job_id in inserted if job_id
        )
        # The rows were written queued with their job ids (store.chunks): enqueueing is all that is left.
        with self._lock:
            batches = jobs.hold(batches)
        enqueue_batches(self.redis, batches, now)
        with self._lock:
            report.subscriptions += len(subs)
            report.occurrences += len(plan.deliveries)
            report.inserted += len(inserted)
            report.duplicates += len(plan.deliveries) - len(inserted)
            report.enqueued_jobs += len(batches)
            for planned, _, _ in inserted:
                report.outcomes["queued" if planned.to_send else planned.status.value] += 1
                if planned.reason:
                    report.reasons[planned.reason] += 1
                if "dst" in planned.detail:
                    report.dst_adjusted += 1
                if "quiet_hours" in planned.detail:
                    report.deferred += 1
        if self.progress:
            self.progress(len(subs))
        return True

    def _plan_and_write(
        self,
        session: Session,
        subs: Sequence[SubscriptionState],
        now: datetime,
        window_end: datetime,
        jobs: RunJobs,
    ) -> tuple[ChunkPlan, list[tuple[PlannedDelivery, int, str | None]]]:
        inputs = self.store.load_inputs(session, subs, window_end, self.policy.longest_cap_window)
        plan = plan_chunk(inputs, self.policy, now, window_end)
        sends = [(d.scheduled_at, d.channel, d.queue, d.dedup_key) for d in plan.deliveries if d.to_send]
        with self._lock:
            assigned = jobs.assign(sends)
        return plan, self.store.write_plan(session, plan, assigned, now, inputs.recipients)

    def _enqueue_held(self, jobs: RunJobs, now: datetime, report: RunReport) -> None:
        """Enqueue the jobs of later sends the chunks held (their rows are committed)."""
        held = jobs.release()
        enqueue_batches(self.redis, held, now)
        report.enqueued_jobs += len(held)


__all__ = ["PlannerRunner", "RunOptions", "RunReport"]


#: Allocations between two collections of the youngest generation while a run plans.
RUN_YOUNG_THRESHOLD = 10_000


@contextmanager
def _collector_tuned_for_the_run() -> Iterator[None]:
    """The objects the process held before the run (the imports', the engine's, the caches') left
    out of the collector's passes while it plans: a full collection walks every tracked object, and
    a run allocates enough per occurrence to trigger one or two, each walking hundreds of thousands
    of objects that the run cannot free. The youngest generation is collected every
    :data:`RUN_YOUNG_THRESHOLD` allocations instead of 700: a chunk's rows live until its commit,
    so a pass every 700 walks them again and again and promotes them towards a full collection.
    Both undone after it (process-wide: a run in another thread of the process only loses the
    saving)."""
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(RUN_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
