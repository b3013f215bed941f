"""``history_bench``'s measured process: one database copy, the hot paths timed, their SQL recorded
and ``EXPLAIN``-ed (``_history_plans``). Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from _history_plans import explain_all, record_statements
from plan_bench import HORIZON, NOW

TOKEN = "history-bench-token"
REPEAT = 5
#: The lists ``deliveries list`` (and /deliveries) are asked for, by their filters.
LISTS = {
    "list: latest 100": {},
    "list: status dead": {"status": "dead"},
    "list: one recipient": {"recipient": "u77"},
    "list: kind + channel, last day": {
        "kind": "reminder",
        "channel": "sms",
        "since": NOW - timedelta(days=1),
    },
    "list: since a week": {"since": NOW - timedelta(days=7)},
}


def _median_ms(call: Callable[[], Any], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _lists(app: Any) -> dict[str, float]:
    from planner.store.queries import DeliveryFilter, list_deliveries

    timings = {}
    for name, filters in LISTS.items():
        flt = DeliveryFilter(limit=101, newest_first=not filters.get("since"), **filters)

        def read(flt: DeliveryFilter = flt) -> None:
            with app.sessions() as session:
                list_deliveries(session, flt)

        timings[name] = _median_ms(read)
    return timings


def _http(app: Any, pages: list[str]) -> dict[str, float]:
    import httpx

    from tests.http_server import serving

    timings = {}
    with serving(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        form = client.get("/ui/login").text
        nonce = form.split('name="nonce" value="')[1].split('"')[0]
        assert (
            client.post("/ui/login", data={"nonce": nonce, "next": "/ui", "token": TOKEN}).status_code == 303
        )
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in pages:
            headers = auth if not path.startswith("/ui") else {}
            status = client.get(path, headers=headers).status_code
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            # One name on both databases: the latest delivery's id differs between them.
            label = re.sub(r"/deliveries/\d+$", "/deliveries/{id}", path)
            timings[label] = _median_ms(lambda path=path, headers=headers: client.get(path, headers=headers))
    return timings


def pages(app: Any) -> list[str]:
    """The dashboard's pages and the API's reads, on rows of this database."""
    from sqlalchemy import func, select

    from planner.store.tables import DELIVERIES

    with app.sessions() as session:
        latest = session.scalar(select(func.max(DELIVERIES.c.id)))
    return [
        "/v1/recipients/u77",
        "/deliveries?recipient=u77&limit=100",
        f"/deliveries/{latest}",
        "/ui",
        "/ui/deliveries",
        "/ui/deliveries?status=dead",
        "/ui/deliveries?recipient=u77",
        "/ui/deliveries?kind=reminder&channel=sms",
        f"/ui/deliveries/{latest}",
        "/ui/dead",  # the last 7 days: the history's last 14 days hold no dead delivery
        "/ui/dead?within=30d",
        "/ui/dead?within=all",
        "/ui/recipients/u77",
        "/ui/pauses",
    ]


class _Times:
    def __init__(self) -> None:
        self.total: dict[str, list[float]] = {}
        self.started: dict[int, float] = {}

    def slowest(self, n: int) -> list[dict[str, Any]]:
        """The ``n`` statements that took the longest in all, with their count (seconds, from the
        driver's call to its return: the database's work and the round trip)."""
        ranked = sorted(self.total.items(), key=lambda item: -sum(item[1]))[:n]
        return [{"statement": k[:160], "calls": len(v), "seconds": round(sum(v), 4)} for k, v in ranked]


@contextmanager
def _statement_times(engine: Any) -> Iterator[_Times]:
    """Each statement's time inside the block, by its text (where a run's time goes in the database)."""
    from sqlalchemy import event

    times = _Times()

    def before(conn: Any, *_: Any) -> None:
        times.started[id(conn)] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        spent = time.perf_counter() - times.started.pop(id(conn), time.perf_counter())
        times.total.setdefault(" ".join(statement.split()), []).append(spent)

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["measure"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--statements", type=Path, required=True)
    args = parser.parse_args(argv)
    from pydantic import SecretStr

    from planner.app import App, build_runner
    from planner.dispatch.reconcile import reconcile
    from planner.settings import Settings

    settings = Settings(
        database_url=args.url, redis_url=args.redis_url, api_token=SecretStr(TOKEN), email_adapter="capture",
        sms_adapter="capture", log_level="WARNING", delivery_retention=timedelta(days=366),
    )  # fmt: skip
    app = App(settings, clock=lambda: NOW)
    recorded = record_statements(app.engine)
    result: dict[str, Any] = {}
    started = time.perf_counter()
    reconcile(app.sessions, app.redis, NOW, grace=timedelta(0), daily_full_pass=True)
    result["reconcile"] = {"seconds": time.perf_counter() - started}
    started, cpu = time.perf_counter(), time.process_time()
    with _statement_times(app.engine) as times:
        report = build_runner(app).run(NOW, HORIZON)
    result["planner"] = {
        "seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
        "occurrences": report.occurrences, "slowest_statements": times.slowest(8),
    }  # fmt: skip
    quiet = []
    for minute in (1, 2, 3):
        started = time.perf_counter()
        build_runner(app).run(NOW + timedelta(minutes=minute), HORIZON)
        quiet.append(time.perf_counter() - started)
    result["nothing_due"] = {"seconds": statistics.median(quiet)}
    result["timings_ms"] = {**_lists(app), **_http(app, pages(app))}
    result["plans"] = explain_all(app.engine, recorded)
    args.statements.write_text(json.dumps(result["plans"]))
    app.close()
    print(json.dumps(result, default=str))
    return 0
