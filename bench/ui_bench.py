"""Benchmark: every dashboard page on a PostgreSQL database of 1,000,000 deliveries.

    .venv/bin/python bench/ui_bench.py                  # 1,000,000 deliveries, 20,000 recipients
    .venv/bin/python bench/ui_bench.py --recipients 100000 --explain

A million deliveries is about a month of 20,000 recipients with two daily subscriptions each (the
default). ``--recipients 100000`` keeps the million deliveries but five times the subscriptions:
the overview's forecast and clock-change counts read every subscription, so they grow with it.

Fills a fresh database in SQL (``generate_series``: recipients over the fixture zones, two
subscriptions each, deliveries over the 30 days around now in realistic proportions of statuses,
one timeline event each), serves ``create_api`` with uvicorn on loopback, signs in through the
login form like a browser, then requests each page ``--repeat`` times and prints the median and
the slowest time. ``--explain`` prints the PostgreSQL plans of the dashboard's heaviest queries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import servers
from planner.app import App
from planner.settings import Settings
from tests.http_server import serving

NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
TOKEN = "bench-token"

FILL = [
    """INSERT INTO recipient (id, external_id, timezone, email, phone, email_opt_out, sms_opt_out,
         created_at, updated_at)
       SELECT i, 'u' || i, (CAST(:zones AS text[]))[1 + i % cardinality(CAST(:zones AS text[]))],
              'u' || i || '@example.com', '+1555' || lpad(i::text, 7, '0'), i % 50 = 0, false, :now, :now
       FROM generate_series(1, :recipients) AS i""",
    # Each cursor is the subscription's next occurrence after now, in the recipient's zone, as the
    # planner keeps it (so subscriptions of one zone and wall time share their cursor).
    """INSERT INTO subscription (recipient_id, kind, channel, send_time, days, active, next_at,
         next_local_date, created_at, updated_at)
       SELECT r.id, k.kind, k.channel, c.wall, 'daily', true,
              CASE WHEN c.today_at > :now THEN c.today_at
                   ELSE ((c.today + 1) + c.wall) AT TIME ZONE r.timezone END,
              NULL, :now, :now
       FROM recipient AS r,
            (VALUES ('daily_brief', 'email', 0), ('reminder', 'sms', 5)) AS k(kind, channel, shift),
            LATERAL (SELECT make_time(5 + (r.id + k.shift) % 16, ((r.id / 16) % 4) * 15, 0) AS wall,
                            (:now AT TIME ZONE r.timezone)::date AS today) AS b,
            LATERAL (SELECT b.wall, b.today, (b.today + b.wall) AT TIME ZONE r.timezone AS today_at) AS c""",
    """INSERT INTO delivery (dedup_key, recipient_id, kind, channel, queue, local_date, occurrence_at,
         scheduled_at, status, reason, attempts, last_error, sent_at, created_at, updated_at)
       SELECT 'k' || i, 1 + i % :recipients, CASE WHEN i % 3 = 0 THEN 'reminder' ELSE 'daily_brief' END,
              CASE WHEN i % 3 = 0 THEN 'sms' ELSE 'email' END, 'default', (t AT TIME ZONE 'UTC')::date, t, t,
              s.status, s.reason, CASE WHEN s.status = 'dead' THEN 5 ELSE 1 END,
              CASE WHEN s.status = 'dead' THEN 'provider said no (' || i % 7 || ')' END,
              CASE WHEN s.status = 'sent' THEN t + make_interval(secs => i % 90) END, t, t
       FROM generate_series(1, :deliveries) AS i,
            LATERAL (SELECT :now - interval '29 days' + (i::float / :deliveries) * interval '30 days'
                     AS t) AS w,
            LATERAL (SELECT CASE
              WHEN w.t > :now THEN 'queued' WHEN i % 100 = 0 THEN 'dead' WHEN i % 17 = 0 THEN 'skipped'
              WHEN i % 29 = 0 THEN 'suppressed' ELSE 'sent' END AS status,
              CASE WHEN i % 100 = 0 THEN 'attempts_exhausted' WHEN i % 17 = 0 THEN 'engagement_backoff'
              WHEN i % 29 = 0 THEN 'frequency_cap' END AS reason) AS s""",
    """INSERT INTO delivery_event (delivery_id, local_date, at, event, status, reason)
       SELECT id, local_date, scheduled_at, 'planned', status, reason FROM delivery""",
    """INSERT INTO planner_run (run_id, window_end, started_at, finished_at, status, occurrences)
       SELECT 'run' || h, :now - make_interval(hours => h) + interval '1 hour',
              :now - make_interval(hours => h), :now - make_interval(hours => h) + interval '20 seconds',
              'succeeded', 1000 FROM generate_series(0, 200) AS h""",
]

PAGES = [
    "/ui",
    "/ui/deliveries",
    "/ui/deliveries?status=dead",
    "/ui/deliveries?status=sent&after={deep}",
    "/ui/deliveries?kind=reminder&channel=sms",
    "/ui/deliveries?recipient=u77",
    "/ui/deliveries?since=2026-03-01T00:00Z",
    "/ui/deliveries/500000",
    "/ui/dead",
    "/ui/recipients/u77",
    "/ui/recipients/u77?date=2026-03-08",
    "/ui/recipients",
    "/ui/recipients?q=u77",
    "/ui/recipients?q=u77@example.com",
    "/ui/recipients?q=%2B1555%20000%200077",
    "/ui/recipients?opted_out=email&zone=Europe/Paris",
    "/ui/pauses",
    "/ui/workers",
    "/ui/queues",
    "/ui/history",
    "/ui/history?hours=24",
    "/ui/requeue?status=dead",
    "/v1/recipients?email=U77@example.com",
]


def fill(app: App, recipients: int, deliveries: int) -> float:
    from fixtures.generate import ZONES

    started = time.perf_counter()
    params = {"zones": list(ZONES), "now": NOW, "recipients": recipients, "deliveries": deliveries}
    with app.engine.begin() as connection:
        for statement in FILL:
            connection.execute(text(statement), params)
        connection.execute(text("SELECT setval('delivery_id_seq', (SELECT max(id) FROM delivery))"))
    # What autovacuum does to a table in service: statistics, and the visibility map that lets
    # counts read the status index alone.
    with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def sign_in(client: httpx.Client) -> None:
    form = client.get("/ui/login").text
    nonce = form.split('name="nonce" value="')[1].split('"')[0]
    response = client.post("/ui/login", data={"nonce": nonce, "next": "/ui", "token": TOKEN})
    assert response.status_code == 303, response.text


def deep_cursor(app: App, rows: int = 50_000) -> str:
    """The cursor of the sent deliveries' list (latest first) after its first ``rows``: page 1,001
    of 50, as the page's own next links would reach it."""
    from planner.core.paging import encode_cursor

    with app.engine.connect() as connection:
        at, row_id = connection.execute(
            text(
                "SELECT scheduled_at, id FROM delivery WHERE status = 'sent'"
                " ORDER BY scheduled_at DESC, id DESC LIMIT 1 OFFSET :skip"
            ),
            {"skip": rows - 1},
        ).one()
    return encode_cursor(at, row_id)


