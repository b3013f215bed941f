"""Benchmark: deliveries per second through the real job path, against bare RQ on the same Redis.

    .venv/bin/python bench/deliver_bench.py          # 20,000 deliveries: SQLite 1 worker, PostgreSQL 1 and 2
    .venv/bin/python bench/deliver_bench.py --backend postgres --workers 1 --json
    .venv/bin/python bench/deliver_bench.py --quick  # smoke run: 2,000 deliveries, 500 bare jobs

Per scenario (a backend and a number of worker processes), on a fresh database:

1. Inserts N recipients and N email deliveries due now (status ``queued``, kind ``daily_brief``,
   recipients spread over the fixture zones), assigns them to RQ jobs of ``--batch-size`` with
   ``planner.outbox.assign_batches`` and enqueues the jobs with ``planner.outbox.enqueue_batches``,
   the path the planner uses.
2. Starts K ``planner worker --burst`` processes (``python -m planner.cli worker --burst``: an RQ
   ``SimpleWorker`` with its scheduler, running ``planner.jobs.deliver_batch``), with the ``file``
   adapter and provider rate limits far above the rate reached, and waits until every delivery is
   ``sent`` and the workers have exited. Each delivery is claimed, re-checked, rate-limited
   (through Redis), rendered from its templates, written by the adapter and recorded, as in
   production; the worker logs at INFO, as in production, to a file.
3. Checks that every delivery was sent exactly once (one adapter line per delivery id).

Bare RQ: M trivial jobs (``trivial_job.noop``, one per message) on the same Redis, run by
``rq worker --burst`` with ``rq.worker.SimpleWorker``, one and two processes.

Rates: *end to end* (from starting the processes to the last delivery sent, so it includes process
start-up) and *steady* (first to last send, from the adapter's ``sent_at`` stamps; for bare RQ
from the jobs' ``started_at``/``ended_at``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    REPO,
    BenchError,
    Deadline,
    child_env,
    fmt,
    machine_info,
    print_table,
    servers,
    stop_process,
    tree_cpu_seconds,
)

TARGET_RATE = 1000.0
TARGET_FACTOR = 5.0
BARE_QUEUE = "bare"
POLL = 0.1


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process whose CPU time (``wait4``) and peak RSS (polled ``VmHWM``) are recorded."""

    def __init__(self, args: Sequence[str], env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.popen = subprocess.Popen(
            list(args), stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            env=env, cwd=REPO, start_new_session=True,
        )  # fmt: skip
        self.peak_rss_mb = 0.0
        self.cpu_seconds: float | None = None
        self.returncode: int | None = None

    def poll(self) -> bool:
        """True once the process has exited (and was reaped here)."""
        if self.returncode is not None:
            return True
        with contextlib.suppress(OSError, ValueError, StopIteration):
            status = Path(f"/proc/{self.popen.pid}/status").read_text().splitlines()
            hwm = next(line for line in status if line.startswith("VmHWM:"))
            self.peak_rss_mb = max(self.peak_rss_mb, int(hwm.split()[1]) / 1024)
        pid, status_code, usage = os.wait4(self.popen.pid, os.WNOHANG)
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status_code)
        self.popen.returncode = self.returncode
        self.cpu_seconds = usage.ru_utime + usage.ru_stime
        self.log.close()
        return True

    def stop(self) -> None:
        if self.returncode is None:
            stop_process(self.popen)
            self.returncode = self.popen.returncode
            self.log.close()


def _wait_all(procs: list[Proc], deadline: float, done: Any = None) -> float | None:
    """Poll until every process exited; ``done()`` (if given) is checked each round and the first
    time it holds is returned. Raises BenchError past ``deadline`` (monotonic)."""
    done_at = None
    while True:
        exited = [p.poll() for p in procs]
        if done_at is None and done is not None and done():
            done_at = time.perf_counter()
        if all(exited):
            if done_at is None and done is not None and done():
                done_at = time.perf_counter()
            return done_at
        if time.monotonic() > deadline:
            raise BenchError("workers did not finish in time")
        time.sleep(POLL)


# --------------------------------------------------------------------------- setup


def _zones() -> list[str]:
    from fixtures.generate import ZONES

    return list(ZONES)


