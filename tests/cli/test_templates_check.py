"""``planner templates check`` as a person runs it (a real process), on SQLite and PostgreSQL: a
template that never ends or that fails on its data is a one-line problem, found quickly; the check
fails only when something subscribed cannot be rendered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from planner.app import App
from planner.settings import Settings
from tests.commands.test_ops import add_recipient

#: The issue's template: plain Jinja walks ten billion iterations; the sandbox refuses the range.
RUNAWAY = "{% for i in range(10**10) %}{{ i }}{% endfor %}"
#: Sample data is text ('<amount>'): arithmetic on it fails, as it would on a client's "abc".
ARITHMETIC = "Total: {{ data.amount + 1 }}"
#: A process that takes longer than this has hung (a healthy check takes about a second).
TIMEOUT = 120


def template_folder(root: Path, kind: str, body: str) -> None:
    folder = root / kind
    folder.mkdir(parents=True)
    (folder / "email_subject.txt").write_text(kind)
    (folder / "email.txt").write_text(body)


def check(settings: Settings, templates: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env |= {
        "PLANNER_DATABASE_URL": settings.database_url,
        "PLANNER_REDIS_URL": settings.redis_url or "",
        "PLANNER_TEMPLATES_DIR": str(templates),
        "PLANNER_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [sys.executable, "-m", "planner.cli", "templates", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_problems_of_kinds_nobody_subscribes_to_are_listed_and_do_not_fail(
    settings: Settings, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    template_folder(templates, "runaway", RUNAWAY)
    template_folder(templates, "invoice", ARITHMETIC)
    done = check(settings, templates)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    rows = {(r["kind"], r["channel"]): r for r in json.loads(done.stdout)["templates"]}
    runaway, invoice = rows[("runaway", "email")], rows[("invoice", "email")]
    assert runaway["status"] == invoice["status"] == "error"
    assert runaway["problems"] == [
        "runaway/email.txt: OverflowError: Range too big. The sandbox blocks ranges larger than "
        "MAX_RANGE (100000)."
    ]
    [problem] = invoice["problems"]
    assert problem.startswith("invoice/email.txt: TypeError: ") and "\n" not in problem


def test_a_subscribed_kind_that_cannot_be_rendered_fails_the_check_in_one_line(
    settings: Settings, app: App, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    template_folder(templates, "invoice", ARITHMETIC)
    app.settings.templates_dir = templates
    add_recipient(app, subscriptions=[{"kind": "invoice", "channel": "email", "at": "09:00"}])
    done = check(settings, templates)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: 1 template problem(s): invoice/email"
    assert json.loads(done.stdout)["ok"] is False
