"""The worker process: the RQ worker, its maintenance pass (lease recovery, reconcile) and burst runs."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from rq import Queue, SimpleWorker
from rq.scheduler import RQScheduler
from rq.worker_registration import REDIS_WORKER_KEYS

from planner.app import App
from planner.commands.events import drop_old_events
from planner.commands.feedback import drop_old_provider_events
from planner.commands.message_copies import drop_old_copies
from planner.commands.retention import maintenance_pass
from planner.commands.webhooks import drop_old_webhooks
from planner.core.status import DeliveryStatus
from planner.dispatch.leases import recover_expired_leases
from planner.dispatch.reconcile import reconcile
from planner.settings import QUEUES
from planner.store.deliveries import DeliveryState, due_ids, states_of

if TYPE_CHECKING:
    from planner.delivery.webhook_sender import WebhookSender

log = structlog.get_logger("planner.worker")


#: A periodic pass leaves rows changed this recently to the next one: another process may be between
#: the commit that gave them a job (a lease recovery, a retry, a planner chunk) and its enqueue, and
#: enqueueing them here too would put the same job in its queue twice (harmless: the copy claims
#: nothing, but a job run for nothing). A worker's first pass, when it starts, takes every row.
RECONCILE_GRACE = timedelta(seconds=10)


def run_maintenance(app: App, grace: timedelta = RECONCILE_GRACE) -> tuple[int, int]:
    """Recover expired leases, re-enqueue deliveries Redis lost, drop digest events past their
    retention (logged and counted by :func:`~planner.commands.events.drop_old_events`), applied
    provider callbacks, settled webhook events and kept message copies past theirs, then the
    retention pass (:func:`~planner.commands.retention.maintenance_pass`: one every few minutes
    across all workers, time-boxed; on PostgreSQL it also creates and drops the month partitions).
    Safe to run anywhere, any time; returns (recovered, reconciled)."""
    now = app.clock()
    recovered = recover_expired_leases(
        app.sessions,
        app.redis,
        now,
        app.retry_policy,
        batch_size=app.settings.delivery_batch_size,
        policy=app.policy,
    )
    reconciled = reconcile(app.sessions, app.redis, now, grace=grace, daily_full_pass=True).reenqueued
    drop_old_events(app, now)
    drop_old_provider_events(app, now)
    drop_old_webhooks(app, now)
    drop_old_copies(app, now)
    maintenance_pass(app, now)
    return recovered, reconciled


def ensure_registered(worker: SimpleWorker) -> bool:
    """Register ``worker`` again when Redis lost its registration (a restart, an empty server), so
    ``planner status`` and ``/readyz`` count it live; returns whether it had to.

    Registered means listed in RQ's set of workers: after a restart the worker's own heartbeat
    recreates its key (a hash with the heartbeat alone) but not its place in that set.
    """
    if worker.connection.sismember(REDIS_WORKER_KEYS, worker.key):
        return False
    worker.connection.delete(worker.key)  # a heartbeat's partial hash: registered afresh below
    worker.register_birth()  # type: ignore[no-untyped-call]
    log.warning("worker registration missing in Redis (restarted?); registered again", worker=worker.name)
    return True


class MaintenanceThread(threading.Thread):
    """Runs :func:`run_maintenance` every ``interval`` seconds until stopped, and keeps ``worker``
    registered in Redis."""

    def __init__(self, app: App, interval: float, worker: SimpleWorker | None = None) -> None:
        super().__init__(name="planner-maintenance", daemon=True)
        self.app = app
        self.interval = interval
        self.worker = worker
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                if self.worker is not None:
                    ensure_registered(self.worker)
                recovered, reconciled = run_maintenance(self.app)
                if recovered or reconciled:
                    log.info("maintenance", recovered=recovered, reconciled=reconciled)
            except Exception:
                log.exception("maintenance failed; will try again")


class WebhookThread(threading.Thread):
    """Posts the due outgoing webhooks (:class:`~planner.delivery.webhook_sender.WebhookSender`):
    after a full batch the next one at once, otherwise a wait of ``interval`` seconds. Stopping lets
    the requests in flight finish (each within PLANNER_WEBHOOKS_TIMEOUT)."""

    def __init__(self, sender: WebhookSender, interval: float = 1.0) -> None:
        super().__init__(name="planner-webhooks", daemon=True)
        self.sender = sender
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                claimed = self.sender.run_once()
            except Exception:
                log.exception("webhook pass failed; will try again")
                claimed = 0
            if claimed < self.sender.batch_size:
                self.stopped.wait(self.interval)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout)


class SchedulerThread(threading.Thread):
    """RQ's scheduler (jobs deferred by the rate limit or planned for later go back onto their queues
    when due), run as a thread of the worker's own process.

    RQ would fork it into a child process, and a child outlives its worker when the worker is killed
    outright (the OOM killer, ``kill -9``). It also inherits the worker's Redis sockets, one of them
    blocked in ``BLPOP``: Redis then hands the next job pushed onto that queue to the dead worker's
    socket, and the job leaves the queue unseen while its hash still says ``queued``. A thread dies
    with its process, and so do the sockets. The loop is RQ's own (``RQScheduler.work``) with the
    same locks, so at most one scheduler per queue moves jobs, whichever worker it lives in.
    """

    def __init__(self, app: App, queues: Sequence[str], interval: float = 1.0) -> None:
        super().__init__(name="planner-scheduler", daemon=True)
        # Untyped in RQ. It opens its own connection pool, in this process; its lock's time to live is
        # whole seconds (its interval + 60), the pace of this loop need not be.
        self.scheduler: Any = RQScheduler(
            list(queues), connection=app.redis, interval=max(1, round(interval)), logging_level="WARNING"
        )
        self.queues = set(queues)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        scheduler, registered = self.scheduler, False
        try:
            while not self.stopped.is_set():
                try:  # Redis may be away for a while: each pass starts again where it failed
                    if not registered:
                        scheduler.register_birth()
                        scheduler.acquire_locks()
                        registered = True
                    elif scheduler.acquired_locks != self.queues:
                        # RQ retries a lock it lacks every 2 minutes; a lock left by a killed worker
                        # expires within about a minute, and then its jobs should move again at once.
                        scheduler.acquire_locks()
                    scheduler.heartbeat()
                    scheduler.enqueue_scheduled_jobs()
                except Exception:
                    log.exception("scheduler pass failed; will try again")
                self.stopped.wait(self.interval)
        finally:
            # Released at once on a clean stop, so another worker's scheduler need not wait out the lock.
            with contextlib.suppress(Exception):
                scheduler.release_locks()
                scheduler.register_death()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout)


class PlannerWorker(SimpleWorker):
    """RQ's in-process worker, telling the deliverer when a warm shutdown (SIGTERM) is requested.

    RQ alone would finish the whole current batch first; the deliverer instead finishes the message
    in flight and hands the rest of its batch back to the queue, so a stop is quick and nothing
    waits ``sending`` for its lease to expire.
    """

    on_stop: Callable[[], None] | None = None

    def subscribe(self) -> None:
        """RQ's command channel (``rq`` can ask a worker to stop), read by a thread that wakes every
        second: RQ's own waits 60 s between reads, and its teardown waits for that thread, so a
        stopping worker could hang for a minute."""
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler
        )

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()  # type: ignore[no-untyped-call]
        if self.on_stop is not None:
            self.on_stop()


def make_worker(
    app: App, queues: Sequence[str] = QUEUES, on_stop: Callable[[], None] | None = None
) -> SimpleWorker:
    """An RQ worker on the queues in priority order (the first is always drained first).

    ``SimpleWorker`` runs jobs in its own process: no fork per job (several times faster) and no
    database connections shared across a fork. A worker killed mid-job is covered by the leases.
    """
    connection = app.redis
    worker = PlannerWorker(
        [Queue(name, connection=connection) for name in queues],
        connection=connection,
        exception_handlers=[_log_job_exception],
    )
    worker.on_stop = on_stop
    return worker


def _log_job_exception(job: object, exc_type: type[BaseException], exc: BaseException, tb: object) -> bool:
    log.error("job failed", job_id=getattr(job, "id", None), error=f"{exc_type.__name__}: {exc}")
    return True


@dataclass
class BurstSummary:
    """What became of the deliveries that were due when a ``--burst`` worker started."""

    due: int = 0
    by_outcome: dict[str, int] = dc_field(default_factory=dict)
    #: Deferred by quiet hours: delivery id -> when it will go.
    deferred_until: dict[int, datetime] = dc_field(default_factory=dict)
    still_rate_limited: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "by_outcome": dict(sorted(self.by_outcome.items())),
            "quiet_hours_deferred_until": {str(k): v.isoformat() for k, v in self.deferred_until.items()},
            "still_rate_limited": self.still_rate_limited,
        }


#: Rounds in a row, and seconds, without one due delivery settling before a burst gives up waiting.
STALLED_ROUNDS = 3
STALLED_SECONDS = 10.0


def work_burst(
    app: App,
    worker: SimpleWorker,
    progress: Callable[[int, int], None] = lambda done, total: None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> BurstSummary:
    """Send what is due now, waiting out rate-limit deferrals, then summarise.

    RQ's burst mode stops when the queues are empty, but a delivery the provider rate limit
    deferred by a second is back in RQ's schedule, not in a queue: left alone it would stay
    ``queued``. So: work the queues, wait until the earliest deferral is due, work again, until no
    due delivery is rate-limited (or nothing moved for :data:`STALLED_ROUNDS` rounds).
    """
    started = app.clock()
    due = _due_ids(app, started)
    stalled, last_open, moved_at = 0, len(due) + 1, monotonic()
    while True:
        worker.work(with_scheduler=True, burst=True, logging_level="WARNING")
        rows = _rows(app, due)
        waiting = [r for r in rows if r.status == DeliveryStatus.queued.value and r.reason == "rate_limited"]
        progress(len(due) - len(waiting), len(due))
        if len(waiting) < last_open:
            stalled, moved_at = 0, monotonic()
        else:
            stalled += 1
        last_open = len(waiting)
        # Stalled: nothing moved for some rounds *and* some seconds (on a loaded machine a round
        # can end before RQ's scheduler has moved the deferred jobs back to the queue).
        if not waiting or (stalled >= STALLED_ROUNDS and monotonic() - moved_at >= STALLED_SECONDS):
            return _summary(due, rows, waiting)
        earliest = min(r.scheduled_at for r in waiting)
        sleep(max(0.0, (earliest - app.clock()).total_seconds()) + 0.05)


def _due_ids(app: App, now: datetime) -> list[int]:
    with app.sessions() as session:
        return due_ids(session, now)


def _rows(app: App, ids: Sequence[int]) -> list[DeliveryState]:
    with app.sessions() as session:
        return states_of(session, ids)


def _summary(
    due: Sequence[int], rows: Sequence[DeliveryState], waiting: Sequence[DeliveryState]
) -> BurstSummary:
    summary = BurstSummary(due=len(due), still_rate_limited=len(waiting))
    for row in rows:
        outcome = (
            row.status if not row.reason or row.status in ("sent", "dead") else f"{row.status} ({row.reason})"
        )
        summary.by_outcome[outcome] = summary.by_outcome.get(outcome, 0) + 1
        if row.reason == "quiet_hours_deferred":
            summary.deferred_until[row.id] = row.scheduled_at
    return summary
