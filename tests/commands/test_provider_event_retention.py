"""Applied provider callbacks are remembered PLANNER_PROVIDER_EVENT_RETENTION (7 days) and then
forgotten by the workers' maintenance pass, a bounded batch at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from planner.app import App
from planner.commands.feedback import drop_old_provider_events
from planner.processes.worker import run_maintenance
from planner.settings import Settings
from planner.store import feedback
from planner.store.tables import PROVIDER_EVENTS

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def _claim(app: App, event_id: str, at: datetime, token: str | None = None) -> str:
    with app.sessions() as session, session.begin():
        return feedback.claim_event(session, "mailgun", event_id, token, None, at)


def _remembered(app: App) -> list[str]:
    with app.sessions() as session:
        return sorted(session.scalars(select(PROVIDER_EVENTS.c.event_id)))


def test_callbacks_past_the_retention_are_forgotten_the_others_still_repeat(app: App) -> None:
    _claim(app, "old", NOW - timedelta(days=7, seconds=1), token="t-old")
    _claim(app, "recent", NOW - timedelta(days=6), token="t-recent")
    assert drop_old_provider_events(app, NOW) == 1
    assert _remembered(app) == ["recent"]
    assert _claim(app, "recent", NOW) == "repeat", "a repeat within the retention changes nothing"
    assert _claim(app, "other", NOW, token="t-recent") == "token_reused"
    assert drop_old_provider_events(app, NOW) == 0


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
def test_one_pass_forgets_a_bounded_batch_oldest_first(app: App) -> None:
    for i in range(5):
        _claim(app, f"e{i}", NOW - timedelta(days=30 - i))
    with app.sessions() as session, session.begin():
        assert feedback.drop_old_provider_events(session, NOW - timedelta(days=7), limit=3) == 3
    assert _remembered(app) == ["e3", "e4"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_maintenance_pass_forgets_them(app: App) -> None:
    _claim(app, "old", app.clock() - timedelta(days=8))
    run_maintenance(app)
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PROVIDER_EVENTS)) == 0


def test_a_retention_under_a_day_is_refused_naming_the_least() -> None:
    with pytest.raises(ValidationError, match="at least '1d'"):
        Settings(provider_event_retention="23h")
    assert Settings(provider_event_retention="2d").provider_event_retention == timedelta(days=2)
