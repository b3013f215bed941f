"""``planner --help`` is built without the heavy modules; its static parts stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from planner.cli import _settings_reference
from planner.cli.help_text import reference_adapters, reference_rows
from planner.delivery.template_files import BUILTIN, REQUIRED, has_template_files, template_folders
from planner.delivery.templating import Renderer
from planner.store.db import head_revision, shipped_heads
from tests.conftest import new_sqlite_database

HEAVY = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "rq",
    "redis",
    "pydantic",
    "pydantic_settings",
    "sqlmodel",
    "structlog",
    "rich",  # the consoles are made on first use; Click prints the help
    "importlib.metadata",  # adapters.adapter_entry_points reads the distributions' files
    "httpx",
    "jinja2",
)
#: Not needed by a `planner run` with nothing due: enqueueing (rq), rendering (jinja2), rate limits.
NOT_ON_A_QUIET_RUN = ("rq", "jinja2", "limits", "alembic", "fastapi", "httpx")


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


def test_a_planner_run_with_nothing_due_imports_no_jinja_nor_rq(tmp_path: Path, redis_url: str) -> None:
    # The missing-template warning is answered from the file system: rendering (Jinja) is the worker's.
    (tmp_path / "templates").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")},
        "PLANNER_DATABASE_URL": f"sqlite:///{tmp_path / 'planner.db'}",
        "PLANNER_REDIS_URL": redis_url,
        "PLANNER_TEMPLATES_DIR": str(tmp_path / "templates"),
    }
    # Migrated first (a copy of a migrated file): a run on a new database loads Alembic to create the schema.
    new_sqlite_database(tmp_path / "planner.db")
    probe = (
        "import sys, json, contextlib\n"
        "sys.argv = ['planner', 'run', '--json']\n"
        "import planner.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(sys.stderr):\n"
        "    planner.cli.main()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, env=env
    )
    assert '"status": "succeeded"' in done.stderr, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout))
    assert "sqlalchemy" in loaded  # it did run
    assert [name for name in NOT_ON_A_QUIET_RUN if name in loaded] == []


def test_template_files_are_found_per_channel_in_the_operators_folder_then_the_bundled_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "own").mkdir()
    for leaf in REQUIRED["email"]:
        (tmp_path / "own" / leaf).write_text("x")
    folders = template_folders(tmp_path)
    assert has_template_files(folders, "own", "email")
    assert not has_template_files(folders, "own", "sms")
    assert not has_template_files(folders, "absent", "email")
    bundled = next(d.name for d in sorted(BUILTIN.iterdir()) if (d / "sms.txt").is_file())
    assert has_template_files(folders, bundled, "sms")
    # The renderer agrees on every one of them.
    renderer = Renderer(tmp_path)
    for kind, channel in [("own", "email"), ("own", "sms"), ("absent", "email"), (bundled, "sms")]:
        assert renderer.has_template(kind, channel) == has_template_files(folders, kind, channel)
