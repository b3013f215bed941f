"""The overview's forecasts: computed by the first request, then served from memory while one
background thread recomputes them when they are over a minute old (no page waits but the first)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from planner.app import App
from planner.ui.web import FORECAST_TTL, Ui

T0 = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)


def test_a_stale_forecast_is_served_at_once_and_recomputed_once_in_the_background(app: App) -> None:
    ui = Ui(app)
    assert ui.recent("forecast", T0, lambda: "first") == ("first", T0)
    assert ui.recent("forecast", T0 + timedelta(seconds=30), lambda: "unused") == ("first", T0)

    release, calls = threading.Event(), []

    def slow() -> str:
        calls.append(1)
        assert release.wait(10)
        return "second"

    later = T0 + FORECAST_TTL + timedelta(seconds=1)
    # Stale: returned at once (the compute is blocked), and two requests start one recompute.
    assert ui.recent("forecast", later, slow) == ("first", T0)
    assert ui.recent("forecast", later, slow) == ("first", T0)
    release.set()
    for thread in [t for t in threading.enumerate() if t.name == "ui-forecast"]:
        thread.join(10)
    assert calls == [1]
    assert ui.recent("forecast", later, lambda: "unused") == ("second", later)


def test_a_failed_recompute_keeps_the_stale_forecast_and_is_tried_again(app: App) -> None:
    ui = Ui(app)
    ui.recent("dst", T0, lambda: "first")

    def broken() -> str:
        raise ConnectionError("database unreachable")

    later = T0 + FORECAST_TTL + timedelta(seconds=1)
    assert ui.recent("dst", later, broken) == ("first", T0)
    for thread in [t for t in threading.enumerate() if t.name == "ui-dst"]:
        thread.join(10)
    assert ui.recent("dst", later, lambda: "again") == ("first", T0)  # served stale, retried
    for thread in [t for t in threading.enumerate() if t.name == "ui-dst"]:
        thread.join(10)
    assert ui.recent("dst", later, lambda: "unused") == ("again", later)
