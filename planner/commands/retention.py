"""The retention pass: what is past its retention goes, in bounded batches, each its own transaction.

Run by every worker's maintenance (:func:`planner.processes.worker.run_maintenance`; one pass per
:data:`PASS_EVERY` across all of them, time-boxed) and by ``planner prune``. In order:

1. PostgreSQL, partitioned: the current month and the next ones are created; a month past the
   retention whose deliveries are all final is dropped whole with its timelines
   (:mod:`planner.store.partitions`).
2. Final deliveries due longer ago than PLANNER_DELIVERY_RETENTION, with their timelines, ad-hoc
   keys and digest events (on PostgreSQL only in months that could not go whole, and the default
   partition); then the audit log, planner runs, idempotency keys, engagement events (each
   recipient's latest kept) and the digest drop counts (folded), each past its own retention.
3. SQLite: free pages given back to the file system (incremental vacuum), so that at a steady state
   (as much pruned as written) the file stops growing.

What goes is added to counters in the database (``maintenance_state``, read by the metrics and
``planner status``) in the same transaction as its delete, and logged once per pass.

A pruned occurrence is never planned again, and no decision changes: the cursor and the lateness
guarantee it for retentions above the floor the settings enforce
(:func:`planner.settings.delivery_retention_floor`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

import structlog

from planner.app import App
from planner.clock import format_duration
from planner.store import partition_copy, partitions, retention
from planner.store.db import transaction
from planner.store.idempotency import REPLAY_WINDOW
from planner.store.sessions import forget_old_sessions

log = structlog.get_logger("planner.retention")

#: One pass per this long, across every worker.
PASS_EVERY = timedelta(minutes=5)
#: How long one maintenance pass may prune; what is left waits for the next.
PASS_BUDGET_SECONDS = 20.0
#: Free SQLite pages given back per pass (4 KiB each: 64 MiB).
VACUUM_PAGES = 16384
#: Recipients swept per engagement batch.
ENGAGEMENT_RECIPIENTS = 500
#: An idempotency key is kept this long after its replay window, then goes.
IDEMPOTENCY_MARGIN = timedelta(hours=1)


@dataclass
class PruneReport:
    """What one pass removed (or, dry, would remove)."""

    removed: Counter[str] = field(default_factory=Counter)
    months_created: list[date] = field(default_factory=list)
    months_dropped: list[date] = field(default_factory=list)
    #: False when the pass ran out of time with rows still to go.
    complete: bool = True
    free_pages: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "removed": dict(sorted(self.removed.items())),
            "months_created": [m.isoformat()[:7] for m in self.months_created],
            "months_dropped": [m.isoformat()[:7] for m in self.months_dropped],
            "complete": self.complete,
        }


@dataclass(frozen=True)
class Cutoffs:
    """Before these instants, each kind of record is past its retention."""

    deliveries: datetime
    audit: datetime
    engagement: datetime
    runs: datetime
    idempotency_keys: datetime

    @classmethod
    def at(cls, app: App, now: datetime) -> Cutoffs:
        s = app.settings
        return cls(
            deliveries=now - s.delivery_retention,
            audit=now - s.audit_retention,
            engagement=now - s.engagement_retention,
            runs=now - s.run_retention,
            idempotency_keys=now - REPLAY_WINDOW - IDEMPOTENCY_MARGIN,
        )


def maintenance_pass(app: App, now: datetime) -> PruneReport | None:
    """The workers' pass: None when another worker ran one less than :data:`PASS_EVERY` ago."""
    with transaction(app.sessions) as session:
        if not retention.claim_pass(session, now, PASS_EVERY):
            return None
    return prune(app, now, budget=PASS_BUDGET_SECONDS)


def prune(
    app: App, now: datetime, *, budget: float | None = None, monotonic: Callable[[], float] = time.monotonic
) -> PruneReport:
    """Everything past its retention, in batches; with ``budget`` (seconds) it stops when it is
    spent, and the report says it is not complete."""
    report = PruneReport()
    cut = Cutoffs.at(app, now)
    ends = None if budget is None else monotonic() + budget

    def time_left() -> bool:
        if ends is not None and monotonic() >= ends:
            report.complete = False
            return False
        return True

    dated_before = _months(app, now, cut, report)
    if _deliveries_movable(app):
        _batches(app, now, report, "deliveries", time_left, dated_before, cut.deliveries)
    for table in ("audit", "runs", "idempotency_keys"):
        _batches(app, now, report, table, time_left, None, getattr(cut, table))
    _engagement(app, now, cut.engagement, report, time_left)
    with transaction(app.sessions) as session:
        folded = retention.fold_digest_drops(session, cut.runs)
        sessions = forget_old_sessions(session, now)
        retention.add_counts(session, {"digest_drops_folded": folded, "dashboard_sessions": sessions}, now)
    report.removed.update({"digest_drops_folded": folded, "dashboard_sessions": sessions})
    if app.settings.is_sqlite:
        with transaction(app.sessions) as session:
            report.free_pages = retention.sqlite_vacuum(session, VACUUM_PAGES)
    _log(app, report)
    return report


