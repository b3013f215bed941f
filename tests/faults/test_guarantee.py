"""The delivery guarantee where providers and workers are slow: deadlines, unknown outcomes, fencing.

Real ``planner worker`` processes send to a real SMTP server (aiosmtpd) and a loopback Messages API;
every send is counted at the server. The bound each case checks: at most one extra copy per delivery
per fault, and no delivery whose recorded outcome contradicts what the server accepted.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from planner.app import App
from planner.core.job_batches import JobBatch
from planner.dispatch.outbox import enqueue_batches
from planner.store.tables import DELIVERY_EVENTS
from tests.faults.harness import (
    Child,
    add_deliveries,
    assert_nothing_sending,
    enqueue,
    message_id,
    process_env,
    rows,
    start,
    statuses,
    wait_for,
)
from tests.faults.servers import FaultSmtp, running_sms

#: Unknown outcomes wait this long before their one further attempt (the default is 15 minutes).
UNKNOWN_WAIT = {"PLANNER_UNKNOWN_OUTCOME_DELAY": "1s"}


def _events(app: App, event: str) -> list[dict[str, object]]:
    with app.sessions() as session:
        found = session.execute(select(DELIVERY_EVENTS).where(DELIVERY_EVENTS.c.event == event)).all()
    return [dict(row._mapping) for row in found]


def _burst_until(
    app: App, env: dict[str, str], tmp_path: Path, children: list[Child], done: Callable[[], bool]
) -> None:
    """Burst workers, one after the other, until ``done()`` holds (retries come due between them)."""
    deadline = time.monotonic() + 60
    while not done():
        assert time.monotonic() < deadline, statuses(app)
        worker = start(env, tmp_path / "burst.log", "worker", "--burst")
        children.append(worker)
        assert worker.wait() == 0, worker.output()
        time.sleep(0.3)


def test_a_slow_smtp_server_gets_at_most_two_copies(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    """The server accepts 2.5 s after the message, past the 1 s deadline: the outcome is unknown, one
    more attempt follows after the wait, and then the delivery is dead, never a third copy."""
    handler, port = smtp
    handler.on_data = lambda n: time.sleep(2.5)
    [delivery_id] = add_deliveries(any_app, [("email", "slow@example.com")])
    enqueue(any_app, [delivery_id])
    env = process_env(any_app, smtp_port=port, **UNKNOWN_WAIT)
    _burst_until(any_app, env, tmp_path, children, lambda: rows(any_app)[delivery_id].status == "dead")
    dead = rows(any_app)[delivery_id]
    assert (dead.reason, dead.attempts) == ("outcome_unknown", 2)
    assert handler.to("slow@example.com") == 2, "one extra copy at most"
    assert len(_events(any_app, "outcome_unknown")) == 1


def test_a_slow_sms_provider_is_looked_up_before_a_second_send(
    any_app: App, tmp_path: Path, children: list[Child]
) -> None:
    """The Messages API accepts after the deadline: the retry asks the provider first, finds the
    message and records it sent, with the provider's id, without posting it again."""
    with running_sms() as server:
        slow = "+15005550777"
        [delivery_id] = add_deliveries(any_app, [("sms", slow)])
        enqueue(any_app, [delivery_id])
        server.slow_seconds = 2.5
        env = process_env(any_app, sms_url=server.base_url, **UNKNOWN_WAIT)
        _burst_until(any_app, env, tmp_path, children, lambda: rows(any_app)[delivery_id].status == "sent")
        sent = rows(any_app)[delivery_id]
        assert server.to(slow) == 1, "never posted twice"
        assert server.accepted == [slow]
        assert sent.provider_message_id == server.sids_given[0]
        assert len(_events(any_app, "found_by_lookup")) == 1


def _stalled_then_resumed(
    app: App,
    handler: FaultSmtp,
    env: dict[str, str],
    tmp_path: Path,
    children: list[Child],
    late_reply: str,
) -> int:
    """Worker A hands message 1 to the server and is frozen (SIGSTOP) before the answer; its lease
    runs out, worker B recovers the delivery and sends it (accepted); then A wakes and gets
    ``late_reply``. Returns the delivery's id."""
    [delivery_id] = add_deliveries(app, [("email", "late@example.com")])
    enqueue(app, [delivery_id])
    first: list[Child] = []
    sent_by_b = threading.Event()
    replies = {1: late_reply}

    def freeze_first(n: int) -> None:
        if n == 1:
            wait_for(lambda: first, "worker A")
            os.kill(first[0].pid, signal.SIGSTOP)
            rescuer = start(env, tmp_path / "b.log", "worker", "--recovery-interval", "0.2")
            children.append(rescuer)
            assert sent_by_b.wait(60), rescuer.output()
            os.kill(first[0].pid, signal.SIGCONT)
        elif n == 2:
            threading.Timer(0.5, sent_by_b.set).start()

    handler.on_data = freeze_first
    handler.replies_by_count = replies
    worker_a = start(env, tmp_path / "a.log", "worker", "--burst")
    first.append(worker_a)
    children.append(worker_a)
    worker_a.wait()
    wait_for(lambda: rows(app)[delivery_id].status == "sent", "worker B's send")
    wait_for(lambda: _events(app, "stale_outcome"), "worker A's late answer on the timeline")
    return delivery_id


def _check_stale(app: App, handler: FaultSmtp, delivery_id: int) -> None:
    row = rows(app)[delivery_id]
    assert (row.status, row.reason) == ("sent", None), "the server accepted B's copy"
    assert handler.to("late@example.com") == 2, "one extra copy: the one A had in flight"
    [stale] = _events(app, "stale_outcome")
    assert stale["delivery_id"] == delivery_id and stale["status"] is None


