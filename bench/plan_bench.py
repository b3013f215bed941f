"""Benchmark: one hourly planner run over N subscriptions, against a naive per-recipient planner.

    .venv/bin/python bench/plan_bench.py          # 1,000,000 subscriptions, 100,000 due, both backends
    .venv/bin/python bench/plan_bench.py --backend postgres --json
    .venv/bin/python bench/plan_bench.py --quick  # smoke run: 20,000 subscriptions, 2,000 due

What it does, per backend (SQLite file, PostgreSQL server started here):

1. Generates N subscriptions (two per recipient: a daily email brief and an SMS reminder) over every
   zone of ``fixtures.generate.ZONES``, weighted as the fixtures are. ``--due`` of them get a wall
   time inside the hour being planned in their own zone; the rest fall later in the local day.
   Cursors are computed with ``planner.cadence.first_occurrence_at_or_after``, as the importer does.
   Recipients get engagement events (most recent, some weeks old: every backoff tier occurs), half
   of the due subscriptions have yesterday's delivery (so backoff and caps have history to read).
   Rows are bulk loaded (COPY on PostgreSQL, executemany on SQLite), then ANALYZEd.
2. Runs ONE ``PlannerRunner.run(now, 1h)`` in a fresh process: wall time, occurrences per
   second, SQL statements (a ``before_cursor_execute`` listener; an executemany counts once) per
   1,000 due, and the process's peak RSS (``ru_maxrss``). Then checks the result: one delivery
   row per occurrence, every to-be-sent delivery ``queued`` and carried by a job in Redis.
3. Runs a naive planner on a copy of the same database, in a fresh process, over the first
   ``--naive-sample`` due subscriptions: per subscription one query each for the recipient, its
   latest engagement, the subscription's last send and the cap count; one INSERT per delivery
   (and its timeline row), one cursor UPDATE, one commit; one ``queue.enqueue_at`` per delivery.
   It takes its decisions with the same pure rules (``planner.planning.plan_chunk``), so only the
   I/O pattern differs. Its rate is extrapolated to the full due count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_clock
from pathlib import Path
from typing import Any

from _common import (
    BenchError,
    Deadline,
    child_env,
    fmt,
    machine_info,
    peak_rss_mb,
    print_table,
    run_child,
    servers,
    tree_cpu_seconds,
)

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)  # a Monday; no zone changes offset within the window
HORIZON = timedelta(hours=1)
CREATED = NOW - timedelta(days=90)
QUEUE_NAMES = ("high", "default", "bulk")
# Issue 15's targets for the full data set (1,000,000 subscriptions, 100,000 due).
TARGET_SECONDS = {"postgres": 6.0, "sqlite": 15.0}
TARGET_RSS_MB = 300.0
TARGET_SPEEDUP = 60.0
BENCH_DIR = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- data generation


@dataclass
class Dataset:
    subscriptions: int = 0
    recipients: int = 0
    due: int = 0
    engagement_events: int = 0
    history_deliveries: int = 0
    seconds: float = 0.0


def _zones() -> tuple[list[str], list[int]]:
    from fixtures.generate import ZONES

    names = list(ZONES)
    return names, [ZONES[n][0] for n in names]


class _Cursors:
    """first_occurrence_at_or_after, memoised: only (zone, wall time, days) matter."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, wall_clock, str], tuple[datetime, date]] = {}
        self.local_now: dict[str, datetime] = {}

    def now_in(self, zone: str) -> datetime:
        local = self.local_now.get(zone)
        if local is None:
            from planner.core.localtime import get_zone

            local = self.local_now[zone] = NOW.astimezone(get_zone(zone)).replace(tzinfo=None)
        return local

    def cursor(self, zone: str, wall: wall_clock, days: str) -> tuple[datetime, date]:
        key = (zone, wall, days)
        found = self.cache.get(key)
        if found is None:
            from planner.core.cadence import Cadence, first_occurrence_at_or_after

            occurrence = first_occurrence_at_or_after(Cadence.from_storage(wall, days), zone, NOW)
            found = self.cache[key] = (occurrence.instant, occurrence.local_date)
        return found


def _engagement_slots(rng: random.Random, as_of: datetime) -> dict[str, Any] | None:
    """A recipient's engagement by local half hour (planner.core.engagement_slots' stored form):
    one to five half hours between 06:00 and 22:00, some strong enough to be learned, some not."""
    from planner.core.engagement_slots import EngagementSlots

    cells: list[float] = []
    for index in sorted(rng.sample(range(12, 44), rng.randint(1, 5))):
        events = rng.randint(1, 8)
        cells += [index, events, round(events * rng.uniform(0.3, 1.0), 6)]
    return EngagementSlots(as_of, cells).to_json()


def _due_wall(rng: random.Random, local_now: datetime, half_hours: bool) -> wall_clock:
    """A wall time inside the hour being planned; on the half hour with ``half_hours`` (a learned
    window starts on one, so fixed and learned subscriptions share their due times and cursors)."""
    if not half_hours:
        return (local_now + timedelta(minutes=rng.randint(1, 60))).time()
    # Both half hours after the one now is in fall within the next 60 minutes.
    floor = local_now.replace(minute=local_now.minute - local_now.minute % 30, second=0, microsecond=0)
    return (floor + timedelta(minutes=rng.choice((30, 60)))).time()


