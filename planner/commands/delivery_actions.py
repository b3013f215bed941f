"""Operator actions on deliveries, shared by the CLI, the HTTP API and the dashboard: retry a dead
or retrying delivery (one, or every dead one), cancel a pending one.

Every action changes the row and appends its timeline entry in the same transaction, and hands any
new RQ job to Redis only after the commit (the outbox rule: a crash in between leaves a ``queued``
row whose job is missing, which :func:`planner.dispatch.reconcile.reconcile` repairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.core import validation
from planner.core.status import DeliveryStatus
from planner.dispatch.reassign import enqueue_reassigned
from planner.errors import InvalidInput, NotFound, StateConflict
from planner.store.audit import record_audit
from planner.store.db import Session
from planner.store.operator import (
    HeldDelivery,
    cancel_if_pending,
    count_matching,
    lock_deliveries,
    lock_matching,
    status_of,
)
from planner.store.queries import DeliveryFilter
from planner.store.reassign import Move, Reassigned, reassign
from planner.store.timeline import event_row, record_events

log = structlog.get_logger("planner.ops")

RETRYABLE = (DeliveryStatus.dead, DeliveryStatus.retrying)


@dataclass(frozen=True)
class RedriveResult:
    requeued: list[int]
    job_ids: dict[int, str]

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "job_ids": {str(k): v for k, v in self.job_ids.items()}}


def requeue_rows(
    session: Session,
    rows: Sequence[HeldDelivery],
    now: datetime,
    *,
    event: str,
    batch_size: int,
    from_status: DeliveryStatus,
    reset_attempts: bool = False,
    detail: dict[str, Any] | None = None,
) -> Reassigned:
    """Locked rows to a fresh job due now, as ``queued``: :func:`reassign` inside the caller's
    transaction, so the attempt reset and the timeline entry commit with the status change."""
    return reassign(
        session,
        [Move(r.id, now) for r in rows],
        now,
        status=DeliveryStatus.queued,
        reason=None,
        event=event,
        from_statuses=[from_status],
        attempts="reset" if reset_attempts else "keep",
        batch_size=batch_size,
        detail=detail,
    )


def _status_of(session: Session, delivery_id: int) -> str:
    status = status_of(session, delivery_id)
    if status is None:
        raise NotFound("delivery", delivery_id)
    return status


def by_actor(actor: str | None, detail: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A timeline detail naming who asked for the change (an API token's name), when known."""
    if actor is None:
        return detail
    return {**(detail or {}), "actor": actor}


def retry(app: App, delivery_id: int, now: datetime, actor: str | None = None) -> RedriveResult:
    """Send a dead (fresh attempt budget) or retrying (now, same budget) delivery again."""
    app.require_redis()  # nothing changes while the new job could not be handed over
    with app.sessions() as session, session.begin():
        rows = lock_deliveries(session, [s.value for s in RETRYABLE], ids=[delivery_id])
        if not rows:
            status = _status_of(session, delivery_id)
            raise StateConflict("status", status, "a dead or retrying delivery; only those can be retried")
        moved = _requeue_retryable(session, rows, now, app.settings.delivery_batch_size, actor)
    return _enqueue(app, moved, now, action="retry")


def _requeue_retryable(
    session: Session, rows: Sequence[HeldDelivery], now: datetime, size: int, actor: str | None
) -> Reassigned:
    """Dead rows redriven with a fresh attempt budget, retrying ones sent now with theirs."""
    dead = [r for r in rows if r.status == DeliveryStatus.dead.value]
    retrying = [r for r in rows if r.status != DeliveryStatus.dead.value]
    moved = requeue_rows(
        session, dead, now, event="redriven", batch_size=size, from_status=DeliveryStatus.dead,
        reset_attempts=True, detail=by_actor(actor),
    )  # fmt: skip
    moved += requeue_rows(
        session, retrying, now, event="retry_now", batch_size=size, from_status=DeliveryStatus.retrying,
        detail=by_actor(actor),
    )  # fmt: skip
    return moved


