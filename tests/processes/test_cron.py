"""``planner cron``: one planner run per UTC hour across processes, never two at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import structlog
from sqlalchemy import select

from planner.app import App
from planner.logs import configure_logging
from planner.processes import cron
from planner.store.models import PlannerRun

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TEN = datetime(2026, 3, 8, 10, 0, 5, tzinfo=UTC)


def runs(app: App) -> list[datetime]:
    with app.sessions() as session:
        return list(session.scalars(select(PlannerRun.started_at).order_by(PlannerRun.started_at)))  # type: ignore[arg-type]


def test_one_run_per_hour(app: App, redis_conn: redis.Redis) -> None:
    assert cron.cron_tick(app, TEN) is True
    assert cron.cron_tick(app, TEN + timedelta(minutes=30)) is False
    assert cron.cron_tick(app, TEN + timedelta(hours=1)) is True
    assert runs(app) == [TEN, TEN + timedelta(hours=1)]
    assert redis_conn.ttl("planner:cron:2026-03-08T10") > 7000
    assert not redis_conn.exists(cron.RUNNING_KEY)


def test_concurrent_ticks_for_one_hour_start_one_run(app: App) -> None:
    barrier = threading.Barrier(4)
    started: list[bool] = []

    def tick() -> None:
        other = App(app.settings)
        try:
            barrier.wait()
            started.append(cron.cron_tick(other, TEN))
        finally:
            other.close()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(started) == [False, False, False, True]
    assert len(runs(app)) == 1


def test_a_running_run_holds_back_the_next_hour(app: App, redis_conn: redis.Redis) -> None:
    redis_conn.set(cron.RUNNING_KEY, "other-host-1", ex=cron.RUNNING_TTL)
    assert cron.try_hour(app, TEN) is cron.TickOutcome.busy
    # The hour was not consumed: once the other run ends, it is started.
    redis_conn.delete(cron.RUNNING_KEY)
    assert cron.try_hour(app, TEN) is cron.TickOutcome.started
    assert cron.try_hour(app, TEN) is cron.TickOutcome.hour_taken


def test_a_failed_run_gives_its_hour_back(app: App, redis_conn: redis.Redis, tmp_path: Path) -> None:
    # A database without the schema: the planner run fails.
    broken = App(app.settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"}))
    saved = structlog.get_config()
    # The service's JSON logs (the default development renderer takes seconds over a traceback).
    configure_logging("INFO", "json")
    try:
        assert cron.try_hour(broken, TEN) is cron.TickOutcome.failed
    finally:
        structlog.configure(**saved)
        broken.close()
    assert not redis_conn.exists("planner:cron:2026-03-08T10")
    assert not redis_conn.exists(cron.RUNNING_KEY)
    assert cron.try_hour(app, TEN) is cron.TickOutcome.started


def test_loop_wakes_at_each_top_of_the_hour(app: App) -> None:
    stop = threading.Event()
    clock = [datetime(2026, 3, 8, 9, 59, 30, tzinfo=UTC)]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += timedelta(seconds=seconds)
        if len(sleeps) == 3:
            stop.set()

    cron.run_forever(app, stop, clock=lambda: clock[0], sleep=sleep)
    # 09:59:30 runs hour 09 (catching up), then wakes just after 10:00 and 11:00.
    assert sleeps == [31.0, 3600.0, 3600.0]
    assert [r.hour for r in runs(app)] == [9, 10, 11]
