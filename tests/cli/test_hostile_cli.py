"""Every ``planner`` command in every broken environment: one clear line on stderr, a non-zero
exit, no traceback, nothing written. ``PLANNER_DEBUG=1`` brings the traceback back.

Environments: PostgreSQL down (a closed port), a PostgreSQL database never upgraded, Redis down,
each bad setting of issue 12, and a fresh directory with no database at all (which must just work).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from planner.cli import app as cli_app
from planner.store.db import create_db_engine, current_revision, head_revision
from planner.store.models import metadata
from tests.servers import PostgresServer, free_port

_names = itertools.count()


def commands(import_file: Path) -> dict[str, list[str]]:
    """Each command once, with arguments that would work on a healthy service."""
    return {
        "status": ["status"],
        "deliveries list": ["deliveries", "list"],
        "deliveries show": ["deliveries", "show", "1"],
        "deliveries retry": ["deliveries", "retry", "1"],
        "deliveries retry --all-dead": ["deliveries", "retry", "--all-dead"],
        "deliveries cancel": ["deliveries", "cancel", "1"],
        "pause": ["pause", "sms"],
        "resume": ["resume", "sms"],
        "explain": ["explain", "u-1"],
        "notify": ["notify", "u-1", "reminder", "--channel", "email"],
        "engagement record": ["engagement", "record", "u-1", "opened"],
        "simulate": ["simulate", "u-1"],
        "templates check": ["templates", "check"],
        "run": ["run"],
        "import": ["import", str(import_file)],
        "cron --once": ["cron", "--once"],
        "worker --burst": ["worker", "--burst"],
        "db upgrade": ["db", "upgrade"],
        "serve": ["serve", "--port", str(free_port())],
    }


#: Commands that migrate the database themselves (the long-running ones and the writers).
UPGRADING = {"run", "import", "cron --once", "worker --burst", "db upgrade", "serve"}
#: Commands that need Redis.
NEED_REDIS = {
    "status",
    "deliveries retry",
    "deliveries retry --all-dead",
    "resume",
    "notify",
    "run",
    "cron --once",
    "worker --burst",
}

BAD_SETTINGS = {
    "PLANNER_KIND_QUEUES": "{bad",
    "PLANNER_REDIS_URL": "garbage",
    "PLANNER_DATABASE_URL": "mysql://localhost/planner",
    "PLANNER_MAX_LATENESS": "-PT1H",
    "PLANNER_HORIZON": "30",
    "PLANNER_LOG_LEVEL": "LOUD",
    "PLANNER_TEMPLATES_DIR": "/nonexistent/templates",
    "PLANNER_CRITICAL_KINDS": "Password Reset",
    "PLANNER_QUIET_HOURS_SMS": "late",
    "PLANNER_BACKOFF_TIERS": "[[1, 1]]",
    "PLANNER_CAP_SMS": "lots",
    "PLANNER_RETRY_CAP": "1s",
    "PLANNER_PROVIDER_EVENT_RETENTION": "1h",  # under a day: a provider's retry could apply twice
}
BAD_ADAPTERS = {"PLANNER_EMAIL_ADAPTER": "nonexistent", "PLANNER_SMS_ADAPTER": "smtp"}

TRIED: list[int] = [0]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PLANNER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PLANNER_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("PLANNER_DEBUG", "0")  # restored after `--debug` set it
    saved = structlog.get_config()

    def invoke(args: list[str], env: dict[str, str]) -> Any:
        TRIED[0] += 1
        return CliRunner().invoke(cli_app, args, env=env)

    yield invoke
    structlog.configure(**saved)


def one_clear_line(result: Any, what: str) -> str:
    """The single ``error:`` line on stderr; anything else (a traceback, a log dump) fails."""
    assert result.exit_code not in (0, None), (what, result.stdout[-500:])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        what,
        repr(result.exception),
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (what, result.stderr[-2000:])
    assert lines[0].startswith("error: "), (what, lines[0])
    assert "Traceback" not in result.stderr + result.stdout, what
    assert len(lines[0]) < 600, (what, lines[0])
    return lines[0]


@pytest.fixture
def import_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    line = {"type": "recipient", "id": "u-1", "timezone": "UTC", "email": "u@example.com"}
    path.write_text(json.dumps(line) + "\n")
    return path


def test_postgres_down(run_cli: Any, import_file: Path) -> None:
    env = {"PLANNER_DATABASE_URL": f"postgresql+psycopg://planner@127.0.0.1:{free_port()}/planner"}
    for name, args in commands(import_file).items():
        line = one_clear_line(run_cli(args, env), name)
        assert "database unavailable" in line and "PLANNER_DATABASE_URL" in line, (name, line)


def test_postgres_never_upgraded(run_cli: Any, import_file: Path, pg: PostgresServer, redis_url: str) -> None:
    name = f"never_upgraded_{next(_names)}"
    pg.create_database(name)
    url = pg.url(name)
    env = {"PLANNER_DATABASE_URL": url}
    for command, args in commands(import_file).items():
        if command in UPGRADING:
            continue
        line = one_clear_line(run_cli(args, env), command)
        assert "never upgraded" in line and "run `planner db upgrade`" in line, (command, line)
    engine = create_db_engine(url)
    try:
        assert inspect(engine).get_table_names() == [], "nothing was created behind the operator's back"
    finally:
        engine.dispose()
    assert run_cli(["db", "upgrade"], env).exit_code == 0
    assert run_cli(["status", "--json"], {**env, "PLANNER_REDIS_URL": redis_url}).exit_code == 0


def _counts(url: str) -> dict[str, int]:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return {
                t.name: connection.scalar(select(func.count()).select_from(t)) or 0
                for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def test_redis_down(run_cli: Any, import_file: Path, database_url: str) -> None:
    env = {"PLANNER_DATABASE_URL": database_url, "PLANNER_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    assert run_cli(["import", str(import_file)], env).exit_code == 0
    for name, args in commands(import_file).items():
        if name not in NEED_REDIS:
            continue
        before = _counts(database_url)
        line = one_clear_line(run_cli(args, env), name)
        assert "Redis unavailable" in line and "PLANNER_REDIS_URL" in line, (name, line)
        assert _counts(database_url) == before, name


@pytest.mark.parametrize(("variable", "value"), sorted(BAD_SETTINGS.items()))
def test_bad_setting(run_cli: Any, import_file: Path, variable: str, value: str) -> None:
    for name, args in commands(import_file).items():
        line = one_clear_line(run_cli(args, {variable: value}), name)
        assert variable in line, (name, line)
    assert not Path("planner.db").exists(), "nothing is created with bad settings"


@pytest.mark.parametrize(("variable", "value"), sorted(BAD_ADAPTERS.items()))
def test_bad_adapter_stops_the_worker_with_one_line(
    run_cli: Any, redis_url: str, variable: str, value: str
) -> None:
    line = one_clear_line(
        run_cli(["worker", "--burst"], {variable: value, "PLANNER_REDIS_URL": redis_url}), variable
    )
    assert value in line


def test_fresh_directory_creates_and_migrates_the_embedded_database(run_cli: Any, redis_url: str) -> None:
    env = {"PLANNER_REDIS_URL": redis_url}
    status = run_cli(["status", "--json"], env)
    assert status.exit_code == 0, status.stderr
    engine = create_db_engine("sqlite:///planner.db")
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
    missing = one_clear_line(run_cli(["deliveries", "show", "1"], env), "show")
    assert "delivery 1 not found" in missing


def test_debug_shows_the_traceback(run_cli: Any) -> None:
    env = {"PLANNER_DATABASE_URL": f"postgresql+psycopg://planner@127.0.0.1:{free_port()}/planner"}
    result = run_cli(["--debug", "status"], env)
    assert (
        result.exit_code != 0
        and result.exception is not None
        and not isinstance(result.exception, SystemExit)
    )
