"""A page of open deliveries of one status (the dashboard's and ``deliveries list``'s ``status=dead``)
reads the open-status index in its order: a page costs the same whatever the settled history."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from planner.app import App
from planner.store.deliveries import page_of_deliveries
from planner.store.queries import DeliveryFilter, list_deliveries


# SQLite only: PostgreSQL chooses by statistics, so its plan on an empty table says nothing;
# bench/history_bench.py EXPLAINs both with a year of history.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("status", ["dead", "queued"])
def test_a_page_of_one_open_status_walks_the_open_status_index(app: App, status: str) -> None:
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        with app.sessions() as session:
            page_of_deliveries(session, DeliveryFilter(status=status), 0, 51)
            list_deliveries(session, DeliveryFilter(status=status, limit=100, newest_first=True))
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
    reads = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT") and "FROM delivery" in s]
    assert len(reads) == 2
    with app.engine.connect() as connection:
        for statement, parameters in reads:
            plan = [
                row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
            assert any("ix_delivery_open_scheduled (status=?)" in step for step in plan), (statement, plan)
            assert not [step for step in plan if step.startswith("SCAN delivery")], (statement, plan)
