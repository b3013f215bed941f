"""`planner recipients list`: the API's search and filters on the command line, table or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.importer import import_lines

NOW = datetime(2026, 3, 6, 10, 20, tzinfo=UTC)
PEOPLE = [
    {"type": "recipient", "id": "ann", "timezone": "Europe/London", "email": "ann@example.com",
     "phone": "+447700900123", "opt_out": ["sms"],
     "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"}]},
    {"type": "recipient", "id": "annex", "timezone": "Europe/London", "phone": "+12125550100"},
    {"type": "recipient", "id": "bob", "timezone": "America/New_York", "email": "bob@example.com"},
]  # fmt: skip


def test_list_search_and_filters_as_json_and_as_a_table(cli: CliRunner, app: App) -> None:
    import_lines(app.sessions, [json.dumps(p) for p in PEOPLE], NOW)

    everyone = cli.invoke(cli_app, ["recipients", "list", "--json"])
    assert everyone.exit_code == 0, everyone.output
    data = json.loads(everyone.stdout)
    assert [r["id"] for r in data["recipients"]] == ["ann", "annex", "bob"] and data["next_after"] is None

    by_phone = json.loads(
        cli.invoke(cli_app, ["recipients", "list", "-q", "+1 212 555 0100", "--json"]).stdout
    )
    assert [r["id"] for r in by_phone["recipients"]] == ["annex"]
    in_london = cli.invoke(cli_app, ["recipients", "list", "--zone", "Europe/London", "--opted-out", "sms"])
    assert in_london.exit_code == 0, in_london.output
    # In a pipe: tab-separated, whole values.
    assert in_london.stdout.splitlines() == [
        "id\tzone\temail\tphone\topted out\tinvalid\tsubscriptions",
        "ann\tEurope/London\tann@example.com\t+447700900123\tall sms\tno\t1",
    ]

    paged = cli.invoke(cli_app, ["recipients", "list", "--limit", "2"])
    assert "more: --after annex" in paged.stderr
    rest = json.loads(cli.invoke(cli_app, ["recipients", "list", "--after", "annex", "--json"]).stdout)
    assert [r["id"] for r in rest["recipients"]] == ["bob"]


def test_bad_values_get_one_line_naming_the_option(cli: CliRunner, app: App) -> None:
    for args, option in (
        (["--phone", "12"], "--phone"),
        (["--opted-out", "fax"], "--opted-out"),
        (["--zone", "Mars/Base"], "--zone"),
        (["--after", "a b"], "--after"),
        (["--search", "ann@"], "--search"),
    ):
        result = cli.invoke(cli_app, ["recipients", "list", *args])
        assert result.exit_code == 2, args
        assert result.stderr.startswith(f"error: {option}: "), result.stderr
        assert "Traceback" not in result.output
