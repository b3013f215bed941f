"""Benchmark: every hot path with a year of history in the database, against the same on an empty one.

    .venv/bin/python bench/history_bench.py                      # 2 % of 1,000,000 subscriptions, a year
    .venv/bin/python bench/history_bench.py --backend postgres --fraction 0.05 --runs 5 --json
    .venv/bin/python bench/history_bench.py --quick              # smoke run: 0.2 %, 60 days, one run

Per backend, two databases built from the same seed: **empty** (``plan_bench``'s data set:
``--fraction`` of 1,000,000 subscriptions and of its 100,000 due, yesterday's deliveries for half
the due ones) and **history** (the same, plus ``--days`` of history per subscription, written as the
service writes it: ``_history_data``). Both have the month partitions of the history on PostgreSQL.
Then, alternating empty and history, ``--runs`` times, each on a fresh copy, in fresh processes:

- **planner run**: ``PlannerRunner.run(now, 1h)`` over the due subscriptions (the planner's work is
  the same on both: no decision depends on the older history), then the **nothing-due run** a minute
  later (median of 3);
- **reconcile**: a full pass (every pending row checked against Redis);
- **lists**: ``deliveries list`` with filters (the store's ``list_deliveries``, as the CLI and
  ``/deliveries`` call it), median of 5 each;
- **HTTP**: ``/v1/recipients/{id}``, ``/deliveries?recipient=``, ``/deliveries/{id}`` and the
  dashboard's pages over real HTTP (uvicorn on loopback, signed in as a browser), median of 5 each;
- **worker**: ``--deliveries`` due deliveries sent by ``planner worker --burst`` (file adapter), the
  steady rate from the adapter's stamps (``deliver_bench``'s method).

Every SQL statement of the measured runs is recorded; each is then ``EXPLAIN``-ed on both databases
and the plans compared: a plan that differs is named, and one that reads a large table sequentially
(``delivery``, ``delivery_event``, ``engagement_event``, ``audit_log``) fails the check.
Then the database sizes and the bytes per delivery. Results as a table (``--json``: JSON), with each
hot path's ratio to the empty-history figure against the target (at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import BenchError, Deadline, child_env, fmt, machine_info, print_table, run_child, servers
from _history_data import create_months, load_history, load_recent_pages
from plan_bench import HORIZON, NOW, populate

TARGET_RATIO = 1.2
FULL_SUBSCRIPTIONS = 1_000_000
FULL_DUE = 100_000
#: Tables a hot path must never read whole: they grow with the history.
GROWING = ("delivery", "delivery_event", "engagement_event", "audit_log")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- databases


def _clone(backend: str, url: str, pg: Any, name: str, workdir: Path) -> str:
    if backend == "postgres":
        pg.create_database(name, template=url.rsplit("/", 1)[1])
        return str(pg.url(name))
    from planner.store.db import copy_sqlite_file

    target = workdir / f"{name}.db"
    target.unlink(missing_ok=True)
    copy_sqlite_file(Path(url.split(":///", 1)[1]), target)
    return f"sqlite:///{target}"


def _drop(backend: str, url: str, pg: Any) -> None:
    if backend == "postgres":
        pg.drop_database(url.rsplit("/", 1)[1])
    else:
        path = Path(url.split(":///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def build(backend: str, args: argparse.Namespace, workdir: Path, pg: Any) -> dict[str, Any]:
    """The empty and the history database of one backend; returns their URLs and what was loaded."""
    n_subs, n_due = round(FULL_SUBSCRIPTIONS * args.fraction), round(FULL_DUE * args.fraction)
    if backend == "postgres":
        pg.create_database("history_empty")
        empty = str(pg.url("history_empty"))
    else:
        empty = f"sqlite:///{workdir / 'history_empty.db'}"
        _drop(backend, empty, pg)
    _say(f"[{backend}] loading {n_subs:,} subscriptions ({n_due:,} due) ...")
    dataset = populate(empty, n_subs, n_due, args.seed)
    if backend == "postgres":
        create_months(empty, args.days)
    _say(f"[{backend}] both: {load_recent_pages(empty, args.seed)}")
    if backend == "postgres":
        pg.wait_until_unused("history_empty")
    history = _clone(backend, empty, pg, "history_full", workdir)
    _say(f"[{backend}] writing {args.days} days of history ...")
    loaded = load_history(history, dataset.recipients, args.days, args.seed)
    _say(f"[{backend}] history: {loaded}")
    return {"empty": empty, "history": history, "dataset": vars(dataset), "loaded": loaded, "due": n_due}


def sizes(backend: str, url: str) -> dict[str, Any]:
    from sqlalchemy import func, select, text

    from planner.store.db import create_db_engine
    from planner.store.tables import DELIVERIES

    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            deliveries = int(conn.execute(select(func.count()).select_from(DELIVERIES)).scalar_one())
            if backend == "postgres":
                total = int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()
    if backend == "sqlite":
        import sqlite3

        path = url.split(":///", 1)[1]
        raw = sqlite3.connect(path)
        try:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        total = Path(path).stat().st_size
    return {"bytes": total, "deliveries": deliveries}


# --------------------------------------------------------------------------- the measured runs


def measure(
    backend: str, label: str, base: str, args: argparse.Namespace, ctx: dict[str, Any]
) -> dict[str, Any]:
    """One run on a fresh copy of ``base``: the in-process measurements, then the worker's."""
    workdir, pg, redis_url, deadline = ctx["workdir"], ctx["pg"], ctx["redis_url"], ctx["deadline"]
    _flush(redis_url)
    copy = _clone(backend, base, pg, f"run_{label}", workdir)
    statements = workdir / f"statements-{backend}-{label}.json"
    try:
        env = child_env({"PLANNER_LOG_LEVEL": "WARNING"})
        result = run_child(
            [str(Path(__file__)), "--child", "measure", "--url", copy, "--redis-url", redis_url,
             "--statements", str(statements)],
            env=env, timeout=deadline.left(args.step_timeout), log=workdir / f"child-{backend}.log",
        )  # fmt: skip
    finally:
        _drop(backend, copy, pg)
    _flush(redis_url)
    copy = _clone(backend, base, pg, f"work_{label}", workdir)
    try:
        result["worker"] = worker_rate(copy, redis_url, args, workdir, deadline)
    finally:
        _drop(backend, copy, pg)
    return result


