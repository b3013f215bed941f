"""The CLI's JSON options refuse a repeated key as the importer and the HTTP API do: one clear line,
nothing written, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.core.json_objects import repeated
from planner.store.tables import DELIVERIES, DIGEST_EVENTS
from tests.commands.test_ops import add_recipient


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["notify", "u-1", "reminder", "--channel", "email", "--data", '{"code": "1", "code": "2"}'], "code"),
        (["events", "record", "u-1", "reminder", "--data", '{"author": {"name": "a", "name": "b"}}'], "name"),
    ],
    ids=["notify --data", "events record --data"],
)
def test_a_repeated_key_in_a_json_option_is_refused(
    cli: CliRunner, app: App, args: list[str], key: str
) -> None:
    add_recipient(app)
    result = cli.invoke(cli_app, args)
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --data: ") and repeated(key) in lines[0], lines
    with app.sessions() as db:
        assert db.scalar(select(func.count()).select_from(DELIVERIES)) == 0
        assert db.scalar(select(func.count()).select_from(DIGEST_EVENTS)) == 0
