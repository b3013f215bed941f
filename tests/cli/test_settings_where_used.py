"""A setting is checked by the commands that use it: with the smtp adapter chosen, the unsubscribe
links' public URL and signing key are needed by the worker (it makes the links) and by
``planner serve`` (it follows them), not by ``planner db upgrade``, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from planner.cli import app as cli_app
from tests.servers import free_port

UNSET = "PLANNER_PUBLIC_BASE_URL is unset"


@pytest.fixture
def smtp_chosen(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("PLANNER_EMAIL_ADAPTER", "smtp")
    monkeypatch.delenv("PLANNER_PUBLIC_BASE_URL", raising=False)
    monkeypatch.delenv("PLANNER_SIGNING_SECRET", raising=False)
    return cli


def test_db_upgrade_runs_without_the_unsubscribe_settings(smtp_chosen: CliRunner) -> None:
    result = smtp_chosen.invoke(cli_app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.output


@pytest.mark.parametrize(
    "args", [["worker", "--burst"], ["serve", "--port", str(free_port())]], ids=["worker", "serve"]
)
def test_the_worker_and_serve_refuse_to_start_without_them(smtp_chosen: CliRunner, args: list[str]) -> None:
    result = smtp_chosen.invoke(cli_app, args)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: invalid configuration: PLANNER_PUBLIC_BASE_URL is unset; expected")
