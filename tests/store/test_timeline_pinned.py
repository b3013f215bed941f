"""The timelines the API and the CLI show, pinned for four histories on both databases.

Written (and passing) before the planner's "planned" and the worker's plain "sent" entries became
implied by the delivery row (planner.store.queries.timeline): the same histories must read the same.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from adapters import Message, TransientError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.cli import app as cli_app
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.settings import Settings
from planner.store.tables import DELIVERIES, RECIPIENTS
from tests.api import test_api
from tests.helpers import Clock, recipient_line, runner, unthrottled_app

server = test_api.server  # the module's loopback uvicorn

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
#: The timelines as main showed them before the change (job ids masked: they are random).
PINNED = Path(__file__).with_name("pinned_timelines.json")
HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def timed_app(settings: Settings, clock: Clock) -> Iterator[App]:
    app = unthrottled_app(settings, clock)
    yield app
    app.close()


def _job_ids_masked(text: str) -> str:
    """Job ids are random: each hex digit (of a whole id or of one a table cut short) becomes x."""
    return re.sub(r"dlv-([0-9a-f]+)", lambda m: "dlv-" + "x" * len(m.group(1)), text)


def _fail_bob_once() -> Any:
    failed: list[str] = []

    def hook(message: Message) -> None:
        if message.to == "bob@example.com" and not failed:
            failed.append(message.to)
            raise TransientError("421 try again later")

    return hook


def _histories(app: App, clock: Clock) -> dict[str, int]:
    """ann planned -> sent; bob planned -> failed -> retry -> sent; cat suppressed (opted out);
    dan deferred by quiet hours, then sent; two ad-hoc notifications. Returns the delivery ids."""
    reminder = [{"kind": "reminder", "channel": "email", "at": "12:30"}]
    import_lines(
        app.sessions,
        [
            recipient_line("ann", "UTC", reminder),
            recipient_line("bob", "UTC", reminder),
            recipient_line("cat", "UTC", reminder, opt_out=["email"]),
            recipient_line(
                "dan",
                "Europe/Berlin",
                [{"kind": "reminder", "channel": "sms", "at": "13:30"}],
                quiet_hours={"sms": {"start": "13:00", "end": "15:00"}},
            ),
        ],
        NOW,
    )
    runner(app).run(NOW, HOUR)
    with app.sessions() as session:
        ids = {
            external: delivery_id
            for delivery_id, external in session.execute(
                select(DELIVERIES.c.id, RECIPIENTS.c.external_id).join(
                    RECIPIENTS, RECIPIENTS.c.id == DELIVERIES.c.recipient_id
                )
            )
        }
    # Ad-hoc ones (their first entry written by notify): one with an actor, one deferred by quiet hours.
    ids["notify-ann"] = notify(app, "ann", "reminder", "email", now=NOW, actor="crm").delivery["id"]
    ids["notify-dan"] = notify(app, "dan", "reminder", "sms", now=NOW).delivery["id"]
    capture = CaptureAdapter(fail_with=_fail_bob_once())
    deliverer = build_deliverer(app, adapters={"email": capture, "sms": capture})
    deliverer.rng = random.Random(7)
    clock.now = NOW + timedelta(minutes=30)
    report = deliverer.deliver_batch([ids["ann"], ids["bob"]])
    assert (report.sent, report.retrying) == (1, 1)
    clock.now = NOW + HOUR
    assert deliverer.deliver_batch([ids["bob"]]).sent == 1
    clock.now = NOW + 2 * HOUR
    assert deliverer.deliver_batch([ids["dan"]]).sent == 1
    return ids


@pytest.fixture
def http(server: tuple[test_api.Switch, str], timed_app: App) -> Iterator[httpx.Client]:
    timed_app.settings.api_token = SecretStr(test_api.TOKEN)
    with test_api.serve(server, timed_app) as client:
        client.headers.update(test_api.AUTH)
        yield client


def test_api_and_cli_show_the_pinned_timelines(
    http: httpx.Client, cli: CliRunner, timed_app: App, clock: Clock
) -> None:
    ids = _histories(timed_app, clock)
    api = {name: http.get(f"/deliveries/{ids[name]}").json()["timeline"] for name in sorted(ids)}
    cli_json = {}
    tables = {}
    for name in sorted(ids):
        out = cli.invoke(cli_app, ["deliveries", "show", str(ids[name]), "--json"])
        assert out.exit_code == 0, out.stderr
        cli_json[name] = json.loads(out.stdout)["timeline"]
        table = cli.invoke(cli_app, ["deliveries", "show", str(ids[name])])
        assert table.exit_code == 0, table.stderr
        # In a pipe: the timeline's block of tab-separated lines, up to the next block.
        tables[name] = table.stdout.split("\n\n# timeline\n", 1)[1].split("\n\n", 1)[0].splitlines()
    expected = json.loads(PINNED.read_text())
    assert json.loads(_job_ids_masked(json.dumps(api))) == expected["timelines"]
    assert cli_json == api
    assert json.loads(_job_ids_masked(json.dumps(tables, ensure_ascii=False))) == expected["tables"]
