"""The hourly planner run on real databases and a real Redis: outcomes, bounds, crashes and races."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time as time_module
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from planner.app import App
from planner.commands.importer import import_lines
from planner.commands.recipients import patch_subscription
from planner.settings import Settings
from planner.store.models import Delivery, PlannerRun, Subscription
from tests.conftest import new_pg_database
from tests.helpers import (
    count_statements,
    job_id_occurrences,
    jobs_in_redis,
    recipient_line,
    runner,
    timelines,
)
from tests.servers import PostgresServer

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def deliveries(app: App) -> list[Delivery]:
    with app.sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_due_subscriptions_become_queued_deliveries_with_jobs(app: App) -> None:
    lines = [
        recipient_line(
            "ny", "America/New_York", [{"kind": "daily_brief", "channel": "email", "at": "07:30"}]
        ),
        recipient_line("tokyo", "Asia/Tokyo", [{"kind": "daily_brief", "channel": "email", "at": "21:15"}]),
        recipient_line("later", "UTC", [{"kind": "daily_brief", "channel": "email", "at": "18:00"}]),
    ]
    import_lines(app.sessions, lines, NOW)
    report = runner(app).run(NOW, HOUR)
    rows = deliveries(app)
    # 07:30 EST = 12:30Z and 21:15 JST = 12:15Z are due within the hour; 18:00Z is not.
    assert [(d.dedup_key.split(":")[2], d.scheduled_at, d.status) for d in rows] == [
        ("2026-03-02", datetime(2026, 3, 2, 12, 15, tzinfo=UTC), "queued"),
        ("2026-03-02", datetime(2026, 3, 2, 12, 30, tzinfo=UTC), "queued"),
    ]
    assert report.outcomes == Counter({"queued": 2})
    jobs = jobs_in_redis(app.redis)
    assert sorted(i for ids in jobs.values() for i in ids) == [d.id for d in rows]
    assert {d.job_id for d in rows} == set(jobs)
    with app.sessions() as session:
        subs = {s.recipient_id: s for s in session.scalars(select(Subscription))}
        run = session.scalars(select(PlannerRun)).one()
    assert all(s.next_at > NOW + HOUR for s in subs.values())
    assert run.status == "succeeded" and run.occurrences == 2 and run.counts["outcomes"] == {"queued": 2}
    assert [[e["event"] for e in entries] for entries in timelines(app).values()] == [
        ["planned"],
        ["planned"],
    ]


def test_repeated_run_creates_nothing_new(app: App) -> None:
    import_lines(
        app.sessions, [recipient_line("a", "UTC", [{"kind": "k", "channel": "email", "at": "12:30"}])], NOW
    )
    runner(app).run(NOW, HOUR)
    first = [(d.id, d.job_id) for d in deliveries(app)]
    again = runner(app).run(NOW, HOUR)
    assert again.inserted == 0 and again.occurrences == 0
    assert [(d.id, d.job_id) for d in deliveries(app)] == first
    assert job_id_occurrences(app.redis) == [first[0][1]]


def test_catch_up_after_downtime_records_missed_and_sends_recent(app: App) -> None:
    import_lines(
        app.sessions, [recipient_line("a", "UTC", [{"kind": "k", "channel": "email", "at": "09:00"}])], NOW
    )
    # Down for three days: the run at 2026-03-05 12:00 catches up from the cursor.
    report = runner(app).run(datetime(2026, 3, 5, 12, 0, tzinfo=UTC), HOUR)
    by_date = {d.local_date: (d.status, d.reason) for d in deliveries(app)}
    assert by_date == {
        date(2026, 3, 3): ("missed", "too_late"),
        date(2026, 3, 4): ("missed", "too_late"),
        date(2026, 3, 5): ("queued", None),  # 3 h late, within the 4 h default lateness
    }
    assert report.outcomes == Counter({"missed": 2, "queued": 1})


def test_quiet_hours_defer_and_opt_out_suppresses(app: App) -> None:
    lines = [
        recipient_line(
            "night",
            "Europe/Berlin",
            [{"kind": "reminder", "channel": "sms", "at": "13:30"}],
            quiet_hours={"sms": {"start": "13:00", "end": "15:00"}},
        ),
        recipient_line("out", "UTC", [{"kind": "k", "channel": "email", "at": "12:10"}], opt_out=["email"]),
    ]
    import_lines(app.sessions, lines, NOW)
    runner(app).run(NOW, HOUR)
    rows = {d.kind: d for d in deliveries(app)}
    assert rows["reminder"].status == "queued" and rows["reminder"].reason == "quiet_hours_deferred"
    assert rows["reminder"].occurrence_at == datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    assert rows["reminder"].scheduled_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 15:00 CET
    assert (rows["k"].status, rows["k"].reason) == ("suppressed", "opted_out")
    [planned] = timelines(app)[rows["reminder"].id or 0]
    assert planned["detail"]["quiet_hours"]["deferred_from"] == "2026-03-02T12:30:00+00:00"


def deferred_lines(count: int) -> list[str]:
    """Recipients whose 12:30 UTC reminder quiet hours defer to 14:00 UTC, after a 12:00 run's window."""
    return [
        recipient_line(
            f"q{i}", "UTC", [{"kind": "reminder", "channel": "sms", "at": "12:30"}],
            quiet_hours={"sms": {"start": "12:15", "end": "14:00"}},
        )
        for i in range(count)
    ]  # fmt: skip


