"""Reads whose cost must not grow with the settled history (SQLite's plans; PostgreSQL chooses by
statistics, so its plan on a few rows says nothing: bench/history_bench.py EXPLAINs both with a year
of history)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from planner.app import App
from planner.store.caps import counted_instants
from planner.store.changes import cancel_pending_after
from planner.store.deliveries import page_of_deliveries
from planner.store.engagement import last_sent_dates
from planner.store.explain import adhoc_between
from planner.store.queries import DeliveryFilter, list_deliveries

#: A recipient's deliveries over a window, read over that window only.
WINDOW_ON_RECIPIENT_INDEX = (
    "ix_delivery_recipient_scheduled (recipient_id=? AND scheduled_at>? AND scheduled_at<?)"
)
#: A recipient's list: the recipient's range of the index, read in the list's order.
RECIPIENT_RANGE = "ix_delivery_recipient_scheduled (recipient_id=?)"


@contextmanager
def plans_of_reads(app: App) -> Iterator[Callable[[], list[tuple[str, list[str]]]]]:
    """The SELECTs on ``delivery`` sent inside the block, with their SQLite query plans."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    def plans() -> list[tuple[str, list[str]]]:
        reads = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT") and "FROM delivery" in s]
        with app.engine.connect() as connection:
            return [
                (s, [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p)])
                for s, p in reads
            ]

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        yield plans
    finally:
        event.remove(app.engine, "before_cursor_execute", record)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("status", ["dead", "queued"])
def test_a_page_of_one_open_status_walks_the_open_status_index(app: App, status: str) -> None:
    """The dashboard's and ``deliveries list``'s ``status=dead``: the same cost whatever the history."""
    first = DeliveryFilter(status=status, newest_first=True)
    with plans_of_reads(app) as plans, app.sessions() as session:
        page_of_deliveries(session, first, 51)
        page_of_deliveries(session, replace(first, after=(datetime(2026, 3, 2, tzinfo=UTC), 10**6)), 51)
        list_deliveries(session, DeliveryFilter(status=status, limit=100, newest_first=True))
    found = plans()
    assert len(found) == 3
    for statement, plan in found:
        assert any("ix_delivery_open_scheduled (status=?" in step for step in plan), (statement, plan)
        assert not [step for step in plan if step.startswith("SCAN delivery")], (statement, plan)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("channel", [None, "sms"])
def test_the_deliveries_a_cap_counts_are_read_over_its_window_only(app: App, channel: str | None) -> None:
    """The planner's, explain's and the recipient page's cap reads: each recipient's channels over the
    window, not the recipient's whole history nor every delivery of the window."""
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with plans_of_reads(app) as plans, app.sessions() as session:
        counted_instants(session, "sqlite", [1, 2], now - timedelta(days=1), now, channel=channel)
    [(statement, plan)] = plans()
    assert any(WINDOW_ON_RECIPIENT_INDEX in step for step in plan), (statement, plan)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_recipients_ad_hoc_deliveries_of_a_day_are_read_over_that_day_only(app: App) -> None:
    """``explain``'s (and the recipient page's) ad-hoc sends of a day: not every ad-hoc delivery of
    every recipient (``subscription_id IS NULL`` on the subscription index)."""
    day = datetime(2026, 3, 2, tzinfo=UTC)
    with plans_of_reads(app) as plans, app.sessions() as session:
        adhoc_between(session, 1, day, day + timedelta(days=1), None)
    [(statement, plan)] = plans()
    assert any(WINDOW_ON_RECIPIENT_INDEX in step for step in plan), (statement, plan)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("channel", [None, "sms"])
def test_a_page_of_one_recipient_is_read_from_the_index_in_the_lists_order(
    app: App, channel: str | None
) -> None:
    """The dashboard's, ``/deliveries``'s and ``deliveries list``'s ``recipient=``: the page's rows in
    the index's order, not every delivery of the recipient kept, sorted."""
    flt = DeliveryFilter(recipient="u-1", channel=channel, newest_first=True)
    with plans_of_reads(app) as plans, app.sessions() as session:
        page_of_deliveries(session, flt, 51)
        page_of_deliveries(session, replace(flt, after=(datetime(2026, 3, 2, tzinfo=UTC), 10**6)), 51)
        newest = DeliveryFilter(recipient="u-1", channel=channel, limit=100, newest_first=True)
        list_deliveries(session, newest)
    found = plans()
    assert len(found) == 3
    for statement, plan in found:  # the cursor's page: the range up to its cursor
        assert any(RECIPIENT_RANGE.rstrip(")") in step for step in plan), (statement, plan)
        sorts = [n for n, step in enumerate(plan) if "TEMP B-TREE" in step]
        assert sorts in ([], [len(plan) - 1]), (statement, plan)  # the last: the page's own rows, joined


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_subscriptions_deliveries_are_its_range_of_the_dedup_key(app: App) -> None:
    """The backoff's last send and a schedule change's cancellations, on SQLite (which has no index on
    ``(subscription_id, local_date)``): the subscription's range of the dedup key's unique index."""
    now = datetime(2026, 7, 15, tzinfo=UTC)
    with plans_of_reads(app) as plans, app.sessions() as session:
        last_sent_dates(session, "sqlite", [1, 2], None, (now - timedelta(days=40)).date())
        last_sent_dates(session, "sqlite", [1, 2], now.date())
        cancel_pending_after(session, [1, 2], now)
    found = plans()
    assert len(found) == 4  # the last sends: the recent months, then everything kept for those none
    for statement, plan in found:
        assert any("sqlite_autoindex_delivery_1 (dedup_key>? AND dedup_key<?)" in step for step in plan), (
            statement, plan,
        )  # fmt: skip
        assert not [step for step in plan if step.startswith("SCAN delivery")], (statement, plan)