def measure(base_url: str, repeat: int, deep: str) -> None:
    with httpx.Client(base_url=base_url, timeout=60) as client:
        sign_in(client)
        print(f"{'page':<45} {'median ms':>10} {'max ms':>8}  status")
        for path in (p.format(deep=deep) for p in PAGES):
            times, status = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                bearer = {"Authorization": f"Bearer {TOKEN}"} if path.startswith("/v1/") else {}
                response = client.get(path, headers=bearer)
                times.append((time.perf_counter() - started) * 1000)
                status = response.status_code
            print(f"{path:<45} {statistics.median(times):>10.1f} {max(times):>8.1f}  {status}")


EXPLAIN = {
    "deliveries, latest first": "SELECT id FROM delivery ORDER BY scheduled_at DESC, id DESC LIMIT 51",
    "deliveries, a status, 50,000 rows deep": "SELECT id FROM delivery WHERE status = 'sent' "
    "AND (scheduled_at, id) < (:now - interval '20 days', 0) ORDER BY scheduled_at DESC, id DESC LIMIT 51",
    "deliveries of a recipient": "SELECT id FROM delivery WHERE recipient_id = 77 "
    "ORDER BY scheduled_at DESC, id DESC LIMIT 51",
    "status counts": "SELECT status, count(*) FROM delivery GROUP BY status",
    "dead groups": "SELECT reason, last_error, count(*) FROM delivery WHERE status = 'dead' "
    "GROUP BY reason, last_error",
    "next 24 h, planned": "SELECT scheduled_at, channel, count(*) FROM delivery WHERE status IN "
    "('planned','queued','retrying') AND scheduled_at >= :now AND scheduled_at < :now + interval '1 day' "
    "GROUP BY scheduled_at, channel",
    "timeline": "SELECT * FROM delivery_event WHERE delivery_id = 500000 ORDER BY id",
}


def explain(app: App) -> None:
    with app.engine.connect() as connection:
        for name, sql in EXPLAIN.items():
            plan = connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}"), {"now": NOW})
            print(f"\n-- {name}")
            for (line,) in plan:
                print(f"   {line}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp), postgres=True) as (redis_server, pg):
        pg.create_database("ui_bench")
        settings = Settings(
            database_url=pg.url("ui_bench"), redis_url=redis_server.url, api_token=SecretStr(TOKEN),
            email_adapter="capture", sms_adapter="capture", log_level="WARNING",
        )  # fmt: skip
        app = App(settings, clock=lambda: NOW)
        app.upgrade_database()
        print(f"filled {args.deliveries:,} deliveries in {fill(app, args.recipients, args.deliveries):.0f} s")
        try:
            with serving(app) as url:
                measure(url, args.repeat, deep_cursor(app))
            if args.explain:
                explain(app)
        finally:
            app.close()


if __name__ == "__main__":
    main()