def setup_deliveries(url: str, redis_url: str, n: int, batch_size: int, seed: int) -> tuple[int, datetime]:
    """N recipients and N due email deliveries, enqueued as the planner enqueues; returns (jobs, now)."""
    import redis
    from sqlalchemy import insert, select

    from planner.core.job_batches import assign_batches, batches_from_rows
    from planner.dispatch.outbox import enqueue_batches
    from planner.store.db import create_db_engine, upgrade
    from planner.store.models import metadata

    rng = random.Random(seed)
    zones = _zones()
    engine = create_db_engine(url)
    upgrade(engine)
    now = datetime.now(UTC)
    due = now - timedelta(seconds=1)
    recipients = metadata.tables["recipient"]
    deliveries = metadata.tables["delivery"]
    keys = [f"bench:{i}:{due.date().isoformat()}" for i in range(n)]
    jobs = assign_batches(((due, "email", "default", key) for key in keys), batch_size)
    try:
        with engine.begin() as conn:
            for start in range(0, n, 5000):
                part = range(start, min(start + 5000, n))
                conn.execute(
                    insert(recipients),
                    [
                        {
                            "id": i + 1, "external_id": f"u{i + 1}", "timezone": rng.choice(zones),
                            "email": f"u{i + 1}@example.com", "phone": f"+1212{i + 1:07d}",
                            "email_opt_out": False, "sms_opt_out": False,
                            "created_at": now, "updated_at": now,
                        }
                        for i in part
                    ],
                )  # fmt: skip
                conn.execute(
                    insert(deliveries),
                    [
                        {
                            "dedup_key": keys[i], "recipient_id": i + 1, "subscription_id": None,
                            "kind": "daily_brief", "channel": "email", "queue": "default",
                            "local_date": due.date(), "occurrence_at": due, "scheduled_at": due,
                            "status": "queued", "attempts": 0, "job_id": jobs[keys[i]],
                            "created_at": now, "updated_at": now,
                        }
                        for i in part
                    ],
                )  # fmt: skip
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('recipient', 'id'), %(n)s)", {"n": n}
                )
                conn.commit()
        with engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.id, deliveries.c.job_id, deliveries.c.queue, deliveries.c.channel,
                       deliveries.c.scheduled_at)
            ).all()  # fmt: skip
    finally:
        engine.dispose()
    batches = batches_from_rows(rows)
    connection = redis.Redis.from_url(redis_url)
    try:
        enqueue_batches(connection, batches, now)
    finally:
        connection.close()
    return len(batches), now


def _count_sent(url: str) -> Any:
    """A callable returning how many deliveries are sent (one engine reused across calls)."""
    from sqlalchemy import func, select

    from planner.store.db import create_db_engine
    from planner.store.models import metadata

    engine = create_db_engine(url, pool_size=1)
    deliveries = metadata.tables["delivery"]
    query = select(func.count()).where(deliveries.c.status == "sent")

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    count.engine = engine  # type: ignore[attr-defined]
    return count


def _status_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from planner.store.db import create_db_engine
    from planner.store.models import metadata

    engine = create_db_engine(url, pool_size=1)
    deliveries = metadata.tables["delivery"]
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.status, func.count()).group_by(deliveries.c.status)).all()
    finally:
        engine.dispose()
    return {str(status): int(count) for status, count in rows}


# --------------------------------------------------------------------------- scenarios


def _profiled(args: argparse.Namespace, name: str) -> list[str]:
    """The py-spy prefix that samples a worker into ``--profile``/NAME.txt (collapsed stacks), if asked."""
    if args.profile is None:
        return []
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    output = str(args.profile / f"{name}.txt")
    return [str(spy), "record", "--format", "raw", "--rate", "250", "-o", output, "--"]


def _add_webhook_endpoint(url: str) -> None:
    """An enabled endpoint wanting ``delivery.sent``: every send also writes its event. Its URL
    refuses connections, so the burst's final webhook pass costs little (and the steady rate, first
    to last send, none of it)."""
    from sqlalchemy import insert

    from planner.store.db import create_db_engine
    from planner.store.tables import WEBHOOK_ENDPOINTS

    engine = create_db_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(WEBHOOK_ENDPOINTS).values(
                url="http://127.0.0.1:9/bench", event_types=["delivery.sent"], enabled=True,
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", created_at=now, updated_at=now,
            )
        )  # fmt: skip
    engine.dispose()


