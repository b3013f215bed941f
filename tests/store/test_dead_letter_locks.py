"""PostgreSQL: a statement that changes many dead deliveries locks their daily counts first, in key
order, so two of them cannot deadlock on the counts; a deadlock or serialization failure the
database reports anyway reads as a conflict to send again, not as the database being down."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from planner.app import App, translate_error
from planner.errors import ConcurrentChange
from planner.store import dead_letter_days
from planner.store.db import transaction
from tests.commands.test_ops import add_recipient
from tests.store.test_dead_letter_days import DAY, add

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _touch_count(app: App, error: str, day_offset: int = 0) -> None:
    """Update one count's row in a transaction of its own that waits at most 300 ms for a lock."""
    with app.engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        connection.execute(
            sa.text("UPDATE dead_letter_day SET deaths = deaths WHERE error = :error AND day = :day"),
            {"error": error, "day": (DAY + timedelta(days=day_offset)).date()},
        )


def test_the_counts_of_the_rows_to_change_are_locked_first_every_error_of_their_reason_and_day(
    app: App,
) -> None:
    add_recipient(app)
    first = add(app, DAY + timedelta(hours=9), error="550 mailbox full")
    add(app, DAY + timedelta(hours=10), error="421 try later")  # same reason and day, other error
    add(app, DAY + timedelta(days=1, hours=9), error="550 mailbox full")  # the next day
    with transaction(app.sessions) as session:
        dead_letter_days.lock_counts(session, [first])
        with pytest.raises(OperationalError, match="lock timeout"):
            _touch_count(app, "550 mailbox full")
        with pytest.raises(OperationalError, match="lock timeout"):
            _touch_count(app, "421 try later")  # an erasure would move the row to no error
        _touch_count(app, "550 mailbox full", day_offset=1)  # another day: not held
    _touch_count(app, "550 mailbox full")  # released at the commit


def test_an_erasure_locks_the_counts_of_its_recipients_dead_deliveries(app: App) -> None:
    add_recipient(app)
    add(app, DAY + timedelta(hours=9), error="550 mailbox full")
    with transaction(app.sessions) as session:
        recipient_id = int(session.scalar(sa.text("SELECT id FROM recipient WHERE external_id = 'u-1'")))
    with transaction(app.sessions) as session:
        dead_letter_days.lock_recipient_counts(session, recipient_id)
        with pytest.raises(OperationalError, match="lock timeout"):
            _touch_count(app, "550 mailbox full")
    with transaction(app.sessions) as session:
        dead_letter_days.lock_recipient_counts(session, recipient_id + 1)  # another recipient's
        _touch_count(app, "550 mailbox full")


def test_a_deadlock_the_database_broke_is_a_conflict_to_send_again(app: App) -> None:
    add_recipient(app)
    ids = [add(app, DAY + timedelta(hours=h)) for h in (9, 10)]
    update = sa.text("UPDATE delivery SET attempts = attempts + 1 WHERE id = :id")
    first_holds = threading.Barrier(2)
    failures: list[BaseException] = []

    def in_order(order: list[int]) -> None:
        try:
            with app.engine.begin() as connection:
                connection.execute(sa.text("SET LOCAL deadlock_timeout = '50ms'"))
                connection.execute(update, {"id": order[0]})
                first_holds.wait(timeout=10)
                connection.execute(update, {"id": order[1]})
        except OperationalError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=in_order, args=(order,)) for order in (ids, ids[::-1])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(failures) == 1  # the database broke the cycle by aborting one of the two
    error = translate_error(failures[0])
    assert isinstance(error, ConcurrentChange)
    assert "send it again" in error.expected and "unavailable" not in str(error)
