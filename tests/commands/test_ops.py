"""Operator actions on real databases and Redis: redrive dead letters, cancel, pause/resume, engagement."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from sqlalchemy import select
from typer.testing import CliRunner

from adapters import Message, PermanentError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.cli import app as cli_app
from planner.commands import delivery_actions, engagement, pauses
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.core.status import DeliveryStatus
from planner.delivery.deliverer import Deliverer
from planner.errors import InvalidInput, NotFound, StateConflict
from planner.store.models import EngagementEvent
from planner.store.queries import get_delivery


def add_recipient(app: App, external_id: str = "u-1", timezone: str = "UTC", **fields: Any) -> None:
    """A recipient with an email address and a phone number, and no subscriptions unless given."""
    line = {
        "type": "recipient",
        "id": external_id,
        "timezone": timezone,
        "email": f"{external_id}@example.com",
        "phone": "+12125550100",
        **fields,
    }
    import_lines(app.sessions, [json.dumps(line)], app.clock())


def deliverer(app: App, fail: bool = False) -> tuple[Deliverer, CaptureAdapter]:
    def permanent(_message: Message) -> None:
        raise PermanentError("mailbox full")

    capture = CaptureAdapter(fail_with=permanent if fail else None)
    return build_deliverer(app, adapters={"email": capture, "sms": capture}), capture


def delivery(app: App, delivery_id: int) -> dict[str, Any]:
    with app.sessions() as session:
        return get_delivery(session, delivery_id)


def due_email(app: App, kind: str = "reminder", recipient: str = "u-1") -> int:
    """An ad-hoc email due now (email has no default quiet hours, so the real clock is safe)."""
    result = notify(app, recipient, kind, "email", now=app.clock())
    assert result.outcome == "queued", result.message
    return int(result.delivery["id"])


def dead_email(app: App, kind: str = "reminder") -> int:
    delivery_id = due_email(app, kind)
    failing, _ = deliverer(app, fail=True)
    assert failing.deliver_batch([delivery_id]).dead == 1
    return delivery_id


def test_retry_redrives_a_dead_letter_with_a_fresh_job_and_budget(app: App, redis_conn: redis.Redis) -> None:
    add_recipient(app)
    delivery_id = dead_email(app)
    before = delivery(app, delivery_id)
    assert (before["status"], before["reason"], before["attempts"]) == ("dead", "permanent_failure", 1)

    result = delivery_actions.retry(app, delivery_id, app.clock())

    assert result.requeued == [delivery_id]
    after = delivery(app, delivery_id)
    assert (after["status"], after["reason"], after["attempts"]) == ("queued", None, 0)
    assert after["job_id"] == result.job_ids[delivery_id] != before["job_id"]
    assert redis_conn.exists(f"rq:job:{after['job_id']}")
    redriven = after["timeline"][-1]
    assert redriven["event"] == "redriven"
    assert redriven["detail"]["previous_attempts"] == 1
    assert redriven["detail"]["previous_status"] == "dead"

    working, capture = deliverer(app)
    assert working.deliver_batch([delivery_id]).sent == 1
    assert [m.delivery_id for m in capture.sent] == [delivery_id]
    assert delivery(app, delivery_id)["attempts"] == 1


def test_retry_all_dead_filters_by_kind_and_refuses_other_statuses(app: App) -> None:
    add_recipient(app)
    reminder = dead_email(app, "reminder")
    digest = dead_email(app, "weekly_digest")

    assert delivery_actions.retry_all_dead(app, app.clock(), kind="weekly_digest").requeued == [digest]
    assert delivery(app, reminder)["status"] == "dead"
    assert delivery_actions.retry_all_dead(app, app.clock()).requeued == [reminder]
    assert delivery_actions.retry_all_dead(app, app.clock()).requeued == []

    with pytest.raises(StateConflict, match="dead or retrying"):
        delivery_actions.retry(app, reminder, app.clock())
    with pytest.raises(NotFound):
        delivery_actions.retry(app, 999_999, app.clock())


def test_cancel_pending_only(app: App) -> None:
    add_recipient(app)
    pending = due_email(app)
    result = delivery_actions.cancel(app, pending, app.clock())
    assert result["status"] == "cancelled"
    row = delivery(app, pending)
    assert (row["status"], row["reason"]) == ("cancelled", "operator")
    assert row["timeline"][-1]["event"] == "cancelled"
    # The job still in RQ finds nothing to claim.
    working, capture = deliverer(app)
    assert working.deliver_batch([pending]).claimed == 0 and not capture.sent

    sent = due_email(app)
    working.deliver_batch([sent])
    with pytest.raises(StateConflict, match="cannot be cancelled"):
        delivery_actions.cancel(app, sent, app.clock())
    with pytest.raises(NotFound):
        delivery_actions.cancel(app, 999_999, app.clock())


def test_paused_deliveries_wait_and_go_out_on_resume(app: App, redis_conn: redis.Redis) -> None:
    add_recipient(app)
    add_recipient(app, "u-2")
    first, second = due_email(app), due_email(app, recipient="u-2")
    other_kind = due_email(app, "weekly_digest")
    assert pauses.pause(app, "email", app.clock())["changed"] is True
    assert pauses.pause(app, "email", app.clock())["changed"] is False
    pauses.pause(app, "weekly_digest", app.clock())

    working, capture = deliverer(app)
    report = working.deliver_batch([first, second, other_kind])
    assert report.waiting == 3 and not capture.sent
    for delivery_id in (first, second, other_kind):
        row = delivery(app, delivery_id)
        assert (row["status"], row["reason"], row["attempts"]) == ("queued", "paused", 0)

    result = pauses.resume(app, "email", app.clock())
    # The digest is still held by the pause on its kind.
    assert (result["changed"], result["requeued"]) == (True, 2)
    for delivery_id in (first, second):
        row = delivery(app, delivery_id)
        assert (row["status"], row["reason"]) == ("queued", None)
        assert row["timeline"][-1]["event"] == "resumed"
        assert redis_conn.exists(f"rq:job:{row['job_id']}")
    assert delivery(app, other_kind)["reason"] == "paused"

    assert working.deliver_batch([first, second]).sent == 2
    assert sorted(m.delivery_id for m in capture.sent) == [first, second]
    assert pauses.resume(app, "weekly_digest", app.clock())["requeued"] == 1
    assert working.deliver_batch([other_kind]).sent == 1

    with pytest.raises(InvalidInput) as bad:
        pauses.pause(app, "Fax Machine", app.clock())
    assert bad.value.field == "target"


def test_record_engagement(app: App) -> None:
    add_recipient(app)
    at = datetime(2026, 3, 1, 13, 5, tzinfo=UTC)
    result = engagement.record_engagement(app, "u-1", "clicked", at, app.clock(), kind="reminder")
    assert result["event"] == "clicked"
    with app.sessions() as session:
        stored = session.scalars(select(EngagementEvent)).one()
    assert (stored.event, stored.occurred_at, stored.kind) == ("clicked", at, "reminder")
    with pytest.raises(NotFound):
        engagement.record_engagement(app, "nobody", "opened", at, app.clock())
    with pytest.raises(InvalidInput) as bad:
        engagement.record_engagement(app, "u-1", "liked", at, app.clock())
    assert bad.value.field == "event"


def test_cli_show_retry_cancel_pause(cli: CliRunner, app: App) -> None:
    add_recipient(app)
    dead = dead_email(app)

    shown = cli.invoke(cli_app, ["deliveries", "show", str(dead), "--json"])
    assert shown.exit_code == 0, shown.stderr
    assert [e["event"] for e in json.loads(shown.stdout)["timeline"]] == ["planned", "dead"]
    table = cli.invoke(cli_app, ["deliveries", "show", str(dead)])
    assert table.exit_code == 0 and "timeline" in table.stdout

    retried = cli.invoke(cli_app, ["deliveries", "retry", str(dead)])
    assert retried.exit_code == 0, retried.stderr
    assert delivery(app, dead)["status"] == DeliveryStatus.queued
    assert cli.invoke(cli_app, ["deliveries", "retry", "--all-dead", "--kind", "reminder"]).exit_code == 0
    both = cli.invoke(cli_app, ["deliveries", "retry", str(dead), "--all-dead"])
    assert both.exit_code == 2 and "either a delivery ID or --all-dead" in both.stderr

    cancelled = cli.invoke(cli_app, ["deliveries", "cancel", str(dead)])
    assert cancelled.exit_code == 0, cancelled.stderr
    again = cli.invoke(cli_app, ["deliveries", "cancel", str(dead)])
    assert again.exit_code == 1 and "cannot be cancelled" in again.stderr
    missing = cli.invoke(cli_app, ["deliveries", "show", "999999"])
    assert missing.exit_code == 2 and "not found" in missing.stderr

    assert cli.invoke(cli_app, ["pause", "sms"]).exit_code == 0
    resumed = cli.invoke(cli_app, ["resume", "sms"])
    assert resumed.exit_code == 0 and "sms resumed" in resumed.stderr
    bad = cli.invoke(cli_app, ["pause", "Not A Kind"])
    assert bad.exit_code == 2 and "CHANNEL|KIND: 'Not A Kind' is invalid" in bad.stderr

    recorded = cli.invoke(cli_app, ["engagement", "record", "u-1", "opened", "--at", "2026-03-01T10:00:00Z"])
    assert recorded.exit_code == 0, recorded.stderr
    naive = cli.invoke(cli_app, ["engagement", "record", "u-1", "opened", "--at", "2026-03-01T10:00:00"])
    assert naive.exit_code == 2 and "--at" in naive.stderr
