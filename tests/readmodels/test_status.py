"""``planner status``: deliveries, queues, workers and planner lateness, from the real servers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis
from typer.testing import CliRunner

from planner.app import App, build_runner
from planner.cli import app as cli_app
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.processes.worker import make_worker
from planner.readmodels.status import collect_status
from tests.commands.test_ops import add_recipient, dead_email

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_empty_service_is_late_and_idle(app: App) -> None:
    status = collect_status(app, NOW)
    assert status["deliveries"] == {} and status["dead"] == 0
    assert status["queues"] == {q: {"depth": 0, "scheduled": 0} for q in ("high", "default", "bulk")}
    assert status["workers"]["count"] == 0
    assert status["planner"]["last_run"] is None
    assert status["planner"]["late"] == ["no successful planner run yet"]


def test_status_counts_everything(app: App, redis_conn: redis.Redis) -> None:
    add_recipient(app)
    now = app.clock()
    dead_email(app)
    notify(app, "u-1", "reminder", "email", now=now)
    notify(app, "u-1", "reminder", "email", now=now, at=now + timedelta(hours=3), priority="bulk")
    line = {
        "type": "recipient",
        "id": "late",
        "timezone": "UTC",
        "email": "l@example.com",
        # Half a day from the clock's time of day: the one-minute run below never plans it, whatever
        # the time the test runs at.
        "subscriptions": [
            {"kind": "daily_brief", "channel": "email", "at": f"{(now.hour + 12) % 24:02d}:00"}
        ],
    }
    # Imported three days ago and never planned since: its cursor is overdue.
    import_lines(app.sessions, [json.dumps(line)], now - timedelta(days=3))
    build_runner(app).run(now - timedelta(days=3), timedelta(minutes=1))
    worker = make_worker(app)
    worker.register_birth()
    redis_conn.sadd("rq:workers", "rq:worker:gone")  # registered, but its key expired
    try:
        status = collect_status(app, now)
    finally:
        worker.register_death()

    assert status["deliveries"] == {"dead": 1, "queued": 2}
    assert status["dead"] == 1
    # The dead delivery's job was run by hand, not by RQ, so it is still waiting too.
    assert status["queues"]["default"]["depth"] == 2
    assert status["queues"]["bulk"] == {"depth": 0, "scheduled": 1}
    assert status["scheduled_jobs"] >= 1
    assert status["workers"] == {"count": 1, "keys": [worker.key]}
    planner = status["planner"]
    assert planner["last_run"]["status"] == "succeeded"
    assert planner["seconds_since_last_successful_run"] == pytest.approx(3 * 86400, abs=5)
    assert planner["oldest_overdue_cursor"] is not None
    assert planner["overdue_seconds"] > 4 * 3600
    assert any("last successful planner run" in p for p in planner["late"])
    assert any("cursor is overdue" in p for p in planner["late"])


def test_cli_status(cli: CliRunner, app: App) -> None:
    add_recipient(app)
    notify(app, "u-1", "reminder", "email", now=app.clock())
    as_json = cli.invoke(cli_app, ["status", "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["deliveries"] == {"queued": 1}
    assert data["queues"]["default"]["depth"] == 1
    table = cli.invoke(cli_app, ["status"])
    assert table.exit_code == 0, table.stderr
    assert "RQ queues" in table.stdout and "live workers" in table.stdout


def test_counts_read_every_delivery_in_flight_the_dead_of_a_week_and_the_settled_of_a_day(app: App) -> None:
    """A year of history is the retention's, not a number to watch: status, the metrics' gauge and
    the overview count every delivery in flight, the dead ones due in the last 7 days (the dead
    letter page's default window) and the settled ones due in the last 24 h."""
    from planner.readmodels.dashboard import delivery_counts
    from planner.readmodels.metrics import render_metrics
    from tests.commands.test_retention import add_delivery

    add_recipient(app)
    old = NOW - timedelta(days=40)
    add_delivery(app, "sent", old)
    add_delivery(app, "dead", old + timedelta(hours=1))
    add_delivery(app, "queued", old + timedelta(hours=2))
    add_delivery(app, "sent", NOW - timedelta(days=2))
    add_delivery(app, "sent", NOW - timedelta(hours=2))
    add_delivery(app, "skipped", NOW - timedelta(hours=23))
    add_delivery(app, "dead", NOW - timedelta(days=6, hours=23))
    add_delivery(app, "dead", NOW - timedelta(days=7, hours=1))

    status = collect_status(app, NOW)
    assert status["deliveries"] == {"dead": 1, "queued": 1, "sent": 1, "skipped": 1}
    assert status["dead"] == 1
    assert status["settled_since"] == (NOW - timedelta(hours=24)).isoformat()
    assert status["dead_since"] == (NOW - timedelta(days=7)).isoformat()
    with app.sessions() as session:
        overview = delivery_counts(session, NOW)
    assert {s: n for s, n in overview.items() if n} == status["deliveries"]
    gauge = [x for x in render_metrics(app, NOW).decode().splitlines() if x.startswith("planner_deliveries{")]
    assert sorted(gauge) == [
        'planner_deliveries{reason="",status="dead"} 1.0',
        'planner_deliveries{reason="",status="queued"} 1.0',
        'planner_deliveries{reason="",status="sent"} 1.0',
        'planner_deliveries{reason="",status="skipped"} 1.0',
    ]
