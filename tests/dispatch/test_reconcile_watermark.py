"""The reconcile checks what changed since its last pass, and everything when Redis forgot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from planner.app import App
from planner.commands.importer import import_lines
from planner.core.status import PENDING_STATUSES
from planner.dispatch.reconcile import FULL_PASS_KEY, WATERMARK_KEY, reconcile
from planner.processes.worker import run_maintenance
from planner.store.models import PENDING_PREDICATE
from tests.helpers import jobs_in_redis, recipient_line, runner

NOW = datetime(2026, 3, 16, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _plan_two(app: App) -> None:
    lines = [recipient_line(r, "UTC", [{"kind": "k", "channel": "email", "at": "12:30"}]) for r in "ab"]
    import_lines(app.sessions, lines, NOW)
    runner(app).run(NOW, HOUR)
    assert len(jobs_in_redis(app.redis)) >= 1


def test_a_pass_after_a_pass_reads_only_what_changed(app: App) -> None:
    _plan_two(app)
    later = NOW + timedelta(hours=2)
    assert reconcile(app.sessions, app.redis, later).checked >= 1  # rows stamped since the last pass
    assert app.redis.get(WATERMARK_KEY) is not None
    # Nothing changed since: the old pending rows are not read at all.
    assert reconcile(app.sessions, app.redis, later + timedelta(minutes=1)).checked == 0


def test_a_lost_job_of_an_old_row_waits_for_the_daily_full_pass(app: App) -> None:
    _plan_two(app)
    later = NOW + timedelta(hours=2)
    reconcile(app.sessions, app.redis, later, daily_full_pass=True)
    [job_id] = list(jobs_in_redis(app.redis))[:1]
    app.redis.delete(f"rq:job:{job_id}")  # lost by hand, not by an emptied Redis
    assert reconcile(app.sessions, app.redis, later, daily_full_pass=True).reenqueued == 0
    app.redis.delete(FULL_PASS_KEY)  # a day has passed (the key's TTL)
    assert reconcile(app.sessions, app.redis, later, daily_full_pass=True).reenqueued >= 1
    assert job_id in jobs_in_redis(app.redis)


def test_the_daily_full_pass_is_the_workers_not_the_planner_runs(app: App) -> None:
    _plan_two(app)
    later = NOW + timedelta(hours=2)
    reconcile(app.sessions, app.redis, later)
    [job_id] = list(jobs_in_redis(app.redis))[:1]
    app.redis.delete(f"rq:job:{job_id}")
    app.redis.delete(FULL_PASS_KEY)  # the full pass is due
    # The planner run's reconcile (the default) checks what changed only, and leaves the day's
    # full pass due...
    assert runner(app).run(later + timedelta(minutes=1), HOUR).reconciled == 0
    assert app.redis.get(FULL_PASS_KEY) is None
    # ...to the workers' maintenance pass, which takes it.
    _, reconciled = run_maintenance(app)
    assert reconciled >= 1
    assert job_id in jobs_in_redis(app.redis)
    assert app.redis.get(FULL_PASS_KEY) is not None


def test_an_emptied_redis_forgets_the_watermark_and_every_pending_row_is_checked(app: App) -> None:
    _plan_two(app)
    later = NOW + timedelta(hours=2)
    reconcile(app.sessions, app.redis, later)
    jobs = jobs_in_redis(app.redis)
    app.redis.flushall()
    report = reconcile(app.sessions, app.redis, later + timedelta(minutes=1))
    assert report.reenqueued == sum(len(ids) for ids in jobs.values())
    assert jobs_in_redis(app.redis) == jobs


def test_a_clock_gone_back_checks_everything(app: App) -> None:
    _plan_two(app)
    reconcile(app.sessions, app.redis, NOW + timedelta(days=3))
    job_id = next(iter(jobs_in_redis(app.redis)))
    app.redis.delete(f"rq:job:{job_id}")
    app.redis.set(FULL_PASS_KEY, "1")
    assert reconcile(app.sessions, app.redis, NOW + timedelta(hours=2)).reenqueued >= 1


def test_the_pending_predicate_is_the_pending_statuses() -> None:
    listed = PENDING_PREDICATE.removeprefix("status IN (").removesuffix(")").split(", ")
    assert {s.strip("'") for s in listed} == {s.value for s in PENDING_STATUSES}


# SQLite only: PostgreSQL chooses by statistics, so its plan on two rows says nothing;
# bench/nothing_due_bench.py EXPLAINs it there at 1,000,000 rows.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_watermark_pass_reads_pending_rows_through_their_partial_index(app: App) -> None:
    _plan_two(app)
    later = NOW + timedelta(hours=2)
    reconcile(app.sessions, app.redis, later)  # the watermark is set
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(app.engine, "before_cursor_execute", record)
    try:
        reconcile(app.sessions, app.redis, later + timedelta(minutes=1))
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
    reads = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT") and "FROM delivery" in s]
    assert reads
    with app.engine.connect() as connection:
        for statement, parameters in reads:
            plan = [
                row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            ]
            assert not [step for step in plan if step.startswith("SCAN delivery")], (statement, plan)
            assert any("ix_delivery_pending_updated" in step for step in plan), (statement, plan)


def test_a_job_given_a_moment_ago_and_not_yet_enqueued_is_left_to_its_committer(app: App) -> None:
    """Another worker recovered a lease (new job, committed) and is about to enqueue it: the
    maintenance pass must not enqueue it too (the same job twice in its queue)."""
    from planner.core.status import DeliveryStatus
    from planner.store.db import transaction
    from planner.store.reassign import Move, reassign

    _plan_two(app)
    app.redis.flushall()
    stamp = app.clock()
    ids = []
    with transaction(app.sessions) as session:
        from sqlalchemy import select

        from planner.store.tables import DELIVERIES

        ids = list(session.scalars(select(DELIVERIES.c.id)))
        moves = [Move(i, stamp) for i in ids]
        retrying, queued = DeliveryStatus.retrying, [DeliveryStatus.queued]
        moved = reassign(
            session,
            moves,
            stamp,
            status=retrying,
            reason="lease_expired",
            event="lease_expired",
            from_statuses=queued,
        )
    assert moved.ids == ids and jobs_in_redis(app.redis) == {}
    _, reconciled = run_maintenance(app)
    assert reconciled == 0 and jobs_in_redis(app.redis) == {}, "left to the process that committed them"