def _deliveries_movable(app: App) -> bool:
    """False while a PostgreSQL table is being copied into partitions: a delete racing a copy batch
    could bring a row back, so deliveries wait for the swap."""
    with app.sessions() as session:
        return partition_copy.state(session) != "copying"


def _months(app: App, now: datetime, cut: Cutoffs, report: PruneReport) -> date | None:
    """PostgreSQL, partitioned: create the coming months, drop the months past the retention;
    returns the first month the row deletes leave alone (None: not partitioned)."""
    with app.sessions() as session:
        if not partitions.is_partitioned(session):
            return None
        existing = set(partitions.existing_months(session))
    first_kept = partitions.month_of(cut.deliveries.date())
    for month in partitions.wanted_months(now.date()):
        if month in existing:
            continue
        moved = partitions.one_step(app.sessions, partial(partitions.create_month, month=month))
        if moved is not None:
            report.months_created.append(month)
            _record(app, now, report, {"partitions_created": 1})
    for month in sorted(m for m in existing if partitions.next_month(m) <= first_kept):
        dropped = partitions.one_step(
            app.sessions, partial(partitions.drop_month, month=month, before=cut.deliveries)
        )
        if isinstance(dropped, partitions.DroppedMonth):
            report.months_dropped.append(month)
            counts = {"deliveries": dropped.deliveries, "delivery_events": dropped.events}
            _record(app, now, report, {**counts, "adhoc_keys": dropped.adhoc_keys, "partitions_dropped": 1})
    return first_kept


def _record(app: App, now: datetime, report: PruneReport, counts: dict[str, int]) -> None:
    with transaction(app.sessions) as session:
        retention.add_counts(session, counts, now)
    report.removed.update(counts)


def _batches(
    app: App,
    now: datetime,
    report: PruneReport,
    kind: str,
    time_left: Callable[[], bool],
    dated_before: date | None,
    before: datetime,
) -> None:
    limit = app.settings.prune_batch_size
    while time_left():
        with transaction(app.sessions) as session:
            if kind == "deliveries":
                counts = retention.prune_deliveries(
                    session, before, limit, now, dated_before=dated_before
                ).as_counts()
                last = counts["deliveries"]
            else:
                last = retention.prune_oldest(session, kind, before, limit)
                counts = {kind: last}
            retention.add_counts(session, counts, now)
        report.removed.update(counts)
        if last < limit:
            return


def _engagement(
    app: App, now: datetime, before: datetime, report: PruneReport, time_left: Callable[[], bool]
) -> None:
    """Sweep the recipients' engagement events, resuming where the last pass stopped."""
    while time_left():
        with transaction(app.sessions) as session:
            after = retention.position(session, "engagement_sweep")
            removed, last = retention.prune_engagement(session, before, after, ENGAGEMENT_RECIPIENTS)
            retention.set_position(session, "engagement_sweep", last, now)
            retention.add_counts(session, {"engagement_events": removed}, now)
        report.removed["engagement_events"] += removed
        if last is None:
            return


def _log(app: App, report: PruneReport) -> None:
    removed = {k: v for k, v in sorted(report.removed.items()) if v}
    if not (removed or report.months_created or report.months_dropped):
        return
    log.info(
        "retention pass",
        **removed,
        months_created=[m.isoformat()[:7] for m in report.months_created],
        months_dropped=[m.isoformat()[:7] for m in report.months_dropped],
        complete=report.complete,
        delivery_retention=format_duration(app.settings.delivery_retention),
    )


def dry_run(app: App, now: datetime) -> dict[str, Any]:
    """What :func:`prune` would remove now, counted (nothing is removed)."""
    cut = Cutoffs.at(app, now)
    with app.sessions() as session:
        partitioned = partitions.is_partitioned(session)
        first_kept = partitions.month_of(cut.deliveries.date())
        existing = partitions.existing_months(session) if partitioned else []
        droppable = [
            m
            for m in existing
            if partitions.next_month(m) <= first_kept
            and partitions.month_is_droppable(session, m, cut.deliveries)
        ]
        wanted = [m for m in partitions.wanted_months(now.date()) if partitioned and m not in existing]
        counts = {
            "deliveries": retention.count_prunable_deliveries(
                session, cut.deliveries, first_kept if partitioned else None
            ),
            "audit": retention.count_older(session, "audit", cut.audit),
            "runs": retention.count_older(session, "runs", cut.runs),
            "idempotency_keys": retention.count_older(session, "idempotency_keys", cut.idempotency_keys),
            "engagement_events": retention.count_engagement(session, cut.engagement),
        }
    return {
        "removed": counts,
        "months_created": [m.isoformat()[:7] for m in wanted],
        "months_dropped": [m.isoformat()[:7] for m in droppable],
        "cutoffs": {name: value.isoformat() for name, value in vars(cut).items()},
    }
