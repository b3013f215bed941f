"""A planner run with nothing due among 1,000,000 subscriptions and 500,000 pending future deliveries.

Loads the subscriptions with ``plan_bench``'s generator (none due in the window), then that many
``queued`` deliveries a day ahead (jobs of 100, every job hash present in Redis, stamped a day ago,
as ``reconcile_bench`` does). Then:

- **statements**: one run in this process with every statement recorded; on PostgreSQL each is
  ``EXPLAIN``-ed and the script fails if a plan reads ``subscription`` or ``delivery`` sequentially
  (the due claim must use ``ix_subscription_due``, the reconcile ``ix_delivery_pending_updated``);
  on SQLite ``EXPLAIN QUERY PLAN`` and ``SCAN`` of either table;
- **runs**: ``--runs`` whole ``planner run --json`` processes a minute apart in planner time, each
  timed from outside (wall) and by its own report (``duration_seconds``, reconcile included). The
  first is the reconcile's full pass (no watermark yet, as on a new Redis); the rest are the
  steady state; then one more with the daily full-pass key expired (the first run of a day).

    .venv/bin/python bench/nothing_due_bench.py                       # PostgreSQL, 1,000,000 / 500,000
    .venv/bin/python bench/nothing_due_bench.py --backend sqlite --subscriptions 200000 --pending 100000
    .venv/bin/python bench/nothing_due_bench.py --pg-url URL --redis-url URL --skip-load
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BenchError, child_env, servers
from plan_bench import HORIZON, NOW, populate

JOB_SIZE = 100
TARGET_SECONDS = 0.2
#: Tables the run must never read sequentially (they grow with the business).
BIG_TABLES = ("subscription", "delivery")


@contextlib.contextmanager
def _urls(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[str, str]]:
    if args.redis_url and (args.pg_url or args.backend == "sqlite"):
        yield args.pg_url or f"sqlite:///{workdir / 'nothing_due.db'}", args.redis_url
        return
    with servers(workdir, postgres=args.backend == "postgres") as (redis_server, pg):
        if pg is None:
            yield f"sqlite:///{workdir / 'nothing_due.db'}", redis_server.url
            return
        pg.create_database("nothing_due_bench")
        yield pg.url("nothing_due_bench"), redis_server.url


def load_pending(url: str, redis_url: str, pending: int) -> None:
    """``pending`` queued deliveries a day ahead for recipient 1, their job hashes in Redis."""
    import redis
    from sqlalchemy import text

    from planner.store.db import create_db_engine

    engine = create_db_engine(url)
    stamped = NOW - timedelta(days=1)
    params = {"at": NOW + timedelta(days=1), "size": JOB_SIZE, "n": pending, "t": stamped}
    if engine.dialect.name == "postgresql":
        rows = (
            "SELECT 'pending-' || i, 1, 'k', 'email', 'default', :at + i * interval '1 second', 'queued', 0,"
            " 'job-' || (i / :size), :t, :t FROM generate_series(0, :n - 1) AS i"
        )
    else:
        rows = (
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :n)"
            " SELECT 'pending-' || i, 1, 'k', 'email', 'default', :at, 'queued', 0, 'job-' || (i / :size),"
            " :t, :t FROM s"
        )
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO delivery (dedup_key, recipient_id, kind, channel, queue, scheduled_at, status,"
                f" attempts, job_id, created_at, updated_at) {rows}"
            ),
            params,
        )
        connection.execute(text("ANALYZE"))
    engine.dispose()
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    with client.pipeline(transaction=False) as pipe:
        for job in range(0, (pending + JOB_SIZE - 1) // JOB_SIZE):
            pipe.hset(f"rq:job:job-{job}", "status", "scheduled")
        pipe.execute()
    client.close()


def _env(url: str, redis_url: str) -> dict[str, str]:
    return child_env(
        {"PLANNER_DATABASE_URL": url, "PLANNER_REDIS_URL": redis_url, "PLANNER_LOG_LEVEL": "warning"}
    )


def statements_of_a_run(url: str, redis_url: str, at: datetime) -> list[dict[str, Any]]:
    """Every statement of one in-process run at ``at`` (after the timed runs: the reconcile's
    watermark pass), EXPLAIN-ed on PostgreSQL."""
    from sqlalchemy import event

    from planner.app import App, build_runner
    from planner.logs import configure_logging
    from planner.settings import Settings

    configure_logging("WARNING")  # the run's log line goes to stderr, never into the JSON
    app = App(Settings(database_url=url, redis_url=redis_url))
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        build_runner(app).run(at, HORIZON)
        event.remove(app.engine, "before_cursor_execute", record)
        out: list[dict[str, Any]] = []
        for statement, parameters in seen:
            entry: dict[str, Any] = {"sql": " ".join(statement.split())[:300]}
            if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "WITH", "DELETE")):
                entry["plan"] = _plan(app.engine, statement, parameters)
            out.append(entry)
        return out
    finally:
        app.close()


def _plan(engine: Any, statement: str, parameters: Any) -> list[str]:
    """The plan's lines: ``EXPLAIN`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite."""
    postgres = engine.dialect.name == "postgresql"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + statement, parameters)
        return [str(row[0] if postgres else row[-1]) for row in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()


def sequential_reads(statements: list[dict[str, Any]]) -> list[str]:
    return [
        f"{line.strip()} in: {entry['sql'][:120]}"
        for entry in statements
        for line in entry.get("plan", [])
        for table in BIG_TABLES
        if f"Seq Scan on {table} " in f"{line} " or line.startswith(f"SCAN {table}")
    ]


def whole_runs(url: str, redis_url: str, runs: int, start: int = 0) -> list[dict[str, Any]]:
    """``runs`` `planner run --json` processes, a minute apart in planner time, timed from outside."""
    results = []
    for n in range(start, start + runs):
        at = (NOW + timedelta(minutes=n)).isoformat()
        load = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "planner.cli", "run", "--json", "--now", at],
            env=_env(url, redis_url),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise BenchError(f"planner run exited {proc.returncode}: {proc.stderr[-2000:]}")
        report = json.loads(proc.stdout)
        if report["occurrences"] or report["reconciled_deliveries"]:
            raise BenchError(f"expected nothing due and nothing to reconcile, got {report}")
        results.append(
            {"wall_s": round(wall, 3), "duration_s": report["duration_seconds"], "load_1min": load}
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=500_000)
    parser.add_argument("--runs", type=int, default=6, help="whole-process runs; the first is the full pass")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url")
    parser.add_argument("--redis-url")
    parser.add_argument("--workdir", type=Path, help="keep the database here instead of a temp dir")
    parser.add_argument("--skip-load", action="store_true", help="reuse the rows already loaded")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        url, redis_url = stack.enter_context(_urls(args, workdir))
        result: dict[str, Any] = {"backend": args.backend}
        if not args.skip_load:
            loaded = populate(url, args.subscriptions, 0, args.seed)
            load_pending(url, redis_url, args.pending)
            result["loaded"] = {**vars(loaded), "pending": args.pending}
        import redis

        redis.Redis.from_url(redis_url).delete(
            "planner:reconcile:checked-through", "planner:reconcile:full-pass-done"
        )
        runs = whole_runs(url, redis_url, args.runs)
        # The first run of a day: the watermark is there, the daily full-pass key has expired.
        redis.Redis.from_url(redis_url).delete("planner:reconcile:full-pass-done")
        result["day_start"] = whole_runs(url, redis_url, 1, start=args.runs)[0]
        statements = statements_of_a_run(url, redis_url, NOW + timedelta(minutes=args.runs + 1))
        result["statements"] = statements
        result["sequential_reads"] = sequential_reads(statements)
        steady = runs[1:] or runs
        result["runs"] = runs
        result["steady"] = {
            "duration_s_median": statistics.median(r["duration_s"] for r in steady),
            "wall_s_median": statistics.median(r["wall_s"] for r in steady),
            "target_s": TARGET_SECONDS,
        }
    print(json.dumps(result, indent=1, default=str))
    return 1 if result["sequential_reads"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