def _flush(redis_url: str) -> None:
    import redis

    connection = redis.Redis.from_url(redis_url)
    connection.flushall()
    connection.close()


def worker_rate(
    url: str, redis_url: str, args: argparse.Namespace, workdir: Path, deadline: Deadline
) -> dict[str, Any]:
    """``--deliveries`` email deliveries due now for the first recipients, sent by one ``planner
    worker --burst``; the steady rate from the file adapter's stamps."""
    from _history_work import enqueue_due
    from deliver_bench import Proc, _parse_iso, _wait_all

    outbox = workdir / "outbox"
    shutil.rmtree(outbox, ignore_errors=True)
    enqueue_due(url, redis_url, args.deliveries, args.batch_size)
    sent_file = outbox / "email.jsonl"

    def all_sent() -> bool:  # the adapter's lines: a count of sent rows would read the whole history
        return sent_file.exists() and sent_file.read_bytes().count(b"\n") >= args.deliveries

    env = child_env({
        "PLANNER_DATABASE_URL": url, "PLANNER_REDIS_URL": redis_url, "PLANNER_EMAIL_ADAPTER": "file",
        "PLANNER_SMS_ADAPTER": "file", "PLANNER_FILE_DIRECTORY": str(outbox),
        "PLANNER_RATE_LIMIT_EMAIL": "1000000/second", "PLANNER_RATE_LIMIT_SMS": "1000000/second",
        "PLANNER_DELIVERY_BATCH_SIZE": str(args.batch_size), "PLANNER_LOG_LEVEL": "WARNING",
        "PLANNER_LOG_FORMAT": "json",
    })  # fmt: skip
    started = time.perf_counter()
    proc = Proc([sys.executable, "-m", "planner.cli", "worker", "--burst"], env, workdir / "worker.log")
    try:
        _wait_all([proc], time.monotonic() + deadline.left(args.step_timeout), all_sent)
    finally:
        proc.stop()
    lines = [json.loads(x) for x in sent_file.read_text().splitlines() if x.strip()]
    stamps = sorted(_parse_iso(line["sent_at"]) for line in lines)
    steady = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None
    return {
        "sent": len(lines),
        "end_to_end_seconds": time.perf_counter() - started,
        "steady_rate": (len(stamps) - 1) / steady if steady else None,
    }


# --------------------------------------------------------------------------- report


METRICS = {
    # name: (where in a run's result, lower is better)
    "planner run (s)": (("planner", "seconds"), True),
    "nothing-due run (s)": (("nothing_due", "seconds"), True),
    "reconcile, full (s)": (("reconcile", "seconds"), True),
    "worker (deliveries/s)": (("worker", "steady_rate"), False),
}


