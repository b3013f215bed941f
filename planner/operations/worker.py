"""Building the delivery side: adapters from settings, the Deliverer, the RQ worker and lease recovery."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import structlog
from rq import Queue, SimpleWorker

from planner.app import App, retry_policy
from planner.dispatch.leases import recover_expired_leases
from planner.dispatch.reconcile import reconcile
from planner.settings import QUEUES

log = structlog.get_logger("planner.worker")


def run_maintenance(app: App) -> tuple[int, int]:
    """Recover expired leases and re-enqueue deliveries Redis lost. Safe to run anywhere, any time."""
    now = app.clock()
    recovered = recover_expired_leases(
        app.sessions, app.redis, now, retry_policy(app.settings), batch_size=app.settings.delivery_batch_size
    )
    reconciled = reconcile(app.sessions, app.redis, now).reenqueued
    return recovered, reconciled


class MaintenanceThread(threading.Thread):
    """Runs :func:`run_maintenance` every ``interval`` seconds until stopped."""

    def __init__(self, app: App, interval: float) -> None:
        super().__init__(name="planner-maintenance", daemon=True)
        self.app = app
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                recovered, reconciled = run_maintenance(self.app)
                if recovered or reconciled:
                    log.info("maintenance", recovered=recovered, reconciled=reconciled)
            except Exception:
                log.exception("maintenance failed; will try again")


class PlannerWorker(SimpleWorker):
    """RQ's in-process worker, telling the deliverer when a warm shutdown (SIGTERM) is requested.

    RQ alone would finish the whole current batch first; the deliverer instead finishes the message
    in flight and hands the rest of its batch back to the queue, so a stop is quick and nothing
    waits ``sending`` for its lease to expire.
    """

    on_stop: Callable[[], None] | None = None

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