def test_a_later_send_instant_gets_the_jobs_its_deliveries_need_not_one_per_chunk(app: App) -> None:
    import_lines(app.sessions, deferred_lines(250), NOW)
    report = runner(app, chunk_size=50, batch_size=100).run(NOW, HOUR)
    rows = deliveries(app)
    assert {d.scheduled_at for d in rows} == {datetime(2026, 3, 2, 14, 0, tzinfo=UTC)}
    jobs = jobs_in_redis(app.redis)
    # Five chunks of 50 share the run's jobs for 14:00: 100, 100 and 50, in RQ's schedule.
    assert sorted(len(ids) for ids in jobs.values()) == [50, 100, 100] and report.enqueued_jobs == 3
    assert sorted(i for ids in jobs.values() for i in ids) == [d.id for d in rows]
    assert {d.job_id for d in rows} == set(jobs) and {d.status for d in rows} == {"queued"}


def test_a_run_that_fails_still_enqueues_the_later_jobs_of_its_committed_chunks(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_lines(app.sessions, deferred_lines(120), NOW)
    planner = runner(app, chunk_size=50, concurrency=1)
    write = planner._plan_and_write
    calls: list[int] = []

    def third_fails(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("the third chunk failed")
        return write(*args)

    monkeypatch.setattr(planner, "_plan_and_write", third_fails)
    with pytest.raises(RuntimeError):
        planner.run(NOW, HOUR)
    rows = deliveries(app)
    jobs = jobs_in_redis(app.redis)
    assert len(rows) == 100 and sorted(i for ids in jobs.values() for i in ids) == [d.id for d in rows]


# The schedule forms of the fixture mix: one wall time, several a day, a recurrence rule (2026-03-02
# is the first Monday of March) with start and end dates, and a snoozed subscription.
SCHEDULE_FORMS: list[dict[str, object]] = [
    {"at": "12:30"},
    {"at": ["12:30", "12:45"], "days": "weekdays"},
    {"at": "12:30", "rrule": "FREQ=MONTHLY;BYDAY=1MO", "start_date": "2026-01-01", "end_date": "2026-12-31"},
    {"at": "12:30", "days": ["mon", "thu"], "snooze_until": "2026-03-05"},
]


def test_statements_per_thousand_due_subscriptions_are_bounded(app: App) -> None:
    lines = [
        recipient_line(
            f"u{i}",
            ["UTC", "Europe/London", "Africa/Abidjan"][i % 3],
            [{"kind": "daily_brief", "channel": "email", **SCHEDULE_FORMS[i % 4]}],
        )
        for i in range(3000)
    ]
    import_lines(app.sessions, lines, NOW)
    plan = runner(app, chunk_size=1000, concurrency=1)
    with count_statements(app.engine) as seen:
        report = plan.run(NOW, HOUR)
    # 750 each: one send, two sends, one send, one snoozed occurrence recorded skipped.
    assert report.outcomes["queued"] == 750 * 4
    assert report.outcomes["skipped"] == 750
    per_run_overhead = 8  # run row insert/finish, reconcile, the final empty claim, transaction starts
    assert len(seen) <= 3 * 15 + per_run_overhead, "\n".join(s[:80] for s in seen)
    # No per-recipient round trip: every statement touching recipients fetches them all at once.
    assert sum(1 for s in seen if "FROM recipient" in s) == 3
    keys = {d.dedup_key for d in deliveries(app)}
    assert {
        "sub:2:2026-03-02@12:30",
        "sub:2:2026-03-02@12:45",
        "sub:1:2026-03-02",
        "sub:3:2026-03-02",
    } <= keys
    snoozed = [d for d in deliveries(app) if d.subscription_id == 4]
    assert [(d.status, d.reason) for d in snoozed] == [("skipped", "snoozed")]


def test_several_times_a_day_then_a_schedule_change_never_sends_a_time_twice(app: App) -> None:
    line = recipient_line("m", "UTC", [{"kind": "daily_brief", "channel": "email", "at": ["12:30", "18:00"]}])
    import_lines(app.sessions, [line], NOW)
    runner(app).run(NOW, timedelta(hours=7))
    assert sorted(d.dedup_key for d in deliveries(app)) == [
        "sub:1:2026-03-02@12:30",
        "sub:1:2026-03-02@18:00",
    ]
    # At 13:00 the schedule becomes one wall time: 12:30 is behind (kept), 18:00 is replanned under
    # the single-time key; nothing for 12:30 again today.
    later = NOW + HOUR
    changed = recipient_line("m", "UTC", [{"kind": "daily_brief", "channel": "email", "at": "18:00"}])
    import_lines(app.sessions, [changed], later)
    runner(app).run(later, timedelta(hours=6))
    live = sorted((d.dedup_key, d.status) for d in deliveries(app) if d.status != "cancelled")
    assert live == [("sub:1:2026-03-02", "queued"), ("sub:1:2026-03-02@12:30", "queued")]


def test_fault_between_commit_and_enqueue_is_repaired_by_next_run(
    settings: Settings, app: App, tmp_path: Path
) -> None:
    lines = [
        recipient_line(f"u{i}", "UTC", [{"kind": "k", "channel": "email", "at": "12:30"}]) for i in range(250)
    ]
    import_lines(app.sessions, lines, NOW)
    # The planner's chunk threads commit independently, so a kill at the first enqueue once found
    # only 107 of 250 committed. Here every chunk commits (its rows queued with their job ids) and none
    # reaches Redis (the enqueue does nothing); the process dies before the run is recorded finished.
    crash = (
        "import os, signal\n"
        "from datetime import datetime, timedelta\n"
        "import planner.run.runner\n"
        "from planner.app import App\n"
        "from planner.settings import Settings\n"
        "def lost(*args, **kwargs):\n"
        "    return 0\n"
        "def killed(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "planner.run.runner.enqueue_batches = lost\n"
        "planner.run.runner.PlannerRunner._finish = killed\n"
        "app = App(Settings())\n"
        # Five chunks of 50 over the runner's threads: the race this test once lost, every time.
        "planner.run.runner.PlannerRunner(\n"
        "    app.sessions, app.redis, app.policy, planner.run.runner.RunOptions(chunk_size=50))"
        f".run(datetime.fromisoformat({NOW.isoformat()!r}), timedelta(hours=1))\n"
    )
    env = {
        **os.environ,
        "PLANNER_DATABASE_URL": settings.database_url,
        "PLANNER_REDIS_URL": settings.redis_url or "",
    }
    result = subprocess.run(
        [sys.executable, "-c", crash], env=env, cwd=tmp_path, capture_output=True, timeout=120
    )
    assert result.returncode == -9, result.stderr.decode()
    committed = deliveries(app)
    assert len(committed) == 250 and {d.status for d in committed} == {"queued"}
    assert jobs_in_redis(app.redis) == {}

    report = runner(app).run(NOW + timedelta(minutes=5), HOUR)
    assert report.reconciled == 250 and report.inserted == 0
    after = deliveries(app)
    assert {d.status for d in after} == {"queued"}
    jobs = jobs_in_redis(app.redis)
    assert sorted(i for ids in jobs.values() for i in ids) == [d.id for d in after]
    assert Counter(job_id_occurrences(app.redis)) == Counter({j: 1 for j in jobs})


def test_redis_restarted_empty_is_refilled_from_the_database(app: App, redis_server: object) -> None:
    import_lines(
        app.sessions, [recipient_line("a", "UTC", [{"kind": "k", "channel": "email", "at": "12:30"}])], NOW
    )
    runner(app).run(NOW, HOUR)
    [before] = deliveries(app)
    redis_server.restart(empty=True)  # type: ignore[attr-defined]
    assert jobs_in_redis(app.redis) == {}
    report = runner(app).run(NOW + timedelta(minutes=2), HOUR)
    assert report.reconciled == 1
    assert jobs_in_redis(app.redis) == {before.job_id: [before.id]}


@pytest.mark.postgres
def test_two_planners_at_once_never_double_plan_or_double_enqueue(pg: PostgresServer, redis_url: str) -> None:
    url = new_pg_database(pg)
    app = App(Settings(database_url=url, redis_url=redis_url))
    try:
        lines = [
            recipient_line(
                f"u{i}",
                ["UTC", "Europe/Lisbon", "Atlantic/Reykjavik"][i % 3],
                [
                    {"kind": "k", "channel": "email", "at": "12:30"},
                    {"kind": "j", "channel": "email", "at": "12:45"},
                ],
            )
            for i in range(1500)
        ]
        import_lines(app.sessions, lines, NOW)
        barrier = threading.Barrier(2)
        reports = []

        def plan() -> None:
            barrier.wait()
            reports.append(runner(app, chunk_size=200, concurrency=2).run(NOW, HOUR))

        threads = [threading.Thread(target=plan) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rows = deliveries(app)
        assert len(rows) == 3000
        assert sum(r.inserted for r in reports) == 3000
        assert all(r.subscriptions > 0 for r in reports), "both planners should have shared the work"
        jobs = jobs_in_redis(app.redis)
        carried = Counter(i for ids in jobs.values() for i in ids)
        assert carried == Counter({d.id: 1 for d in rows})
        assert Counter(job_id_occurrences(app.redis)) == Counter({j: 1 for j in jobs})
    finally:
        app.close()


def _wait_for_a_lock_wait(app: App, deadline_s: float = 30.0) -> None:
    """Until another backend of this database waits on a (row) lock."""
    deadline = time_module.monotonic() + deadline_s
    with app.engine.connect() as conn:
        while time_module.monotonic() < deadline:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            if waiting:
                return
            conn.rollback()  # a fresh snapshot of pg_stat_activity
            time_module.sleep(0.01)
    raise AssertionError("the edit never waited on the planner chunk's row lock")


def test_an_edit_while_a_planner_chunk_holds_the_subscription_is_neither_lost_nor_doubled(
    pg: PostgresServer, redis_url: str
) -> None:
    """The API changes a subscription's time while a planner chunk has it claimed (locked): the
    edit waits for the chunk's commit, then its cursor wins and the chunk's delivery is cancelled;
    the next run plans the new time once."""
    url = new_pg_database(pg)
    app = App(Settings(database_url=url, redis_url=redis_url, email_adapter="capture", sms_adapter="capture"))
    try:
        import_lines(
            app.sessions,
            [recipient_line("a", "UTC", [{"kind": "reminder", "channel": "email", "at": "12:30"}])],
            NOW,
        )
        chunk = runner(app, concurrency=1)
        write_plan = chunk.store.write_plan
        edit_errors: list[BaseException] = []

        def edit() -> None:
            try:
                patch_subscription(app, "a", "reminder", "email", {"at": "12:45"}, NOW)
            except BaseException as exc:  # reported by the assertion below
                edit_errors.append(exc)

        editor = threading.Thread(target=edit)

        def write_while_the_edit_waits(*args: Any) -> Any:
            if not editor.is_alive() and not editor.ident:  # the first chunk: it holds the claimed row
                editor.start()
                _wait_for_a_lock_wait(app)  # the edit's update of that row waits for this commit
            return write_plan(*args)

        chunk.store.write_plan = write_while_the_edit_waits  # type: ignore[method-assign]
        chunk.run(NOW, HOUR)
        editor.join(timeout=60)
        assert not editor.is_alive() and edit_errors == []
        # The edit's cursor may be planned by the same run (a later chunk) or by the next: either way once.
        runner(app).run(NOW, HOUR)
        runner(app).run(NOW, HOUR)
        assert [(d.status, d.reason, d.scheduled_at.minute) for d in deliveries(app)] == [
            ("cancelled", "schedule_changed", 30),
            ("queued", None, 45),
        ]
        with app.sessions() as session:
            [sub] = session.scalars(select(Subscription))
        # The edit's schedule, advanced past the one occurrence planned (a lost edit would leave 12:30).
        assert (sub.send_time, sub.next_at) == (time(12, 45), datetime(2026, 3, 3, 12, 45, tzinfo=UTC))
    finally:
        app.close()


def test_schedule_change_cancels_future_delivery_and_replans(app: App) -> None:
    import_lines(
        app.sessions, [recipient_line("a", "UTC", [{"kind": "k", "channel": "email", "at": "20:00"}])], NOW
    )
    runner(app).run(NOW, timedelta(hours=10))
    [old] = deliveries(app)
    assert old.scheduled_at == datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    report = import_lines(
        app.sessions, [recipient_line("a", "UTC", [{"kind": "k", "channel": "email", "at": "21:00"}])], NOW
    )
    assert report.deliveries_cancelled == 1
    runner(app).run(NOW, timedelta(hours=10))
    rows = deliveries(app)
    assert [(d.status, d.reason, d.scheduled_at.hour) for d in rows] == [
        ("cancelled", "schedule_changed", 20),
        ("queued", None, 21),
    ]
    assert rows[1].dedup_key == "sub:1:2026-03-02"


def test_plan_writes_store_what_the_typed_columns_would(app: App) -> None:
    """The planner's bulk writes (arrays on PostgreSQL, a JSON array on SQLite) store the same values,
    in the same stored form, as the ORM does: the raw stored text on SQLite, read back through the
    models on both, and the instants' order."""
    import_lines(
        app.sessions,
        [
            recipient_line("a", "Europe/Berlin", [{"kind": "k", "channel": "email", "at": "13:30"}]),
            recipient_line("b", "UTC", [{"kind": "k", "channel": "sms", "at": "12:45"}]),
        ],
        NOW,
    )
    runner(app).run(NOW, HOUR)
    rows = deliveries(app)
    assert [(d.scheduled_at, d.occurrence_at, d.local_date) for d in rows] == [
        (
            datetime(2026, 3, 2, 12, 30, tzinfo=UTC),
            datetime(2026, 3, 2, 12, 30, tzinfo=UTC),
            date(2026, 3, 2),
        ),
        (
            datetime(2026, 3, 2, 12, 45, tzinfo=UTC),
            datetime(2026, 3, 2, 12, 45, tzinfo=UTC),
            date(2026, 3, 2),
        ),
    ]
    with app.sessions() as session:
        subs = sorted(session.scalars(select(Subscription)), key=lambda s: s.id)
        # A copy written by the ORM, to compare the stored forms with.
        twin = Subscription(**{**subs[0].model_dump(exclude={"id"}), "kind": "twin"})
        session.add(twin)
        session.commit()
        if app.engine.dialect.name == "sqlite":
            stored = (
                session.connection()
                .exec_driver_sql(
                    "SELECT kind, next_at, next_local_date, next_wall_time, updated_at"
                    " FROM subscription ORDER BY id"
                )
                .all()
            )
            planned, orm = stored[0], stored[-1]
            assert [type(v) for v in planned] == [type(v) for v in orm]
            assert len(planned[1]) == len(orm[1]) == len("2026-03-03 12:30:00.000000")
    events = [entries[0] for entries in timelines(app).values()]
    assert [e["detail"]["wall_time"] for e in events] == ["13:30", "12:45"]
    assert all(e["status"] == "planned" and e["at"] == NOW.isoformat() for e in events)
    assert [s.next_at for s in subs] == [
        datetime(2026, 3, 3, 12, 30, tzinfo=UTC),
        datetime(2026, 3, 3, 12, 45, tzinfo=UTC),
    ]
    assert [s.next_wall_time for s in subs] == [time(13, 30), time(12, 45)]


def test_an_occurrence_already_written_by_another_writer_is_skipped_not_doubled(app: App) -> None:
    """The plan's fast path (one COPY per chunk on PostgreSQL) is refused whole by the dedup key's
    unique index when another writer made one of its occurrences first; the chunk is then written
    skipping that one, and everything else of the chunk still lands, with its events and jobs."""
    lines = [
        recipient_line(name, "UTC", [{"kind": "k", "channel": "email", "at": "12:30"}])
        for name in ("a", "b", "c")
    ]
    import_lines(app.sessions, lines, NOW)
    with app.sessions() as session, session.begin():
        sub = session.scalars(select(Subscription).order_by(Subscription.id)).first()
        assert sub is not None and sub.id is not None
        key = f"sub:{sub.id}:2026-03-02"
        at = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
        session.add(
            Delivery(
                dedup_key=key,
                recipient_id=sub.recipient_id,
                subscription_id=sub.id,
                kind="k",
                channel="email",
                local_date=date(2026, 3, 2),
                occurrence_at=at,
                scheduled_at=at,
                status="sent",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    report = runner(app).run(NOW, HOUR)
    assert (report.occurrences, report.inserted, report.duplicates) == (3, 2, 1)
    rows = deliveries(app)
    assert sorted(d.dedup_key for d in rows) == sorted(
        {key, *(f"sub:{i}:2026-03-02" for i in (sub.id + 1, sub.id + 2))}
    )
    assert [d.status for d in rows if d.dedup_key == key] == ["sent"]
    planned = [d_id for d_id, entries in timelines(app).items() if entries]
    assert sorted(planned) == sorted(d.id for d in rows if d.dedup_key != key)
    jobs = jobs_in_redis(app.redis)
    assert sorted(i for ids in jobs.values() for i in ids) == sorted(d.id for d in rows if d.dedup_key != key)


def test_a_run_freezes_the_older_objects_only_while_it_plans(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process's objects from before the run are out of the collector's passes while it plans,
    and back in them after, whether the run succeeds or fails; so is the youngest generation's
    threshold."""
    import gc

    from planner.run.runner import RUN_YOUNG_THRESHOLD

    import_lines(
        app.sessions,
        [recipient_line("a", "UTC", [{"kind": "daily_brief", "channel": "email", "at": "12:30"}])],
        NOW,
    )
    seen: list[int] = []
    thresholds: list[int] = []
    before = gc.get_threshold()
    planner = runner(app)
    plan_one = planner.plan_one_chunk

    def observed(*args: Any) -> bool:
        seen.append(gc.get_freeze_count())
        thresholds.append(gc.get_threshold()[0])
        return plan_one(*args)

    monkeypatch.setattr(planner, "plan_one_chunk", observed)
    planner.run(NOW, HOUR)
    assert seen and all(count > 0 for count in seen)
    assert set(thresholds) == {RUN_YOUNG_THRESHOLD}
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before

    def failing(*_: Any) -> bool:
        raise RuntimeError("a chunk failed")

    monkeypatch.setattr(planner, "plan_one_chunk", failing)
    with pytest.raises(RuntimeError):
        planner.run(NOW + HOUR, HOUR)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
