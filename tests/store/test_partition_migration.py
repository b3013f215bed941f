"""PostgreSQL: a database with history moves to monthly partitions while it is written to.

Migration 0022 prepares the partitioned tables and a trigger; ``planner db partition`` copies in
batches (here between writes a live service makes: new deliveries, a cancel rewriting an old row's
key, a timeline entry on an old delivery, all before their rows were copied), then swaps. Every row
ends up as the old table last had it, with a local date; ad-hoc keys are held; the service goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text, update

from planner.app import App
from planner.commands.partitioning import move_to_partitions
from planner.settings import Settings
from planner.store import adhoc, partition_copy
from planner.store.db import create_db_engine, transaction, upgrade
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS, RECIPIENTS, SUBSCRIPTIONS
from planner.store.timeline import event_row, record_events
from tests.servers import PostgresServer
from tests.store.test_dead_letter_days import assert_counts_hold

START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
DAYS = 180


@pytest.fixture
def history(pg: PostgresServer) -> Iterator[tuple[str, Engine]]:
    """A database at revision 0017 holding half a year of one daily subscription's deliveries (a
    third with a stored timeline entry) and ad-hoc deliveries without a local date, as 0017 wrote them."""
    pg.create_database("partition_history")
    url = pg.url("partition_history")
    engine = create_db_engine(url)
    upgrade(engine, "0021")
    stamps = {"created_at": START, "updated_at": START}
    with engine.begin() as conn:
        conn.execute(insert(RECIPIENTS).values(id=1, external_id="u-1", timezone="UTC", **stamps))
        conn.execute(
            insert(SUBSCRIPTIONS).values(
                id=1, recipient_id=1, kind="reminder", channel="email", send_time=START.time(), days="daily",
                digest=False, active=True, **stamps,
            )
        )  # fmt: skip
        base = {"recipient_id": 1, "kind": "reminder", "channel": "email", "queue": "default", "attempts": 1}
        rows = []
        for i in range(DAYS):
            due = START + timedelta(days=i)
            sent = {**base, **stamps, "occurrence_at": due, "scheduled_at": due, "status": "sent"}
            rows.append(
                {**sent, "dedup_key": f"sub:1:{due.date()}", "subscription_id": 1, "local_date": due.date()}
            )
            if i % 6 == 0:
                rows.append({**sent, "dedup_key": f"order-{i}", "subscription_id": None, "local_date": None})
        conn.execute(insert(DELIVERIES), rows)
        ids = list(conn.scalars(select(DELIVERIES.c.id).order_by(DELIVERIES.c.id)))
        events = [
            {"delivery_id": i, "at": START, "event": "retrying", "status": "retrying"} for i in ids[::3]
        ]
        conn.execute(insert(DELIVERY_EVENTS), events)
    yield url, engine
    engine.dispose()


def _rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` without its local date (empty on rows written before 0022), by id."""
    model = DELIVERY_EVENTS if table.startswith("delivery_event") else DELIVERIES
    chosen = ", ".join(c.name for c in model.columns if c.name != "local_date")
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {chosen} FROM {table} ORDER BY id"))]


def test_a_database_with_history_moves_in_batches_while_it_is_written_to(
    history: tuple[str, Engine], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, engine = history
    monkeypatch.setattr(partition_copy, "MOVED_AT_ONCE", 50)  # more than that: the batched copy
    upgrade(engine)
    app = App(Settings(database_url=url, redis_url=redis_url, email_adapter="file", sms_adapter="file"))
    with app.sessions() as session:
        assert partition_copy.state(session) == "copying"
    written: list[str] = []

    def live_writes(table: str, last_id: int) -> None:
        """After the first batch: what the service writes meanwhile, on rows not copied yet."""
        if written:
            return
        written.append(table)
        with transaction(app.sessions) as session:
            newest = session.scalar(select(func.max(DELIVERIES.c.id)))
            session.execute(
                update(DELIVERIES).where(DELIVERIES.c.id == newest)
                .values(status="cancelled", dedup_key=DELIVERIES.c.dedup_key + ":cancelled:1")
            )  # fmt: skip
            record_events(session, [event_row(newest - 1, START, "provider_delivered", detail={"id": "e-1"})])
            row = {"dedup_key": "order-live", "recipient_id": 1, "subscription_id": None, "kind": "reminder",
                   "channel": "email", "queue": "default", "local_date": date(2026, 7, 1),
                   "scheduled_at": START, "status": "queued", "attempts": 0, "created_at": START,
                   "updated_at": START}  # fmt: skip
            assert adhoc.insert_delivery(session, row) is not None

    move_to_partitions(app, 100, live_writes)

    assert written == ["delivery"]
    with app.sessions() as session:
        assert partition_copy.state(session) == "partitioned"
        dateless = session.scalar(select(func.count()).where(DELIVERY_EVENTS.c.local_date.is_(None)))
        keys = session.scalar(text("SELECT count(*) FROM adhoc_key"))
    assert _rows(engine, "delivery") == _rows(engine, "delivery_unpartitioned"), (
        "every delivery, as last written"
    )
    assert _rows(engine, "delivery_event") == _rows(engine, "delivery_event_unpartitioned")
    assert dateless == 0 and keys == DAYS // 6 + 1
    with transaction(app.sessions) as session:  # the dead letters' counts moved with the table
        dies = update(DELIVERIES).where(DELIVERIES.c.id == 7).values(status="dead", reason="rejected")
        session.execute(dies)
        due = session.scalar(select(DELIVERIES.c.scheduled_at).where(DELIVERIES.c.id == 7))
    assert assert_counts_hold(app) == {("rejected", "", due.date()): 1}
    with transaction(app.sessions) as session:  # a repeated ad-hoc key is still refused after the move
        assert (
            adhoc.insert_delivery(session, {"dedup_key": "order-0", "local_date": date(2026, 9, 1)}) is None
        )
    app.close()
