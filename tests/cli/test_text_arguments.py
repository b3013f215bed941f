"""The text rule at the command line, on SQLite and PostgreSQL: bytes that are not UTF-8 reach
Python as lone surrogates, and JSON options can spell NUL; both are one line naming the argument,
exit status 2, nothing written. Paths are not text: a file name that is not UTF-8 still imports."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.core.validation import TEXT_EXPECTED
from planner.store.models import metadata
from tests.commands.test_ops import add_recipient

NOT_UTF8 = b"caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of Latin-1 argv bytes


def row_counts(app: App) -> dict[str, int]:
    with app.engine.connect() as connection:
        return {
            t.name: connection.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
        }


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["notify", "u-1", "reminder", "--channel", "email", "--dedup-key", NOT_UTF8], "--dedup-key"),
        (["notify", "u-1", "reminder", "--channel", "email", "--data", '{"name": "a\\u0000b"}'], "--data"),
        (["events", "record", "u-1", "comments_digest", "--key", NOT_UTF8], "--key"),
        (["events", "record", "u-1", "comments_digest", "--data", '{"t": "\\udfff"}'], "--data"),
        (["tokens", "create", NOT_UTF8, "--scope", "read"], "NAME"),
        (["deliveries", "list", "--recipient", NOT_UTF8], "--recipient"),
    ],
    ids=["dedup-key", "notify-data", "event-key", "event-data", "token-name", "filter"],
)
def test_bad_text_in_an_argument_is_one_line_naming_it_and_writes_nothing(
    cli: CliRunner, app: App, args: list[str], named: str
) -> None:
    add_recipient(app)
    before = row_counts(app)
    result = cli.invoke(cli_app, args)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith((f"error: {named}: ", f"error: {named}.")) and TEXT_EXPECTED in line, line
    assert "Traceback" not in result.output
    assert row_counts(app) == before


def test_a_file_name_that_is_not_utf8_is_a_path_and_imports(cli: CliRunner, app: App, tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/caf\xe9.jsonl"
    line = {"type": "recipient", "id": "u-9", "timezone": "UTC", "email": "u-9@example.com"}
    with open(name, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
    result = cli.invoke(cli_app, ["import", os.fsdecode(name)])
    assert result.exit_code == 0, result.output
    assert row_counts(app)["recipient"] == 1