#: At most this many deliveries are requeued by one "requeue all" (a larger set: narrow the filter,
#: or requeue again); one transaction holds their row locks.
MAX_REQUEUE = 10_000


def retryable_statuses(flt: DeliveryFilter) -> list[str]:
    """The statuses a "requeue all" of ``flt`` touches: its status, if dead or retrying, else both."""
    allowed = [s.value for s in RETRYABLE]
    if flt.status is None:
        return allowed
    if flt.status not in allowed:
        raise InvalidInput("status", flt.status, "dead or retrying (only those can be requeued), or any")
    return [flt.status]


def count_retryable(app: App, flt: DeliveryFilter) -> int:
    """How many deliveries a "requeue all" of ``flt`` would requeue (before :data:`MAX_REQUEUE`)."""
    with app.sessions() as session:
        return count_matching(session, retryable_statuses(flt), flt)


def retry_matching(app: App, flt: DeliveryFilter, now: datetime, actor: str) -> RedriveResult:
    """Requeue the dead and retrying deliveries matching ``flt`` (the first :data:`MAX_REQUEUE` by
    id) as :func:`retry` does one; the audit log records who, the filter and how many."""
    statuses = retryable_statuses(flt)
    app.require_redis()
    with app.sessions() as session, session.begin():
        rows = lock_matching(session, statuses, flt, MAX_REQUEUE)
        moved = _requeue_retryable(session, rows, now, app.settings.delivery_batch_size, actor)
        # What selects the rows, not how a page of them is read (limit, cursor, order).
        paging = ("limit", "after", "newest_first")
        wanted = {k: v for k, v in asdict(flt).items() if v is not None and k not in paging}
        shown = {k: v.isoformat() if isinstance(v, datetime) else str(v) for k, v in wanted.items()}
        detail = {"filter": shown, "requeued": len(moved.ids)}
        record_audit(session, now, actor, "deliveries_requeued", "deliveries", detail)
    return _enqueue(app, moved, now, action="retry_matching")


def retry_all_dead(app: App, now: datetime, kind: str | None = None) -> RedriveResult:
    """Redrive every dead delivery (of ``kind``, if given) with a fresh attempt budget."""
    if kind is not None:
        validation.kind(kind, "kind")
    app.require_redis()
    with app.sessions() as session, session.begin():
        rows = lock_deliveries(session, [DeliveryStatus.dead.value], kind=kind)
        moved = requeue_rows(
            session,
            rows,
            now,
            event="redriven",
            batch_size=app.settings.delivery_batch_size,
            from_status=DeliveryStatus.dead,
            reset_attempts=True,
        )
    return _enqueue(app, moved, now, action="retry_all_dead", kind=kind)


def _enqueue(app: App, moved: Reassigned, now: datetime, **context: Any) -> RedriveResult:
    enqueue_reassigned(app.redis, moved, now)
    job_ids = {d: b.job_id for b in moved.batches for d in b.delivery_ids}
    log.info("deliveries requeued", outcome="requeued", count=len(job_ids), **context)
    return RedriveResult(requeued=sorted(job_ids), job_ids=job_ids)


def cancel(
    app: App, delivery_id: int, now: datetime, reason: str = "operator", actor: str | None = None
) -> dict[str, Any]:
    """Cancel a pending delivery; one already sending or in a final status is refused.

    The dedup key is kept, so the planner does not plan that occurrence again. The delivery's RQ
    job stays in Redis and finds nothing to claim.
    """
    with app.sessions() as session, session.begin():
        if not cancel_if_pending(session, delivery_id, reason, now):
            status = _status_of(session, delivery_id)
            raise StateConflict(
                "status",
                status,
                "a pending delivery (planned, queued or retrying); one that is sending or already "
                f"{status} cannot be cancelled",
            )
        entry = event_row(
            delivery_id, now, "cancelled", status="cancelled", reason=reason, detail=by_actor(actor)
        )
        record_events(session, [entry])
    log.info("delivery cancelled", delivery_id=delivery_id, outcome="cancelled", reason=reason)
    return {"id": delivery_id, "status": DeliveryStatus.cancelled.value, "reason": reason}