def generate(
    n_subs: int, n_due: int, seed: int, batch: int = 20_000, half_hours: bool = False
) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Rows in batches of ``batch`` recipients: {"recipient": [...], "subscription": [...], ...}.

    Deterministic for a seed. Recipient i has subscriptions 2i+1 (email) and 2i+2 (sms). Engaged
    recipients have their engagement by local half hour (from a generator of its own, so the rest of
    the data set is what it was before learned send times).
    """
    rng = random.Random(seed)
    slots_rng = random.Random(seed + 1)
    names, weights = _zones()
    n_recipients = (n_subs + 1) // 2
    due = set(rng.sample(range(n_subs), n_due))
    cursors = _Cursors()
    window_end = NOW + HORIZON
    for start in range(0, n_recipients, batch):
        rows: dict[str, list[tuple[Any, ...]]] = {
            "recipient": [],
            "subscription": [],
            "engagement": [],
            "history": [],
        }
        for r in range(start, min(start + batch, n_recipients)):
            rid = r + 1
            zone = rng.choices(names, weights)[0]
            sms_opt_out = rng.random() < 0.03
            roll = rng.random()
            ago = (
                rng.uniform(0, 2)
                if roll < 0.55
                else rng.uniform(3, 6.9)
                if roll < 0.70
                else rng.uniform(7, 13.9)
                if roll < 0.80
                else rng.uniform(14, 45)
                if roll < 0.90
                else None
            )
            slots = None
            if ago is not None:
                engaged_at = NOW - timedelta(days=ago, minutes=1)
                rows["engagement"].append((rid, "daily_brief", "opened", engaged_at, NOW))
                slots = _engagement_slots(slots_rng, engaged_at)
            email, phone = f"u{rid}@example.com", f"+1212{rid:07d}"
            rows["recipient"].append(
                (rid, f"u{rid}", zone, email, phone, False, sms_opt_out, slots, CREATED, CREATED)
            )
            local_now = cursors.now_in(zone)
            for s in (2 * r, 2 * r + 1):
                if s >= n_subs:
                    break
                sid = s + 1
                kind, channel = ("daily_brief", "email") if s % 2 == 0 else ("reminder", "sms")
                if s in due:
                    days = "daily"
                    wall = _due_wall(rng, local_now, half_hours)
                else:
                    days = rng.choices(("daily", "weekdays", "mon,thu"), (60, 25, 15))[0]
                    wall = (local_now + timedelta(minutes=15 * rng.randint(8, 92))).time()
                    wall = wall.replace(minute=wall.minute - wall.minute % 15)
                next_at, next_date = cursors.cursor(zone, wall, days)
                rows["subscription"].append(
                    (sid, rid, kind, channel, wall, days, True, next_at, next_date, CREATED, CREATED)
                )
                if next_at <= window_end and rng.random() < 0.5:
                    before = next_date - timedelta(days=1)
                    at = next_at - timedelta(days=1)
                    rows["history"].append(
                        (
                            f"sub:{sid}:{before.isoformat()}",
                            rid,
                            sid,
                            kind,
                            channel,
                            "default",
                            before,
                            at,
                            at,
                            "sent",
                            1,
                            f"file-h{sid}",
                            at,
                            at,
                            at,
                        )
                    )
        yield rows


COLUMNS = {
    "recipient": (
        "id",
        "external_id",
        "timezone",
        "email",
        "phone",
        "email_opt_out",
        "sms_opt_out",
        "engagement_slots",
        "created_at",
        "updated_at",
    ),
    "subscription": (
        "id",
        "recipient_id",
        "kind",
        "channel",
        "send_time",
        "days",
        "active",
        "next_at",
        "next_local_date",
        "created_at",
        "updated_at",
    ),
    "engagement": ("recipient_id", "kind", "event", "occurred_at", "created_at"),
    "history": (
        "dedup_key",
        "recipient_id",
        "subscription_id",
        "kind",
        "channel",
        "queue",
        "local_date",
        "occurrence_at",
        "scheduled_at",
        "status",
        "attempts",
        "provider_message_id",
        "sent_at",
        "created_at",
        "updated_at",
    ),
}
TABLES = {
    "recipient": "recipient",
    "subscription": "subscription",
    "engagement": "engagement_event",
    "history": "delivery",
}


def populate(url: str, n_subs: int, n_due: int, seed: int, half_hours: bool = False) -> Dataset:
    """Create the schema and bulk load the generated rows; returns what was loaded."""
    from sqlalchemy import func, insert, select, text

    from planner.store.db import create_db_engine, upgrade
    from planner.store.models import metadata

    started = time.perf_counter()
    engine = create_db_engine(url)
    upgrade(engine)
    counts: Counter[str] = Counter()
    try:
        if engine.dialect.name == "postgresql":
            raw = engine.raw_connection()
            try:
                conn = raw.driver_connection
                assert conn is not None
                for rows in generate(n_subs, n_due, seed, half_hours=half_hours):
                    with conn.cursor() as cur:
                        for name, table in TABLES.items():
                            with cur.copy(f"COPY {table} ({', '.join(COLUMNS[name])}) FROM STDIN") as copy:
                                for row in rows[name]:
                                    copy.write_row([json.dumps(v) if isinstance(v, dict) else v for v in row])
                            counts[name] += len(rows[name])
                    conn.commit()
                with conn.cursor() as cur:
                    for table in ("recipient", "subscription"):
                        cur.execute(
                            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                            f" (SELECT max(id) FROM {table}))"
                        )
                conn.commit()
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE")
                conn.autocommit = False
            finally:
                raw.close()
        else:
            with engine.begin() as conn:
                for rows in generate(n_subs, n_due, seed, half_hours=half_hours):
                    for name, table in TABLES.items():
                        if rows[name]:
                            conn.execute(
                                insert(metadata.tables[table]),
                                [dict(zip(COLUMNS[name], r, strict=True)) for r in rows[name]],
                            )
                            counts[name] += len(rows[name])
            engine.dispose()
            import sqlite3

            raw_sqlite = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
            try:
                raw_sqlite.execute("ANALYZE")
                raw_sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw_sqlite.close()
        subs = metadata.tables["subscription"]
        with engine.connect() as conn:
            due = conn.execute(select(func.count()).where(subs.c.next_at <= NOW + HORIZON)).scalar_one()
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()
    return Dataset(
        subscriptions=counts["subscription"],
        recipients=counts["recipient"],
        due=int(due),
        engagement_events=counts["engagement"],
        history_deliveries=counts["history"],
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- child: the measured runs


def _count_statements(engine: Any) -> list[int]:
    from sqlalchemy import event

    seen = [0]

    def before(*_: Any) -> None:
        seen[0] += 1

    event.listen(engine, "before_cursor_execute", before)
    return seen


def _redis_jobs(connection: Any) -> int:
    total = 0
    for name in QUEUE_NAMES:
        total += int(connection.llen(f"rq:queue:{name}")) + int(connection.zcard(f"rq:scheduled:{name}"))
    return total


def _verify(engine: Any, connection: Any) -> dict[str, Any]:
    from sqlalchemy import func, select

    from planner.store.models import metadata

    deliveries = metadata.tables["delivery"]
    subs = metadata.tables["subscription"]
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(
                select(deliveries.c.status, func.count())
                .where(deliveries.c.created_at == NOW)
                .group_by(deliveries.c.status)
            ).all()
        )
        queued_jobs = conn.execute(
            select(func.count(func.distinct(deliveries.c.job_id))).where(deliveries.c.status == "queued")
        ).scalar_one()
        still_due = conn.execute(
            select(func.count()).where(subs.c.active.is_(True), subs.c.next_at <= NOW + HORIZON)
        ).scalar_one()
    return {
        "deliveries_by_status": {str(k): int(v) for k, v in by_status.items()},
        "deliveries": sum(int(v) for v in by_status.values()),
        "queued_job_ids": int(queued_jobs),
        "redis_jobs": _redis_jobs(connection),
        "still_due": int(still_due),
    }


def _naive_run(engine: Any, connection: Any, policy: Any, limit: int) -> dict[str, Any]:
    """The home-made planner this service replaces, minus its worst habit (it uses the due index)."""
    from rq import Queue
    from sqlalchemy import func, insert, select, update

    from planner.core.cadence import Cadence
    from planner.core.job_batches import new_job_id
    from planner.core.planning import ChunkInputs, SubscriptionState, plan_chunk
    from planner.core.status import CAP_COUNTED_STATUSES
    from planner.dispatch.outbox import DELIVER_BATCH
    from planner.store.engagement import TO_BE_SENT
    from planner.store.models import metadata
    from planner.store.recipient_facts import RECIPIENT_COLUMNS, recipient_state

    subs = metadata.tables["subscription"]
    recipients = metadata.tables["recipient"]
    engagement = metadata.tables["engagement_event"]
    deliveries = metadata.tables["delivery"]
    events = metadata.tables["delivery_event"]
    window_end = NOW + HORIZON
    reach = policy.longest_cap_window
    capped = [s.value for s in CAP_COUNTED_STATUSES]
    queues: dict[str, Queue] = {}
    outcomes: Counter[str] = Counter()
    occurrences = 0
    with engine.connect() as conn:
        due = conn.execute(
            select(subs)
            .where(subs.c.active.is_(True), subs.c.next_at <= window_end)
            .order_by(subs.c.next_at, subs.c.id)
            .limit(limit)
        ).all()
    for row in due:
        state = SubscriptionState(
            id=row.id,
            recipient_id=row.recipient_id,
            kind=row.kind,
            channel=row.channel,
            cadence=Cadence.from_storage(row.send_time, row.days),
            next_at=row.next_at,
            next_local_date=row.next_local_date,
            created_at=row.created_at,
        )
        to_enqueue: list[tuple[int, Any]] = []
        with engine.begin() as conn:
            recipient = conn.execute(
                select(*(recipients.c[name] for name in RECIPIENT_COLUMNS)).where(
                    recipients.c.id == row.recipient_id
                )
            ).one()
            engaged = conn.execute(
                select(func.max(engagement.c.occurred_at)).where(
                    engagement.c.recipient_id == row.recipient_id, engagement.c.occurred_at <= window_end
                )
            ).scalar()
            last_sent = conn.execute(
                select(func.max(deliveries.c.local_date)).where(
                    deliveries.c.subscription_id == row.id, deliveries.c.status.in_(TO_BE_SENT)
                )
            ).scalar()
            counted = sorted(
                conn.execute(
                    select(deliveries.c.scheduled_at).where(
                        deliveries.c.recipient_id == row.recipient_id,
                        deliveries.c.channel == row.channel,
                        deliveries.c.status.in_(capped),
                        deliveries.c.scheduled_at > row.next_at - reach,
                        deliveries.c.scheduled_at < window_end + timedelta(days=1) + reach,
                    )
                ).scalars()
            )
            inputs = ChunkInputs(
                subscriptions=[state],
                recipients={row.recipient_id: recipient_state(recipient)},
                engagement={row.recipient_id: [engaged]} if engaged else {},
                last_sent={row.id: last_sent} if last_sent else {},
                cap_counted={(row.recipient_id, row.channel): counted},
            )
            plan = plan_chunk(inputs, policy, NOW, window_end)
            for d in plan.deliveries:
                occurrences += 1
                outcomes["queued" if d.to_send else d.status.value] += 1
                delivery_id = conn.execute(
                    insert(deliveries)
                    .values(
                        dedup_key=d.dedup_key,
                        recipient_id=d.recipient_id,
                        subscription_id=d.subscription_id,
                        kind=d.kind,
                        channel=d.channel,
                        queue=d.queue,
                        local_date=d.local_date,
                        occurrence_at=d.occurrence_at,
                        scheduled_at=d.scheduled_at,
                        status=d.status.value,
                        reason=d.reason,
                        attempts=0,
                        created_at=NOW,
                        updated_at=NOW,
                    )
                    .returning(deliveries.c.id)
                ).scalar_one()
                conn.execute(
                    insert(events).values(
                        delivery_id=delivery_id,
                        at=NOW,
                        event="planned",
                        status=d.status.value,
                        reason=d.reason,
                        detail=d.detail,
                    )
                )
                if d.to_send:
                    to_enqueue.append((delivery_id, d))
            cursor = plan.cursors[row.id]
            conn.execute(
                update(subs)
                .where(subs.c.id == row.id)
                .values(next_at=cursor.next_at, next_local_date=cursor.next_local_date, updated_at=NOW)
            )
        for delivery_id, d in to_enqueue:
            queue = queues.get(d.queue)
            if queue is None:
                queue = queues[d.queue] = Queue(d.queue, connection=connection)
            job_id = new_job_id()
            queue.enqueue_at(d.scheduled_at, DELIVER_BATCH, [delivery_id], job_id=job_id)
            with engine.begin() as conn:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == delivery_id)
                    .values(status="queued", job_id=job_id, updated_at=NOW)
                )
    return {
        "subscriptions": len(due),
        "occurrences": occurrences,
        "outcomes": dict(sorted(outcomes.items())),
    }


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="plan_bench.py _child")
    parser.add_argument("mode", choices=["planner", "naive"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--limit", type=int, default=5000)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--server-pids", default="", help="db,redis pids whose CPU time to measure")
    parser.add_argument(
        "--start-at", type=float, help="wall-clock epoch to start the run at (several processes)"
    )
    args = parser.parse_args(argv)

    import redis

    from planner.core.policy import PlanningPolicy
    from planner.logs import configure_logging
    from planner.run.runner import PlannerRunner, RunOptions
    from planner.settings import Settings
    from planner.store.db import create_db_engine, make_session_factory

    configure_logging("INFO", "json")  # to stderr, as `planner run` does
    settings = Settings(database_url=args.url, redis_url=args.redis)
    engine = create_db_engine(args.url, pool_size=max(settings.db_pool_size, args.concurrency + 1))
    sessions = make_session_factory(engine)
    connection = redis.Redis.from_url(args.redis)
    policy = PlanningPolicy.from_settings(settings)
    rss_before = peak_rss_mb()
    statements = _count_statements(engine)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    import os
    import resource

    if args.start_at is not None:  # several planner processes start their runs together
        time.sleep(max(0.0, args.start_at - time.time()))
    pids = [int(p) if p else None for p in [*args.server_pids.split(","), "", ""][:2]]
    servers_before = [tree_cpu_seconds(p) for p in pids]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    load_before = os.getloadavg()[0]
    collections = _GcTimer()
    started = time.perf_counter()
    if args.mode == "planner":
        runner = PlannerRunner(
            sessions,
            connection,
            policy,
            RunOptions(chunk_size=args.chunk_size, concurrency=args.concurrency, batch_size=args.batch_size),
        )
        report = runner.run(NOW, HORIZON)
        result: dict[str, Any] = {
            "subscriptions": report.subscriptions,
            "occurrences": report.occurrences,
            "outcomes": dict(report.outcomes),
            "reasons": dict(report.reasons),
            "enqueued_jobs": report.enqueued_jobs,
            "deferred": report.deferred,
        }
    else:
        result = _naive_run(engine, connection, policy, args.limit)
    elapsed = time.perf_counter() - started
    collections.stop()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    servers_after = [tree_cpu_seconds(p) for p in pids]
    server_cpu = [
        (after - before) if after is not None and before is not None else None
        for before, after in zip(servers_before, servers_after, strict=True)
    ]
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    result.update(
        seconds=elapsed,
        cpu_seconds=(cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime),
        db_server_cpu_seconds=server_cpu[0],
        redis_cpu_seconds=server_cpu[1],
        loadavg_1min_before=load_before,
        loadavg_1min_after=os.getloadavg()[0],
        statements=statements[0],
        gc_seconds=collections.seconds,
        gc_full_collections=collections.full,
        rss_before_mb=rss_before,
        peak_rss_mb=peak_rss_mb(),
        verify=_verify(engine, connection),
    )
    engine.dispose()
    connection.close()
    print(json.dumps(result, default=str))
    return 0


class _GcTimer:
    """Time spent in the garbage collector while a run is measured, and its full collections: a
    full collection walks every live object (the libraries' too), so one more or less in a run
    moves a sub-second run's CPU by a visible share."""

    def __init__(self) -> None:
        import gc

        self.seconds, self.full, self._started = 0.0, 0, 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full += info["generation"] == 2

    def stop(self) -> None:
        import gc

        gc.callbacks.remove(self._callback)


# --------------------------------------------------------------------------- parent


def _clone(backend: str, url: str, pg: Any, name: str, workdir: Path) -> str:
    if backend == "postgres":
        pg.create_database(name, template=url.rsplit("/", 1)[1])
        return str(pg.url(name))
    source = Path(url.split(":///", 1)[1])
    target = workdir / f"{name}.db"
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def _flush(redis_url: str) -> None:
    import redis

    conn = redis.Redis.from_url(redis_url)
    conn.flushall()
    conn.close()


def _check_planner(result: dict[str, Any], due: int) -> list[str]:
    problems = []
    verify = result["verify"]
    if result["occurrences"] != due:
        problems.append(f"planned {result['occurrences']} occurrences, {due} were due")
    if verify["deliveries"] != result["occurrences"]:
        problems.append(f"{verify['deliveries']} delivery rows for {result['occurrences']} occurrences")
    if verify["deliveries_by_status"].get("queued", 0) != result["outcomes"].get("queued", 0):
        problems.append("not every to-be-sent delivery is marked queued")
    if verify["redis_jobs"] != result["enqueued_jobs"] or verify["queued_job_ids"] != result["enqueued_jobs"]:
        problems.append(
            f"{verify['redis_jobs']} jobs in Redis, {verify['queued_job_ids']} job ids on queued rows, "
            f"{result['enqueued_jobs']} enqueued"
        )
    if verify["still_due"]:
        problems.append(f"{verify['still_due']} subscriptions still due after the run")
    return problems


def bench_backend(
    backend: str, args: argparse.Namespace, workdir: Path, deadline: Deadline
) -> dict[str, Any]:
    with servers(workdir, postgres=backend == "postgres") as (redis_server, pg):
        if pg is not None:
            pg.create_database("bench_plan")
            url = pg.url("bench_plan")
        else:
            url = f"sqlite:///{workdir / 'bench_plan.db'}"
        info = machine_info(redis_server.url, pg.admin_dsn if pg is not None else None)
        _say(f"[{backend}] generating {args.subscriptions:,} subscriptions ({args.due:,} due) ...")
        dataset = populate(url, args.subscriptions, args.due, args.seed, half_hours=bool(args.learned_share))
        _say(f"[{backend}] loaded in {dataset.seconds:.1f} s: {dataset.__dict__}")
        deadline.left()
        naive_url = _clone(backend, url, pg, "bench_naive", workdir) if args.naive_sample else None
        env = child_env()
        log = workdir / f"{backend}-children.log"
        script = str(Path(__file__).resolve())
        pids = f"{pg.pid if pg is not None else ''},{redis_server.pid}"
        common = ["--url", url, "--redis", redis_server.url, "--server-pids", pids]
        options = [
            "--chunk-size",
            str(args.chunk_size),
            "--concurrency",
            str(args.concurrency),
            "--batch-size",
            str(args.batch_size),
        ]
        profile = None
        if args.profile:
            profile = workdir / f"{backend}.prof"
            options += ["--profile", str(profile)]
        planner, compared = _planner_runs(
            args, backend, url, pg, workdir, dataset.due, script, common, options, log, deadline
        )
        if profile is not None:
            import pstats

            # One profile, or one per variant compared (<variant>.prof beside it).
            for found in [profile] if profile.exists() else sorted(profile.parent.glob("*.prof")):
                _say(f"[{backend}] profile of the planner run {found.stem} (cumulative, top 30):")
                pstats.Stats(str(found), stream=sys.stderr).sort_stats("cumulative").print_stats(30)
        naive = None
        if naive_url is not None:
            _flush(redis_server.url)
            limit = min(args.naive_sample, dataset.due)
            _say(f"[{backend}] naive planner over {limit:,} due subscriptions ...")
            naive = run_child(
                [
                    script,
                    "_child",
                    "naive",
                    "--url",
                    naive_url,
                    "--redis",
                    redis_server.url,
                    "--server-pids",
                    pids,
                    "--limit",
                    str(limit),
                ],
                env=env,
                timeout=deadline.left(args.step_timeout),
                log=log,
            )
            naive["problems"] = []
            if naive["verify"]["redis_jobs"] != naive["outcomes"].get("queued", 0):
                naive["problems"].append("naive: jobs in Redis differ from queued deliveries")
        _flush(redis_server.url)
    return {
        "backend": backend,
        "machine": info,
        "dataset": dataset.__dict__,
        "planner": planner,
        "naive": naive,
        "compared": compared,
    }


def _planner_runs(
    args: argparse.Namespace,
    backend: str,
    url: str,
    pg: Any,
    workdir: Path,
    due: int,
    script: str,
    common: list[str],
    options: list[str],
    log: Path,
    deadline: Deadline,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]] | None]:
    """The planner run, ``--runs`` times on fresh copies of the loaded database; with ``--baseline``
    each run of this tree is paired with one of the baseline tree (alternating A B A B ...), so a
    lever's effect is measured on the same data under the same machine load. Returns the median
    run of this tree (by wall time) and every run of both."""
    redis_url = common[common.index("--redis") + 1]
    trees: list[tuple[str, Path | None]] = [("after", None)]
    if args.baseline:
        trees = [("before", args.baseline.resolve()), ("after", None)]
    elif args.learned_share:
        # The same data twice: as generated (fixed times), and with a share of the due subscriptions
        # given a learned time whose window opens at their fixed time (same due set, same cursors).
        trees = [("fixed", None), ("learned", None)]
    paired = len(trees) > 1
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    for index in range(args.runs):
        for name, tree in trees if index % 2 == 0 or not paired else trees[::-1]:
            target = url
            if args.runs > 1 or paired:
                target = _clone(backend, url, pg, f"bench_run_{name}_{index}", workdir)
                if name == "before" and args.baseline_sql:
                    _run_sql(target, args.baseline_sql)
            if name == "after" and args.webhook_endpoint:
                _run_sql(target, WEBHOOK_ENDPOINT_SQL)
            if name == "learned":
                changed = _make_learned(target, args.learned_share, args.learned_window)
                _say(f"[{backend}] learned times on {changed:,} due")
            env = child_env(
                {"PYTHONPATH": f"{tree}{os.pathsep}{BENCH_DIR}", "BENCH_TREE": str(tree)} if tree else None
            )
            _flush(redis_url)
            _say(f"[{backend}] planner run {index + 1}/{args.runs} ({name}) ...")
            run_options = list(options)
            if "--profile" in run_options and len(trees) > 1:  # one profile per variant: <name>.prof
                at = run_options.index("--profile") + 1
                run_options[at] = str(Path(run_options[at]).with_name(f"{name}.prof"))
            argv = [script, "_child", "planner", "--url", target, *common[2:], *run_options]
            result = run_child(argv, env=env, timeout=deadline.left(args.step_timeout), log=log)
            result["problems"] = _check_planner(result, due)
            runs[name].append(result)
            _say(
                f"[{backend}] {name}: {result['seconds']:.2f} s wall, {result['cpu_seconds']:.2f} CPU s,"
                f" db {result['db_server_cpu_seconds']}, load {result['loadavg_1min_before']:.2f}"
            )
    after = sorted(runs["fixed" if "fixed" in runs else "after"], key=lambda r: r["seconds"])
    return after[len(after) // 2], (runs if paired or args.runs > 1 else None)


def _make_learned(url: str, share: float, hours: float) -> int:
    """Give ``share`` of the due subscriptions (by id) a learned send time: the window opens at the
    fixed time (its cursor stays right), ends up to ``hours`` later on the same day, and its default
    is an hour in (or its last slot). A window that cannot close the same day is left fixed. How
    many changed."""
    from sqlalchemy import bindparam, select, update

    from planner.store.db import create_db_engine
    from planner.store.tables import SUBSCRIPTIONS

    s = SUBSCRIPTIONS.c
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            due = conn.execute(select(s.id, s.send_time).where(s.next_at <= NOW + HORIZON)).all()
            rows = []
            for sub_id, start in due:
                minutes = start.hour * 60 + start.minute
                end = min(minutes + round(hours * 60 / 30) * 30, 23 * 60 + 30)
                if sub_id % 1000 >= share * 1000 or end <= minutes:
                    continue
                default = min(minutes + 60, end - 30)
                rows.append({"sid": sub_id, "until": _wall(end), "default": _wall(default)})
            if rows:
                conn.execute(
                    update(SUBSCRIPTIONS)
                    .where(s.id == bindparam("sid"))
                    .values(auto_until=bindparam("until"), auto_default=bindparam("default")),
                    rows,
                )
    finally:
        engine.dispose()
    return len(rows)


def _wall(minutes: int) -> wall_clock:
    return wall_clock(minutes // 60, minutes % 60)


#: An enabled webhook endpoint that wants the planner's events (``--webhook-endpoint``).
WEBHOOK_ENDPOINT_SQL = (
    "INSERT INTO webhook_endpoint (url, event_types, enabled, secret, created_at, updated_at) VALUES "
    "('https://hooks.example.com/bench', '[\"delivery.skipped\", \"delivery.suppressed\"]', true, "
    "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '2026-03-16 12:00:00.000000', '2026-03-16 12:00:00.000000')"
)


def _run_sql(url: str, statements: str) -> None:
    from sqlalchemy import text

    from planner.store.db import create_db_engine

    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
    finally:
        engine.dispose()


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    due = result["dataset"]["due"]
    p = result["planner"]
    summary: dict[str, Any] = {
        "due": due,
        "planner_seconds": p["seconds"],
        "planner_rate": p["occurrences"] / p["seconds"] if p["seconds"] else None,
        "planner_statements_per_1000": p["statements"] / (due / 1000) if due else None,
        "planner_peak_rss_mb": p["peak_rss_mb"],
        "planner_rss_growth_mb": p["peak_rss_mb"] - p["rss_before_mb"],
        "queued": p["outcomes"].get("queued", 0),
        "jobs": p["enqueued_jobs"],
    }
    n = result["naive"]
    if n:
        rate = n["occurrences"] / n["seconds"] if n["seconds"] else None
        summary.update(
            naive_sample=n["occurrences"],
            naive_seconds=n["seconds"],
            naive_rate=rate,
            naive_statements_per_1000=n["statements"] / (n["subscriptions"] / 1000)
            if n["subscriptions"]
            else None,
            naive_extrapolated_seconds=due / rate if rate else None,
            naive_peak_rss_mb=n["peak_rss_mb"],
            speedup=(summary["planner_rate"] / rate) if rate and summary["planner_rate"] else None,
        )
    limit = TARGET_SECONDS[result["backend"]]
    summary["targets"] = {
        f"seconds_at_most_{limit:.0f}": summary["planner_seconds"] <= limit,
        f"peak_rss_under_{TARGET_RSS_MB:.0f}_mb": summary["planner_peak_rss_mb"] < TARGET_RSS_MB,
        f"speedup_at_least_{TARGET_SPEEDUP:.0f}x": summary.get("speedup") is not None
        and summary["speedup"] >= TARGET_SPEEDUP,
    }
    return summary


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(results: list[dict[str, Any]]) -> None:
    rows = []
    for r in results:
        s = r["summary"]
        rows.append(
            [
                r["backend"],
                f"{s['due']:,}",
                fmt(s["planner_seconds"], 2),
                fmt(s["planner_rate"], 0),
                fmt(s["planner_statements_per_1000"], 1),
                fmt(s["planner_peak_rss_mb"], 0),
                f"{s['queued']:,} / {s['jobs']:,}",
                fmt(s.get("naive_rate"), 0),
                fmt(s.get("naive_statements_per_1000"), 0),
                fmt(s.get("naive_extrapolated_seconds"), 1),
                (fmt(s.get("speedup"), 1) + "×") if s.get("speedup") else "-",
            ]
        )
    print_table(
        "Planner run: one hourly run (window 1 h)",
        [
            "backend",
            "due",
            "run s",
            "occ/s",
            "stmts/1k due",
            "peak RSS MiB",
            "queued / jobs",
            "naive occ/s",
            "naive stmts/1k",
            "naive s (extrap.)",
            "speedup",
        ],
        rows,
        caption=(
            f"targets (full data set): ≤ {TARGET_SECONDS['postgres']:.0f} s on PostgreSQL,"
            f" ≤ {TARGET_SECONDS['sqlite']:.0f} s on SQLite, < {TARGET_RSS_MB:.0f} MiB,"
            f" ≥ {TARGET_SPEEDUP:.0f}× naive"
        ),
    )
    _report_learned(results)
    for r in results:
        outcome = ", ".join(f"{k} {v:,}" for k, v in sorted(r["planner"]["outcomes"].items()))
        targets = ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in r["summary"]["targets"].items())
        print(f"{r['backend']}: outcomes {outcome}; targets {targets}")
        for problem in r["planner"]["problems"] + (r["naive"]["problems"] if r["naive"] else []):
            print(f"{r['backend']}: CHECK FAILED: {problem}")


def _median(runs: list[dict[str, Any]], key: str) -> float:
    values = sorted(float(r[key]) for r in runs)
    return values[len(values) // 2]


def _ratio_interval(
    fixed: list[dict[str, Any]], learned: list[dict[str, Any]], key: str, resamples: int = 2000
) -> tuple[float, float]:
    """Where the ratio of the medians (learned over fixed) lies 90 % of the time when the alternated
    pairs of runs are drawn again (a bootstrap): how far one benchmark's ratio can be from the next
    on the same machine."""
    draw = random.Random(0)
    pairs = list(zip(fixed, learned, strict=False))
    ratios = sorted(
        _median([pair[1] for pair in sample], key) / _median([pair[0] for pair in sample], key)
        for sample in ([draw.choice(pairs) for _ in pairs] for _ in range(resamples))
    )
    return ratios[resamples // 20], ratios[resamples - resamples // 20 - 1]


def _report_learned(results: list[dict[str, Any]]) -> None:
    """Fixed and learned send times side by side: medians of the alternated runs, and their ratio."""
    rows = []
    for r in results:
        compared = r.get("compared") or {}
        if not {"fixed", "learned"} <= set(compared):
            continue
        due = r["dataset"]["due"]
        medians = {}
        for name in ("fixed", "learned"):
            runs = compared[name]
            seconds, cpu = _median(runs, "seconds"), _median(runs, "cpu_seconds")
            statements = _median(runs, "statements") / (due / 1000)
            medians[name] = (seconds, cpu, statements)
            outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(runs[0]["outcomes"].items()))
            rss = fmt(_median(runs, "peak_rss_mb"), 0)
            rate = fmt(due / seconds, 0)
            rows.append(
                [r["backend"], name, f"{due:,}", str(len(runs)), fmt(seconds, 2), fmt(cpu, 2), rate]
            )
            jobs = f"{_median(runs, 'enqueued_jobs'):,.0f}"
            rows[-1] += [fmt(statements, 1), rss, jobs, outcomes]
        ratio = [f"{medians['learned'][i] / medians['fixed'][i]:.3f}" for i in range(3)]
        fixed_runs, learned_runs = compared["fixed"], compared["learned"]
        low_high = [_ratio_interval(fixed_runs, learned_runs, key) for key in ("seconds", "cpu_seconds")]
        rows.append([r["backend"], "learned/fixed", "", "", ratio[0], ratio[1], "", ratio[2], "", "", ""])
        rows.append([r["backend"], "90 % interval", "", "", *(f"{lo:.3f}–{hi:.3f}" for lo, hi in low_high)])
        rows[-1] += [""] * (len(rows[-2]) - len(rows[-1]))
    if rows:
        # RQ jobs: learned sends spread over their windows, so a run enqueues more distinct send instants.
        columns = ["backend", "times", "due", "runs", "run s", "CPU s", "occ/s", "stmts/1k due", "RSS MiB"]
        columns.append("jobs")
        print_table(
            "Fixed and learned send times side by side (the same due set; medians of alternated runs)",
            [*columns, "outcomes"],
            rows,
            caption="learned: the --learned-share of the due subscriptions has a learned time",
        )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_child":
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--subscriptions", type=int, default=1_000_000, help="subscriptions generated (default 1,000,000)"
    )
    parser.add_argument(
        "--due", type=int, default=100_000, help="of which due in the run window (default 100,000)"
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--naive-sample",
        type=int,
        default=5000,
        help="due subscriptions the naive planner processes; 0 skips it (default 5,000)",
    )
    parser.add_argument("--chunk-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 20,000 subscriptions, 2,000 due, naive 500"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the planner run; top functions to stderr"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON (no table)")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="overall time limit in seconds (default 3600)"
    )
    parser.add_argument(
        "--step-timeout", type=float, default=900, help="limit per measured run (default 900)"
    )
    parser.add_argument("--workdir", type=Path, help="keep databases and logs here instead of a temp dir")
    parser.add_argument("--runs", type=int, default=1, help="planner runs, each on a fresh copy (default 1)")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout's root: its planner runs alternate with this one's"
    )
    parser.add_argument(
        "--baseline-sql", help="SQL run on the baseline's copy first (e.g. an index it had), ';'-separated"
    )
    parser.add_argument(
        "--webhook-endpoint",
        action="store_true",
        help="this tree's runs have an enabled webhook endpoint wanting delivery.skipped and "
        "delivery.suppressed (the planner's events); the baseline's have none",
    )
    parser.add_argument(
        "--learned-share",
        type=float,
        default=0.0,
        help="runs fixed and learned send times side by side: this share of the due subscriptions "
        "gets a learned time in the second (e.g. 0.5; default 0: fixed only)",
    )
    parser.add_argument(
        "--learned-window",
        type=float,
        default=8.0,
        help="hours a learned window spans (default 8; 0.5: one slot, so every learned send goes at\n"
        "its fixed time and the run enqueues the same jobs: the choice's own cost)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.subscriptions, args.due, args.naive_sample = 20_000, 2_000, 500
    if not 0 < args.due <= args.subscriptions:
        parser.error("--due must be between 1 and --subscriptions")
    deadline = Deadline(args.timeout)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    with contextlib.ExitStack() as stack:
        if args.workdir:
            base = args.workdir.resolve()
            base.mkdir(parents=True, exist_ok=True)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plan-bench-")))
        for backend in backends:
            workdir = base / backend
            workdir.mkdir(parents=True, exist_ok=True)
            result = bench_backend(backend, args, workdir, deadline)
            result["summary"] = summarise(result)
            results.append(result)
    output = {
        "benchmark": "plan",
        "now": NOW.isoformat(),
        "horizon_seconds": HORIZON.total_seconds(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results,
    }
    if args.json:
        print(json.dumps(output, indent=2, default=str))
    else:
        report(results)
    failed = any(r["planner"]["problems"] or (r["naive"] and r["naive"]["problems"]) for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
