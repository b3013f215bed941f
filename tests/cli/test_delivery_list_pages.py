"""``planner deliveries list`` a page at a time: the next page's cursor on stderr, --after to read it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from tests.api.test_delivery_pages import add
from tests.commands.test_ops import add_recipient

AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_page_names_the_next_one(app: App, cli: CliRunner) -> None:
    add_recipient(app)
    add(app, 2, AT)
    add(app, 1, AT + timedelta(hours=1))
    first = cli.invoke(cli_app, ["deliveries", "list", "--limit", "2", "--json"])
    assert first.exit_code == 0, first.output
    assert len(json.loads(first.stdout)) == 2
    cursor = first.stderr.strip().removeprefix("more: --after ")
    second = cli.invoke(cli_app, ["deliveries", "list", "--limit", "2", "--json", "--after", cursor])
    later = (AT + timedelta(hours=1)).isoformat()
    assert [row["scheduled_at"] for row in json.loads(second.stdout)] == [later]
    assert second.stderr == "", "the last page names no next one"
    bad = cli.invoke(cli_app, ["deliveries", "list", "--after", "garbage"])
    assert bad.exit_code == 2 and "--after: 'garbage' is invalid; expected a cursor" in bad.stderr


def test_a_number_out_of_range_is_refused_in_the_house_style(cli: CliRunner) -> None:
    """The option, the value given and what it takes, as for every other bad value (not the
    command-line library's wording); nothing runs."""
    whole = "is invalid; expected a whole number from 1 to"
    cases = {
        ("deliveries", "list", "--limit", "99999"): f"--limit: '99999' {whole} 1,000",
        ("deliveries", "list", "--limit=abc"): f"--limit: 'abc' {whole} 1,000",
        ("deliveries", "show", "0"): f"DELIVERY_ID: '0' {whole} 2,147,483,647",
        ("db", "partition", "--pause", "-1"): "--pause: '-1' is invalid; expected a number from 0.0 to 60.0",
    }
    for args, message in cases.items():
        refused = cli.invoke(cli_app, list(args))
        assert refused.exit_code == 2, refused.output
        assert message in refused.stderr and "Input should" not in refused.output, refused.output
