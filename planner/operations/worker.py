"""Building the delivery side: adapters from settings, the Deliverer, the RQ worker and lease recovery."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import structlog
from rq import Queue, SimpleWorker

from adapters import Adapter, create_adapter, options_from_env
from planner.app import App
from planner.core.policy import PlanningPolicy
from planner.core.retry import RetryPolicy
from planner.delivery.deliverer import Deliverer, recover_expired_leases
from planner.delivery.templating import Renderer
from planner.dispatch.outbox import reconcile
from planner.dispatch.ratelimit import ProviderLimiter
from planner.settings import QUEUES, Settings

log = structlog.get_logger("planner.worker")


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_attempts, base=settings.retry_base, cap=settings.retry_cap)


def build_adapters(settings: Settings) -> dict[str, Adapter]:
    """One adapter per channel, as configured; a channel sharing an adapter name shares the instance."""
    made: dict[str, Adapter] = {}
    by_channel: dict[str, Adapter] = {}
    for channel in ("email", "sms"):
        name = settings.adapter_for(channel)
        if name not in made:
            options = options_from_env(name)
            if name == "file":
                options.setdefault("directory", str(settings.outbox_dir))
            made[name] = create_adapter(name, options)
        by_channel[channel] = made[name]
    return by_channel


def build_deliverer(
    app: App,
    adapters: Mapping[str, Adapter] | None = None,
    renderer: Renderer | None = None,
) -> Deliverer:
    settings = app.settings
    return Deliverer(
        app.sessions,
        app.redis,
        adapters if adapters is not None else build_adapters(settings),
        renderer or Renderer(settings.templates_dir),
        PlanningPolicy.from_settings(settings),
        retry_policy(settings),
        limiter=ProviderLimiter(
            app.redis, {"email": settings.rate_limit_email, "sms": settings.rate_limit_sms}
        ),
        lease=settings.sending_lease,
        batch_size=settings.delivery_batch_size,
        clock=app.clock,
    )


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


def make_worker(app: App, queues: Sequence[str] = QUEUES) -> SimpleWorker:
    """An RQ worker on the queues in priority order (the first is always drained first).

    ``SimpleWorker`` runs jobs in its own process: no fork per job (several times faster) and no
    database connections shared across a fork. A worker killed mid-job is covered by the leases.
    """
    connection = app.redis
    return SimpleWorker(
        [Queue(name, connection=connection) for name in queues],
        connection=connection,
        exception_handlers=[_log_job_exception],
    )


def _log_job_exception(job: object, exc_type: type[BaseException], exc: BaseException, tb: object) -> bool:
    log.error("job failed", job_id=getattr(job, "id", None), error=f"{exc_type.__name__}: {exc}")
    return True
