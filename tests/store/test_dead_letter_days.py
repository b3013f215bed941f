"""The dead letters counted per reason, error and day by the database's triggers: the counts follow
every change of a dead row, whatever code makes it, and a window or a group read from them gives
what counting the rows gives."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from planner.app import App
from planner.store import dead_letters
from planner.store.db import Session, transaction
from planner.store.dead_letters import GroupKey
from planner.store.models import ERROR_KEY_LENGTH
from planner.store.tables import DEAD_LETTER_DAYS, DELIVERIES, RECIPIENTS
from tests.commands.test_ops import add_recipient
from tests.helpers import count_statements

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)

DAY = datetime(2026, 7, 10, tzinfo=UTC)
FULL = GroupKey("permanent_failure", "550 mailbox full")


def add(app: App, at: datetime, status: str = "dead", reason: str | None = FULL.reason,
        error: str | None = FULL.error) -> int:  # fmt: skip
    with transaction(app.sessions) as session:
        recipient_id = session.scalar(select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == "u-1"))
        key = f"order-{uuid.uuid4().hex}"
        row = {
            "dedup_key": key, "recipient_id": recipient_id, "subscription_id": None, "kind": "reminder",
            "channel": "email", "queue": "default", "local_date": at.date(), "occurrence_at": at,
            "scheduled_at": at, "status": status, "reason": reason, "last_error": error, "attempts": 1,
            "created_at": at, "updated_at": at,
        }  # fmt: skip
        return int(session.scalar(insert(DELIVERIES).values(row).returning(DELIVERIES.c.id)) or 0)


def change(app: App, delivery_id: int, **values: Any) -> None:
    with transaction(app.sessions) as session:
        session.execute(update(DELIVERIES).where(DELIVERIES.c.id == delivery_id).values(**values))


def kept(session: Session) -> Counter[tuple[str, str, date]]:
    t = DEAD_LETTER_DAYS.c
    rows = session.execute(select(t.reason, t.error, t.day, t.deaths))
    return Counter({(r, e, d if isinstance(d, date) else date.fromisoformat(d)): n for r, e, d, n in rows})


def recounted(session: Session) -> Counter[tuple[str, str, date]]:
    """The counts as the dead rows give them, counted here."""
    c = DELIVERIES.c
    found: Counter[tuple[str, str, date]] = Counter()
    for reason, error, at in session.execute(
        select(c.reason, c.last_error, c.scheduled_at).where(c.status == "dead")
    ):
        found[(reason or "", (error or "")[:ERROR_KEY_LENGTH], at.astimezone(UTC).date())] += 1
    return found


def assert_counts_hold(app: App) -> Counter[tuple[str, str, date]]:
    with app.sessions() as session:
        stored, expected = kept(session), recounted(session)
    assert stored == expected and all(n > 0 for n in stored.values())
    return stored


def test_the_counts_follow_every_change_of_a_dead_row(app: App) -> None:
    add_recipient(app)
    first = add(app, DAY + timedelta(hours=9))
    add(app, DAY + timedelta(hours=10))
    queued = add(app, DAY + timedelta(hours=11), status="queued", reason=None, error=None)
    assert assert_counts_hold(app) == {("permanent_failure", "550 mailbox full", DAY.date()): 2}

    change(app, queued, status="dead", reason="attempts_exhausted", last_error="timeout")  # a worker's end
    change(app, first, status="retrying", reason=None, attempts=0)  # an operator's retry
    assert assert_counts_hold(app) == {
        ("permanent_failure", "550 mailbox full", DAY.date()): 1,
        ("attempts_exhausted", "timeout", DAY.date()): 1,
    }
    change(app, first, status="dead", reason="attempts_exhausted", last_error="timeout",
           scheduled_at=DAY + timedelta(days=1))  # fmt: skip
    change(app, queued, last_error=None)  # an erasure: the group is the reason with no error
    change(app, queued, attempts=3)  # not a change of its count
    assert assert_counts_hold(app) == {
        ("permanent_failure", "550 mailbox full", DAY.date()): 1,
        ("attempts_exhausted", "", DAY.date()): 1,
        ("attempts_exhausted", "timeout", DAY.date() + timedelta(days=1)): 1,
    }
    with transaction(app.sessions) as session:  # the retention
        session.execute(delete(DELIVERIES).where(DELIVERIES.c.scheduled_at < DAY + timedelta(days=1)))
    assert assert_counts_hold(app) == {("attempts_exhausted", "timeout", DAY.date() + timedelta(days=1)): 1}


def test_an_error_is_grouped_by_its_first_characters(app: App) -> None:
    add_recipient(app)
    long = "x" * ERROR_KEY_LENGTH
    add(app, DAY, error=long + " id 1")
    add(app, DAY, error=long + " id 2")
    assert assert_counts_hold(app) == {(FULL.reason, long, DAY.date()): 2}


def deaths_over_days(app: App) -> dict[GroupKey, list[datetime]]:
    """Two groups over four days, a few each, at hours on both sides of the windows' starts."""
    rare = GroupKey("rejected", "")
    when = {
        FULL: [DAY + timedelta(days=d, hours=h) for d in (0, 1, 3) for h in (2, 9, 20)],
        rare: [DAY + timedelta(hours=1), DAY + timedelta(days=40, hours=8)],
    }
    for key, instants in when.items():
        for at in instants:
            add(app, at, reason=key.reason, error=key.error or None)
    add(app, DAY + timedelta(hours=5), status="sent", reason=None, error=None)
    return when


@pytest.mark.parametrize("hours_in", [0, 9, 15])
def test_a_window_counts_what_its_rows_give(app: App, hours_in: int) -> None:
    """The window's first day partly counted (from the rows), the days after it from the table."""
    add_recipient(app)
    when = deaths_over_days(app)
    for since in (None, DAY + timedelta(hours=hours_in), DAY + timedelta(days=1, hours=hours_in)):
        expected = {}
        for key, instants in when.items():
            inside = [t for t in instants if since is None or t >= since]
            if inside:
                days = sorted({t.date() for t in inside})
                expected[key] = dead_letters.GroupFigures(len(inside), len(days), days[0], days[-1])
        with app.sessions() as session:
            assert dead_letters.groups_in(session, since) == expected


@pytest.mark.parametrize("limit", [1, 4, 20])
def test_each_groups_rows_are_its_latest_scheduled_all_groups_in_one_statement(app: App, limit: int) -> None:
    add_recipient(app)
    when = deaths_over_days(app)
    with app.sessions() as session:
        c = DELIVERIES.c
        dead = session.execute(select(c.id, c.scheduled_at).where(c.status == "dead"))
        by_time = {at.astimezone(UTC): delivery_id for delivery_id, at in dead}
    for since in (None, DAY + timedelta(hours=9), DAY + timedelta(days=2)):
        with app.sessions() as session, count_statements(app.engine) as statements:
            found = dead_letters.latest_of_groups(session, list(when), since, limit)
        assert len([sql for sql in statements if sql.lstrip().startswith("SELECT")]) == 2  # days, rows
        for key, instants in when.items():
            inside = sorted((t for t in instants if since is None or t >= since), reverse=True)
            rows = found.get(key, [])
            assert [d["id"] for d in rows] == [by_time[t] for t in inside[:limit]]
            assert {d["recipient_id"] for d in rows} <= {"u-1"}

