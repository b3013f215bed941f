"""Soak (``-m slow``): 14 simulated days of hourly planner runs, workers and planners SIGKILLed at
random points every few simulated hours. Invariants: one delivery per occurrence, and the sends the
SMTP server received are at most the deliveries plus the worker kills.

Simulated time drives the planner (``run(now=...)``); the workers send at once what it plans, since
every simulated instant lies in the real past (lateness is allowed a month for this).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from planner.app import App, build_runner
from planner.commands.importer import import_lines
from planner.settings import Settings
from planner.store.models import Delivery
from tests.conftest import new_pg_database
from tests.faults.harness import Child, assert_nothing_sending, process_env, rows, start, statuses, wait_for
from tests.faults.servers import FaultSmtp, running_smtp
from tests.faults.test_process_faults import run_script
from tests.servers import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # a soak runs for many minutes

DAYS = 14
RECIPIENTS = 48
FINAL = {"sent", "skipped", "suppressed", "missed", "dead", "cancelled"}

KILLED_PLANNER = """
import os, signal, sys
from datetime import datetime, timedelta
import planner.run.runner as runner
import planner.store.chunks as chunks
from planner.app import App, build_runner
from planner.settings import Settings
target = {target}
def killed(*args, **kwargs):
    target(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
{target} = killed
app = App(Settings())
build_runner(app).run(datetime.fromisoformat({now!r}), timedelta(hours=1))
"""


@pytest.fixture
def soak_app(pg: PostgresServer, redis_url: str, tmp_path: Path) -> Iterator[App]:
    settings = Settings(
        database_url=new_pg_database(pg),
        redis_url=redis_url,
        outbox_dir=tmp_path / "outbox",
        max_lateness=timedelta(days=30),
        backoff_tiers=[(0, 1)],  # no engagement backoff: every occurrence is sent
    )
    app = App(settings)
    yield app
    app.close()


def test_fourteen_days_with_random_kills(soak_app: App, tmp_path: Path) -> None:
    rng = random.Random(11)
    start_at = (datetime.now(UTC) - timedelta(days=DAYS + 1)).replace(minute=0, second=0, microsecond=0)
    lines = [
        json.dumps(
            {
                "type": "recipient",
                "id": f"s{i}",
                "timezone": "UTC",
                "email": f"s{i}@example.com",
                "subscriptions": [
                    {"kind": "reminder", "channel": "email", "at": f"{i % 24:02d}:{i % 60:02d}"}
                ],
            }
        )
        for i in range(RECIPIENTS)
    ]
    import_lines(soak_app.sessions, lines, start_at)
    handler = FaultSmtp()
    worker_kills = 0
    children: list[Child] = []
    with running_smtp(handler) as port:
        env = process_env(
            soak_app, smtp_port=port, PLANNER_MAX_LATENESS="P30D", PLANNER_BACKOFF_TIERS="[[0, 1]]"
        ) | {"PLANNER_PLAN_CHUNK_SIZE": "1"}
        victim: list[Child] = []

        def worker() -> Child:
            child = start(env, tmp_path / "worker.log", "worker", "--recovery-interval", "0.2")
            children.append(child)
            victim[:] = [child]
            return child

        worker()
        kill_at: list[int] = []
        handler.on_data = lambda n: victim[0].kill() if kill_at and n == kill_at[0] else None
        try:
            for hour in range(DAYS * 24):
                now = start_at + timedelta(hours=hour)
                if rng.random() < 0.15:
                    # A planner killed after writing a chunk (its rows queued) or after enqueueing it.
                    target = rng.choice(["chunks.ChunkStore.write_plan", "runner.enqueue_batches"])
                    script = KILLED_PLANNER.format(target=target, now=now.isoformat())
                    doomed = run_script(env, tmp_path, "planner", script)
                    children.append(doomed)
                    doomed.wait()
                build_runner(soak_app).run(now, timedelta(hours=1))
                if rng.random() < 0.2:
                    # The worker dies at a random message of the next few.
                    kill_at[:] = [len(handler.received) + rng.randint(1, 3)]
                if victim[0].popen.poll() is not None:
                    worker_kills += 1
                    kill_at.clear()
                    worker()
            kill_at.clear()
            wait_for(
                lambda: set(statuses(soak_app)) <= FINAL,
                "every delivery to reach a final status",
                timeout=120,
            )
        finally:
            for child in children:
                child.stop()
    with soak_app.sessions() as session:
        occurrences = Counter(session.execute(select(Delivery.subscription_id, Delivery.local_date)).all())
    assert occurrences and set(occurrences.values()) == {1}, "one delivery per occurrence"
    assert len(occurrences) >= RECIPIENTS * DAYS
    received = sum(handler.count().values())
    sent = statuses(soak_app)["sent"]
    assert sent <= received <= len(rows(soak_app)) + worker_kills, (sent, received, worker_kills)
    assert_nothing_sending(soak_app)
    assert worker_kills >= 5, "the soak killed workers"
