"""The planner's claim and cursor advance, alone: the wide subscription row against a narrow cursor table.

    .venv/bin/python bench/cursor_bench.py                          # 1,000,000 subscriptions, 100,000 due
    .venv/bin/python bench/cursor_bench.py --subscriptions 200000 --due 20000 --rounds 3 --json
    .venv/bin/python bench/cursor_bench.py --rounds 3 --shared-buffers 128MB,1GB --only narrow

On the data set of ``plan_bench.py`` (same generator, same seed), PostgreSQL only, one connection.
Each variant walks the whole due set in chunks of 1,000, one transaction per chunk as a run does:
the claim (``FOR UPDATE SKIP LOCKED``, the planner's columns) then the cursor update of the chunk
(one ``UPDATE … FROM unnest`` of binary arrays, as ``planner.store.plan_writes`` writes it; the new
cursor is the old one a day later, so the next claim sees the next chunk). Variants:

- ``wide``: the cursor in ``subscription`` with its four indexes, ``updated_at`` stamped (the schema
  before migration 0012b: the resets put ``ix_subscription_recipient_id`` back);
- ``wide, no recipient_id index``: the same without ``ix_subscription_recipient_id`` (the unique
  constraint on (recipient_id, kind, channel) leads with the same column; migration 0012b);
- ``wide, claim without row lock``: measurement only (it would let two planners claim one row);
- ``wide, claim only``: the claim alone, walking the due set by key instead of advancing it;
- ``narrow``: a table ``subscription_cursor(subscription_id PK, next_at, next_local_date,
  next_wall_time)`` with one index on ``next_at``; the claim joins it to ``subscription`` and locks
  the cursor row only (``FOR UPDATE OF c``); the advance updates the narrow row;
- ``narrow, fillfactor 50``: the same table with room on every page;
- ``narrow, cursors locked first``: a CTE locks 1,000 due cursor rows, then joins only those to
  ``subscription`` (relies on an inactive subscription's cursor being None);
- ``narrow, claim only``.

Between two variants the cursors are put back as loaded and the tables vacuumed (outside the
measurement; autovacuum is off on these tables). Variants alternate over ``--rounds``; with
``--shared-buffers 128MB,1GB`` the whole set runs once per setting (a restart between) on the same
loaded database. Reports wall, this process's CPU, PostgreSQL's CPU and the WAL written per
variant, per due subscription. Not a test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import fmt, machine_info, print_table, servers, tree_cpu_seconds
from plan_bench import HORIZON, NOW, populate

CHUNK = 1000
_SUB_COLUMNS = "id, recipient_id, kind, channel, send_time, days, times, rrule, start_date, end_date"
_WIDE_CLAIM = (
    f"SELECT {_SUB_COLUMNS}, next_at, next_local_date, created_at, next_wall_time, snooze_until"
    " FROM subscription WHERE active AND next_at <= %(end)s ORDER BY next_at, id LIMIT %(n)s"
)
_NARROW_CLAIM = (
    "SELECT {cols}, c.next_at, c.next_local_date, s.created_at, c.next_wall_time, s.snooze_until"
    " FROM {table} c JOIN subscription s ON s.id = c.subscription_id"
    " WHERE s.active AND c.next_at <= %(end)s ORDER BY c.next_at, c.subscription_id LIMIT %(n)s"
)
# The narrow claim locking the cursors first, then reading the subscriptions of those 1,000 only
# (an inactive subscription's cursor is None, written so by the importer and the erasure).
_NARROW_CLAIM_FIRST = (
    "WITH c AS (SELECT subscription_id, next_at, next_local_date, next_wall_time FROM {table}"
    " WHERE next_at <= %(end)s ORDER BY next_at, subscription_id LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
    " SELECT {cols}, c.next_at, c.next_local_date, s.created_at, c.next_wall_time, s.snooze_until"
    " FROM c JOIN subscription s ON s.id = c.subscription_id ORDER BY c.next_at, c.subscription_id"
)
_WIDE_ADVANCE = (
    "UPDATE subscription SET next_at = t.next_at, next_local_date = t.next_local_date,"
    " next_wall_time = t.next_wall_time, updated_at = %(now)s"
    " FROM unnest(%(id)b::integer[], %(next_at)b::timestamptz[], %(next_local_date)b::date[],"
    " %(next_wall_time)b::time[])"
    " AS t(id, next_at, next_local_date, next_wall_time) WHERE subscription.id = t.id"
)
_NARROW_ADVANCE = (
    "UPDATE {table} c SET next_at = t.next_at, next_local_date = t.next_local_date,"
    " next_wall_time = t.next_wall_time"
    " FROM unnest(%(id)b::integer[], %(next_at)b::timestamptz[], %(next_local_date)b::date[],"
    " %(next_wall_time)b::time[])"
    " AS t(id, next_at, next_local_date, next_wall_time) WHERE c.subscription_id = t.id"
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _narrow_claim(table: str, template: str = _NARROW_CLAIM) -> str:
    cols = ", ".join(f"s.{c.strip()}" for c in _SUB_COLUMNS.split(","))
    return template.format(cols=cols, table=table)


def setup(conn: Any) -> None:
    """The narrow tables (copies of the loaded cursors) and the loaded cursors kept for the resets."""
    conn.autocommit = True
    conn.execute(
        "CREATE TABLE loaded_cursor AS SELECT id, next_at, next_local_date, next_wall_time FROM subscription"
    )
    conn.execute("ALTER TABLE loaded_cursor ADD PRIMARY KEY (id)")
    narrow = (("subscription_cursor", ""), ("subscription_cursor_ff", " WITH (fillfactor = 50)"))
    for table, options in narrow:
        conn.execute(
            f"CREATE TABLE {table} (subscription_id integer PRIMARY KEY REFERENCES subscription (id),"
            " next_at timestamptz, next_local_date date, next_wall_time time)" + options
        )
        conn.execute(
            f"INSERT INTO {table} SELECT id, next_at, next_local_date, next_wall_time FROM subscription"
        )
        conn.execute(f"CREATE INDEX ix_{table}_due ON {table} (next_at)")
    for table in ("subscription", "subscription_cursor", "subscription_cursor_ff"):
        # The resets vacuum; an autovacuum inside a measurement would be counted as its server CPU.
        conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    conn.execute("VACUUM ANALYZE")


def reset(conn: Any) -> None:
    conn.autocommit = True
    conn.execute(
        "UPDATE subscription s SET next_at = o.next_at, next_local_date = o.next_local_date,"
        " next_wall_time = o.next_wall_time FROM loaded_cursor o"
        " WHERE s.id = o.id AND s.next_at IS DISTINCT FROM o.next_at"
    )
    conn.execute("CREATE INDEX IF NOT EXISTS ix_subscription_recipient_id ON subscription (recipient_id)")
    for table in ("subscription_cursor", "subscription_cursor_ff"):
        conn.execute(
            f"UPDATE {table} c SET next_at = o.next_at, next_local_date = o.next_local_date,"
            " next_wall_time = o.next_wall_time FROM loaded_cursor o"
            " WHERE c.subscription_id = o.id AND c.next_at IS DISTINCT FROM o.next_at"
        )
    conn.execute("VACUUM ANALYZE subscription")
    conn.execute("VACUUM ANALYZE subscription_cursor")
    conn.execute("VACUUM ANALYZE subscription_cursor_ff")
    conn.execute("CHECKPOINT")
    conn.autocommit = False


def walk(conn: Any, claim: str, advance: str | None, lock: str | None) -> int:
    """Claim and advance chunk after chunk until nothing is due; returns the rows claimed."""
    end = NOW + HORIZON
    claimed = 0
    after: tuple[Any, int] | None = None
    while True:
        statement = claim
        params: dict[str, Any] = {"end": end, "n": CHUNK}
        if advance is None and after is not None:  # claim only: walk by key
            key = "(c.next_at, c.subscription_id)" if " c JOIN " in claim else "(next_at, id)"
            statement = claim.replace(" ORDER BY", f" AND {key} > (%(a)s, %(b)s) ORDER BY")
            params.update(a=after[0], b=after[1])
        if lock:
            statement += " " + lock
        rows = conn.execute(statement, params).fetchall()
        if not rows:
            conn.commit()
            return claimed
        claimed += len(rows)
        if advance is not None:
            day = timedelta(days=1)
            conn.execute(
                advance,
                {
                    "id": [r[0] for r in rows],
                    "next_at": [r[10] + day for r in rows],
                    "next_local_date": [r[11] + day for r in rows],
                    "next_wall_time": [r[13] for r in rows],
                    "now": NOW,
                },
            )
        else:
            after = (rows[-1][10], rows[-1][0])
        conn.commit()


def variants(conn: Any) -> dict[str, Callable[[], int]]:
    lock = "FOR UPDATE SKIP LOCKED"

    def without_recipient_index() -> int:
        # Dropped in the same transaction as the first claim (DDL is transactional); put back by
        # reset() before the next variant (outside the measurement).
        conn.execute("DROP INDEX IF EXISTS ix_subscription_recipient_id")
        return walk(conn, _WIDE_CLAIM, _WIDE_ADVANCE, lock)

    narrow, narrow_ff = "subscription_cursor", "subscription_cursor_ff"
    return {
        "wide: claim + advance": lambda: walk(conn, _WIDE_CLAIM, _WIDE_ADVANCE, lock),
        "wide, no recipient_id index: claim + advance": without_recipient_index,
        "wide, claim without row lock + advance": lambda: walk(conn, _WIDE_CLAIM, _WIDE_ADVANCE, None),
        "wide: claim only": lambda: walk(conn, _WIDE_CLAIM, None, lock),
        "narrow: claim + advance": lambda: walk(
            conn, _narrow_claim(narrow), _NARROW_ADVANCE.format(table=narrow), "FOR UPDATE OF c SKIP LOCKED"
        ),
        "narrow, fillfactor 50: claim + advance": lambda: walk(
            conn,
            _narrow_claim(narrow_ff),
            _NARROW_ADVANCE.format(table=narrow_ff),
            "FOR UPDATE OF c SKIP LOCKED",
        ),
        "narrow, cursors locked first: claim + advance": lambda: walk(
            conn, _narrow_claim(narrow, _NARROW_CLAIM_FIRST), _NARROW_ADVANCE.format(table=narrow), None
        ),
        "narrow: claim only": lambda: walk(conn, _narrow_claim(narrow), None, "FOR UPDATE OF c SKIP LOCKED"),
    }


def measure(
    dsn: str, pg_pid: Callable[[], int | None], rounds: int, only: list[str] | None, first: bool = True
) -> dict[str, Any]:
    import psycopg

    results: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(dsn) as conn:
        if first:
            setup(conn)
        runs = variants(conn)
        names = [n for n in runs if not only or any(o in n for o in only)]
        for round_no in range(rounds):
            order = names if round_no % 2 == 0 else list(reversed(names))
            for name in order:
                reset(conn)
                load = os.getloadavg()[0]
                lsn0 = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
                conn.commit()
                db0, cpu0, t0 = tree_cpu_seconds(pg_pid()), _cpu(), time.perf_counter()
                claimed = runs[name]()
                wall, cpu, db1 = time.perf_counter() - t0, _cpu() - cpu0, tree_cpu_seconds(pg_pid())
                wal = conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (lsn0,)).fetchone()[0]
                conn.commit()
                db = None if db0 is None or db1 is None else db1 - db0
                results.setdefault(name, []).append(
                    {
                        "rows": claimed,
                        "wall_s": wall,
                        "cpu_s": cpu,
                        "db_cpu_s": db,
                        "wal_bytes": int(wal),
                        "load": load,
                    }
                )
                print(
                    f"[cursor] {name}: {claimed:,} rows, {wall:.2f} s wall, {cpu:.2f} CPU s,"
                    f" db {fmt(db, 2)} (load {load:.2f})",
                    file=sys.stderr,
                )
    return {"variants": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", action="append", help="run only the variants whose name contains this")
    parser.add_argument(
        "--shared-buffers", help="measure at each of these, e.g. 128MB,1GB (the test server's default: 128MB)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import psycopg

    with (
        tempfile.TemporaryDirectory(prefix="cursor-bench-") as tmp,
        servers(Path(tmp), postgres=True) as (redis_server, pg),
    ):
        pg.create_database("cursor")
        url = pg.url("cursor")
        print(f"[cursor] loading {args.subscriptions:,} subscriptions ({args.due:,} due)", file=sys.stderr)
        dataset = populate(url, args.subscriptions, args.due, args.seed)
        dsn = url.replace("postgresql+psycopg://", "postgresql://")
        result: dict[str, Any] = {"runs": []}
        for shared_buffers in (args.shared_buffers or "").split(",") if args.shared_buffers else [""]:
            if shared_buffers:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"ALTER SYSTEM SET shared_buffers = '{shared_buffers}'")
                pg.restart_immediate()
            run = measure(dsn, lambda: pg.pid, args.rounds, args.only, first=not result["runs"])
            run["shared_buffers"] = shared_buffers or "128MB (default)"
            result["runs"].append(run)
        result.update(dataset=dataset.__dict__, machine=machine_info(redis_server.url, pg.admin_dsn))
    if args.json:
        print(json.dumps(result, default=str, indent=2))
        return 0
    for run in result["runs"]:
        rows = []
        for name, runs in run["variants"].items():
            n = max(1, runs[0]["rows"])
            per = [(r["db_cpu_s"] or 0) / n * 1e6 for r in runs]
            both = [(r["cpu_s"] + (r["db_cpu_s"] or 0)) / n * 1e6 for r in runs]
            wal = statistics.median(r["wal_bytes"] for r in runs) / n
            rows.append(
                [
                    name,
                    f"{runs[0]['rows']:,}",
                    ", ".join(fmt(r["wall_s"], 2) for r in runs),
                    ", ".join(fmt(r["cpu_s"], 2) for r in runs),
                    ", ".join(fmt(r["db_cpu_s"], 2) for r in runs),
                    fmt(statistics.median(per), 1),
                    fmt(statistics.median(both), 1),
                    fmt(wal, 0),
                    ", ".join(fmt(r["load"], 1) for r in runs),
                ]
            )
        print_table(
            f"Claim + cursor advance, chunks of 1,000 (shared_buffers {run['shared_buffers']})",
            [
                "variant",
                "rows",
                "wall s",
                "CPU s",
                "PG CPU s",
                "PG µs/row (median)",
                "both µs/row",
                "WAL B/row",
                "load",
            ],
            rows,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
