"""Crash safety with real worker processes, a real SMTP server, real Redis and real PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, select
from sqlalchemy.exc import OperationalError

from adapters import Message
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer, retry_policy
from planner.dispatch.leases import recover_expired_leases
from planner.dispatch.reassign import requeue
from planner.settings import Settings
from planner.store import queries
from planner.store.models import Delivery, Recipient
from tests.conftest import new_pg_database
from tests.servers import PostgresServer, free_port

pytestmark = pytest.mark.postgres


@dataclass
class StallingSmtp:
    """Records every message that reaches DATA; while ``stall`` is set, never answers it."""

    received: list[str] = field(default_factory=list)
    stall: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.received.append(str(message["Message-ID"]))
        if self.stall.is_set():
            self.stalled.set()
            await asyncio.sleep(120)
        return "250 accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[StallingSmtp, int]]:
    handler = StallingSmtp()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def pg_app(pg: PostgresServer, redis_url: str, tmp_path: Path) -> Iterator[App]:
    app = App(Settings(database_url=new_pg_database(pg), redis_url=redis_url, outbox_dir=tmp_path / "outbox"))
    yield app
    app.close()


def add_due_deliveries(app: App, count: int, now: datetime) -> list[int]:
    with app.sessions() as session, session.begin():
        recipient_id = session.execute(
            insert(Recipient).returning(Recipient.id),
            [
                {
                    "external_id": "ann",
                    "timezone": "UTC",
                    "email": "ann@example.com",
                    "email_opt_out": False,
                    "sms_opt_out": False,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        ).scalar_one()
        ids = (
            session.execute(
                insert(Delivery).returning(Delivery.id),
                [
                    {
                        "dedup_key": f"adhoc:{i}",
                        "local_date": now.date(),  # the month partition on PostgreSQL
                        "recipient_id": recipient_id,
                        "kind": "reminder",
                        "channel": "email",
                        "queue": "default",
                        "scheduled_at": now,
                        "status": "planned",
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(count)
                ],
            )
            .scalars()
            .all()
        )
    return list(ids)


def worker_env(app: App, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env.update(
        PLANNER_DATABASE_URL=app.settings.database_url,
        PLANNER_REDIS_URL=app.settings.redis_url or "",
        PLANNER_EMAIL_ADAPTER="smtp",
        PLANNER_SMTP_HOST="127.0.0.1",
        PLANNER_SMTP_PORT=str(smtp_port),
        PLANNER_SMTP_SECURITY="none",
        PLANNER_SMTP_FROM_ADDRESS="planner@example.com",
        PLANNER_PUBLIC_BASE_URL="https://planner.example.com",
        PLANNER_SIGNING_SECRET="crash-suite-signing-secret",
        PLANNER_SENDING_LEASE="PT3S",
        PLANNER_SMTP_TIMEOUT="1",
        PLANNER_MAX_CLOCK_SKEW="0s",
        PLANNER_LOG_FORMAT="json",
    )
    return env


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "planner.cli", "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def statuses(app: App) -> Counter[str]:
    with app.sessions() as session:
        return Counter(session.scalars(select(Delivery.status)))


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_worker_killed_mid_send_is_recovered_by_another_worker(
    pg_app: App, smtp: tuple[StallingSmtp, int]
) -> None:
    handler, port = smtp
    now = datetime.now(UTC)
    [delivery_id] = add_due_deliveries(pg_app, 1, now)
    requeue(pg_app.sessions, pg_app.redis, [delivery_id], now)
    env = worker_env(pg_app, port)

    handler.stall.set()
    doomed = start_worker(env)
    try:
        assert handler.stalled.wait(30), "the first worker never reached the SMTP server"
        assert statuses(pg_app) == Counter({"sending": 1})
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    finally:
        doomed.kill()
        doomed.wait()
        if doomed.stderr:
            doomed.stderr.close()
    handler.stall.clear()

    rescuer = start_worker(env, "--recovery-interval", "1")
    try:
        wait_for(
            lambda: statuses(pg_app) == Counter({"sent": 1}), 30, "the delivery to be recovered and sent"
        )
        with pg_app.sessions() as session:
            sent = session.get(Delivery, delivery_id)
            assert sent is not None and sent.attempts == 2
            timeline = [e["event"] for e in queries.timeline(session, delivery_id)]
        # Recovered by the service's own lease expiry (3 s here), not by RQ's abandoned-job timers.
        assert timeline[-2:] == ["lease_expired", "sent"]
        # At most one more provider call, and it carries the same Message-ID.
        assert len(handler.received) == 2 and len(set(handler.received)) == 1
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(20) == 0, "SIGTERM is a warm shutdown"
    finally:
        rescuer.kill()
        rescuer.wait()
        if rescuer.stderr:
            rescuer.stderr.close()


def test_duplicate_jobs_and_two_worker_processes_send_each_delivery_once(
    pg_app: App, smtp: tuple[StallingSmtp, int]
) -> None:
    handler, port = smtp
    now = datetime.now(UTC)
    ids = add_due_deliveries(pg_app, 40, now)
    # Every delivery travels in two different jobs, as after a reconcile race or a redrive.
    requeue(pg_app.sessions, pg_app.redis, ids, now, batch_size=7)
    requeue(pg_app.sessions, pg_app.redis, ids, now, batch_size=11)
    env = worker_env(pg_app, port)
    workers = [start_worker(env, "--burst") for _ in range(2)]
    try:
        for worker in workers:
            assert worker.wait(60) == 0
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
            if worker.stderr:
                worker.stderr.close()
    assert statuses(pg_app) == Counter({"sent": 40})
    assert len(handler.received) == 40 and len(set(handler.received)) == 40


def test_database_unreachable_while_sending_marks_nothing_sent(pg_app: App, pg: PostgresServer) -> None:
    dbname = pg_app.settings.database_url.rsplit("/", 1)[1]
    now = datetime.now(UTC)
    [delivery_id] = add_due_deliveries(pg_app, 1, now)
    capture = CaptureAdapter()

    def database_goes_away(message: Message) -> None:
        if len(capture.attempts) == 1:
            with pg._admin() as admin:
                admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS false')
            pg.terminate_backends(dbname)

    capture.fail_with = database_goes_away
    deliverer = build_deliverer(pg_app, adapters={"email": capture, "sms": capture})
    with pytest.raises(OperationalError, match=r"(?i)connection|terminat|not currently accepting|closed"):
        deliverer.deliver_batch([delivery_id])
    with pg._admin() as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS true')
    assert statuses(pg_app) == Counter({"sending": 1}), "nothing is marked sent that was not recorded"

    later = now + pg_app.settings.sending_lease + timedelta(seconds=1)
    assert recover_expired_leases(pg_app.sessions, pg_app.redis, later, retry_policy(pg_app.settings)) == 1
    deliverer.clock = lambda: later
    assert deliverer.deliver_batch([delivery_id]).sent == 1
    assert statuses(pg_app) == Counter({"sent": 1})
    assert len({m.message_id for m in capture.attempts}) == 1 and len(capture.attempts) == 2
