"""Requeue all the dead and retrying deliveries a filter matches: the dashboard's "requeue all",
through the command the CLI and the API use for one; on both databases and real Redis."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from adapters import Message, TransientError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.commands import delivery_actions
from planner.errors import InvalidInput
from planner.store.queries import DeliveryFilter
from planner.store.tables import AUDIT
from tests.commands.test_ops import add_recipient, dead_email, delivery, due_email


def retrying_email(app: App, kind: str) -> int:
    delivery_id = due_email(app, kind)

    def later(_message: Message) -> None:
        raise TransientError("421 try later")

    adapter = CaptureAdapter(fail_with=later)
    build_deliverer(app, adapters={"email": adapter, "sms": adapter}).deliver_batch([delivery_id])
    assert delivery(app, delivery_id)["status"] == "retrying"
    return delivery_id


def test_requeue_the_matching_dead_and_retrying_only(app: App, redis_conn: redis.Redis) -> None:
    add_recipient(app)
    dead_reminder, dead_digest = dead_email(app, "reminder"), dead_email(app, "weekly_digest")
    retrying_reminder = retrying_email(app, "reminder")
    pending = due_email(app, "reminder")
    reminders = DeliveryFilter(kind="reminder")
    assert delivery_actions.count_retryable(app, reminders) == 2

    result = delivery_actions.retry_matching(app, reminders, app.clock(), actor="night-ops")

    assert result.requeued == [dead_reminder, retrying_reminder]
    for delivery_id, event in ((dead_reminder, "redriven"), (retrying_reminder, "retry_now")):
        after = delivery(app, delivery_id)
        assert after["status"] == "queued" and redis_conn.exists(f"rq:job:{after['job_id']}")
        last = after["timeline"][-1]
        assert (last["event"], last["detail"]["actor"]) == (event, "night-ops")
    assert delivery(app, dead_reminder)["attempts"] == 0  # a fresh budget for the dead one
    assert delivery(app, dead_digest)["status"] == "dead"
    assert delivery(app, pending)["status"] == "queued"
    with app.sessions() as session:
        (entry,) = session.execute(select(AUDIT)).all()
    assert (entry.actor, entry.action) == ("night-ops", "deliveries_requeued")
    assert entry.detail == {"filter": {"kind": "reminder"}, "requeued": 2}
    assert delivery_actions.count_retryable(app, reminders) == 0


def test_a_status_filter_narrows_and_other_statuses_are_refused(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_recipient(app)
    dead = [dead_email(app, "reminder") for _ in range(3)]
    retrying_email(app, "reminder")
    monkeypatch.setattr(delivery_actions, "MAX_REQUEUE", 2)
    only_dead = DeliveryFilter(status="dead")
    assert delivery_actions.count_retryable(app, only_dead) == 3
    assert delivery_actions.retry_matching(app, only_dead, app.clock(), "ops").requeued == dead[:2]
    assert delivery_actions.retry_matching(app, only_dead, app.clock(), "ops").requeued == dead[2:]
    for status in ("sent", "queued"):
        with pytest.raises(InvalidInput, match="status"):
            delivery_actions.retry_matching(app, DeliveryFilter(status=status), app.clock(), "ops")
