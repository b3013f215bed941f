"""``planner worker --burst`` sends everything that was due when it started, waiting out the
provider rate limit, and says what became of it."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.notify import notify
from planner.store.tables import DELIVERIES
from tests.commands.test_ops import add_recipient

DUE = 12


def statuses(app: App) -> Counter[str]:
    with app.sessions() as session:
        return Counter(session.scalars(select(DELIVERIES.c.status)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_burst_waits_out_rate_limit_deferrals_and_summarises(
    cli: CliRunner, app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Four sends a second at most: of the due deliveries, all but a few are deferred by the limiter
    # at first. A plain RQ burst would stop with them still queued.
    monkeypatch.setenv("PLANNER_RATE_LIMIT_SMS", "4/second")
    monkeypatch.setenv("PLANNER_SMS_ADAPTER", "capture")
    monkeypatch.setenv("PLANNER_EMAIL_ADAPTER", "capture")
    for i in range(DUE):
        # No quiet hours: the service's default SMS window (21:00-08:00 UTC here) would defer the
        # sends whenever the suite runs at night.
        add_recipient(app, f"u-{i}", quiet_hours={"sms": "none"})
        notify(app, f"u-{i}", "reminder", "sms", now=app.clock())
    assert statuses(app) == {"queued": DUE}

    result = cli.invoke(cli_app, ["worker", "--burst"])

    assert result.exit_code == 0, result.stderr
    assert statuses(app) == {"sent": DUE}
    assert f"burst: {DUE} due when it started: {DUE} sent" in result.stderr
