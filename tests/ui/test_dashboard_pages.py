"""The dashboard's read-side numbers (planner.readmodels.dashboard), worked out by hand, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from planner.app import App
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.core.paging import decode_cursor
from planner.errors import InvalidInput
from planner.readmodels import dashboard
from planner.settings import Settings
from planner.store.queries import DeliveryFilter
from tests.commands.test_ops import add_recipient, dead_email

NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)  # the Saturday before New York's 2026-03-08 change

PEOPLE = [
    # 02:30 does not exist in New York on 2026-03-08: sent at 03:30 EDT, 07:30Z.
    {"type": "recipient", "id": "ny", "timezone": "America/New_York", "email": "ny@example.com",
     "subscriptions": [{"kind": "night_report", "channel": "email", "at": "02:30", "days": "daily"}]},
    # 22:30 is inside the default SMS quiet hours (21:00-08:00): deferred to 08:00Z the next day.
    {"type": "recipient", "id": "ann", "timezone": "Europe/London", "phone": "+447700900123",
     "subscriptions": [{"kind": "daily_brief", "channel": "sms", "at": "22:30", "days": "daily"}]},
    # Opted out of email: nothing will be sent, so nothing is forecast.
    {"type": "recipient", "id": "quiet", "timezone": "UTC", "email": "q@example.com", "opt_out": ["email"],
     "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "18:00", "days": "daily"}]},
]  # fmt: skip


@pytest.fixture
def fixed(settings: Settings) -> Iterator[App]:
    app = App(settings, clock=lambda: NOW)
    import_lines(app.sessions, [json.dumps(p) for p in PEOPLE], NOW)
    yield app
    app.close()


def test_next_24_hours_counts_planned_rows_and_cadences_after_dst_and_quiet_hours(fixed: App) -> None:
    later = notify(fixed, "ny", "password_reset", "email", now=NOW, at=NOW + timedelta(hours=2, minutes=10))
    assert later.outcome == "scheduled", later.message

    forecast = dashboard.sends_next_hours(fixed, NOW)

    assert (forecast.planned, forecast.forecast, forecast.total) == (1, 2, 3)
    hours = {b.start: b for b in forecast.buckets}
    assert hours[datetime(2026, 3, 7, 17, tzinfo=UTC)].sends == {"email": 1}
    assert hours[datetime(2026, 3, 8, 7, tzinfo=UTC)].sends == {"email": 1}  # the shifted 02:30
    assert not hours[datetime(2026, 3, 8, 7, tzinfo=UTC)].deferred
    deferred = hours[datetime(2026, 3, 8, 8, tzinfo=UTC)]
    assert (deferred.sends, deferred.deferred) == ({"sms": 1}, {"sms": 1})
    assert sum(sum(b.sends.values()) for b in forecast.buckets) == 3
    assert forecast.buckets[0].start == NOW and len(forecast.buckets) == 24


def test_dst_transitions_name_the_zone_the_change_and_the_subscriptions_it_moves(fixed: App) -> None:
    (ny,) = dashboard.dst_transitions(fixed, NOW)  # London changes on 2026-03-29: not within 14 days

    assert (ny.timezone, ny.at, ny.kind, ny.delta) == (
        "America/New_York",
        datetime(2026, 3, 8, 7, tzinfo=UTC),
        "gap",
        timedelta(hours=1),
    )
    assert (ny.recipients, ny.subscriptions, ny.wall_shifted) == (1, 1, 1)

    month = dashboard.dst_transitions(fixed, NOW, days=30)
    assert [(t.timezone, t.at, t.wall_shifted) for t in month] == [
        ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC), 1),
        ("Europe/London", datetime(2026, 3, 29, 1, tzinfo=UTC), 0),  # 22:30 is not in the 01:00 gap
    ]


def test_dead_letters_are_grouped_by_reason_and_error_with_their_latest_rows(app: App) -> None:
    add_recipient(app)
    ids = [dead_email(app) for _ in range(3)]
    with app.sessions() as session:
        (group,) = dashboard.dead_letter_groups(session, None, per_group=2)
    assert (group.count, group.reason) == (3, "permanent_failure")
    assert group.error is not None and "mailbox full" in group.error
    assert [d["id"] for d in group.deliveries] == sorted(ids, reverse=True)[:2]


def test_dead_letters_are_read_within_a_window_of_their_scheduled_time(app: App) -> None:
    """The page's window bounds it by the recent failures: a week later, the three fall out of the
    default week and stay under "all"; a name outside the windows is refused, naming the field."""
    add_recipient(app)
    for _ in range(3):
        dead_email(app)
    now, week_later = app.clock(), app.clock() + timedelta(days=8)

    def counts(within: str, at: datetime) -> list[int]:
        _, since = dashboard.dead_window(within, at)
        with app.sessions() as session:
            return [g.count for g in dashboard.dead_letter_groups(session, since)]

    assert counts("24h", now) == [3]
    assert counts("7d", week_later) == []
    assert counts("30d", week_later) == [3]
    assert counts("all", week_later) == [3]
    assert dashboard.dead_window(None, now) == ("7d", now - timedelta(days=7))
    with pytest.raises(InvalidInput, match=r"within.*one of 7d, 24h, 30d, all"):
        dashboard.dead_window("forever", now)


def test_deliveries_page_by_cursor_in_a_stable_order(app: App) -> None:
    """Each page starts after the last row of the one before (latest first, or from ``since`` on),
    whatever is written meanwhile; the last page has no cursor."""
    add_recipient(app)
    ids = [
        int(notify(app, "u-1", "password_reset", "email", now=app.clock()).delivery["id"]) for _ in range(5)
    ]
    pages: list[list[int]] = []
    flt = DeliveryFilter()
    while True:
        with app.sessions() as session:
            page = dashboard.deliveries_page(session, flt, per_page=2)
        pages.append([d["id"] for d in page.rows])
        if page.next_after is None:
            break
        flt = replace(DeliveryFilter(), after=decode_cursor(page.next_after))
        if len(pages) == 1:  # a send written between two pages moves no row to another page
            notify(app, "u-1", "password_reset", "email", now=app.clock())
    with app.sessions() as session:
        since = dashboard.deliveries_page(session, DeliveryFilter(since=datetime(2000, 1, 1, tzinfo=UTC)), 2)
    assert pages == [ids[::-1][:2], ids[::-1][2:4], ids[::-1][4:]]
    assert [d["id"] for d in since.rows] == ids[:2]
