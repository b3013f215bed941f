"""A due delivery no worker takes makes the service unready: ``planner status``, ``/readyz``, the
metrics and the dashboard say how long the oldest one has waited (a lost job, no worker on its
queue, workers far behind). Held-back deliveries wait with their send time moved on, so they do not
count."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from adapters.capture import CaptureAdapter
from planner.api import readiness
from planner.app import App, build_deliverer
from planner.cli import app as cli_app
from planner.commands.notify import notify
from planner.readmodels.metrics import render_metrics
from planner.readmodels.status import collect_status
from tests.commands.test_ops import add_recipient

WAIT = timedelta(minutes=15)  # the default PLANNER_MAX_DELIVERY_WAIT


def _wait_metric(app: App) -> float:
    [line] = [
        line
        for line in render_metrics(app, app.clock()).decode().splitlines()
        if line.startswith("planner_delivery_wait_seconds ")
    ]
    return float(line.split()[1])


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_a_due_delivery_no_worker_takes_is_reported_stuck_once_past_the_wait(app: App) -> None:
    add_recipient(app)
    due = app.clock() - timedelta(minutes=20)
    delivery = notify(app, "u-1", "reminder", "email", now=due).delivery
    notify(app, "u-1", "reminder", "sms", now=due, at=app.clock() + timedelta(hours=1))  # not due yet

    early = collect_status(app, due + timedelta(minutes=5))["waiting"]
    assert early["waited_seconds"] == pytest.approx(300) and early["stuck"] == []
    late = collect_status(app, due + WAIT + timedelta(seconds=1))["waiting"]
    assert late["oldest_due_delivery"] == due.isoformat()
    assert late["stuck"] == ["a due delivery has waited 15 min 1 s for a worker (over 15 min)"]

    ok, checks = readiness(app)
    assert not ok and checks["deliveries"]["ok"] is False
    assert "has waited 20 min" in checks["deliveries"]["detail"]
    assert _wait_metric(app) >= 1200

    capture = CaptureAdapter()
    assert (
        build_deliverer(app, adapters={"email": capture, "sms": capture}).deliver_batch([delivery["id"]]).sent
        == 1
    )
    assert collect_status(app, app.clock())["waiting"] == {
        "oldest_due_delivery": None,
        "waited_seconds": None,
        "stuck": [],
    }
    assert readiness(app)[1]["deliveries"] == {"ok": True}
    assert _wait_metric(app) == 0.0


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_status_shows_the_oldest_due_delivery(cli: CliRunner, app: App) -> None:
    add_recipient(app)
    due = app.clock() - timedelta(hours=1)
    notify(app, "u-1", "reminder", "email", now=due)
    data = json.loads(cli.invoke(cli_app, ["status", "--json"]).stdout)
    assert data["waiting"]["oldest_due_delivery"] == due.isoformat()
    table = cli.invoke(cli_app, ["status"])
    assert table.exit_code == 0, table.stderr
    assert "oldest due delivery" in table.stdout and "(over 15 min)" in table.stdout
