"""Two planner processes sharing one run, against one process, on the same data (PostgreSQL).

    .venv/bin/python bench/scaleout_bench.py                       # 200,000 subscriptions, 20,000 due
    .venv/bin/python bench/scaleout_bench.py --subscriptions 1000000 --due 100000 --json

Loads the data set of ``plan_bench.py`` once, then for each process count (1, then 2; ``--rounds``
times, alternating) runs ``PlannerRunner.run`` in that many fresh processes on a fresh copy of the
database, started at the same instant (``--start-at``). Claims take ``FOR UPDATE SKIP LOCKED``, so
the processes split the due subscriptions between them. Records each process's wall time and CPU
seconds, PostgreSQL's CPU over the whole run, and checks the result as ``plan_bench.py`` does: one
delivery per occurrence, nothing left due, every to-be-sent delivery queued with its job in Redis.

Per-process CPU and PostgreSQL CPU per 1,000 occurrences are what predict a machine with more cores:
the run is CPU-bound in the planner processes (one GIL each) and in PostgreSQL's backends.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import REPO, child_env, fmt, machine_info, print_table, servers, tree_cpu_seconds
from plan_bench import _clone, _flush, _verify, populate

BENCH_DIR = Path(__file__).resolve().parent


def _run_processes(n: int, url: str, redis_url: str, pg_pid: int | None, log: Path) -> dict[str, Any]:
    start_at = time.time() + 3.0  # time for every child to import and connect
    argv = [str(BENCH_DIR / "plan_bench.py"), "_child", "planner", "--url", url, "--redis", redis_url]
    argv += ["--start-at", str(start_at)]
    db_before = tree_cpu_seconds(pg_pid)
    with log.open("ab") as err:
        procs = [
            subprocess.Popen(
                [sys.executable, *argv], stdout=subprocess.PIPE, stderr=err, env=child_env(), cwd=REPO
            )
            for _ in range(n)
        ]
        outputs = [p.communicate(timeout=1800)[0] for p in procs]
    wall = time.time() - start_at
    db_after = tree_cpu_seconds(pg_pid)
    if any(p.returncode for p in procs):
        raise SystemExit(f"a planner process failed: see {log}")
    children = [json.loads(out.decode().splitlines()[-1]) for out in outputs]
    import redis
    from sqlalchemy import create_engine

    engine = create_engine(url)
    connection = redis.Redis.from_url(redis_url)
    try:
        verify = _verify(engine, connection)
    finally:
        engine.dispose()
        connection.close()
    occurrences = sum(c["occurrences"] for c in children)
    problems = []
    if verify["deliveries"] != occurrences:
        problems.append(f"{verify['deliveries']} delivery rows for {occurrences} occurrences")
    if verify["still_due"]:
        problems.append(f"{verify['still_due']} subscriptions still due")
    jobs = sum(c["enqueued_jobs"] for c in children)
    if verify["redis_jobs"] != jobs or verify["queued_job_ids"] != jobs:
        problems.append(
            f"{verify['redis_jobs']} jobs in Redis, {verify['queued_job_ids']} on rows, {jobs} enqueued"
        )
    return {
        "processes": n,
        "wall_s": wall,
        "occurrences": occurrences,
        "per_process": [
            {"occurrences": c["occurrences"], "wall_s": c["seconds"], "cpu_s": c["cpu_seconds"]}
            for c in children
        ],
        "db_cpu_s": None if db_before is None or db_after is None else db_after - db_before,
        "load_before": min(c["loadavg_1min_before"] for c in children),
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=200_000)
    parser.add_argument("--due", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="scaleout-bench-") as tmp,
        servers(Path(tmp), postgres=True) as (
            redis_server,
            pg,
        ),
    ):
        pg.create_database("scaleout")
        url = pg.url("scaleout")
        print(
            f"[scaleout] loading {args.subscriptions:,} subscriptions ({args.due:,} due) ...", file=sys.stderr
        )
        dataset = populate(url, args.subscriptions, args.due, args.seed)
        for index in range(args.rounds):
            for n in (1, 2) if index % 2 == 0 else (2, 1):
                copy = _clone("postgres", url, pg, f"scaleout_{n}_{index}", Path(tmp))
                _flush(redis_server.url)
                run = _run_processes(n, copy, redis_server.url, pg.pid, Path(tmp) / "children.log")
                runs.append(run)
                per = ", ".join(f"{p['cpu_s']:.2f}" for p in run["per_process"])
                print(
                    f"[scaleout] {n} process(es): {run['wall_s']:.2f} s wall, planner CPU {per} s,"
                    f" PostgreSQL CPU {fmt(run['db_cpu_s'], 2)} s, load {run['load_before']:.2f}"
                    + (f"; CHECK FAILED: {run['problems']}" if run["problems"] else ""),
                    file=sys.stderr,
                )
        result = {
            "dataset": dataset.__dict__,
            "runs": runs,
            "machine": machine_info(redis_server.url, pg.admin_dsn),
        }
    if args.json:
        print(json.dumps(result, default=str, indent=2))
        return 1 if any(r["problems"] for r in runs) else 0
    rows = []
    for n in (1, 2):
        mine = [r for r in runs if r["processes"] == n]
        cpu = [sum(p["cpu_s"] for p in r["per_process"]) for r in mine]
        rows.append(
            [
                str(n),
                fmt(statistics.median(r["wall_s"] for r in mine), 2),
                fmt(statistics.median(cpu), 2),
                fmt(statistics.median(cpu) / n, 2),
                fmt(statistics.median(r["db_cpu_s"] or 0 for r in mine), 2),
                fmt(statistics.median(r["load_before"] for r in mine), 2),
            ]
        )
    print_table(
        f"Planner processes sharing one run: {args.due:,} due of {args.subscriptions:,}"
        f" (medians of {args.rounds})",
        ["processes", "wall s", "planner CPU s (all)", "per process", "PostgreSQL CPU s", "load"],
        rows,
    )
    return 1 if any(r["problems"] for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
