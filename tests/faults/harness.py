"""Real processes for the fault suite: ``planner worker`` / ``planner run`` / ``planner cron`` children,
deliveries put straight into the database, and the end-state checks every case makes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import insert, select

from planner.app import App
from planner.delivery.message import message_id_for
from planner.dispatch.reassign import requeue
from planner.store.models import Delivery, Recipient
from tests.faults.servers import ACCOUNT_SID, AUTH_TOKEN, LOOPBACK
from tests.servers import free_port

#: Short leases, so a killed worker's deliveries come back within a second or two.
LEASE_SECONDS = 2
#: Every wait in the suite is bounded by this; a case that needs longer is broken. Generous: a
#: healthy step takes seconds, but on a machine busy with other work a process start can take ten.
STEP_TIMEOUT = 90.0


@contextmanager
def serving_api(app: App) -> Iterator[httpx.Client]:
    """``planner serve``'s HTTP API for ``app`` on a loopback port (uvicorn in a thread)."""
    from planner.api import create_api

    port = free_port()
    config = uvicorn.Config(create_api(app), host=LOOPBACK, port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start")
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT) -> None:
    """Poll ``condition`` (a state in the database or a server) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def process_env(
    app: App, *, smtp_port: int | None = None, sms_url: str | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a child ``planner`` process on the test's database, Redis and servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env.update(
        PLANNER_DATABASE_URL=app.settings.database_url,
        PLANNER_REDIS_URL=app.settings.redis_url or "",
        PLANNER_SENDING_LEASE=f"PT{LEASE_SECONDS}S",
        # One host: no clock skew to allow for, so a short lease still covers the 1 s provider deadline.
        PLANNER_MAX_CLOCK_SKEW="0s",
        PLANNER_LOG_FORMAT="json",
        PLANNER_QUIET_HOURS_SMS="",
        PLANNER_RATE_LIMIT_EMAIL="10000/second",
        PLANNER_RATE_LIMIT_SMS="10000/second",
        PLANNER_EMAIL_ADAPTER="console",
        PLANNER_SMS_ADAPTER="console",
    )
    if smtp_port is not None:
        env.update(
            PLANNER_EMAIL_ADAPTER="smtp",
            PLANNER_SMTP_HOST=LOOPBACK,
            PLANNER_SMTP_PORT=str(smtp_port),
            PLANNER_SMTP_SECURITY="none",
            PLANNER_SMTP_FROM_ADDRESS="planner@example.com",
            PLANNER_SMTP_TIMEOUT="1",
            PLANNER_PUBLIC_BASE_URL="https://planner.example.com",
            PLANNER_SIGNING_SECRET="fault-suite-signing-secret",
        )
    if sms_url is not None:
        env.update(
            PLANNER_SMS_ADAPTER="twilio",
            PLANNER_TWILIO_ACCOUNT_SID=ACCOUNT_SID,
            PLANNER_TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            PLANNER_TWILIO_FROM_NUMBER="+15005550006",
            PLANNER_TWILIO_BASE_URL=sms_url,
            PLANNER_TWILIO_TIMEOUT="1",
        )
    env.update(extra)
    return env


@dataclass
class Child:
    """A ``python -m planner.cli ...`` child; its output goes to a file (a full pipe would block it)."""

    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def kill(self) -> None:
        """SIGKILL and reap: when this returns the process is gone, mid-whatever it was doing."""
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(STEP_TIMEOUT)

    def wait(self, timeout: float = STEP_TIMEOUT) -> int:
        return self.popen.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Teardown: whatever state the process is in, it is gone afterwards."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait()
        if self.popen.stdin is not None:
            self.popen.stdin.close()


def start(env: Mapping[str, str], log: Path, *args: str) -> Child:
    """Start ``planner ARGS``; its output goes to ``log`` (``log-2``, ... when that name is taken)."""
    stem, n = log.stem, 1
    while log.exists():
        n += 1
        log = log.with_name(f"{stem}-{n}{log.suffix}")
    handle = log.open("xb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "planner.cli", *args],
        env=dict(env),
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    handle.close()
    return Child(popen, log)


def add_deliveries(app: App, addresses: Iterable[tuple[str, str]], *, kind: str = "reminder") -> list[int]:
    """One recipient and one due delivery per (channel, address), status ``planned``; returns ids."""
    now = datetime.now(UTC)
    pairs = list(addresses)
    with app.sessions() as session, session.begin():
        recipient_ids = session.execute(
            insert(Recipient).returning(Recipient.id, sort_by_parameter_order=True),
            [
                {
                    "external_id": f"r{i}-{address}",
                    "timezone": "UTC",
                    "email": address if channel == "email" else None,
                    "phone": address if channel == "sms" else None,
                    "email_opt_out": False,
                    "sms_opt_out": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, (channel, address) in enumerate(pairs)
            ],
        ).scalars()
        ids = session.execute(
            insert(Delivery).returning(Delivery.id),
            [
                {
                    "dedup_key": f"fault:{rid}",
                    "local_date": now.date(),  # the month partition on PostgreSQL
                    "recipient_id": rid,
                    "kind": kind,
                    "channel": channel,
                    "queue": "default",
                    "occurrence_at": now,
                    "scheduled_at": now,
                    "status": "planned",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for rid, (channel, _) in zip(list(recipient_ids), pairs, strict=True)
            ],
        ).scalars()
        return sorted(ids)


def enqueue(app: App, ids: list[int], batch_size: int = 100) -> None:
    """Hand deliveries to RQ the way every path does (:func:`planner.dispatch.reassign.requeue`)."""
    requeue(app.sessions, app.redis, ids, datetime.now(UTC), batch_size=batch_size)


def rows(app: App) -> dict[int, Delivery]:
    with app.sessions() as session:
        return {d.id or 0: d for d in session.scalars(select(Delivery).order_by(Delivery.id))}


def statuses(app: App) -> Counter[str]:
    return Counter(d.status for d in rows(app).values())


def recipient_of(app: App, delivery_id: int) -> Recipient:
    with app.sessions() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        recipient = session.get(Recipient, delivery.recipient_id)
        assert recipient is not None
        return recipient


def assert_nothing_sending(app: App) -> None:
    """No delivery is left ``sending`` once every lease has had time to expire and be recovered."""
    left = [d.id for d in rows(app).values() if d.status == "sending"]
    assert not left, f"deliveries still sending: {left}"


def assert_each_sent_once_at_most_plus(
    app: App, received: Counter[str], *, extra: int, message_id: Callable[[Delivery], str]
) -> None:
    """Every delivery is ``sent``, the server saw each at least once, and the copies beyond one per
    delivery are at most ``extra`` (one per crash), each a repeat of the same Message-ID."""
    deliveries = rows(app)
    statuses = Counter(d.status for d in deliveries.values())
    unsent = sorted((d.id, d.status, d.reason) for d in deliveries.values() if d.status != "sent")
    assert statuses == Counter({"sent": len(deliveries)}), (statuses, unsent[:5])
    wanted = {message_id(d) for d in deliveries.values()}
    assert set(received) == wanted, "the server received exactly the deliveries' Message-IDs"
    duplicates = sum(received.values()) - len(wanted)
    assert duplicates <= extra, f"{duplicates} duplicate sends at the server (allowed {extra})"


def message_id(d: Delivery) -> str:
    """The Message-ID a delivery is sent with on every attempt."""
    return message_id_for(d.id or 0, d.dedup_key)
