"""The recipient page of a learned send time, as Chromium renders it: the statistic drawn as an SVG
(a bar per half hour, the chosen one marked, those in quiet hours greyed), the table beside it, why,
and the next sends at the learned time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from planner.app import App, build_runner
from planner.commands.importer import import_lines
from planner.settings import Settings
from tests.conftest import new_pg_database
from tests.servers import PostgresServer, RedisServer, require_postgres
from tests.ui.conftest import TOKEN

#: Tuesday 2026-03-10, 05:00 in Sydney (AEDT): the run at 06:00 local decides the day.
NOW = datetime(2026, 3, 9, 18, 0, tzinfo=UTC)
WINDOW = {"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}


def engaged(day: int, hh_mm: str) -> str:
    local = datetime.fromisoformat(f"2026-03-{day:02d}T{hh_mm}:00+11:00")
    stamp = local.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": "engagement", "recipient_id": "sue", "event": "clicked", "at": stamp})


@pytest.fixture(scope="module")
def ui_app(
    postgres_server: PostgresServer | None,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[App]:
    """This module's own data set: one recipient whose brief goes at the half hour she reads."""
    server = require_postgres(postgres_server)
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    connection.close()
    url = new_pg_database(server)
    settings = Settings(
        database_url=url, redis_url=redis_server.url, outbox_dir=tmp_path_factory.mktemp("outbox"),
        email_adapter="capture", sms_adapter="capture", api_token=SecretStr(TOKEN),
    )  # fmt: skip
    app = App(settings, clock=lambda: NOW)
    sue = {
        "type": "recipient", "id": "sue", "timezone": "Australia/Sydney", "email": "sue@example.com",
        "quiet_hours": {"email": {"start": "20:00", "end": "06:00"}},
        "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": WINDOW, "days": "daily"}],
    }  # fmt: skip
    history = [engaged(day, "19:40") for day in range(3, 10)] + [engaged(8, "12:10"), engaged(9, "20:15")]
    import_lines(app.sessions, [json.dumps(sue), *history], NOW - timedelta(hours=1))
    build_runner(app).run(NOW + timedelta(hours=1), timedelta(hours=1))
    yield app
    app.close()
    server.drop_database(url.rsplit("/", 1)[1])


def test_the_recipient_page_draws_the_statistic_and_says_why(page: Any) -> None:
    page.goto("/ui/recipients/sue?date=2026-03-10")
    subscriptions = page.locator("#subscriptions tbody").inner_text()
    assert "every day at a learned time between 07:00 and 21:00 (default 09:00)" in subscriptions
    learned = page.locator("#learned-daily_brief-email")
    assert "learned 19:30" in learned.locator(".learned-choice").inner_text()
    assert "recorded on the delivery" in learned.inner_text()
    chart = learned.locator("svg.chart.learned")
    assert chart.locator("rect.slot").count() == 28
    chosen = chart.locator("rect.chosen")
    assert chosen.get_attribute("data-slot") == "19:30"
    assert "7 event(s) (chosen)" in chosen.locator("title").text_content()
    box = chosen.bounding_box()
    assert box is not None and box["height"] > 50, "the chosen half hour is the tallest bar"
    quiet = chart.locator("rect.quiet")
    assert [quiet.nth(i).get_attribute("data-slot") for i in range(quiet.count())] == ["20:00", "20:30"]
    rows = learned.locator("table.learned-slots tbody tr").all_inner_texts()
    assert [r.split("\t")[0] for r in rows] == ["12:00", "19:30 (chosen)", "20:00"]
    upcoming = {r.locator("td").first.inner_text(): r for r in page.locator("#upcoming tbody tr").all()}
    first = upcoming["2026-03-10 Tue"]
    assert first.locator(".local-time").inner_text() == "2026-03-10 19:30 +11:00 AEDT"
    assert "learned time 19:30" in first.inner_text()


def test_a_date_without_history_shows_the_default_and_why(page: Any, ui_app: App) -> None:
    import_lines(
        ui_app.sessions,
        [json.dumps({"type": "recipient", "id": "new", "timezone": "Europe/Paris", "email": "n@example.com",
                     "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": WINDOW}]})],
        NOW,
    )  # fmt: skip
    page.goto(f"/ui/recipients/new?date={date(2026, 3, 10).isoformat()}")
    learned = page.locator("#learned-daily_brief-email")
    assert "default 09:00" in learned.locator(".learned-choice").inner_text()
    assert "too little history" in learned.inner_text()
    assert "No engagement in the window yet." in learned.inner_text()
    assert learned.locator("svg.chart.learned text.default").text_content() == "▲ default 09:00"
