"""Benchmark: what a team would use instead: APScheduler 3.11 with one ``CronTrigger`` job per
subscription in its ``SQLAlchemyJobStore``, side by side with this planner and the naive planner,
on one PostgreSQL server and the same number of due schedules.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/apscheduler_bench.py               # 20,000 schedules due in one minute
    .venv/bin/python bench/apscheduler_bench.py --due 5000 --json

What each one does with the due schedules, each in a fresh process:

- **this planner**: ``bench/plan_bench.py``'s data set scaled down so that every subscription is
  due (``--due`` of ``--due``), one planner run: delivery rows, timeline, RQ jobs;
- **the naive planner**: ``plan_bench``'s naive per-recipient planner over ``--naive-sample`` of
  them, extrapolated to ``--due``;
- **APScheduler**: ``--due`` jobs over the fixture zones, each ``CronTrigger(hour, minute,
  timezone=zone)`` with the same UTC minute as its next fire time, stored in ``SQLAlchemyJobStore``
  (added while the scheduler is paused, not timed), then the scheduler is resumed and timed until
  every job has run once and every job's next fire time is written back. A job's function only
  counts itself: the figure is a lower bound of what creating the due work costs APScheduler (no
  delivery row, no rule, no queue).

The time counted for each is from start to the last due schedule handled, with the process's and
PostgreSQL's CPU; the load average before each step is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    BenchError,
    Deadline,
    child_env,
    machine_info,
    print_table,
    run_child,
    servers,
    tree_cpu_seconds,
)

_done = threading.Event()
_count = [0, 0]  # fired, wanted
_lock = threading.Lock()


def fire() -> None:
    """The job: count itself (a lower bound of any real work)."""
    with _lock:
        _count[0] += 1
        if _count[0] == _count[1]:
            _done.set()


def aps_child(url: str, due: int, pg_pid: int, seed: int) -> dict[str, Any]:
    import random

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from sqlalchemy import create_engine, text

    from bench.plan_bench import _zones
    from planner.core.localtime import get_zone

    # The minute every job is due: the current one, already begun, so each job has exactly one run
    # time when resumed (an older instant would make APScheduler walk every missed day).
    fire_at = datetime.now(UTC).replace(second=0, microsecond=0)
    names, weights = _zones()
    rng = random.Random(seed)
    zones = rng.choices(names, weights, k=due)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": ThreadPoolExecutor(20)},
        job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    _count[1] = due
    added = time.perf_counter()
    for i, zone in enumerate(zones):
        local = fire_at.astimezone(get_zone(zone))
        trigger = CronTrigger(hour=local.hour, minute=local.minute, timezone=get_zone(zone))
        scheduler.add_job(fire, trigger, id=f"sub-{i}", next_run_time=fire_at)
    added = time.perf_counter() - added
    pg_before, cpu_before = tree_cpu_seconds(pg_pid), time.process_time()
    started = time.perf_counter()
    scheduler.resume()
    if not _done.wait(3600):
        raise BenchError(f"APScheduler ran {_count[0]} of {due} jobs in an hour")
    fired = time.perf_counter() - started
    engine = create_engine(url)
    with engine.connect() as connection:
        while True:  # every job's next fire time written back (a day later, in its zone)
            left = connection.execute(
                text("SELECT count(*) FROM apscheduler_jobs WHERE next_run_time <= :t"),
                {"t": fire_at.timestamp()},
            ).scalar_one()
            if left == 0:
                break
            time.sleep(0.05)
    handled = time.perf_counter() - started
    cpu, pg_cpu = time.process_time() - cpu_before, (tree_cpu_seconds(pg_pid) or 0) - (pg_before or 0)
    scheduler.shutdown(wait=True)
    engine.dispose()
    return {
        "jobs": due, "add_seconds": added, "fired_seconds": fired, "seconds": handled,
        "cpu_seconds": cpu, "postgres_cpu_seconds": pg_cpu,
    }  # fmt: skip


def _plan_bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bench import plan_bench

    options = argparse.Namespace(
        subscriptions=args.due, due=args.due, naive_sample=args.naive_sample, chunk_size=1000,
        concurrency=4, batch_size=100, seed=args.seed, profile=False, step_timeout=1800,
    )  # fmt: skip
    result = plan_bench.bench_backend("postgres", options, workdir, Deadline(3600))
    result["summary"] = plan_bench.summarise(result)
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        url, due, pg_pid, seed = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(aps_child(url, due, pg_pid, seed)))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--due", type=int, default=20_000, help="schedules due in the same minute")
    parser.add_argument("--naive-sample", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aps-bench-") as tmp:
        workdir = Path(tmp)
        load_plan = os.getloadavg()[0]
        planner = _plan_bench(args, workdir / "plan")
        with servers(workdir / "aps", postgres=True) as (_, pg):
            pg.create_database("bench_aps")
            load_aps = os.getloadavg()[0]
            aps = run_child(
                [str(Path(__file__).resolve()), "_child", str(pg.url("bench_aps")), str(args.due),
                 str(pg.pid), str(args.seed)],
                env=child_env(), timeout=3600, log=workdir / "aps.log",
            )  # fmt: skip
            info = machine_info(None, pg.admin_dsn)
    s = planner["summary"]
    naive = s["naive_extrapolated_seconds"]
    rows = [
        ["this planner", f"{s['planner_seconds']:.2f}", f"{args.due / s['planner_seconds']:,.0f}"],
        ["naive planner (extrapolated)", f"{naive:.2f}", f"{s['naive_rate']:,.0f}"],
        [
            "APScheduler 3.11, SQLAlchemyJobStore",
            f"{aps['seconds']:.2f}",
            f"{args.due / aps['seconds']:,.0f}",
        ],
    ]
    output = {
        "due": args.due, "planner": s, "apscheduler": aps, "machine": info,
        "load_before": {"plan": load_plan, "aps": load_aps},
    }  # fmt: skip
    if args.json:
        print(json.dumps(output, indent=2, default=str))
    else:
        print_table(f"{args.due:,} schedules due, PostgreSQL", ["", "seconds", "schedules/s"], rows)
        print(
            f"APScheduler: {aps['cpu_seconds']:.1f} CPU s in the scheduler, "
            f"{aps['postgres_cpu_seconds']:.1f} in PostgreSQL; all jobs ran after "
            f"{aps['fired_seconds']:.2f} s. Load before: "
            f"{load_plan:.2f} (planners), {load_aps:.2f} (APScheduler)."
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
