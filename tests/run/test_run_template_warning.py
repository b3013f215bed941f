"""`planner run` warns about subscribed kinds without templates only when it planned deliveries.

The check counts the active subscriptions (a scan of the table), so a run with nothing due skips
it: that run created no sends to fail, and the run that plans them warns.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from planner.cli import app as cli_app
from planner.delivery.template_files import REQUIRED


def test_only_a_run_that_planned_deliveries_warns_about_missing_templates(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = tmp_path / "templates"
    (templates / "only_here").mkdir(parents=True)
    for leaf in REQUIRED["email"]:
        (templates / "only_here" / leaf).write_text("x")
    monkeypatch.setenv("PLANNER_TEMPLATES_DIR", str(templates))
    # The command reads the real clock: one or two hours ahead, its next time is the only one within
    # the three-hour run below, whatever the time of day.
    at = f"{(datetime.now(UTC).hour + 2) % 24:02d}:00"
    line = {
        "type": "recipient",
        "id": "w-1",
        "timezone": "UTC",
        "email": "w-1@example.org",
        "subscriptions": [{"kind": "only_here", "channel": "email", "at": at, "days": "daily"}],
    }
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(line) + "\n")
    imported = cli.invoke(cli_app, ["import", str(source)])
    assert imported.exit_code == 0, imported.output
    shutil.rmtree(templates / "only_here")  # removed after the import accepted the kind

    planned = cli.invoke(cli_app, ["run", "--json", "--horizon", "3h"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.stdout)["deliveries_created"] == 1
    assert "1 active only_here/email subscription(s) have no email template" in planned.stderr

    quiet = cli.invoke(cli_app, ["run", "--json", "--horizon", "1m"])
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout)["deliveries_created"] == 0
    assert "template" not in quiet.stderr  # the template is still missing: the check did not run
