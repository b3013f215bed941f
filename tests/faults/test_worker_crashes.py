"""Workers killed (SIGKILL) or stopped (SIGTERM) at chosen points, against a real SMTP server.

The SMTP server itself kills the worker at the chosen point (at MAIL FROM, or on receiving message N
before it answers), so each case is deterministic. A rescuer worker then recovers the expired lease.
The bound checked at the server: at most one extra send per kill, each with the same Message-ID.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import redis

from planner.app import App
from tests.faults.harness import (
    Child,
    add_deliveries,
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


def _kill_at(victim: list[Child], n: int) -> Callable[[int], None]:
    """A server hook that SIGKILLs the worker on the n-th event, before the server answers it."""

    def hook(count: int) -> None:
        if count == n:
            wait_for(lambda: victim, "the worker to be registered")
            victim[0].kill()

    return hook


def _doomed(env: dict[str, str], tmp_path: Path, children: list[Child]) -> Child:
    doomed = start(env, tmp_path / "doomed.log", "worker", "--burst")
    children.append(doomed)
    return doomed


def _rescue(app: App, env: dict[str, str], tmp_path: Path, children: list[Child], total: int) -> None:
    """A second worker recovers expired leases (every 0.2 s) and sends what is left."""
    rescuer = start(env, tmp_path / "rescuer.log", "worker", "--recovery-interval", "0.2")
    children.append(rescuer)
    wait_for(lambda: statuses(app)["sent"] == total, "every delivery to be sent by the rescuer")
    rescuer.popen.send_signal(signal.SIGTERM)
    assert rescuer.wait() == 0, rescuer.output()


def test_sigkill_after_claim_before_any_send_costs_nothing(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    ids = add_deliveries(any_app, [("email", f"u{i}@example.com") for i in range(5)])
    enqueue(any_app, ids)
    env = process_env(any_app, smtp_port=port)
    victim: list[Child] = []
    handler.on_mail = _kill_at(victim, 1)
    victim.append(doomed := _doomed(env, tmp_path, children))
    wait_for(lambda: doomed.popen.poll() is not None, "the worker to be killed at its first MAIL FROM")
    assert statuses(any_app) == {"sending": 5}, "claimed, never recorded"
    assert not handler.received
    handler.on_mail = None
    _rescue(any_app, env, tmp_path, children, total=5)
    assert_each_sent_once_at_most_plus(any_app, handler.count(), extra=0, message_id=message_id)
    assert {d.attempts for d in rows(any_app).values()} == {2}, "the killed claim stays counted"


def test_sigkill_after_the_provider_accepted_before_the_outcome_costs_one_repeat(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    [delivery_id] = add_deliveries(any_app, [("email", "ann@example.com")])
    enqueue(any_app, [delivery_id])
    env = process_env(any_app, smtp_port=port)
    victim: list[Child] = []
    handler.on_data = _kill_at(victim, 1)
    victim.append(doomed := _doomed(env, tmp_path, children))
    wait_for(lambda: doomed.popen.poll() is not None, "the worker to be killed as its message is accepted")
    assert doomed.popen.returncode == -signal.SIGKILL
    assert statuses(any_app) == {"sending": 1} and sum(handler.count().values()) == 1
    handler.on_data = None
    _rescue(any_app, env, tmp_path, children, total=1)
    received = handler.count()
    assert_each_sent_once_at_most_plus(any_app, received, extra=1, message_id=message_id)
    assert list(received.values()) == [2], "the one message in flight went out again, same Message-ID"


def test_sigkill_mid_batch_costs_at_most_the_message_in_flight(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    ids = add_deliveries(any_app, [("email", f"u{i}@example.com") for i in range(30)])
    enqueue(any_app, ids, batch_size=100)
    env = process_env(any_app, smtp_port=port)
    victim: list[Child] = []
    handler.on_data = _kill_at(victim, 12)
    victim.append(doomed := _doomed(env, tmp_path, children))
    wait_for(lambda: doomed.popen.poll() is not None, "the worker to be killed at message 12")
    before = statuses(any_app)
    # Eleven outcomes were durable before the twelfth send started; only the twelfth is unknown.
    assert before["sent"] == 11 and before["sending"] >= 1, before
    handler.on_data = None
    _rescue(any_app, env, tmp_path, children, total=30)
    received = handler.count()
    assert_each_sent_once_at_most_plus(any_app, received, extra=1, message_id=message_id)
    assert sum(received.values()) == 31
    assert_nothing_sending(any_app)


def test_sigterm_mid_batch_finishes_the_message_and_hands_the_rest_back(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    ids = add_deliveries(pg_app, [("email", f"u{i}@example.com") for i in range(20)])
    enqueue(pg_app, ids)
    env = process_env(pg_app, smtp_port=port)
    victim: list[Child] = []

    def stop_at_five(count: int) -> None:
        if count == 5:
            wait_for(lambda: victim, "the worker to be registered")
            victim[0].popen.send_signal(signal.SIGTERM)

    handler.on_data = stop_at_five
    worker = start(env, tmp_path / "worker.log", "worker")
    children.append(worker)
    victim.append(worker)
    assert worker.wait() == 0, worker.output()
    after = rows(pg_app)
    # The message in flight finished; the other fifteen went back at once, their attempt refunded.
    assert statuses(pg_app) == {"sent": 5, "queued": 15}
    assert {(d.reason, d.attempts) for d in after.values() if d.status == "queued"} == {("worker_stopped", 0)}
    assert sum(handler.count().values()) == 5
    handler.on_data = None
    rescuer = start(env, tmp_path / "next.log", "worker", "--burst")
    children.append(rescuer)
    assert rescuer.wait() == 0, rescuer.output()
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)


def _waiting_on_queues(connection: redis.Redis) -> list[dict[str, object]]:
    """Redis clients blocked waiting for a job (a worker between jobs)."""
    return [c for c in connection.client_list() if c.get("cmd") in ("blpop", "blmove", "brpoplpush")]


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries ``marker`` (a worker and anything it forked)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    return found


def test_a_worker_killed_between_jobs_leaves_nothing_behind_that_takes_the_next_job(
    pg_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    # RQ's forked scheduler process used to outlive a SIGKILLed worker holding the worker's Redis
    # socket, still blocked in BLPOP: Redis handed it the next job pushed, and that job was lost
    # (its hash said `queued`, so the reconcile saw nothing missing).
    handler, port = smtp
    marker = f"FAULT_TEST_WORKER={uuid.uuid4().hex}"
    key, _, value = marker.partition("=")
    env = process_env(pg_app, smtp_port=port) | {key: value}
    idle = start(env, tmp_path / "idle.log", "worker", "--recovery-interval", "30")
    children.append(idle)
    connection = redis.Redis.from_url(pg_app.settings.redis_url)
    wait_for(lambda: _waiting_on_queues(connection), "the worker to wait on its queues")
    idle.kill()
    wait_for(lambda: not _waiting_on_queues(connection), "the killed worker's Redis connections to close", 15)
    assert _processes_with(marker) == [], "a process of the killed worker is still running"
    ids = add_deliveries(pg_app, [("email", "next@example.com")])
    enqueue(pg_app, ids)
    _rescue(pg_app, env, tmp_path, children, total=1)
    assert_each_sent_once_at_most_plus(pg_app, handler.count(), extra=0, message_id=message_id)
