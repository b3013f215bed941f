"""The reconcile's cost against the backlog: 500,000 pending future deliveries on PostgreSQL.

Loads that many ``queued`` deliveries (jobs of 100, every job present in Redis, all stamped a day
ago), then times ``reconcile`` in a fresh process: the first pass (no watermark: every pending row
is checked) and the passes after it (only rows stamped since the watermark). Prints JSON.

    .venv/bin/python bench/reconcile_bench.py --pending 500000
    .venv/bin/python bench/reconcile_bench.py --pg-url URL --redis-url URL   # servers already running
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
JOB_SIZE = 100


@contextlib.contextmanager
def _servers(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if args.pg_url and args.redis_url:
        yield args.pg_url, args.redis_url
        return
    from _common import servers

    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp), postgres=True) as (redis_server, pg):
        pg.create_database("reconcile_bench")
        yield pg.url("reconcile_bench"), redis_server.url


def load(pg_url: str, redis_url: str, pending: int) -> None:
    import redis
    from sqlalchemy import text

    from planner.store.db import create_db_engine, upgrade

    engine = create_db_engine(pg_url)
    upgrade(engine)
    stamped = NOW - timedelta(days=1)
    with engine.begin() as connection:
        connection.execute(text("TRUNCATE delivery_event, delivery, recipient RESTART IDENTITY CASCADE"))
        connection.execute(
            text(
                "INSERT INTO recipient (external_id, timezone, email_opt_out, sms_opt_out,"
                " created_at, updated_at)"
                " VALUES ('r', 'UTC', false, false, :t, :t)"
            ),
            {"t": stamped},
        )
        connection.execute(
            text(
                "INSERT INTO delivery (dedup_key, recipient_id, kind, channel, queue, scheduled_at, status,"
                " attempts, job_id, created_at, updated_at)"
                " SELECT 'd' || i, 1, 'k', 'email', 'default', :at + i * interval '1 second', 'queued', 0,"
                " 'job-' || (i / :size), :t, :t FROM generate_series(0, :n - 1) AS i"
            ),
            {"at": NOW + timedelta(days=1), "size": JOB_SIZE, "n": pending, "t": stamped},
        )
        connection.execute(text("ANALYZE delivery"))
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    with client.pipeline(transaction=False) as pipe:
        # As RQ leaves a job planned for later: its hash (status, origin) and its place in the schedule.
        due = int((NOW + timedelta(days=1)).timestamp())
        for job in range(0, (pending + JOB_SIZE - 1) // JOB_SIZE):
            pipe.hset(f"rq:job:job-{job}", mapping={"status": "scheduled", "origin": "default"})
            pipe.zadd("rq:scheduled:default", {f"job-{job}": due})
        pipe.execute()


def passes(pg_url: str, redis_url: str, count: int) -> list[dict[str, Any]]:
    """``count`` reconcile passes in this process, a minute apart in planner time."""
    import redis

    from planner.dispatch.reconcile import reconcile
    from planner.store.db import create_db_engine, make_session_factory

    sessions = make_session_factory(create_db_engine(pg_url))
    client = redis.Redis.from_url(redis_url)
    results = []
    for n in range(count):
        wall, cpu = time.perf_counter(), time.process_time()
        report = reconcile(sessions, client, NOW + timedelta(minutes=n), grace=timedelta(seconds=60))
        results.append(
            {
                "wall_s": round(time.perf_counter() - wall, 4),
                "cpu_s": round(time.process_time() - cpu, 4),
                "checked_jobs": report.checked,
                "reenqueued": report.reenqueued,
            }
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pending", type=int, default=500_000)
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--pg-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--skip-load", action="store_true", help="reuse the rows already loaded")
    args = parser.parse_args()
    with _servers(args) as (pg_url, redis_url):
        if not args.skip_load:
            load(pg_url, redis_url, args.pending)
        import redis

        redis.Redis.from_url(redis_url).delete(
            "planner:reconcile:checked-through", "planner:reconcile:full-pass-done"
        )
        result = {
            "pending": args.pending,
            "load": os.getloadavg(),
            "passes": passes(pg_url, redis_url, args.passes),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
