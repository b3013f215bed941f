"""The hourly planner run: claim due subscriptions in chunks, plan them, write, hand off to RQ.

Each chunk costs a constant number of statements whatever its size: claim the due subscriptions
(on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so several planner processes share one run), fetch
recipients, engagement, last sends and cap counts in bulk, decide in the pure core
(:mod:`planner.planning`), insert deliveries in one statement that ignores dedup conflicts, record
their first timeline entry, advance the cursors, commit; then enqueue (see :mod:`planner.outbox`).
"""

from __future__ import annotations

import threading
import time as monotonic_time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import redis
import structlog
from sqlalchemy import ColumnElement, Result, Row, any_, bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from planner.core.cadence import Cadence
from planner.core.planning import (
    ChunkInputs,
    ChunkPlan,
    PlannedDelivery,
    RecipientState,
    SubscriptionState,
    plan_chunk,
)
from planner.core.policy import PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.status import CAP_COUNTED_STATUSES, DeliveryStatus
from planner.dispatch.outbox import assign_batches, batches_from_rows, enqueue_batches, mark_queued
from planner.dispatch.reconcile import reconcile
from planner.store.models import Delivery, EngagementEvent, PlannerRun, Recipient, Subscription
from planner.store.timeline import event_row, record_events
from planner.store.types import UTCDateTime

log = structlog.get_logger("planner.run")

#: Statuses that count as "to be sent" for engagement backoff (a dead delivery was still sent for).
TO_BE_SENT = tuple(sorted({s.value for s in CAP_COUNTED_STATUSES} | {DeliveryStatus.dead.value}))

# PostgreSQL writes a chunk as one array per column, unnested into rows: the same rows as a multi-row
# VALUES insert or an executemany, in one short statement. psycopg parses a statement over 4 KB or 50
# parameters again on every execution and dumps arrays in text form with regex escaping; these go as
# binary arrays (%(name)b) through exec_driver_sql, so a chunk's write costs milliseconds, not a tenth
# of a second. Values are bound exactly as the typed columns would (UTCDateTime's checks included).
_PG_DELIVERY_COLUMNS = (
    ("dedup_key", "varchar[]"),
    ("recipient_id", "integer[]"),
    ("subscription_id", "integer[]"),
    ("kind", "varchar[]"),
    ("channel", "varchar[]"),
    ("queue", "varchar[]"),
    ("local_date", "date[]"),
    ("occurrence_at", "timestamptz[]"),
    ("scheduled_at", "timestamptz[]"),
    ("status", "varchar[]"),
    ("reason", "varchar[]"),
    ("job_id", "varchar[]"),
)
_PG_DELIVERY_NAMES = ", ".join(name for name, _ in _PG_DELIVERY_COLUMNS)
_PG_INSERT_DELIVERIES = (
    f"INSERT INTO delivery ({_PG_DELIVERY_NAMES}, attempts, created_at, updated_at)"
    " SELECT t.*, 0, %(now)s, %(now)s FROM unnest("
    + ", ".join(f"%({name})b::{array}" for name, array in _PG_DELIVERY_COLUMNS)
    + f") AS t({_PG_DELIVERY_NAMES}) ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key, job_id"
)
_PG_ADVANCE_CURSORS = (
    "UPDATE subscription SET next_at = t.next_at, next_local_date = t.next_local_date, updated_at = %(now)s"
    " FROM unnest(%(id)b::integer[], %(next_at)b::timestamptz[], %(next_local_date)b::date[])"
    " AS t(id, next_at, next_local_date) WHERE subscription.id = t.id"
)


@dataclass
class RunOptions:
    chunk_size: int = 1000
    concurrency: int = 4
    batch_size: int = 100
    reconcile_grace: timedelta = timedelta(seconds=60)


@dataclass
class RunReport:
    run_id: str
    now: datetime
    window_end: datetime
    subscriptions: int = 0
    occurrences: int = 0
    inserted: int = 0
    duplicates: int = 0
    enqueued_jobs: int = 0
    reconciled: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    dst_adjusted: int = 0
    deferred: int = 0
    duration_seconds: float = 0.0
    status: str = "running"

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "now": self.now.isoformat(),
            "window_end": self.window_end.isoformat(),
            "status": self.status,
            "subscriptions": self.subscriptions,
            "occurrences": self.occurrences,
            "deliveries_created": self.inserted,
            "already_planned": self.duplicates,
            "enqueued_jobs": self.enqueued_jobs,
            "reconciled_deliveries": self.reconciled,
            "outcomes": dict(sorted(self.outcomes.items())),
            "reasons": dict(sorted(self.reasons.items())),
            "dst_adjusted": self.dst_adjusted,
            "quiet_hours_deferred": self.deferred,
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _quiet(start: Any, end: Any) -> QuietHours | None:
    return QuietHours(start, end) if start is not None and end is not None else None


