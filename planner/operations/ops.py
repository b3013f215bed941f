"""Operator actions shared by the CLI and the HTTP API: retry, cancel, pause, resume, engagement.

Every action that changes a delivery changes the row and appends its timeline entry in the same
transaction, and hands any new RQ job to Redis only after the commit (the outbox rule: a crash in
between leaves a ``queued`` row whose job is missing, which
:func:`planner.dispatch.reconcile.reconcile` repairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.orm import Session

from planner.app import App
from planner.clock import ensure_utc
from planner.core import validation
from planner.core.status import PENDING_STATUSES, Channel, DeliveryStatus
from planner.dispatch.outbox import JobBatch, assign_batches, batches_from_rows, enqueue_batches
from planner.errors import InvalidInput, NotFound
from planner.store import pauses
from planner.store.models import Delivery, EngagementEvent, Recipient
from planner.store.tables import table_of
from planner.store.timeline import event_row, record_events

log = structlog.get_logger("planner.ops")

RETRYABLE = (DeliveryStatus.dead, DeliveryStatus.retrying)


class StateConflict(InvalidInput):
    """The delivery exists but its status does not allow the action (HTTP 409)."""


@dataclass(frozen=True)
class RedriveResult:
    requeued: list[int]
    job_ids: dict[int, str]

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "job_ids": {str(k): v for k, v in self.job_ids.items()}}


_TABLE = table_of(Delivery)


def _locked_rows(session: Session, statuses: Sequence[str], *conditions: Any) -> Sequence[Row[Any]]:
    """The rows in ``statuses`` matching ``conditions``, locked until the transaction ends."""
    c = _TABLE.c
    stmt = (
        select(c.id, c.queue, c.channel, c.kind, c.status, c.attempts, c.reason, c.job_id)
        .where(c.status.in_(list(statuses)), *conditions)
        .order_by(c.id)
    )
    return list(session.execute(stmt.with_for_update()))


def _requeue_rows(
    session: Session,
    rows: Sequence[Row[Any]],
    now: datetime,
    *,
    event: str,
    batch_size: int,
    reset_attempts: bool = False,
    detail: dict[str, Any] | None = None,
) -> list[JobBatch]:
    """Give locked rows a fresh job due now, as ``queued``, with a timeline entry; returns the batches.

    The same steps as :func:`planner.outbox.requeue`, but inside the caller's transaction so the
    attempt reset and the timeline entry commit together with the status change.
    """
    if not rows:
        return []
    jobs = assign_batches(((now, r.channel, r.queue, r.id) for r in rows), batch_size)
    values: dict[str, Any] = {
        "status": DeliveryStatus.queued.value,
        "reason": None,
        "job_id": bindparam("new_job_id"),
        "scheduled_at": now,
        "lease_until": None,
        "updated_at": now,
    }
    if reset_attempts:
        values["attempts"] = 0
    session.execute(
        update(_TABLE).where(_TABLE.c.id == bindparam("b_id")).values(**values),
        [{"b_id": r.id, "new_job_id": jobs[r.id]} for r in rows],
    )
    record_events(
        session,
        (
            event_row(
                r.id,
                now,
                event,
                status=DeliveryStatus.queued.value,
                detail={
                    "previous_status": r.status,
                    "previous_reason": r.reason,
                    "previous_attempts": r.attempts,
                    "previous_job_id": r.job_id,
                    "job_id": jobs[r.id],
                    **(detail or {}),
                },
            )
            for r in rows
        ),
    )
    return batches_from_rows((r.id, jobs[r.id], r.queue, r.channel, now) for r in rows)


def _actor(actor: str | None) -> dict[str, Any]:
    return {"actor": actor} if actor is not None else {}


def _status_of(session: Session, delivery_id: int) -> str:
    status = session.scalar(select(_TABLE.c.status).where(_TABLE.c.id == delivery_id))
    if status is None:
        raise NotFound("delivery", delivery_id)
    return str(status)


def retry(app: App, delivery_id: int, now: datetime, actor: str | None = None) -> RedriveResult:
    """Send a dead (fresh attempt budget) or retrying (now, same budget) delivery again.

    ``actor`` (who asked, e.g. a token's name) goes into the timeline entry's detail.
    """
    with app.sessions() as session, session.begin():
        rows = _locked_rows(session, [s.value for s in RETRYABLE], _TABLE.c.id == delivery_id)
        if not rows:
            status = _status_of(session, delivery_id)
            raise StateConflict("status", status, "a dead or retrying delivery; only those can be retried")
        dead = [r for r in rows if r.status == DeliveryStatus.dead.value]
        retrying = [r for r in rows if r.status != DeliveryStatus.dead.value]
        size = app.settings.delivery_batch_size
        who = _actor(actor)
        batches = _requeue_rows(
            session, dead, now, event="redriven", batch_size=size, reset_attempts=True, detail=who
        )
        batches += _requeue_rows(session, retrying, now, event="retry_now", batch_size=size, detail=who)
    return _enqueue(app, batches, now, action="retry")


def retry_all_dead(app: App, now: datetime, kind: str | None = None) -> RedriveResult:
    """Redrive every dead delivery (of ``kind``, if given) with a fresh attempt budget."""
    if kind is not None:
        validation.kind(kind, "kind")
    with app.sessions() as session, session.begin():
        conditions = [_TABLE.c.kind == kind] if kind is not None else []
        rows = _locked_rows(session, [DeliveryStatus.dead.value], *conditions)
        batches = _requeue_rows(
            session,
            rows,
            now,
            event="redriven",
            batch_size=app.settings.delivery_batch_size,
            reset_attempts=True,
        )
    return _enqueue(app, batches, now, action="retry_all_dead", kind=kind)


def _enqueue(app: App, batches: list[JobBatch], now: datetime, **context: Any) -> RedriveResult:
    enqueue_batches(app.redis, batches, now)
    job_ids = {d: b.job_id for b in batches for d in b.delivery_ids}
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
        result = session.execute(
            update(_TABLE)
            .where(_TABLE.c.id == delivery_id, _TABLE.c.status.in_([s.value for s in PENDING_STATUSES]))
            .values(status=DeliveryStatus.cancelled.value, reason=reason, lease_until=None, updated_at=now)
            .returning(_TABLE.c.id)
        ).first()
        if result is None:
            status = _status_of(session, delivery_id)
            raise StateConflict(
                "status",
                status,
                "a pending delivery (planned, queued or retrying); one that is sending or already "
                f"{status} cannot be cancelled",
            )
        record_events(
            session,
            [
                event_row(
                    delivery_id, now, "cancelled", status="cancelled", reason=reason, detail=_actor(actor)
                )
            ],
        )
    log.info("delivery cancelled", delivery_id=delivery_id, outcome="cancelled", reason=reason)
    return {"id": delivery_id, "status": DeliveryStatus.cancelled.value, "reason": reason}


def _pause_target(target: str) -> str:
    if target in Channel.__members__:
        return target
    try:
        return validation.kind(target, "target")
    except InvalidInput:
        raise InvalidInput("target", target, "a channel ('email', 'sms') or a notification kind") from None


def pause(app: App, target: str, now: datetime, actor: str | None = None) -> dict[str, Any]:
    """Hold the deliveries of a channel or kind; workers put them back as ``queued``/``paused``."""
    target = _pause_target(target)
    with app.sessions() as session, session.begin():
        created = pauses.pause(session, target, now)
    scope, value = pauses.scope_of(target)
    log.info(
        "paused", scope=scope, value=value, outcome="paused" if created else "already_paused", actor=actor
    )
    return {"scope": scope, "value": value, "paused": True, "changed": created}


def resume(app: App, target: str, now: datetime, actor: str | None = None) -> dict[str, Any]:
    """Lift a pause and requeue, due now, every delivery that was waiting on it.

    Deliveries still held by another pause (the kind is paused too) are left waiting for that one.
    """
    target = _pause_target(target)
    scope, value = pauses.scope_of(target)
    with app.sessions() as session, session.begin():
        changed = pauses.resume(session, target)
        remaining = pauses.active_pauses(session)
        c = _TABLE.c
        candidates = session.execute(
            select(c.id, c.channel, c.kind).where(
                c.status == DeliveryStatus.queued.value, c.reason == "paused", c[scope] == value
            )
        ).all()
        ids = [int(i) for i, channel, kind in candidates if not pauses.is_paused(remaining, channel, kind)]
        rows = _locked_rows(session, [DeliveryStatus.queued.value], _TABLE.c.id.in_(ids)) if ids else []
        # A worker may have picked one up since the select; only rows still waiting on the pause move.
        rows = [r for r in rows if r.reason == "paused"]
        batches = _requeue_rows(
            session,
            rows,
            now,
            event="resumed",
            batch_size=app.settings.delivery_batch_size,
            detail={"pause": f"{scope}:{value}", **_actor(actor)},
        )
    enqueue_batches(app.redis, batches, now)
    outcome = "resumed" if changed else "not_paused"
    log.info("resumed", scope=scope, value=value, outcome=outcome, requeued=len(rows), actor=actor)
    return {"scope": scope, "value": value, "paused": False, "changed": changed, "requeued": len(rows)}


def record_engagement(
    app: App, recipient: str, event: str, at: datetime, now: datetime, kind: str | None = None
) -> dict[str, Any]:
    """Store an open/click/reply (from a provider webhook or an operator) for engagement backoff."""
    validation.external_id(recipient, "recipient_id")
    verb = validation.engagement_event(event, "event")
    at = ensure_utc(at, "at")
    if kind is not None:
        validation.kind(kind, "kind")
    recipients = table_of(Recipient)
    with app.sessions() as session, session.begin():
        recipient_id = session.scalar(select(recipients.c.id).where(recipients.c.external_id == recipient))
        if recipient_id is None:
            raise NotFound("recipient", recipient)
        row = EngagementEvent(
            recipient_id=recipient_id, kind=kind, event=verb.value, occurred_at=at, created_at=now
        )
        session.add(row)
        session.flush()
        event_id = row.id
    log.info("engagement recorded", recipient=recipient, kind=kind, engagement=verb.value, outcome="recorded")
    return {
        "id": event_id,
        "recipient_id": recipient,
        "event": verb.value,
        "kind": kind,
        "at": at.isoformat(),
    }
