"""Instants bound for statements sent to the driver itself are stored exactly as the ORM stores them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from planner.app import App
from planner.errors import NaiveDatetimeError
from planner.store.models import PlannerRun
from planner.store.types import instant_binder

WHOLE_SECOND = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_raw_bound_instant_is_stored_as_the_orm_stores_it(app: App) -> None:
    """On SQLite the stored text always carries microseconds (so text order is time order): the
    driver's own adapter would write '2026-03-02 12:00:00' for a whole second."""
    bind = instant_binder(app.engine.dialect)
    elsewhere = WHOLE_SECOND.astimezone(timezone(timedelta(hours=5)))
    with app.sessions() as session, session.begin():
        session.add(PlannerRun(run_id="orm", window_end=WHOLE_SECOND, started_at=WHOLE_SECOND, status="x"))
    with app.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO planner_run (run_id, window_end, started_at, status, occurrences)"
            + (
                " VALUES (%(r)s, %(w)s, %(s)s, 'x', 0)"
                if app.engine.dialect.name == "postgresql"
                else " VALUES (:r, :w, :s, 'x', 0)"
            ),
            {"r": "raw", "w": bind(elsewhere), "s": bind(WHOLE_SECOND)},
        )
        stored = dict(
            connection.execute(text("SELECT run_id, CAST(window_end AS TEXT) FROM planner_run")).all()
        )
    assert stored["raw"] == stored["orm"]
    if app.engine.dialect.name == "sqlite":
        assert stored["raw"] == "2026-03-02 12:00:00.000000"
    with pytest.raises(NaiveDatetimeError):
        bind(datetime(2026, 3, 2, 12, 0))