def test_a_stale_workers_late_refusal_does_not_kill_an_accepted_message(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    env = process_env(any_app, smtp_port=port)
    delivery_id = _stalled_then_resumed(any_app, handler, env, tmp_path, children, "554 5.7.1 Rejected late")
    _check_stale(any_app, handler, delivery_id)


def test_a_stale_workers_late_tempfail_and_late_acceptance_change_nothing(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    handler, port = smtp
    env = process_env(any_app, smtp_port=port)
    delivery_id = _stalled_then_resumed(any_app, handler, env, tmp_path, children, "451 4.3.0 Try later")
    _check_stale(any_app, handler, delivery_id)
    assert rows(any_app)[delivery_id].attempts == 2


def test_a_stalled_worker_stopped_hands_back_only_what_it_still_holds(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    """Worker A claims 30, sends one and freezes; B recovers and sends all 30; A wakes and is told to
    stop: its hand-back must not take B's rows. 31 copies at most (the one A had in flight)."""
    handler, port = smtp
    ids = add_deliveries(any_app, [("email", f"s{i}@example.com") for i in range(30)])
    enqueue(any_app, ids)
    env = process_env(any_app, smtp_port=port)
    first: list[Child] = []
    b_done = threading.Event()

    def freeze_first(n: int) -> None:
        if n == 1:
            wait_for(lambda: first, "worker A")
            os.kill(first[0].pid, signal.SIGSTOP)
            rescuer = start(env, tmp_path / "b.log", "worker", "--recovery-interval", "0.2")
            children.append(rescuer)
            wait_for(lambda: statuses(any_app)["sent"] == 30, "B to send every delivery")
            b_done.set()

    handler.on_data = freeze_first
    worker_a = start(env, tmp_path / "a.log", "worker")
    first.append(worker_a)
    children.append(worker_a)
    assert b_done.wait(90)
    os.kill(worker_a.pid, signal.SIGCONT)
    worker_a.popen.send_signal(signal.SIGTERM)
    assert worker_a.wait() == 0, worker_a.output()
    time.sleep(1)
    assert statuses(any_app) == Counter({"sent": 30})
    received = handler.count()
    assert set(received) == {message_id(d) for d in rows(any_app).values()}
    assert sum(received.values()) <= 31, received
    assert_nothing_sending(any_app)


def test_calls_longer_than_a_third_of_the_lease_are_sent_once(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    """Each call takes most of the deadline (1.2 s of 1.4 s) against a 3 s lease, while another worker
    recovers expired leases every 0.2 s: the sender renews before each call, so nothing is recovered."""
    handler, port = smtp
    handler.on_data = lambda n: time.sleep(1.2)
    ids = add_deliveries(any_app, [("email", f"long{i}@example.com") for i in range(4)])
    env = process_env(any_app, smtp_port=port, PLANNER_SENDING_LEASE="PT3S", PLANNER_SMTP_TIMEOUT="1.4")
    watcher = start(env, tmp_path / "watcher.log", "worker", "--queues", "bulk", "--recovery-interval", "0.2")
    children.append(watcher)
    enqueue(any_app, ids)
    sender = start(env, tmp_path / "sender.log", "worker", "--burst")
    children.append(sender)
    assert sender.wait() == 0, sender.output()
    assert statuses(any_app) == Counter({"sent": 4})
    assert handler.count() == Counter({message_id(d): 1 for d in rows(any_app).values()})
    assert not _events(any_app, "lease_expired")


def test_a_duplicate_job_never_sends_a_retry_early(
    any_app: App, smtp: tuple[FaultSmtp, int], tmp_path: Path, children: list[Child]
) -> None:
    """A delivery waits to retry in a minute; a duplicate of its job (a requeue, a reconcile race) and
    a job of another id run now: neither sends it before its time."""
    handler, port = smtp
    [delivery_id] = add_deliveries(any_app, [("email", "retry@example.com")])
    now = datetime.now(UTC)
    retry_at = now + timedelta(minutes=1)
    with any_app.sessions() as session, session.begin():
        from planner.store.tables import DELIVERIES

        session.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.id == delivery_id)
            .values(
                status="retrying",
                reason="transient_failure",
                scheduled_at=retry_at,
                job_id="dlv-retry",
                attempts=1,
            )
        )
    early = [
        JobBatch("dlv-retry", "default", "email", now, (delivery_id,)),
        JobBatch("dlv-other", "default", "email", now, (delivery_id,)),
    ]
    enqueue_batches(any_app.redis, early, now)
    env = process_env(any_app, smtp_port=port)
    worker = start(env, tmp_path / "early.log", "worker", "--burst")
    children.append(worker)
    assert worker.wait() == 0, worker.output()
    assert handler.to("retry@example.com") == 0, "nothing before the retry's time"
    assert rows(any_app)[delivery_id].status == "retrying"
    # Its time comes (moved to now rather than waited for): its own job sends it, once.
    with any_app.sessions() as session, session.begin():
        session.execute(
            DELIVERIES.update().where(DELIVERIES.c.id == delivery_id).values(scheduled_at=datetime.now(UTC))
        )
    enqueue(any_app, [delivery_id])
    worker = start(env, tmp_path / "due.log", "worker", "--burst")
    children.append(worker)
    assert worker.wait() == 0, worker.output()
    assert handler.to("retry@example.com") == 1
    assert rows(any_app)[delivery_id].status == "sent"