def run_planner_workers(
    backend: str, workers: int, args: argparse.Namespace, workdir: Path, redis_server: Any, pg: Any,
    deadline: Deadline,
) -> dict[str, Any]:  # fmt: skip
    import redis

    name = f"deliver_{backend}_{workers}w"
    if pg is not None:
        pg.create_database(name)
        url = pg.url(name)
    else:
        url = f"sqlite:///{workdir / f'{name}.db'}"
    redis.Redis.from_url(redis_server.url).flushall()
    outbox = workdir / f"outbox-{name}"
    _say(f"[{backend}, {workers} worker(s)] setting up {args.deliveries:,} deliveries ...")
    jobs, _ = setup_deliveries(url, redis_server.url, args.deliveries, args.batch_size, args.seed)
    if args.webhook_endpoint:
        _add_webhook_endpoint(url)
    env = child_env(
        {
            "PLANNER_DATABASE_URL": url,
            "PLANNER_REDIS_URL": redis_server.url,
            "PLANNER_EMAIL_ADAPTER": "file",
            "PLANNER_SMS_ADAPTER": "file",
            "PLANNER_FILE_DIRECTORY": str(outbox),
            "PLANNER_RATE_LIMIT_EMAIL": "1000000/second",
            "PLANNER_RATE_LIMIT_SMS": "1000000/second",
            "PLANNER_DELIVERY_BATCH_SIZE": str(args.batch_size),
            "PLANNER_LOG_LEVEL": args.log_level,
            "PLANNER_LOG_FORMAT": "json",
            "PLANNER_SQLITE_SYNCHRONOUS": args.sqlite_synchronous,
            "PLANNER_WEBHOOKS_ALLOW_PRIVATE": "1",
        }
        | ({} if args.stored_message_max_bytes is None
           else {"PLANNER_STORED_MESSAGE_MAX_BYTES": str(args.stored_message_max_bytes)})
    )  # fmt: skip
    count_sent = _count_sent(url)
    db_cpu_before = tree_cpu_seconds(pg.pid) if pg is not None else None
    redis_cpu_before = tree_cpu_seconds(redis_server.pid)
    _say(f"[{backend}, {workers} worker(s)] {jobs:,} jobs enqueued; starting workers ...")
    started = time.perf_counter()
    procs = [
        Proc(
            [*_profiled(args, f"{name}-worker{i}"), sys.executable, "-m", "planner.cli", "worker", "--burst"],
            env,
            workdir / f"{name}-worker{i}.log",
        )
        for i in range(workers)
    ]
    try:
        all_sent_at = _wait_all(
            procs,
            time.monotonic() + deadline.left(args.step_timeout),
            lambda: count_sent() >= args.deliveries,
        )
    finally:
        for p in procs:
            p.stop()
        count_sent.engine.dispose()
    exited_at = time.perf_counter()
    db_cpu = tree_cpu_seconds(pg.pid) if pg is not None else None
    redis_cpu = tree_cpu_seconds(redis_server.pid)
    failed = [p.returncode for p in procs if p.returncode != 0]
    statuses = _status_counts(url)
    lines = []
    path = outbox / "email.jsonl"
    if path.exists():
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ids = [line["delivery_id"] for line in lines]
    stamps = sorted(_parse_iso(line["sent_at"]) for line in lines)
    problems = []
    if failed:
        problems.append(f"worker exit codes {failed} (logs in {workdir})")
    if statuses.get("sent", 0) != args.deliveries:
        problems.append(f"statuses after the run: {statuses}")
    if len(ids) != args.deliveries or len(set(ids)) != args.deliveries:
        problems.append(
            f"{len(ids)} adapter lines for {len(set(ids))} distinct deliveries, {args.deliveries} expected"
        )
    steady = (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None
    end_to_end = (all_sent_at or exited_at) - started
    if pg is not None:
        pg.drop_database(name)
    return {
        "kind": "planner",
        "backend": backend,
        "workers": workers,
        "messages": args.deliveries,
        "jobs": jobs,
        "end_to_end_seconds": end_to_end,
        "exit_seconds": exited_at - started,
        "end_to_end_rate": args.deliveries / end_to_end if end_to_end else None,
        "steady_seconds": steady,
        "steady_rate": (len(stamps) - 1) / steady if steady else None,
        "worker_cpu_seconds": [p.cpu_seconds for p in procs],
        "worker_peak_rss_mb": [round(p.peak_rss_mb, 1) for p in procs],
        "db_server_cpu_seconds": (db_cpu - db_cpu_before)
        if db_cpu is not None and db_cpu_before is not None
        else None,
        "redis_cpu_seconds": (redis_cpu - redis_cpu_before)
        if redis_cpu is not None and redis_cpu_before is not None
        else None,
        "statuses": statuses,
        "problems": problems,
    }


def run_bare_rq(
    workers: int, args: argparse.Namespace, workdir: Path, redis_server: Any, deadline: Deadline
) -> dict[str, Any]:
    import redis
    from rq import Queue

    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    queue = Queue(BARE_QUEUE, connection=connection)
    _say(f"[bare RQ, {workers} worker(s)] enqueueing {args.bare_jobs:,} trivial jobs ...")
    ids: list[str] = []
    for start in range(0, args.bare_jobs, 1000):
        with connection.pipeline() as pipe:
            jobs = queue.enqueue_many(
                [
                    Queue.prepare_data("trivial_job.noop", args=(i,))
                    for i in range(start, min(start + 1000, args.bare_jobs))
                ],
                pipeline=pipe,
            )
            pipe.execute()
        ids.extend(job.id for job in jobs)
    env = child_env()
    rq_cli = [sys.executable, "-m", "rq.cli", "worker", "--burst", "--with-scheduler",
              "--worker-class", "rq.worker.SimpleWorker", "--logging_level", "WARNING",
              "--url", redis_server.url, BARE_QUEUE]  # fmt: skip
    redis_cpu_before = tree_cpu_seconds(redis_server.pid)
    started = time.perf_counter()
    procs = [Proc(rq_cli, env, workdir / f"bare-{workers}w-{i}.log") for i in range(workers)]
    try:
        _wait_all(procs, time.monotonic() + deadline.left(args.step_timeout))
    finally:
        for p in procs:
            p.stop()
    exited_at = time.perf_counter()
    redis_cpu = tree_cpu_seconds(redis_server.pid)
    starts: list[datetime] = []
    ends: list[datetime] = []
    finished = 0
    for start in range(0, len(ids), 1000):
        with connection.pipeline() as pipe:
            for job_id in ids[start : start + 1000]:
                pipe.hmget(f"rq:job:{job_id}", "status", "started_at", "ended_at")
            for status, started_at, ended_at in pipe.execute():
                if status == b"finished" and started_at and ended_at:
                    finished += 1
                    starts.append(_parse_iso(started_at.decode()))
                    ends.append(_parse_iso(ended_at.decode()))
    connection.close()
    problems = []
    failed = [p.returncode for p in procs if p.returncode != 0]
    if failed:
        problems.append(f"rq worker exit codes {failed} (logs in {workdir})")
    if finished != args.bare_jobs:
        problems.append(f"{finished} of {args.bare_jobs} bare jobs finished")
    steady = (max(ends) - min(starts)).total_seconds() if starts else None
    end_to_end = exited_at - started
    return {
        "kind": "bare_rq",
        "backend": "-",
        "workers": workers,
        "messages": args.bare_jobs,
        "jobs": args.bare_jobs,
        "end_to_end_seconds": end_to_end,
        "exit_seconds": end_to_end,
        "end_to_end_rate": args.bare_jobs / end_to_end if end_to_end else None,
        "steady_seconds": steady,
        "steady_rate": finished / steady if steady else None,
        "worker_cpu_seconds": [p.cpu_seconds for p in procs],
        "worker_peak_rss_mb": [round(p.peak_rss_mb, 1) for p in procs],
        "db_server_cpu_seconds": None,
        "redis_cpu_seconds": (redis_cpu - redis_cpu_before)
        if redis_cpu is not None and redis_cpu_before is not None
        else None,
        "statuses": {"finished": finished},
        "problems": problems,
    }


# --------------------------------------------------------------------------- report


def compare(results: list[dict[str, Any]]) -> dict[str, Any]:
    bare = {r["workers"]: r for r in results if r["kind"] == "bare_rq"}
    out: dict[str, Any] = {}
    for r in results:
        if r["kind"] != "planner":
            continue
        base = bare.get(r["workers"])
        key = f"{r['backend']}_{r['workers']}w"
        out[key] = {
            "steady_rate": r["steady_rate"],
            "end_to_end_rate": r["end_to_end_rate"],
            "bare_steady_rate": base["steady_rate"] if base else None,
            "factor_vs_bare_steady": (r["steady_rate"] / base["steady_rate"])
            if base and base["steady_rate"] and r["steady_rate"]
            else None,
            "factor_vs_bare_end_to_end": (r["end_to_end_rate"] / base["end_to_end_rate"])
            if base and base["end_to_end_rate"] and r["end_to_end_rate"]
            else None,
        }
        if r["workers"] == 1:
            out[key]["target_1000_per_s"] = bool(r["steady_rate"] and r["steady_rate"] >= TARGET_RATE)
            out[key]["target_5x_bare"] = bool(
                out[key]["factor_vs_bare_steady"] and out[key]["factor_vs_bare_steady"] >= TARGET_FACTOR
            )
    return out


def report(results: list[dict[str, Any]], comparison: dict[str, Any]) -> None:
    rows = []
    for r in results:
        label = "planner worker" if r["kind"] == "planner" else "bare RQ (1 trivial job per message)"
        cpu = ", ".join(fmt(c, 1) for c in r["worker_cpu_seconds"])
        rss = ", ".join(fmt(m, 0) for m in r["worker_peak_rss_mb"])
        factor = comparison.get(f"{r['backend']}_{r['workers']}w", {}).get("factor_vs_bare_steady")
        rows.append(
            [
                label, r["backend"], r["workers"], f"{r['messages']:,}", f"{r['jobs']:,}",
                fmt(r["end_to_end_seconds"], 2), fmt(r["end_to_end_rate"], 0), fmt(r["steady_rate"], 0),
                (fmt(factor, 1) + "×") if factor else "-", cpu, fmt(r["db_server_cpu_seconds"], 1),
                fmt(r["redis_cpu_seconds"], 1), rss,
            ]
        )  # fmt: skip
    print_table(
        "Delivery throughput (file adapter)",
        ["path", "db", "procs", "messages", "RQ jobs", "wall s", "end-to-end /s", "steady /s", "vs bare",
         "worker CPU s", "db CPU s", "redis CPU s", "worker peak RSS MiB"],
        rows,
        caption=(
            f"targets: ≥ {TARGET_RATE:,.0f} deliveries/s with one worker process,"
            f" ≥ {TARGET_FACTOR:.0f}× bare RQ"
        ),
    )  # fmt: skip
    for r in results:
        for problem in r["problems"]:
            print(f"CHECK FAILED ({r['kind']}, {r['backend']}, {r['workers']}): {problem}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--deliveries", type=int, default=20_000, help="deliveries per scenario (default 20,000)"
    )
    parser.add_argument("--batch-size", type=int, default=100, help="deliveries per RQ job (default 100)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", default="1,2", help="worker process counts on PostgreSQL (default 1,2)")
    parser.add_argument("--bare-jobs", type=int, default=5_000, help="trivial jobs for bare RQ; 0 skips it")
    parser.add_argument("--bare-workers", default="1,2", help="bare RQ worker process counts (default 1,2)")
    parser.add_argument("--log-level", default="INFO", help="PLANNER_LOG_LEVEL of the workers (default INFO)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--sqlite-synchronous", choices=["full", "normal"], default="full", help="the workers' SQLite level"
    )
    parser.add_argument(
        "--stored-message-max-bytes", type=int,
        help="the workers' PLANNER_STORED_MESSAGE_MAX_BYTES (default: the service's); 0 keeps no copies",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 deliveries, 500 bare jobs")
    parser.add_argument("--json", action="store_true", help="print the results as JSON (no table)")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="overall time limit in seconds (default 1800)"
    )
    parser.add_argument("--step-timeout", type=float, default=600, help="limit per scenario (default 600)")
    parser.add_argument("--workdir", type=Path, help="keep databases, outboxes and logs here")
    parser.add_argument(
        "--profile", type=Path, help="sample each worker with py-spy into DIR/<scenario>-worker<i>.txt"
    )
    parser.add_argument(
        "--webhook-endpoint",
        action="store_true",
        help="an enabled webhook endpoint wants delivery.sent: each send writes its event too",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.deliveries, args.bare_jobs = 2_000, 500
    pg_workers = [int(w) for w in args.workers.split(",") if w.strip()]
    bare_workers = [int(w) for w in args.bare_workers.split(",") if w.strip()] if args.bare_jobs else []
    deadline = Deadline(args.timeout)
    results: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if args.workdir:
            base = args.workdir.resolve()
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="deliver-bench-")))
        redis_server, pg = stack.enter_context(servers(base, postgres=args.backend in ("postgres", "both")))
        info = machine_info(redis_server.url, pg.admin_dsn if pg is not None else None)
        for workers in bare_workers:
            results.append(run_bare_rq(workers, args, base, redis_server, deadline))
        if args.backend in ("sqlite", "both"):
            results.append(run_planner_workers("sqlite", 1, args, base, redis_server, None, deadline))
        if args.backend in ("postgres", "both"):
            for workers in pg_workers:
                results.append(
                    run_planner_workers("postgres", workers, args, base, redis_server, pg, deadline)
                )
    comparison = compare(results)
    if args.json:
        options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        print(json.dumps({"benchmark": "deliver", "machine": info, "options": options, "results": results,
                          "comparison": comparison}, indent=2, default=str))  # fmt: skip
    else:
        report(results, comparison)
    return 1 if any(r["problems"] for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
