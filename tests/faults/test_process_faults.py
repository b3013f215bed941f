"""Planner, Redis and PostgreSQL faults, and racing processes, with real processes end to end.

Subscriptions are imported; real ``planner`` processes plan them (some killed at a chosen point by a
hook in the process itself), real workers send them to a real SMTP server. Each case ends with every
occurrence planned exactly once and every delivery sent, counted at the server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from planner.app import App
from planner.commands.importer import import_lines
from planner.core.job_batches import JobBatch
from planner.dispatch.outbox import enqueue_batches
from planner.readmodels.status import live_workers
from planner.settings import Settings
from planner.store.db import create_db_engine, upgrade
from planner.store.models import Delivery, PlannerRun
from tests.faults.harness import (
    Child,
    assert_each_sent_once_at_most_plus,
    assert_nothing_sending,
    enqueue,
    message_id,
    process_env,
    rows,
    start,
    statuses,
    wait_for,
)
from tests.faults.servers import FaultSmtp
from tests.servers import PostgresServer, RedisServer, start_postgres

SUBSCRIPTIONS = 100


def subscribe(app: App, count: int = SUBSCRIPTIONS) -> None:
    """``count`` recipients, each with one email subscription whose occurrence fell due a minute ago."""
    now = datetime.now(UTC)
    due = now - timedelta(minutes=1)
    lines = [
        json.dumps(
            {
                "type": "recipient",
                "id": f"p{i}",
                "timezone": "UTC",
                "email": f"p{i}@example.com",
                "subscriptions": [{"kind": "reminder", "channel": "email", "at": due.strftime("%H:%M")}],
            }
        )
        for i in range(count)
    ]
    import_lines(app.sessions, lines, now - timedelta(minutes=5))


def planner_script(hook: str) -> str:
    """A planner run (chunks of 20, one at a time) in a process of its own, with ``hook`` (code that
    may kill the process) patched in; the run plans the real current hour."""
    return textwrap.dedent(
        """
        import os, signal, sys
        from datetime import UTC, datetime, timedelta
        import planner.run.runner as runner
        import planner.store.chunks as chunks
        from planner.app import App, build_runner
        from planner.settings import Settings
        calls = [0]
        {hook}
        app = App(Settings())
        build_runner(app).run(datetime.now(UTC), timedelta(hours=1))
        """
    ).format(hook=textwrap.dedent(hook).strip())


def run_script(env: dict[str, str], tmp_path: Path, name: str, script: str) -> Child:
    log = tmp_path / f"{name}.log"
    handle = log.open("ab")
    popen = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.PIPE,
    )
    handle.close()
    return Child(popen, log)


def chunked(env: dict[str, str]) -> dict[str, str]:
    return env | {"PLANNER_PLAN_CHUNK_SIZE": "20", "PLANNER_PLAN_CONCURRENCY": "1"}


def one_delivery_per_subscription(app: App, count: int = SUBSCRIPTIONS) -> None:
    with app.sessions() as session:
        per_subscription = Counter(session.scalars(select(Delivery.subscription_id)))
    assert len(per_subscription) == count and set(per_subscription.values()) == {1}


def send_all(app: App, env: dict[str, str], tmp_path: Path, children: list[Child]) -> None:
    worker = start(env, tmp_path / "worker.log", "worker", "--burst")
    children.append(worker)
    assert worker.wait() == 0, worker.output()


def plan(env: dict[str, str], tmp_path: Path, children: list[Child]) -> None:
    planner = start(env, tmp_path / "run.log", "run")
    children.append(planner)
    assert planner.wait() == 0, planner.output()


# -- planner ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hook",
    [
        # Mid-chunk: the third chunk's rows are written, its transaction not committed.
        """
        write = chunks.ChunkStore.write_plan
        def killed(self, *args, **kwargs):
            result = write(self, *args, **kwargs)
            calls[0] += 1
            if calls[0] == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        chunks.ChunkStore.write_plan = killed
        """,
        # Between commit and enqueue: the second chunk is committed, its jobs never reach Redis.
        """
        enqueue = runner.enqueue_batches
        def killed(*args, **kwargs):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return enqueue(*args, **kwargs)
        runner.enqueue_batches = killed
        """,
    ],
    ids=["mid-chunk", "between-commit-and-enqueue"],
)
def test_planner_killed_then_rerun_plans_and_sends_each_occurrence_once(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child], hook: str
) -> None:
    handler, port = smtp
    subscribe(pg_app)
    env = chunked(process_env(pg_app, smtp_port=port))
    doomed = run_script(env, tmp_path, "doomed", planner_script(hook))
    children.append(doomed)
    assert doomed.wait() == -signal.SIGKILL, doomed.output()
    assert sum(statuses(pg_app).values()) == 40, "two chunks committed before the kill"
    plan(env, tmp_path, children)
    one_delivery_per_subscription(pg_app)
    send_all(pg_app, env, tmp_path, children)
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)


def test_two_planners_at_once_plan_each_occurrence_once(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    subscribe(pg_app)
    env = chunked(process_env(pg_app, smtp_port=port))
    planners = [start(env, tmp_path / f"run{i}.log", "run") for i in range(2)]
    children.extend(planners)
    for planner in planners:
        assert planner.wait() == 0, planner.output()
    one_delivery_per_subscription(pg_app)
    send_all(pg_app, env, tmp_path, children)
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)


def test_two_crons_run_the_hour_once(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    subscribe(pg_app)
    env = chunked(process_env(pg_app, smtp_port=port))
    crons = [start(env, tmp_path / f"cron{i}.log", "cron", "--once") for i in range(2)]
    children.extend(crons)
    for cron in crons:
        assert cron.wait() == 0, cron.output()
    outcomes = sorted(
        line for cron in crons for line in cron.output().splitlines() if line.startswith("cron:")
    )
    assert outcomes[0] in ("cron: busy", "cron: hour_taken") and outcomes[1] == "cron: started", outcomes
    with pg_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PlannerRun)) == 1
    one_delivery_per_subscription(pg_app)
    send_all(pg_app, env, tmp_path, children)
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)


# -- Redis ------------------------------------------------------------------------------------------


def test_redis_flushed_between_planner_and_worker(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    subscribe(pg_app)
    env = chunked(process_env(pg_app, smtp_port=port))
    plan(env, tmp_path, children)
    pg_app.redis.flushall()
    # The worker reconciles at start: every pending delivery whose job is missing is enqueued again.
    send_all(pg_app, env, tmp_path, children)
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)


def test_redis_restarted_empty_under_a_running_worker(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child], redis_server: RedisServer
) -> None:
    handler, port = smtp
    subscribe(pg_app, 30)
    env = process_env(pg_app, smtp_port=port, PLANNER_DELIVERY_BATCH_SIZE="10")
    plan(env, tmp_path, children)
    at_five, restarted = threading.Event(), threading.Event()

    def pause_at_five(count: int) -> None:
        if count == 5:
            at_five.set()
            assert restarted.wait(30)

    handler.on_data = pause_at_five
    worker = start(env, tmp_path / "worker.log", "worker", "--recovery-interval", "0.2")
    children.append(worker)
    assert at_five.wait(30), worker.output()
    assert live_workers(pg_app.redis), "the worker is registered"
    redis_server.restart(empty=True)  # the other two jobs are gone with it
    assert not live_workers(pg_app.redis), "an empty Redis knows no worker"
    restarted.set()
    # Within a maintenance pass (0.2 s here) the running worker registers again: status and /readyz
    # count it live without a restart.
    wait_for(lambda: live_workers(pg_app.redis), "the worker to register again")
    # The worker survives, or a second one (its maintenance reconciles the lost jobs) takes over.
    wait_for(lambda: statuses(pg_app)["sent"] == 30 or worker.popen.poll() is not None, "the lost jobs")
    if worker.popen.poll() is not None:
        rescuer = start(env, tmp_path / "rescuer.log", "worker", "--recovery-interval", "0.2")
        children.append(rescuer)
    wait_for(lambda: statuses(pg_app)["sent"] == 30, "every delivery to be sent")
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)


# -- duplicates and races ------------------------------------------------------------------------------


def test_same_job_twice_and_two_racing_workers_send_each_delivery_once(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    subscribe(pg_app, 60)
    env = process_env(pg_app, smtp_port=port)
    plan(env, tmp_path, children)
    ids = sorted(rows(pg_app))
    now = datetime.now(UTC)
    # The very same job id enqueued twice, another copy of every delivery under other job ids, and
    # the planner's own jobs: three jobs per delivery, two workers racing for them.
    twice = JobBatch(f"dup-{uuid.uuid4().hex}", "default", "email", now, tuple(ids))
    enqueue_batches(pg_app.redis, [twice], now)
    enqueue_batches(pg_app.redis, [twice], now)
    enqueue(pg_app, ids, batch_size=7)
    workers = [start(env, tmp_path / f"worker{i}.log", "worker", "--burst") for i in range(2)]
    children.extend(workers)
    for worker in workers:
        assert worker.wait() == 0, worker.output()
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)
    assert_nothing_sending(pg_app)


# -- PostgreSQL restarted (immediate mode) -------------------------------------------------------------


@pytest.fixture(scope="module")
def own_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module's own, so restarting it disturbs no other test."""
    server = start_postgres(tmp_path_factory.mktemp("pg-restarts"))
    if server is None:
        pytest.skip("PostgreSQL is not available")
    yield server
    server.stop()


