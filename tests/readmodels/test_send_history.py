"""The send history's buckets (sent per minute, time from due to sent), worked out by hand, on both
databases: the database groups them, so SQLite's and PostgreSQL's arithmetic must agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from planner.app import App
from planner.commands.notify import notify
from planner.errors import InvalidInput
from planner.readmodels.history import send_history
from tests.commands.test_ops import add_recipient, deliverer

DUE = datetime(2026, 3, 7, 14, 10, 0, tzinfo=UTC)


def send_at(app: App, due: datetime, sent: datetime, channel: str = "email") -> None:
    """One ad-hoc delivery due at ``due``, sent by a worker whose clock says ``sent``."""
    result = notify(app, "u-1", "reminder", channel, now=due)
    worker = App(app.settings, clock=lambda: sent)
    try:
        assert deliverer(worker)[0].deliver_batch([result.delivery["id"]]).sent == 1
    finally:
        worker.close()


def test_sent_per_minute_and_due_to_sent(app: App) -> None:
    add_recipient(app, email="u1@example.com", phone="+12125550100", quiet_hours={"sms": "none"})
    send_at(app, DUE, DUE + timedelta(seconds=5))
    send_at(app, DUE, DUE + timedelta(seconds=50))  # the same minute, later
    send_at(app, DUE + timedelta(minutes=1), DUE + timedelta(minutes=3, seconds=30), "sms")
    send_at(app, DUE - timedelta(hours=3), DUE - timedelta(hours=3))  # outside the hour

    now = DUE + timedelta(minutes=20, seconds=10)
    with app.sessions() as session:
        hour = send_history(session, now, 1)
    assert (hour.bucket_seconds, len(hour.buckets), hour.total) == (60, 60, 3)
    assert hour.buckets[-1].start == datetime(2026, 3, 7, 14, 30, tzinfo=UTC)  # the minute holding now
    by_start = {b.start: b for b in hour.buckets if b.sent}
    first = by_start[DUE]
    assert first.sent == {"email": 2}
    assert first.mean_seconds == pytest.approx(27.5, abs=0.01)
    assert first.max_seconds == pytest.approx(50, abs=0.01)
    later = by_start[DUE + timedelta(minutes=3)]
    assert later.sent == {"sms": 1} and later.max_seconds == pytest.approx(150, abs=0.01)
    assert set(by_start) == {DUE, DUE + timedelta(minutes=3)}
    assert hour.longest == pytest.approx(150, abs=0.01)

    with app.sessions() as session:
        day = send_history(session, now, 24)
    assert (day.bucket_seconds, len(day.buckets), day.total) == (900, 96, 4)
    quarter = next(b for b in day.buckets if b.start == datetime(2026, 3, 7, 14, 0, tzinfo=UTC))
    assert quarter.sent == {"email": 2, "sms": 1}
    assert quarter.mean_seconds == pytest.approx((5 + 50 + 150) / 3, abs=0.01)


def test_only_the_offered_windows(app: App) -> None:
    with app.sessions() as session, pytest.raises(InvalidInput, match="hours"):
        send_history(session, DUE, 5)
