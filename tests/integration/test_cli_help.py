"""``planner --help`` is built without the heavy modules; its static parts stay in sync."""

from __future__ import annotations

import json
import subprocess
import sys

from planner.cli import _settings_reference
from planner.cli.help_text import reference_adapters, reference_rows
from planner.store.db import head_revision, shipped_heads

HEAVY = ("sqlalchemy", "alembic", "fastapi", "rq", "pydantic_settings", "rich.progress", "httpx", "jinja2")


def test_the_settings_reference_matches_the_settings() -> None:
    # Out of date: run `python -m planner.cli.help_text` and `ruff format planner/cli`.
    assert reference_rows() == _settings_reference.SETTINGS
    assert reference_adapters() == _settings_reference.ADAPTERS


def test_help_imports_no_heavy_module() -> None:
    probe = (
        "import sys, json, contextlib\n"
        "sys.argv = ['planner', '--help']\n"
        "import planner.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(sys.stderr):\n"
        "    planner.cli.main()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    command = [sys.executable, "-c", probe]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(done.stdout))
    assert "PLANNER_DATABASE_URL" in done.stderr and "PLANNER_SMTP_HOST" in done.stderr
    assert [name for name in HEAVY if name in loaded] == []


def test_the_cheap_head_is_alembics_head() -> None:
    assert shipped_heads() == {head_revision()}