@pytest.fixture
def restart_app(own_pg: PostgresServer, redis_url: str, tmp_path: Path) -> Iterator[App]:
    name = f"r_{uuid.uuid4().hex[:8]}"
    own_pg.create_database(name)
    with own_pg._admin() as admin:
        # The suite's servers run with synchronous_commit=off, which may lose the last commits in a
        # crash; production does not, and this test must tell lost sends from lost commits.
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
    engine = create_db_engine(own_pg.url(name))
    upgrade(engine)
    engine.dispose()
    app = App(Settings(database_url=own_pg.url(name), redis_url=redis_url, outbox_dir=tmp_path / "outbox"))
    yield app
    app.close()


def test_postgres_restarted_while_the_planner_runs(
    restart_app: App,
    own_pg: PostgresServer,
    smtp: tuple[FaultSmtp, int],
    tmp_path: Path,
    children: list[Child],
) -> None:
    handler, port = smtp
    subscribe(restart_app)
    env = chunked(process_env(restart_app, smtp_port=port))
    marker = tmp_path / "at-chunk-3"
    # The third chunk signals the test (a file) and waits for its go (a line on stdin) mid-transaction.
    hook = f"""
        write = chunks.ChunkStore.write_plan
        def paused(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 3:
                open({str(marker)!r}, "w").close()
                sys.stdin.readline()
            return write(self, *args, **kwargs)
        chunks.ChunkStore.write_plan = paused
        """
    planner = run_script(env, tmp_path, "planner", planner_script(hook))
    children.append(planner)
    wait_for(marker.exists, "the planner to reach its third chunk")
    restart_app.engine.dispose()
    own_pg.restart_immediate()
    assert planner.popen.stdin is not None
    planner.popen.stdin.write(b"go\n")
    planner.popen.stdin.close()
    assert planner.wait() != 0, "the planner's connection died with the server"
    assert "OperationalError" in planner.output() or "terminat" in planner.output(), planner.output()
    plan(env, tmp_path, children)
    one_delivery_per_subscription(restart_app)
    send_all(restart_app, env, tmp_path, children)
    assert_each_sent_once_at_most_plus(restart_app, handler.count(), extra=0, message_id=message_id)