def _recipient_state(row: Row[Any]) -> RecipientState:
    quiet = {}
    email_qh = _quiet(row.email_quiet_start, row.email_quiet_end)
    sms_qh = _quiet(row.sms_quiet_start, row.sms_quiet_end)
    if email_qh:
        quiet["email"] = email_qh
    if sms_qh:
        quiet["sms"] = sms_qh
    invalid = {}
    if row.email_invalid:
        invalid["email"] = row.email_invalid
    if row.sms_invalid:
        invalid["sms"] = row.sms_invalid
    return RecipientState(
        id=row.id,
        external_id=row.external_id,
        timezone=row.timezone,
        email=row.email,
        phone=row.phone,
        quiet_hours=quiet,
        opted_out=frozenset(
            c for c, flag in (("email", row.email_opt_out), ("sms", row.sms_opt_out)) if flag
        ),
        invalid=invalid,
    )


class PlannerRunner:
    """Plans one window. Dependencies come in; nothing here reads the clock."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        policy: PlanningPolicy,
        options: RunOptions | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.policy = policy
        self.options = options or RunOptions()
        self.progress = progress
        bind = sessions.kw.get("bind")
        self.dialect = bind.dialect.name if bind is not None else "sqlite"
        self._lock = threading.Lock()

    # -- the run -------------------------------------------------------------------------------

    def run(self, now: datetime, horizon: timedelta) -> RunReport:
        window_end = now + horizon
        report = RunReport(run_id=uuid.uuid4().hex, now=now, window_end=window_end)
        started = monotonic_time.perf_counter()
        logger = log.bind(run_id=report.run_id)
        with self.sessions() as session, session.begin():
            session.add(
                PlannerRun(
                    run_id=report.run_id,
                    window_end=window_end,
                    started_at=now,
                    status="running",
                )
            )
        try:
            reconciled = reconcile(self.sessions, self.redis, now, grace=self.options.reconcile_grace)
            report.reconciled = reconciled.reenqueued
            self._plan_all(now, window_end, report)
            report.status = "succeeded"
        except Exception as exc:
            report.status = "failed"
            report.duration_seconds = monotonic_time.perf_counter() - started
            self._finish(report, now, error=f"{type(exc).__name__}: {exc}")
            logger.exception("planner run failed", **report.as_dict())
            raise
        report.duration_seconds = monotonic_time.perf_counter() - started
        self._finish(report, now)
        logger.info("planner run finished", **report.as_dict())
        return report

    def _finish(self, report: RunReport, now: datetime, error: str | None = None) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                update(PlannerRun)
                .where(PlannerRun.run_id == report.run_id)  # type: ignore[arg-type]
                .values(
                    status=report.status,
                    finished_at=now + timedelta(seconds=report.duration_seconds),
                    occurrences=report.occurrences,
                    counts=report.as_dict(),
                    error=error,
                )
            )

    def _plan_all(self, now: datetime, window_end: datetime, report: RunReport) -> None:
        # SQLite has one writer at a time, so more threads would only queue on its lock.
        workers = 1 if self.dialect == "sqlite" else max(1, self.options.concurrency)

        def worker() -> None:
            while self.plan_one_chunk(now, window_end, report):
                pass

        if workers == 1:
            worker()
            return
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="planner-chunk") as pool:
            for future in [pool.submit(worker) for _ in range(workers)]:
                future.result()

    # -- one chunk -----------------------------------------------------------------------------

    def plan_one_chunk(self, now: datetime, window_end: datetime, report: RunReport) -> bool:
        """Claim, plan, write and commit one chunk, then enqueue it. False when nothing is due."""
        with self.sessions() as session, session.begin():
            subs = self._claim(session, window_end)
            if not subs:
                return False
            plan, inserted = self._plan_and_write(session, subs, now, window_end)
        batches = batches_from_rows(
            (d_id, job_id, d.queue, d.channel, d.scheduled_at) for d, d_id, job_id in inserted if job_id
        )
        enqueue_batches(self.redis, batches, now)
        if batches:
            with self.sessions() as session, session.begin():
                mark_queued(session, batches, now)
        with self._lock:
            report.subscriptions += len(subs)
            report.occurrences += len(plan.deliveries)
            report.inserted += len(inserted)
            report.duplicates += len(plan.deliveries) - len(inserted)
            report.enqueued_jobs += len(batches)
            for planned, _, _ in inserted:
                report.outcomes["queued" if planned.to_send else planned.status.value] += 1
                if planned.reason:
                    report.reasons[planned.reason] += 1
                if "dst" in planned.detail:
                    report.dst_adjusted += 1
                if "quiet_hours" in planned.detail:
                    report.deferred += 1
        if self.progress:
            self.progress(len(subs))
        return True

    def _claim(self, session: Session, window_end: datetime) -> list[SubscriptionState]:
        table = Subscription.__table__  # type: ignore[attr-defined]
        stmt = (
            select(table)
            .where(table.c.active.is_(True), table.c.next_at <= window_end)
            .order_by(table.c.next_at, table.c.id)
            .limit(self.options.chunk_size)
        )
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        return [
            SubscriptionState(
                id=row.id,
                recipient_id=row.recipient_id,
                kind=row.kind,
                channel=row.channel,
                cadence=Cadence.from_storage(row.send_time, row.days),
                next_at=row.next_at,
                next_local_date=row.next_local_date,
                created_at=row.created_at,
            )
            for row in session.execute(stmt)
        ]

    def _plan_and_write(
        self, session: Session, subs: Sequence[SubscriptionState], now: datetime, window_end: datetime
    ) -> tuple[ChunkPlan, list[tuple[PlannedDelivery, int, str | None]]]:
        recipient_ids = sorted({s.recipient_id for s in subs})
        recipient_table = Recipient.__table__  # type: ignore[attr-defined]
        recipients = {
            row.id: _recipient_state(row)
            for row in session.execute(
                select(recipient_table).where(self._one_of(recipient_table.c.id, recipient_ids))
            )
        }
        earliest = min(s.next_at for s in subs)
        if self.dialect == "postgresql":
            self._lock_cap_keys(session, {(s.recipient_id, s.channel) for s in subs})
        inputs = ChunkInputs(
            subscriptions=subs,
            recipients=recipients,
            engagement=self._engagement(session, recipient_ids, earliest, window_end),
            last_sent=self._last_sent(session, [s.id for s in subs]),
            cap_counted=self._cap_counted(session, recipient_ids, earliest, window_end),
        )
        plan = plan_chunk(inputs, self.policy, now, window_end)
        inserted = self._write(session, plan, now)
        return plan, inserted

    def _one_of(self, column: Any, ids: Sequence[int]) -> ColumnElement[bool]:
        """``column IN (ids)``; on PostgreSQL ``column = ANY(:ids)``, the same condition and plan.

        A chunk's id lists hold a thousand values: as IN they are a thousand parameters, which
        psycopg parses out of the statement text again on every execution; as one array they are
        one parameter of a short statement it parses once.
        """
        if self.dialect == "postgresql":
            return column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
        return column.in_(ids)  # type: ignore[no-any-return]

    def _lock_cap_keys(self, session: Session, keys: set[tuple[int, str]]) -> None:
        """Serialise planners (and ad-hoc notifications) on the same recipient and channel.

        Caps are counted in the database; without this, two processes planning different
        subscriptions of one recipient could both see room for the last slot.
        """
        ordered = sorted(f"cap:{r}:{c}" for r, c in keys)
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": ordered},
        )

    def _engagement(
        self, session: Session, recipient_ids: list[int], earliest: datetime, latest: datetime
    ) -> dict[int, list[datetime]]:
        table = EngagementEvent.__table__  # type: ignore[attr-defined]
        found: dict[int, list[datetime]] = defaultdict(list)
        before = session.execute(
            select(table.c.recipient_id, func.max(table.c.occurred_at))
            .where(self._one_of(table.c.recipient_id, recipient_ids), table.c.occurred_at <= earliest)
            .group_by(table.c.recipient_id)
        )
        for recipient_id, occurred_at in before:
            found[recipient_id].append(occurred_at)
        during = session.execute(
            select(table.c.recipient_id, table.c.occurred_at).where(
                self._one_of(table.c.recipient_id, recipient_ids),
                table.c.occurred_at > earliest,
                table.c.occurred_at <= latest,
            )
        )
        for recipient_id, occurred_at in during:
            found[recipient_id].append(occurred_at)
        for instants in found.values():
            instants.sort()
        return found

    def _last_sent(self, session: Session, subscription_ids: list[int]) -> dict[int, date]:
        table = Delivery.__table__  # type: ignore[attr-defined]
        rows = session.execute(
            select(table.c.subscription_id, func.max(table.c.local_date))
            .where(self._one_of(table.c.subscription_id, subscription_ids), table.c.status.in_(TO_BE_SENT))
            .group_by(table.c.subscription_id)
        )
        return {sub_id: last for sub_id, last in rows if last is not None}

    def _cap_counted(
        self, session: Session, recipient_ids: list[int], earliest: datetime, window_end: datetime
    ) -> dict[tuple[int, str], list[datetime]]:
        table = Delivery.__table__  # type: ignore[attr-defined]
        reach = self.policy.longest_cap_window
        # Quiet hours can push a send up to a day past the window, so look that far ahead too.
        rows = session.execute(
            select(table.c.recipient_id, table.c.channel, table.c.scheduled_at).where(
                self._one_of(table.c.recipient_id, recipient_ids),
                table.c.status.in_([s.value for s in CAP_COUNTED_STATUSES]),
                table.c.scheduled_at > earliest - reach,
                table.c.scheduled_at < window_end + timedelta(days=1) + reach,
            )
        )
        counted: dict[tuple[int, str], list[datetime]] = defaultdict(list)
        for recipient_id, channel, scheduled_at in rows:
            counted[(recipient_id, channel)].append(scheduled_at)
        for instants in counted.values():
            instants.sort()
        return counted

    def _write(
        self, session: Session, plan: ChunkPlan, now: datetime
    ) -> list[tuple[PlannedDelivery, int, str | None]]:
        jobs = assign_batches(
            ((d.scheduled_at, d.channel, d.queue, d.dedup_key) for d in plan.deliveries if d.to_send),
            self.options.batch_size,
        )
        inserted: list[tuple[PlannedDelivery, int, str | None]] = []
        if plan.deliveries:
            rows = [
                {
                    "dedup_key": d.dedup_key,
                    "recipient_id": d.recipient_id,
                    "subscription_id": d.subscription_id,
                    "kind": d.kind,
                    "channel": d.channel,
                    "queue": d.queue,
                    "local_date": d.local_date,
                    "occurrence_at": d.occurrence_at,
                    "scheduled_at": d.scheduled_at,
                    "status": d.status.value,
                    "reason": d.reason,
                    "attempts": 0,
                    "job_id": jobs.get(d.dedup_key),
                    "created_at": now,
                    "updated_at": now,
                }
                for d in plan.deliveries
            ]
            by_key = {d.dedup_key: d for d in plan.deliveries}
            table = Delivery.__table__  # type: ignore[attr-defined]
            if self.dialect == "postgresql":
                utc = self._utc(session)
                columns: dict[str, Any] = {name: [r[name] for r in rows] for name, _ in _PG_DELIVERY_COLUMNS}
                for name in ("occurrence_at", "scheduled_at"):
                    columns[name] = [utc(value) for value in columns[name]]
                columns["now"] = utc(now)
                result: Result[int, str, str | None] = session.connection().exec_driver_sql(
                    _PG_INSERT_DELIVERIES, columns
                )
            else:
                stmt = (
                    sqlite_insert(table)
                    .on_conflict_do_nothing(index_elements=["dedup_key"])
                    .returning(table.c.id, table.c.dedup_key, table.c.job_id)
                )
                result = session.execute(stmt, rows)
            for delivery_id, dedup_key, job_id in result:
                inserted.append((by_key[dedup_key], delivery_id, job_id))
            record_events(
                session,
                (
                    event_row(
                        delivery_id,
                        now,
                        "planned",
                        status=planned.status.value,
                        reason=planned.reason,
                        detail=planned.detail,
                    )
                    for planned, delivery_id, _ in inserted
                ),
            )
        if plan.cursors and self.dialect == "postgresql":
            utc = self._utc(session)
            session.connection().exec_driver_sql(
                _PG_ADVANCE_CURSORS,
                {
                    "id": list(plan.cursors),
                    "next_at": [utc(c.next_at) for c in plan.cursors.values()],
                    "next_local_date": [c.next_local_date for c in plan.cursors.values()],
                    "now": utc(now),
                },
            )
        elif plan.cursors:
            session.execute(
                update(Subscription),
                [
                    {
                        "id": sub_id,
                        "next_at": c.next_at,
                        "next_local_date": c.next_local_date,
                        "updated_at": now,
                    }
                    for sub_id, c in plan.cursors.items()
                ],
            )
        return inserted

    @staticmethod
    def _utc(session: Session) -> Callable[[datetime], datetime | None]:
        """Bind an instant as a UTCDateTime column would (refuses naive datetimes)."""
        dialect = session.get_bind().dialect
        column_type = UTCDateTime()
        return lambda value: column_type.process_bind_param(value, dialect)


__all__ = ["PlannerRunner", "RunOptions", "RunReport"]