def _dig(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        result = result.get(key) if isinstance(result, dict) else None  # type: ignore[assignment]
    return result


def summarise(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per metric: the median of each side, their ratio (history / empty, inverted for rates)."""
    names = dict(METRICS)
    for path in runs["empty"][0].get("timings_ms", {}):
        names[f"{path} (ms)"] = (("timings_ms", path), True)
    rows = []
    for name, (path, lower_better) in names.items():
        empty = [v for r in runs["empty"] if (v := _dig(r, path)) is not None]
        history = [v for r in runs["history"] if (v := _dig(r, path)) is not None]
        if not empty or not history:
            continue
        e, h = statistics.median(empty), statistics.median(history)
        ratio = (h / e if lower_better else e / h) if e and h else None
        # Every history run worse than every empty one: not this machine's noise.
        apart = min(history) > max(empty) if lower_better else max(history) < min(empty)
        rows.append({"metric": name, "empty": e, "history": h, "ratio": ratio,
                     "within_target": ratio is not None and ratio <= TARGET_RATIO,
                     "runs_apart": apart})  # fmt: skip
    return rows


def _verdict(row: dict[str, Any]) -> str:
    if row["within_target"]:
        return "yes"
    return "NO" if row["runs_apart"] else "no (runs overlap)"


def report(results: dict[str, Any]) -> None:
    for backend, result in results["backends"].items():
        rows = [
            (
                r["metric"],
                fmt(r["empty"], 3),
                fmt(r["history"], 3),
                fmt(r["ratio"], 2),
                _verdict(r),
            )
            for r in result["summary"]
        ]
        size, plans = result["sizes"], result["plans"]
        empty_mib, history_mib = (size[side]["bytes"] / 2**20 for side in ("empty", "history"))
        caption = (
            f"database: empty {empty_mib:,.0f} MiB, history {history_mib:,.0f} MiB for "
            f"{size['history']['deliveries']:,} deliveries; {size['bytes_per_delivery']:,.0f} bytes per "
            f"delivery. Plans that changed: {len(plans['changed'])}; plans that scan: {len(plans['scans'])}"
        )
        print_table(
            f"history_bench, {backend}", ["hot path", "empty", "history", "ratio", "<= 1.2"], rows, caption
        )


def bench_backend(
    backend: str, args: argparse.Namespace, workdir: Path, redis_url: str, pg: Any, deadline: Deadline
) -> dict[str, Any]:
    built = build(backend, args, workdir, pg)
    ctx = {"workdir": workdir, "pg": pg, "redis_url": redis_url, "deadline": deadline}
    runs: dict[str, list[dict[str, Any]]] = {"empty": [], "history": []}
    for i in range(args.runs):
        for label in ("empty", "history") if i % 2 == 0 else ("history", "empty"):
            _say(f"[{backend}] run {i + 1}/{args.runs} on the {label} database ...")
            runs[label].append(measure(backend, f"{label}", built[label], args, ctx))
    from _history_plans import compare_plans

    plans = compare_plans(backend, built, workdir)
    empty_size, history_size = sizes(backend, built["empty"]), sizes(backend, built["history"])
    extra = history_size["deliveries"] - empty_size["deliveries"]
    return {
        "dataset": built["dataset"],
        "loaded": built["loaded"],
        "runs": runs,
        "summary": summarise(runs),
        "plans": plans,
        "sizes": {
            "empty": empty_size,
            "history": history_size,
            "bytes_per_delivery": (history_size["bytes"] - empty_size["bytes"]) / extra if extra else None,
        },
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        from _history_child import child_main

        return child_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--fraction", type=float, default=0.02, help="of the 1,000,000-subscription data set")
    parser.add_argument("--days", type=int, default=365, help="days of history per subscription")
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per database, alternated (the median is shown)"
    )
    parser.add_argument("--deliveries", type=int, default=5000, help="deliveries sent in the worker's run")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 0.2 %%, 60 days, one run, 1,000 sends"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep databases and logs here")
    parser.add_argument("--timeout", type=float, default=4 * 3600.0)
    parser.add_argument("--step-timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.fraction, args.days, args.runs, args.deliveries = 0.002, 60, 1, 1000
    deadline = Deadline(args.timeout)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    workdir_ctx = tempfile.TemporaryDirectory() if args.workdir is None else None
    workdir = Path(workdir_ctx.name) if workdir_ctx else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with servers(workdir, postgres="postgres" in backends) as (redis_server, pg):
            results: dict[str, Any] = {
                "machine": machine_info(redis_server.url, pg.admin_dsn if pg else None),
                "fraction": args.fraction, "days": args.days, "runs": args.runs, "now": NOW.isoformat(),
                "horizon": str(HORIZON), "backends": {},
            }  # fmt: skip
            for backend in backends:
                results["backends"][backend] = bench_backend(
                    backend, args, workdir, redis_server.url, pg, deadline
                )
    except BenchError as exc:
        print(f"history_bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if workdir_ctx is not None:
            workdir_ctx.cleanup()
    if args.json:
        print(json.dumps(results, default=str))
    else:
        report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
