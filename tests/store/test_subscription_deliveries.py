"""A subscription's deliveries, as the store reads them: engagement backoff's "last to-be-sent date"
(looked up over the recent months first, then over everything kept for those with none there, with
the same answer either way) and a schedule change's pending ones; on SQLite each subscription's
range of the dedup key (planner.store.subscription_keys)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from planner.app import App
from planner.commands.importer import import_lines
from planner.store.changes import cancel_pending_after
from planner.store.db import transaction
from planner.store.engagement import last_sent_dates
from planner.store.tables import DELIVERIES, SUBSCRIPTIONS
from tests.helpers import count_statements, recipient_line

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

TODAY = date(2026, 7, 15)
RECENT = TODAY - timedelta(days=40)


def subscriptions(app: App, *kinds: str) -> list[int]:
    subs = [{"kind": kind, "channel": "email", "at": "09:00"} for kind in kinds]
    import_lines(app.sessions, [recipient_line("u-1", "UTC", subs)], datetime(2026, 1, 1, tzinfo=UTC))
    with app.sessions() as session:
        return list(session.scalars(select(SUBSCRIPTIONS.c.id).order_by(SUBSCRIPTIONS.c.id)))


def deliveries(app: App, subscription_id: int, days: dict[date, str]) -> None:
    with transaction(app.sessions) as session:
        owner = select(SUBSCRIPTIONS.c.recipient_id).where(SUBSCRIPTIONS.c.id == subscription_id)
        recipient_id = session.scalar(owner)
        for day, status in days.items():
            due = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
            session.execute(insert(DELIVERIES).values(
                dedup_key=f"sub:{subscription_id}:{day}", recipient_id=recipient_id,
                subscription_id=subscription_id, kind="daily_brief", channel="email", queue="default",
                local_date=day, occurrence_at=due, scheduled_at=due, status=status, attempts=0,
                created_at=due, updated_at=due,
            ))  # fmt: skip


def test_a_last_send_before_the_recent_months_is_found_over_everything_kept(app: App) -> None:
    recent, old, never, new = subscriptions(app, "daily_brief", "weekly", "monthly", "fresh")
    deliveries(app, recent, {TODAY - timedelta(days=3): "sent", TODAY - timedelta(days=1): "skipped"})
    # Sent 60 days ago, then backed off (skipped) every day since: outside the recent window.
    deliveries(app, old, {TODAY - timedelta(days=60): "sent"} | {
        TODAY - timedelta(days=n): "skipped" for n in range(1, 60)
    })  # fmt: skip
    dialect = app.engine.dialect.name
    every, older = [recent, old, never, new], {recent, old, never}
    with app.sessions() as session, count_statements(app.engine) as statements:
        found = last_sent_dates(session, dialect, every, None, RECENT, older)
    assert found == {recent: TODAY - timedelta(days=3), old: TODAY - timedelta(days=60)}
    assert len(selects(statements)) == 2  # the recent months, then the older ones with none there
    with app.sessions() as session:
        assert last_sent_dates(session, dialect, every) == found
    with app.sessions() as session, count_statements(app.engine) as statements:
        last_sent_dates(session, dialect, [recent, new], None, RECENT, {recent})
    assert len(selects(statements)) == 1  # one too new to have sent before the window: no second look


def selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_each_subscription_finds_its_own_dates_only(app: App) -> None:
    """Ids that start alike (1 and 12), several sends a day, a date bound and a cancelled row: on SQLite
    each is a range of the dedup key (``sub:1:`` up to ``sub:1;``), not of ``sub:1``."""
    subs = subscriptions(app, *(f"kind{n}" for n in range(12)))
    one, twelve = subs[0], subs[11]
    assert (str(one), str(twelve)) == ("1", "12")
    deliveries(app, one, {TODAY - timedelta(days=5): "sent", TODAY - timedelta(days=2): "cancelled"})
    deliveries(app, twelve, {TODAY - timedelta(days=1): "sent", TODAY: "queued"})
    with transaction(app.sessions) as session:  # a schedule of several times a day keys "@HH:MM"
        session.execute(
            DELIVERIES.update()
            .where(DELIVERIES.c.subscription_id == one, DELIVERIES.c.status == "sent")
            .values(dedup_key=f"sub:{one}:{TODAY - timedelta(days=5)}@08:00")
        )
    dialect = app.engine.dialect.name
    with app.sessions() as session:
        assert last_sent_dates(session, dialect, [one, twelve]) == {
            one: TODAY - timedelta(days=5), twelve: TODAY,
        }  # fmt: skip
        assert last_sent_dates(session, dialect, [one, twelve], before=TODAY) == {
            one: TODAY - timedelta(days=5), twelve: TODAY - timedelta(days=1),
        }  # fmt: skip
        assert last_sent_dates(session, dialect, [one], before=TODAY - timedelta(days=5)) == {}
        recent_only = last_sent_dates(session, dialect, [one, twelve], None, TODAY - timedelta(days=4), set())
        assert recent_only == {twelve: TODAY}


def test_a_schedule_change_cancels_its_own_subscriptions_pending_deliveries_only(app: App) -> None:
    """Subscription 1's cancellation leaves subscription 12's deliveries alone (their keys share the
    text ``sub:1``), and its own sent and past ones too."""
    subs = subscriptions(app, *(f"kind{n}" for n in range(12)))
    one, twelve = subs[0], subs[11]
    tomorrow = TODAY + timedelta(days=1)
    deliveries(app, one, {TODAY - timedelta(days=1): "sent", TODAY: "queued", tomorrow: "queued"})
    deliveries(app, twelve, {TODAY: "queued", tomorrow: "queued"})
    now = datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC)
    with transaction(app.sessions) as session:
        cancelled = cancel_pending_after(session, [one], now)
    with app.sessions() as session:
        d = DELIVERIES.c
        rows = session.execute(select(d.id, d.subscription_id, d.local_date, d.status)).all()
    by_key = {(r.subscription_id, r.local_date): (r.id, r.status) for r in rows}
    assert cancelled == [by_key[(one, tomorrow)][0]]
    assert {key: status for key, (_, status) in by_key.items()} == {
        (one, TODAY - timedelta(days=1)): "sent", (one, TODAY): "queued", (one, tomorrow): "cancelled",
        (twelve, TODAY): "queued", (twelve, tomorrow): "queued",
    }  # fmt: skip
