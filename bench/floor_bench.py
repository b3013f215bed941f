"""The physical floor of a planner run, and where a run's time goes, step by step (PostgreSQL).

    .venv/bin/python bench/floor_bench.py                      # 1,000,000 subscriptions, 100,000 due
    .venv/bin/python bench/floor_bench.py --subscriptions 200000 --due 20000 --json

On the data set of ``plan_bench.py`` (same generator, same seed), in one process:

1. **Reads**: claims every due subscription and loads the rule inputs in chunks of 1,000 with the
   planner's own :class:`planner.store.chunks.ChunkStore` (CPU of this process and of PostgreSQL).
2. **Pure core**: runs :func:`planner.core.planning.plan_chunk` over those inputs, once with the
   core's caches cold (what a run pays) and once warm: CPU microseconds per occurrence.
3. **Writes**, each in its own transaction, rolled back (so every step sees the same tables):
   - ``COPY`` (binary) of the plan's delivery rows into a temporary table without indexes: the floor;
   - ``COPY`` (binary) of the same rows into ``delivery`` itself (its indexes, constraints, foreign keys);
   - the same once without each secondary index and each foreign key of ``delivery`` in turn (what
     each costs the insert; ``--no-index-costs`` skips these);
   - the planner's insert (``planner.store.plan_writes``: the deliveries with their first timeline
     entries as columns, one statement per chunk of 1,000);
   - ``VACUUM delivery`` before each of these, so none pays for the rolled-back rows of another;
   - the cursor update of every planned subscription (``ChunkStore._advance_cursors``).

Prints a table (or ``--json``) with wall seconds, this process's CPU and PostgreSQL's CPU for each
step; the load average is recorded before each. Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import fmt, machine_info, print_table, servers, tree_cpu_seconds
from plan_bench import HORIZON, NOW, populate

# The planner's delivery columns (planner.store.plan_writes), then what its insert adds.
_TYPES = (
    "varchar int4 int4 varchar varchar varchar date timestamptz timestamptz varchar varchar varchar"
    " varchar json"
)
_DELIVERY_TYPES = [*_TYPES.split(), "varchar", "int4", "timestamptz", "timestamptz"]


def _copy_row(d: Any, job_id: str | None, status: str) -> tuple[Any, ...]:
    """A planned delivery as the row COPY writes (the columns of ``_copy_columns``): with its first
    timeline entry's status, detail and reason, as the planner's insert writes them."""
    from psycopg.types.json import Json

    values = (d.dedup_key, d.recipient_id, d.subscription_id, d.kind, d.channel, d.queue, d.local_date)
    planned = (d.status.value, Json(d.detail) if d.detail else None, d.reason)
    return (*values, d.occurrence_at, d.scheduled_at, status, d.reason, job_id, *planned, 0, NOW, NOW)


def _copy_columns() -> list[str]:
    from planner.store.plan_writes import DELIVERY_COLUMNS

    return [*DELIVERY_COLUMNS, "planned_reason", "attempts", "created_at", "updated_at"]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _step(name: str, steps: list[dict[str, Any]], pg_pid: int | None, rows: int) -> Iterator[None]:
    load = os.getloadavg()[0]
    db_before, cpu_before, started = tree_cpu_seconds(pg_pid), _cpu(), time.perf_counter()
    yield
    wall, cpu, db_after = time.perf_counter() - started, _cpu() - cpu_before, tree_cpu_seconds(pg_pid)
    db = None if db_before is None or db_after is None else db_after - db_before
    steps.append({"step": name, "rows": rows, "wall_s": wall, "cpu_s": cpu, "db_cpu_s": db, "load": load})
    print(
        f"[floor] {name}: {wall:.2f} s wall, {cpu:.2f} CPU s, db {fmt(db, 2)} (load {load:.2f})",
        file=sys.stderr,
    )


def _droppable(engine: Any) -> list[tuple[str, str]]:
    """The delivery table's secondary indexes and foreign keys, each with the statement dropping it
    (the primary key and the dedup key's unique index are what the run relies on: kept)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        indexes = conn.execute(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'delivery'"
                " AND indexname NOT IN ('delivery_pkey') AND indexdef NOT LIKE '%(dedup_key)%' ORDER BY 1"
            )
        ).scalars()
        found = [(f"index {name}", f"DROP INDEX {name}") for name in indexes]
        keys = conn.execute(
            text(
                "SELECT conname FROM pg_constraint WHERE conrelid = 'delivery'::regclass AND contype = 'f'"
                " ORDER BY 1"
            )
        ).scalars()
        found += [(f"foreign key {name}", f"ALTER TABLE delivery DROP CONSTRAINT {name}") for name in keys]
    return found


