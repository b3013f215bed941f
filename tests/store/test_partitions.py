"""PostgreSQL: deliveries and their timelines partitioned by month; one delivery per occurrence still
held by the database, ad-hoc keys included; months created ahead and dropped whole past the retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from planner.app import App
from planner.commands.retention import prune
from planner.store import adhoc, partitions
from planner.store.db import transaction
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS, RECIPIENTS
from planner.store.timeline import event_row, record_events
from tests.commands.test_ops import add_recipient
from tests.store.test_dead_letter_days import assert_counts_hold

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)


def delivery_row(app: App, key: str, day: date, status: str, **extra: Any) -> dict[str, Any]:
    with app.sessions() as session:
        recipient_id = session.scalar(select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == "u-1"))
    due = datetime(day.year, day.month, day.day, 9, tzinfo=UTC)
    return {
        "dedup_key": key, "recipient_id": recipient_id, "subscription_id": None, "kind": "reminder",
        "channel": "email", "queue": "default", "local_date": day, "occurrence_at": due, "scheduled_at": due,
        "status": status, "attempts": 0, "created_at": due, "updated_at": due, **extra,
    }  # fmt: skip


def insert_delivery(app: App, key: str, day: date, status: str = "sent") -> int:
    with transaction(app.sessions) as session:
        row = delivery_row(app, key, day, status)
        delivery_id = int(session.scalar(insert(DELIVERIES).values(row).returning(DELIVERIES.c.id)) or 0)
        record_events(session, [event_row(delivery_id, row["scheduled_at"], "retrying", status="retrying")])
    return delivery_id


def tables(app: App) -> set[str]:
    with app.sessions() as session:
        names = session.scalars(text("SELECT relname FROM pg_class WHERE relname LIKE 'delivery%p20%'"))
        return set(names)


def where(app: App, delivery_id: int) -> str:
    with app.sessions() as session:
        found = session.scalar(
            text("SELECT tableoid::regclass::text FROM delivery WHERE id = :id"), {"id": delivery_id}
        )
    return str(found)


def test_months_past_the_retention_are_dropped_whole_and_a_month_with_an_open_delivery_waits(
    app: App,
) -> None:
    add_recipient(app)
    for month in (date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)):
        with transaction(app.sessions) as session:
            partitions.create_month(session, month)
    january = [insert_delivery(app, f"sub:1:2026-01-{d:02d}", date(2026, 1, d)) for d in (3, 30)]
    insert_delivery(app, "sub:1:2026-02-10", date(2026, 2, 10), "dead")
    insert_delivery(app, "sub:1:2026-03-10", date(2026, 3, 10))
    paused = insert_delivery(app, "sub:2:2026-03-11", date(2026, 3, 11), "queued")
    assert where(app, january[0]) == "delivery_p2026_01"
    assert assert_counts_hold(app) == {("", "", date(2026, 2, 10)): 1}

    report = prune(app, NOW)  # the retention (90 days) reaches back to 2026-04-16: January-March are past it

    assert [m.isoformat() for m in report.months_dropped] == ["2026-01-01", "2026-02-01"]
    assert [m.isoformat() for m in report.months_created] == ["2026-07-01", "2026-08-01", "2026-09-01"]
    assert {"delivery_p2026_01", "delivery_event_p2026_01", "delivery_p2026_02"}.isdisjoint(tables(app))
    assert {"delivery_p2026_03", "delivery_event_p2026_09", "delivery_p2026_09"} <= tables(app)
    with app.sessions() as session:
        left = session.execute(select(DELIVERIES.c.id, DELIVERIES.c.status)).all()
        events = session.scalar(select(func.count()).select_from(DELIVERY_EVENTS))
    assert left == [(paused, "queued")], "March's sent delivery went row by row; its open one stays"
    assert events == 1
    assert (report.removed["deliveries"], report.removed["delivery_events"]) == (4, 4)
    assert report.removed["partitions_dropped"] == 2
    assert assert_counts_hold(app) == {}, "February's dead delivery left the dead letters' counts"


def test_one_delivery_per_occurrence_is_held_by_the_database_ad_hoc_keys_included(app: App) -> None:
    add_recipient(app)
    planned = delivery_row(app, "sub:1:2026-07-20", date(2026, 7, 20), "queued")
    with transaction(app.sessions) as session:
        session.execute(insert(DELIVERIES).values(planned))
    with (
        pytest.raises(IntegrityError, match="dedup_key, local_date"),
        transaction(app.sessions) as session,
    ):
        session.execute(insert(DELIVERIES).values(planned))
    # A planned key carries its local date: another date under the same key is refused by a check.
    with pytest.raises(IntegrityError, match="ck_delivery_key_date"), transaction(app.sessions) as session:
        session.execute(insert(DELIVERIES).values({**planned, "local_date": date(2026, 8, 20)}))
    first = delivery_row(app, "order-9", date(2026, 7, 20), "queued")
    with transaction(app.sessions) as session:
        assert adhoc.insert_delivery(session, first) is not None
    with transaction(app.sessions) as session:  # the same ad-hoc key, another month: held once
        assert adhoc.insert_delivery(session, {**first, "local_date": date(2026, 12, 1)}) is None
    with app.sessions() as session:
        assert session.scalar(select(func.count()).where(DELIVERIES.c.dedup_key == "order-9")) == 1


def test_a_new_month_takes_the_rows_the_default_partition_held_for_it(app: App) -> None:
    add_recipient(app)
    ahead = date(2027, 11, 3)  # an ad-hoc send wanted far ahead: no month for it yet
    delivery_id = insert_delivery(app, "adhoc:far", ahead, "queued")
    assert where(app, delivery_id) == "delivery_default"
    with transaction(app.sessions) as session:
        assert partitions.create_month(session, date(2027, 11, 1)) == 1
    assert where(app, delivery_id) == "delivery_p2027_11"
    with app.sessions() as session:
        moved = session.execute(select(DELIVERIES.c.status, DELIVERIES.c.scheduled_at)).one()
        event_at = session.scalar(text("SELECT tableoid::regclass::text FROM delivery_event"))
    assert moved.status == "queued" and moved.scheduled_at.date() == ahead
    assert event_at == "delivery_event_p2027_11", "its timeline moved with it"


def test_a_month_an_operator_redrives_meanwhile_is_not_dropped(app: App) -> None:
    add_recipient(app)
    with transaction(app.sessions) as session:
        partitions.create_month(session, date(2026, 1, 1))
    dead = insert_delivery(app, "sub:1:2026-01-05", date(2026, 1, 5), "dead")
    cutoff = NOW - timedelta(days=90)
    with app.sessions() as session:
        assert partitions.month_is_droppable(session, date(2026, 1, 1), cutoff)
    with transaction(app.sessions) as session:
        session.execute(DELIVERIES.update().where(DELIVERIES.c.id == dead).values(status="queued"))
    with transaction(app.sessions) as session:
        assert partitions.drop_month(session, date(2026, 1, 1), cutoff) is None
    assert "delivery_p2026_01" in tables(app)
