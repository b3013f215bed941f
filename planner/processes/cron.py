"""``planner cron``: a planner run at the top of every UTC hour, once per hour across all hosts.

Every hour is claimed in Redis with ``SET planner:cron:<YYYY-MM-DDTHH> <owner> NX EX 7200``: the
first process to set it runs that hour, every other one skips it, and since the key names the hour
a run that overruns it is never started a second time. Before claiming an hour a process also takes
``planner:cron:running`` (a lock with a short expiry, kept alive by a heartbeat while the run lasts),
so a new hour does not start while the previous run is still going; it is tried again a minute
later. A failed run gives its hour back so that another attempt can be made. Dedup keys make a
double run harmless anyway; the locks keep it from happening.

RQ's own cron was not used: it has no lock between processes and reads cron strings in the host's
zone. Times here are UTC, and the locks never use ``time.monotonic`` (which freezegun freezes).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import redis
import structlog

from planner.app import App, build_runner, retry_policy
from planner.dispatch.leases import recover_expired_leases
from planner.run.runner import RunReport

log = structlog.get_logger("planner.cron")

RUNNING_KEY = "planner:cron:running"
HOUR_TTL = 7200
RUNNING_TTL = 300
HEARTBEAT_SECONDS = 60.0
BUSY_RETRY_SECONDS = 60.0
#: Wake a moment after the hour, so a clock a hair behind does not see the previous hour.
WAKE_MARGIN_SECONDS = 1.0

_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class TickOutcome(StrEnum):
    started = "started"
    hour_taken = "hour_taken"
    busy = "busy"
    failed = "failed"


def hour_key(now: datetime) -> str:
    return f"planner:cron:{now.astimezone(UTC):%Y-%m-%dT%H}"


def next_hour(now: datetime) -> datetime:
    top = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return top + timedelta(hours=1)


def new_owner() -> str:
    # The pid alone would not tell two threads (or a reused pid) apart when releasing a lock.
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Heartbeat(threading.Thread):
    """Keeps the running lock alive while a run lasts; a dead process lets it expire."""

    def __init__(self, connection: redis.Redis, owner: str, interval: float) -> None:
        super().__init__(name="planner-cron-heartbeat", daemon=True)
        self.connection = connection
        self.owner = owner
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.connection.eval(_EXTEND, 1, RUNNING_KEY, self.owner, str(RUNNING_TTL))
            except redis.RedisError:
                log.warning("cron heartbeat failed; will try again")


def run_hour(app: App, now: datetime, horizon: timedelta | None = None) -> RunReport:
    """Lease recovery, then a planner run (which reconciles the outbox before planning)."""
    recovered = recover_expired_leases(
        app.sessions,
        app.redis,
        now,
        retry_policy(app.settings),
        batch_size=app.settings.delivery_batch_size,
        policy=app.policy,
    )
    if recovered:
        log.info("recovered expired leases", recovered=recovered)
    return build_runner(app).run(now, horizon or app.settings.horizon)


def try_hour(
    app: App,
    now: datetime,
    *,
    owner: str | None = None,
    horizon: timedelta | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> TickOutcome:
    """Run the planner for ``now``'s UTC hour unless another process has, or a run is still going."""
    connection = app.redis
    owner = owner or new_owner()
    key = hour_key(now)
    logger = log.bind(hour=key.rsplit(":", 1)[1], owner=owner)
    if not connection.set(RUNNING_KEY, owner, nx=True, ex=RUNNING_TTL):
        logger.info("cron tick skipped: a planner run is still going", outcome=TickOutcome.busy.value)
        return TickOutcome.busy
    beat = _Heartbeat(connection, owner, heartbeat)
    try:
        if not connection.set(key, owner, nx=True, ex=HOUR_TTL):
            logger.info("cron tick skipped: hour already run", outcome=TickOutcome.hour_taken.value)
            return TickOutcome.hour_taken
        beat.start()
        try:
            report = run_hour(app, now, horizon)
        except Exception:
            connection.eval(_RELEASE, 1, key, owner)
            logger.exception("cron planner run failed; the hour will be tried again", outcome="failed")
            return TickOutcome.failed
        logger.info(
            "cron planner run finished",
            run_id=report.run_id,
            outcome=TickOutcome.started.value,
            duration=report.duration_seconds,
            deliveries_created=report.inserted,
        )
        return TickOutcome.started
    finally:
        beat.stopped.set()
        if beat.is_alive():
            beat.join()
        connection.eval(_RELEASE, 1, RUNNING_KEY, owner)


def cron_tick(app: App, now: datetime, *, owner: str | None = None, horizon: timedelta | None = None) -> bool:
    """Whether this call started the planner run for ``now``'s hour."""
    return try_hour(app, now, owner=owner, horizon=horizon) is TickOutcome.started


def run_forever(
    app: App,
    stop: threading.Event,
    *,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], object] | None = None,
    retry_every: float = BUSY_RETRY_SECONDS,
) -> None:
    """Tick now, then at every top of the hour, until ``stop`` is set.

    The first tick runs the current hour if no process has yet, so a restarted cron catches up at
    once. ``sleep`` defaults to waiting on ``stop``, so a signal handler setting it ends the wait.
    """
    read_clock = clock or app.clock
    wait = sleep or stop.wait
    while not stop.is_set():
        now = read_clock()
        try:
            outcome = try_hour(app, now)
        except redis.RedisError:
            log.exception("cron tick failed: Redis unavailable; will try again")
            outcome = TickOutcome.failed
        # Measured from the hour just handled, so a run that ends past the next hour runs it at once.
        delay = max(0.0, (next_hour(now) - read_clock()).total_seconds() + WAKE_MARGIN_SECONDS)
        if outcome in (TickOutcome.busy, TickOutcome.failed):
            delay = min(delay, retry_every)
        wait(delay)