def measure(url: str, redis_url: str, pg_pid: int | None, index_costs: bool = True) -> dict[str, Any]:
    from sqlalchemy import text

    from planner.core import cadence, localtime, planning, quiet_hours
    from planner.core.job_batches import assign_batches
    from planner.core.policy import PlanningPolicy
    from planner.settings import Settings
    from planner.store import plan_writes
    from planner.store.chunks import ChunkStore
    from planner.store.db import create_db_engine, make_session_factory

    settings = Settings(database_url=url, redis_url=redis_url)
    policy = PlanningPolicy.from_settings(settings)
    engine = create_db_engine(url)
    sessions = make_session_factory(engine)
    store = ChunkStore("postgresql")
    window_end = NOW + HORIZON
    steps: list[dict[str, Any]] = []
    with sessions() as session:
        with _step("reads: claim + rule inputs (chunks of 1,000)", steps, pg_pid, 0):
            subs = store.claim_due(session, window_end, 10**9)
            session.rollback()
            inputs = []
            for start in range(0, len(subs), 1000):  # a transaction per chunk, as the run does
                chunk = subs[start : start + 1000]
                inputs.append(store.load_inputs(session, chunk, window_end, policy.longest_cap_window))
                session.rollback()
        steps[-1]["rows"] = len(subs)
        session.rollback()

        caches: list[Callable[[], None]] = [
            localtime._resolve_named.cache_clear,
            cadence._next_after_named.cache_clear,
            quiet_hours._apply_named.cache_clear,
            planning._base_detail.cache_clear,
        ]
        plans = []
        for label in ("pure core: plan_chunk, caches cold", "pure core: plan_chunk, caches warm"):
            if "cold" in label:
                for clear in caches:
                    clear()
            with _step(label, steps, None, 0):
                plans = [planning.plan_chunk(i, policy, NOW, window_end) for i in inputs]
            steps[-1]["rows"] = sum(len(p.deliveries) for p in plans)
        planned = [d for p in plans for d in p.deliveries]
        jobs_per_plan = [
            assign_batches(
                ((d.scheduled_at, d.channel, d.queue, d.dedup_key) for d in p.deliveries if d.to_send), 100
            )
            for p in plans
        ]
        rows = [
            _copy_row(d, jobs.get(d.dedup_key), plan_writes.written_status(d, jobs.get(d.dedup_key)))
            for p, jobs in zip(plans, jobs_per_plan, strict=True)
            for d in p.deliveries
        ]

    def vacuum() -> None:
        # A rolled-back insert leaves its index entries behind until a vacuum: without one, each step
        # would also pay for checking the dedup key against the entries of the steps before it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE delivery"))

    def copy_into(table: str, label: str | None = None, before: str | None = None) -> None:
        vacuum()
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            assert conn is not None
            with conn.cursor() as cur:
                if table != "delivery":
                    cur.execute(f"CREATE TEMP TABLE {table} (LIKE delivery INCLUDING DEFAULTS)")
                if before:
                    cur.execute(before)
                statement = f"COPY {table} ({', '.join(_copy_columns())}) FROM STDIN (FORMAT BINARY)"
                with (
                    _step(label or f"COPY into {table}", steps, pg_pid, len(rows)),
                    cur.copy(statement) as copy,
                ):
                    copy.set_types(_DELIVERY_TYPES)
                    for row in rows:
                        copy.write_row(row)
            conn.rollback()  # every step sees the same tables
        finally:
            raw.close()

    copy_into("floor_delivery", "COPY binary into a table without indexes (the floor)")
    copy_into("delivery", "COPY binary into delivery (all its indexes and foreign keys)")
    if index_costs:
        for name, drop in _droppable(engine):
            copy_into("delivery", f"  same, without {name}", drop)
    with sessions() as session:
        # The first timeline entries are columns of the rows since migration 0012a: one statement.
        vacuum()
        with _step(
            "planner insert: deliveries with their first timeline entries", steps, pg_pid, len(planned)
        ):
            for plan, jobs in zip(plans, jobs_per_plan, strict=True):
                plan_writes.write_plan(session, "postgresql", replace(plan, cursors={}), jobs, NOW)
        session.rollback()
        cursors = sum(len(p.cursors) for p in plans)
        with _step("planner cursor update", steps, pg_pid, cursors):
            for plan in plans:
                plan_writes.write_plan(session, "postgresql", replace(plan, deliveries=[]), {}, NOW)
        session.rollback()
        session.execute(text("SELECT 1"))
    engine.dispose()
    return {"occurrences": len(planned), "subscriptions": len(subs), "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-index-costs", action="store_true", help="skip the COPY without each index")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="floor-bench-") as tmp,
        servers(Path(tmp), postgres=True) as (
            redis_server,
            pg,
        ),
    ):
        pg.create_database("floor")
        url = pg.url("floor")
        print(f"[floor] loading {args.subscriptions:,} subscriptions ({args.due:,} due) ...", file=sys.stderr)
        dataset = populate(url, args.subscriptions, args.due, args.seed)
        result = measure(url, redis_server.url, pg.pid, not args.no_index_costs)
        result.update(dataset=dataset.__dict__, machine=machine_info(redis_server.url, pg.admin_dsn))
    if args.json:
        print(json.dumps(result, default=str, indent=2))
        return 0
    n = result["occurrences"]
    print_table(
        f"Planner run, step by step: {result['subscriptions']:,} due subscriptions, {n:,} occurrences",
        ["step", "rows", "wall s", "CPU s", "PG CPU s", "µs/row (CPU+PG)", "load"],
        [
            [
                s["step"],
                f"{s['rows']:,}",
                fmt(s["wall_s"], 2),
                fmt(s["cpu_s"], 2),
                fmt(s["db_cpu_s"], 2),
                fmt((s["cpu_s"] + (s["db_cpu_s"] or 0)) / max(1, s["rows"] or n) * 1e6, 1),
                fmt(s["load"], 2),
            ]
            for s in result["steps"]
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
