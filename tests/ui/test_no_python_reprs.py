"""No Python repr reaches a person: every dashboard page as Chromium renders it, the unsubscribe
page, and the CLI's explain, status, simulate, deliveries list/show (timelines) and recipients list
are scanned for Python's own forms of its values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from sqlalchemy import text
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.notify import notify
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.store.recipients import recipient_id_of
from tests.ui.conftest import NOW, SIGNING_SECRET, TOKEN, serving, sign_in

#: Python's forms of its values: a repr of a timedelta, a datetime or a dict, ``str()`` of a
#: timedelta ('272 days, 14:10:46.320516', '2:00:00') or of an aware datetime, an object's repr.
REPRS = [
    re.compile(re.escape(literal))
    for literal in ("timedelta(", "datetime.", "date(", "{'", "'}", "[{", " object at 0x", "ZoneInfo(")
] + [
    re.compile(r"\b\d+ days?, \d{1,2}:\d{2}:\d{2}"),
    re.compile(r"(?<![\d:T])\d{1,2}:\d{2}:\d{2}\.\d{6}"),
    re.compile(r"(?:over|by|waited|was|lateness) \d{1,2}:\d{2}:\d{2}\b"),
    re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?[+-]\d{2}:\d{2}"),
    re.compile(r"\bNone\b"),
]
#: What a person reads on a page: the text, and the tooltips and labels.
VISIBLE = """() => [document.title, document.body.innerText,
  ...[...document.querySelectorAll('[title], [aria-label], [placeholder]')].flatMap(
      e => [e.getAttribute('title'), e.getAttribute('aria-label'), e.getAttribute('placeholder')]),
  ...[...document.querySelectorAll('svg title')].map(e => e.textContent)].filter(Boolean).join('\\n')"""


def reprs_in(text: str) -> list[str]:
    return [match.group(0) for pattern in REPRS for match in pattern.finditer(text)]


def _sampled_deliveries(app: App) -> list[int]:
    """One delivery of each (status, reason, first entry's detail keys, event): every kind of
    timeline the data set has."""
    with app.sessions() as session:
        rows = session.execute(
            text(
                "SELECT min(d.id) FROM delivery d LEFT JOIN delivery_event e ON e.delivery_id = d.id"
                " GROUP BY d.status, d.reason, e.event,"
                " (SELECT string_agg(k, ',' ORDER BY k) FROM json_object_keys(d.planned_detail) k)"
            )
        )
        return sorted({int(i) for (i,) in rows})


def _pages(app: App) -> list[str]:
    with app.sessions() as session:
        rita = recipient_id_of(session, "rita")
    assert rita is not None
    secret = SIGNING_SECRET.encode()
    return [
        "/ui", "/ui/deliveries", "/ui/deliveries?status=dead",
        "/ui/deliveries?status=sent&since=2026-03-01T00:00Z", "/ui/dead", "/ui/dead?within=all",
        "/ui/dead?within=forever", "/ui/recipients",
        "/ui/recipients?q=u-1", "/ui/recipients?opted_out=any", "/ui/recipients/rita",
        "/ui/recipients/rita?date=2026-03-27", "/ui/recipients/ny-early?date=2026-03-08",
        "/ui/recipients/ann", "/ui/recipients/u-1", "/ui/recipients/u-2?date=2026-03-09", "/ui/pauses",
        "/ui/workers", "/ui/queues", "/ui/history", "/ui/history?hours=6", "/ui/history?hours=24",
        "/ui/requeue?status=dead", "/ui/deliveries?after=abc", "/ui/recipients/nobody",
        "/u/" + sign(secret, UnsubscribeTarget(rita, "weekly_digest", "email")),
        "/u/" + sign(secret, UnsubscribeTarget(rita, "reminder", "sms")), "/u/broken.link",
        *(f"/ui/deliveries/{i}" for i in _sampled_deliveries(app)),
    ]  # fmt: skip


def test_no_page_shows_a_python_repr(page: Any, ui_app: App) -> None:
    # An SMS for 22:00 in London: deferred by the default SMS quiet hours to 08:00.
    deferred = notify(ui_app, "ann", "reminder", "sms", now=NOW, at=NOW + timedelta(hours=7))
    assert deferred.delivery["reason"] == "quiet_hours_deferred"
    found, seen = {}, []
    for path in _pages(ui_app):
        page.goto(path)
        visible = page.evaluate(VISIBLE)
        seen.append(visible)
        shown = reprs_in(visible)
        if shown:
            found[path] = shown
    assert found == {}
    # The timelines scanned hold the details that were dicts: an engagement tier, a deferral.
    assert any("engagement tier" in text for text in seen)
    assert any("quiet hours 21:00-08:00: deferred from 2026-03-07 22:00Z to" in text for text in seen)


def test_a_late_planner_is_told_in_words(browser: Any, ui_app: App) -> None:
    later = App(ui_app.settings, clock=lambda: NOW + timedelta(days=272, hours=14, minutes=10, seconds=46))
    try:
        with serving(later) as url:
            context = browser.new_context(base_url=url)
            try:
                page = context.new_page()
                page.set_default_timeout(5000)
                sign_in(page, TOKEN)
                page.goto("/ui")
                late = page.locator("tr.bad", has_text="last successful planner run").inner_text()
                assert "was 272 days 14 h ago (over 2 h)" in late, late
                assert reprs_in(page.evaluate(VISIBLE)) == []
            finally:
                context.close()
    finally:
        later.close()


@pytest.fixture
def cli(ui_app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    """The ``planner`` CLI on the data set's database and Redis, on the real clock (so the planner
    is months late)."""
    monkeypatch.setenv("PLANNER_DATABASE_URL", ui_app.settings.database_url)
    monkeypatch.setenv("PLANNER_REDIS_URL", ui_app.settings.redis_url or "")
    monkeypatch.setenv("PLANNER_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("PLANNER_SIGNING_SECRET", SIGNING_SECRET)
    saved = structlog.get_config()
    yield CliRunner()
    structlog.configure(**saved)


def test_no_cli_output_shows_a_python_repr(cli: CliRunner, ui_app: App) -> None:
    commands = [
        ["status"], ["deliveries", "list", "--limit", "50"], ["recipients", "list", "--search", "u-1"],
        ["explain", "rita", "--date", "2026-03-27"], ["explain", "rita", "--date", "2026-03-09"],
        ["explain", "ny-early", "--date", "2026-03-08"], ["explain", "ann", "--date", "2026-03-07"],
        ["explain", "u-2", "--date", "2026-03-09"], ["simulate", "rita", "--days", "7"],
        *(["deliveries", "show", str(i)] for i in _sampled_deliveries(ui_app)),
    ]  # fmt: skip
    found = {}
    for args in commands:
        result = cli.invoke(cli_app, args)
        assert result.exit_code == 0, (args, result.output)
        shown = reprs_in(result.stdout + result.stderr)
        if shown:
            found[" ".join(args)] = shown
    assert found == {}
    late = cli.invoke(cli_app, ["status"]).stdout
    assert "last successful planner run was" in " ".join(late.split()), late
