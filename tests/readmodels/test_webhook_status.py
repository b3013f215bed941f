"""An endpoint the service disabled because it kept failing: a notice in ``planner status``, in
``/readyz`` (which stays ready), and in the metrics; one failing now shows how long it has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from planner.api.routes.health import readiness
from planner.app import App
from planner.cli import app as cli_app
from planner.readmodels.metrics import render_metrics
from planner.readmodels.status import collect_status
from planner.store.webhook_endpoints import record_result
from tests.webhook_support import register

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
FIVE_DAYS = timedelta(days=5)


@pytest.fixture
def endpoints(app: App) -> tuple[int, int]:
    """Endpoint 1 failing for six days (disabled by the second failure), 2 failing for an hour."""
    dead, _ = register(app, "https://dead.example.com/hooks", ["delivery.sent"], now=NOW)
    flaky, _ = register(app, "https://flaky.example.com/hooks", ["delivery.dead"], now=NOW)
    with app.sessions() as session, session.begin():
        assert not record_result(session, dead.id, False, NOW - timedelta(days=6), FIVE_DAYS)
        assert record_result(session, dead.id, False, NOW, FIVE_DAYS), "failing for over five days"
        assert not record_result(session, flaky.id, False, NOW - timedelta(hours=1), FIVE_DAYS)
    return dead.id, flaky.id


def test_status_names_the_disabled_endpoint_and_what_to_do(app: App, endpoints: tuple[int, int]) -> None:
    section = collect_status(app, NOW)["webhooks"]
    assert (section["endpoints"], section["enabled"]) == (2, 1)
    [notice] = section["notices"]
    assert notice.startswith("webhook endpoint 1 (https://dead.example.com/hooks) disabled at")
    assert (
        "failing: every attempt failed for 5 days" in notice
        and "planner webhooks update 1 --enable" in notice
    )
    assert section["failing"] == [
        {"id": 2, "url": "https://flaky.example.com/hooks", "failing_seconds": 3600}
    ]


def test_the_cli_prints_the_notice(cli: CliRunner, app: App, endpoints: tuple[int, int]) -> None:
    result = cli.invoke(cli_app, ["status"])
    assert result.exit_code == 0, result.stderr
    assert "1 of 2 enabled" in result.stdout
    assert "notice: webhook endpoint 1 (https://dead.example.com/hooks) disabled" in result.stderr


def test_readyz_carries_the_notice_and_stays_ready_for_it(app: App, endpoints: tuple[int, int]) -> None:
    _, checks = readiness(app)
    assert checks["webhooks"]["ok"] is True
    assert "webhook endpoint 1" in checks["webhooks"]["detail"]


def test_metrics_show_the_disabled_endpoint_and_the_failing_one(app: App, endpoints: tuple[int, int]) -> None:
    text = render_metrics(app, NOW).decode()
    assert 'planner_webhook_endpoint_enabled{endpoint="1",reason="failing"} 0.0' in text
    assert 'planner_webhook_endpoint_enabled{endpoint="2",reason=""} 1.0' in text
    assert 'planner_webhook_endpoint_failing_seconds{endpoint="2"} 3600.0' in text
    assert 'planner_webhook_endpoint_failing_seconds{endpoint="1"} 0.0' in text