def test_postgres_restarted_while_a_worker_sends(
    restart_app: App,
    own_pg: PostgresServer,
    smtp: tuple[FaultSmtp, int],
    tmp_path: Path,
    children: list[Child],
) -> None:
    handler, port = smtp
    subscribe(restart_app, 20)
    # A lease longer than any restart: this case is about the outcome written after one, not about
    # recovery (with the suite's 2 s leases, a restart slowed by a loaded machine let the worker's own
    # maintenance recover message 5 while it was in flight, and send it again).
    env = process_env(restart_app, smtp_port=port) | {"PLANNER_SENDING_LEASE": "PT60S"}
    plan(env, tmp_path, children)
    at_five, restarted = threading.Event(), threading.Event()

    def hold_at_five(count: int) -> None:
        if count == 5:
            at_five.set()
            assert restarted.wait(30)

    handler.on_data = hold_at_five
    worker = start(env, tmp_path / "worker.log", "worker", "--recovery-interval", "0.2")
    children.append(worker)
    assert at_five.wait(30), worker.output()
    restart_app.engine.dispose()
    own_pg.restart_immediate()  # message 5 is accepted just after: its outcome cannot be written
    restarted.set()
    # Message 5's outcome is written in a transaction of its own, begun after the restart: the pool's
    # pre-ping replaces the dead connection, so the worker carries on and nothing is sent twice.
    wait_for(lambda: statuses(restart_app)["sent"] == 20, "every delivery to be sent")
    assert worker.popen.poll() is None, worker.output()
    assert_each_sent_once_at_most_plus(restart_app, handler.count(), extra=0, message_id=message_id)
    assert_nothing_sending(restart_app)
