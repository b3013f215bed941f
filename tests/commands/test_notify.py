"""Ad-hoc notifications go through the planner's rules: dedup, opt-out, caps, quiet hours, critical kinds."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.notify import notify
from planner.errors import InvalidInput, NotFound, StateConflict
from tests.commands.test_ops import add_recipient

# A Monday, 12:00 UTC: outside the default SMS quiet hours (21:00-08:00) in UTC.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_dedup_key_repeat_is_a_no_op(app: App, redis_conn: redis.Redis) -> None:
    add_recipient(app)
    first = notify(app, "u-1", "reminder", "email", now=NOW, dedup_key="order-42", data={"text": "hi"})
    assert (first.created, first.outcome) == (True, "queued")
    assert first.delivery["status"] == "queued" and first.delivery["queue"] == "default"
    assert redis_conn.exists(f"rq:job:{first.delivery['job_id']}")

    again = notify(app, "u-1", "reminder", "email", now=NOW + timedelta(minutes=1), dedup_key="order-42")
    assert (again.created, again.outcome) == (False, "duplicate")
    assert again.delivery["id"] == first.delivery["id"]
    assert "already used" in again.message

    with pytest.raises(StateConflict):
        notify(app, "u-1", "weekly_digest", "email", now=NOW, dedup_key="order-42")
    generated = notify(app, "u-1", "reminder", "email", now=NOW)
    assert generated.delivery["dedup_key"].startswith("adhoc:")


def test_concurrent_repeats_create_one_delivery(app: App) -> None:
    add_recipient(app)
    results = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        results.append(notify(app, "u-1", "reminder", "email", now=NOW, dedup_key="same"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len({r.delivery["id"] for r in results}) == 1


def test_sms_cap_suppresses_the_fourth(app: App) -> None:
    add_recipient(app)
    outcomes = [notify(app, "u-1", "reminder", "sms", now=NOW + timedelta(minutes=i)) for i in range(4)]
    assert [o.outcome for o in outcomes] == ["queued", "queued", "queued", "suppressed"]
    fourth = outcomes[3].delivery
    assert (fourth["status"], fourth["reason"], fourth["job_id"]) == ("suppressed", "frequency_cap", None)
    # Email has its own cap; a day later the SMS window has room again.
    assert notify(app, "u-1", "reminder", "email", now=NOW).outcome == "queued"
    assert notify(app, "u-1", "reminder", "sms", now=NOW + timedelta(days=1, minutes=1)).outcome == "queued"


def test_quiet_hours_defer_and_critical_kinds_bypass(app: App) -> None:
    app.settings.critical_kinds = ["password_reset"]
    add_recipient(app, timezone="America/New_York")
    # 03:00 UTC on 2026-03-10 is 23:00 EDT: inside 21:00-08:00, deferred to 08:00 EDT (12:00 UTC).
    late = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
    deferred = notify(app, "u-1", "reminder", "sms", now=late)
    assert deferred.outcome == "scheduled"
    assert deferred.delivery["scheduled_at"] == "2026-03-10T12:00:00+00:00"
    assert deferred.delivery["reason"] == "quiet_hours_deferred"

    for minute in range(3):
        notify(app, "u-1", "reminder", "sms", now=late + timedelta(minutes=minute))
    critical = notify(app, "u-1", "password_reset", "sms", now=late, data={"code": "123456"}, priority="high")
    assert critical.outcome == "queued"
    assert critical.delivery["scheduled_at"] == late.isoformat()
    assert critical.delivery["queue"] == "high"


def test_opt_out_missing_address_and_bad_input(app: App) -> None:
    add_recipient(app, opt_out=["sms"])
    line = {"type": "recipient", "id": "no-phone", "timezone": "UTC", "email": "np@example.com"}
    from planner.commands.importer import import_lines

    import_lines(app.sessions, [json.dumps(line)], NOW)
    opted = notify(app, "u-1", "reminder", "sms", now=NOW)
    assert (opted.outcome, opted.delivery["reason"]) == ("suppressed", "opted_out")
    no_phone = notify(app, "no-phone", "reminder", "sms", now=NOW)
    assert no_phone.delivery["reason"] == "no_address"

    with pytest.raises(NotFound):
        notify(app, "ghost", "reminder", "email", now=NOW)
    cases: list[tuple[str, Callable[[], object]]] = [
        ("channel", lambda: notify(app, "u-1", "reminder", "fax", now=NOW)),
        ("kind", lambda: notify(app, "u-1", "Not A Kind", "email", now=NOW)),
        ("priority", lambda: notify(app, "u-1", "reminder", "email", now=NOW, priority="urgent")),
        ("dedup_key", lambda: notify(app, "u-1", "reminder", "email", now=NOW, dedup_key="sub:1:2026-03-02")),
        ("at", lambda: notify(app, "u-1", "reminder", "email", now=NOW, at=datetime(2026, 3, 2, 12, 0))),
    ]
    for field, call in cases:
        with pytest.raises(InvalidInput) as bad:
            call()
        assert bad.value.field == field


def test_concurrent_sends_never_exceed_the_cap(app: App) -> None:
    add_recipient(app)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def send() -> None:
        barrier.wait()
        outcomes.append(notify(app, "u-1", "reminder", "sms", now=NOW).outcome)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] * 3 + ["suppressed"] * 3


def test_future_at_is_scheduled(app: App, redis_conn: redis.Redis) -> None:
    add_recipient(app)
    at = NOW + timedelta(hours=2)
    result = notify(app, "u-1", "reminder", "email", now=NOW, at=at)
    assert result.outcome == "scheduled"
    assert result.delivery["scheduled_at"] == at.isoformat()
    assert redis_conn.zscore("rq:scheduled:default", result.delivery["job_id"]) is not None


def test_cli_notify(cli: CliRunner, app: App) -> None:
    add_recipient(app)
    args = ["notify", "u-1", "reminder", "--channel", "email", "--dedup-key", "k1", "--data", '{"text": "x"}']
    first = cli.invoke(cli_app, [*args, "--json"])
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["created"] is True
    again = cli.invoke(cli_app, args)
    assert again.exit_code == 0 and "already used" in again.stderr

    bad_channel = cli.invoke(cli_app, ["notify", "u-1", "reminder", "--channel", "fax"])
    assert bad_channel.exit_code == 2 and "--channel: 'fax' is invalid" in bad_channel.stderr
    bad_data = cli.invoke(cli_app, ["notify", "u-1", "reminder", "--channel", "sms", "--data", "[1]"])
    assert bad_data.exit_code == 2 and "--data" in bad_data.stderr
    bad_kind = cli.invoke(cli_app, ["notify", "u-1", "Reminder!", "--channel", "sms"])
    assert bad_kind.exit_code == 2 and "KIND: 'Reminder!' is invalid" in bad_kind.stderr
