"""A worker killed (SIGKILL) in the middle of posting webhooks, with real ``planner worker``
processes and a real receiver that verifies every request (tests/webhook_receiver.py).

The receiver holds the requests it gets until the test has killed the worker that sent them; a
second worker then finds the messages due again once their lease is over and posts them. Counted at
the receiver: every event arrives, under the webhook-id it was emitted with, at most twice (the
copy the killed worker had in flight, and the one that was answered).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner.app import App
from planner.commands import webhooks
from tests.faults.harness import Child, add_deliveries, enqueue, process_env, start, statuses, wait_for
from tests.webhook_receiver import Receiver
from tests.webhook_support import outbox

EVENTS = 3


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    if started.hold is not None:
        started.hold.set()
    started.down()


def test_a_worker_killed_mid_post_loses_nothing_and_sends_each_event_at_most_twice(
    any_app: App, receiver: Receiver, tmp_path: Path, children: list[Child]
) -> None:
    any_app.settings.webhooks_allow_private = True
    created, secret = webhooks.register(any_app, receiver.url, ["delivery.sent"], now=any_app.clock())
    receiver.secrets.append(secret)
    receiver.hold = threading.Event()
    ids = add_deliveries(any_app, [("email", f"u{i}@example.com") for i in range(EVENTS)])
    enqueue(any_app, ids)
    env = process_env(any_app, PLANNER_WEBHOOKS_ALLOW_PRIVATE="1", PLANNER_WEBHOOKS_TIMEOUT="2s")

    doomed = start(env, tmp_path / "doomed.log", "worker", "--recovery-interval", "0.2")
    children.append(doomed)
    wait_for(lambda: len(receiver.held) == EVENTS, "the worker's webhook posts to reach the receiver")
    doomed.kill()
    assert statuses(any_app) == {"sent": EVENTS}
    assert {row["status"] for row in outbox(any_app)} == {"sending"}, "claimed, no answer recorded"
    receiver.hold.set()  # the held handlers answer a dead socket
    receiver.hold = None

    rescuer = start(env, tmp_path / "rescuer.log", "worker", "--recovery-interval", "0.2")
    children.append(rescuer)
    wait_for(
        lambda: {row["status"] for row in outbox(any_app)} == {"delivered"},
        "every event to be delivered by the second worker",
    )
    rescuer.popen.send_signal(signal.SIGTERM)
    assert rescuer.wait() == 0, rescuer.output()

    emitted = {row["msg_id"] for row in outbox(any_app)}
    received = receiver.ids()
    assert receiver.rejected == []
    assert len(emitted) == EVENTS and set(received) == emitted, "every event, under its own webhook-id"
    assert all(1 <= n <= 2 for n in received.values()), received
    assert [row["attempts"] for row in outbox(any_app)] == [2] * EVENTS, "the killed attempt is counted"
    assert created["id"] == 1
