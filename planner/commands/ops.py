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

from planner.app import App
from planner.clock import ensure_utc
from planner.core import validation
from planner.core.status import Channel, DeliveryStatus
from planner.delivery.templating import TemplateCheck, check_templates
from planner.dispatch.reassign import enqueue_reassigned
from planner.errors import InvalidInput, NotFound, StateConflict
from planner.store import pauses
from planner.store.db import Session
from planner.store.engagement_writes import record_engagement as record_engagement_event
from planner.store.operator import (
    HeldDelivery,
    cancel_if_pending,
    lock_deliveries,
    status_of,
    waiting_on_pause,
)
from planner.store.queries import subscribed_kinds
from planner.store.reassign import Move, Reassigned, reassign
from planner.store.recipients import recipient_id_of
from planner.store.timeline import event_row, record_events

log = structlog.get_logger("planner.ops")

RETRYABLE = (DeliveryStatus.dead, DeliveryStatus.retrying)


@dataclass(frozen=True)
class RedriveResult:
    requeued: list[int]
    job_ids: dict[int, str]

    def as_dict(self) -> dict[str, Any]:
        return {"requeued": self.requeued, "job_ids": {str(k): v for k, v in self.job_ids.items()}}


def _requeue_rows(
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


def _by(actor: str | None, detail: dict[str, Any] | None = None) -> dict[str, Any] | None:
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
        dead = [r for r in rows if r.status == DeliveryStatus.dead.value]
        retrying = [r for r in rows if r.status != DeliveryStatus.dead.value]
        size = app.settings.delivery_batch_size
        moved = _requeue_rows(
            session,
            dead,
            now,
            event="redriven",
            batch_size=size,
            from_status=DeliveryStatus.dead,
            reset_attempts=True,
            detail=_by(actor),
        )
        moved += _requeue_rows(
            session,
            retrying,
            now,
            event="retry_now",
            batch_size=size,
            from_status=DeliveryStatus.retrying,
            detail=_by(actor),
        )
    return _enqueue(app, moved, now, action="retry")


def retry_all_dead(app: App, now: datetime, kind: str | None = None) -> RedriveResult:
    """Redrive every dead delivery (of ``kind``, if given) with a fresh attempt budget."""
    if kind is not None:
        validation.kind(kind, "kind")
    app.require_redis()
    with app.sessions() as session, session.begin():
        rows = lock_deliveries(session, [DeliveryStatus.dead.value], kind=kind)
        moved = _requeue_rows(
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
        entry = event_row(delivery_id, now, "cancelled", status="cancelled", reason=reason, detail=_by(actor))
        record_events(session, [entry])
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
    app.require_redis()
    with app.sessions() as session, session.begin():
        changed = pauses.resume(session, target)
        remaining = pauses.active_pauses(session)
        candidates = waiting_on_pause(session, scope, value)
        ids = [i for i, channel, kind in candidates if not pauses.is_paused(remaining, channel, kind)]
        rows = lock_deliveries(session, [DeliveryStatus.queued.value], ids=ids) if ids else []
        # A worker may have picked one up since the select; only rows still waiting on the pause move.
        rows = [r for r in rows if r.reason == "paused"]
        moved = _requeue_rows(
            session,
            rows,
            now,
            event="resumed",
            batch_size=app.settings.delivery_batch_size,
            from_status=DeliveryStatus.queued,
            detail=_by(actor, {"pause": f"{scope}:{value}"}),
        )
    enqueue_reassigned(app.redis, moved, now)
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
    with app.sessions() as session, session.begin():
        recipient_id = recipient_id_of(session, recipient)
        if recipient_id is None:
            raise NotFound("recipient", recipient)
        row = {
            "recipient_id": recipient_id,
            "kind": kind,
            "event": verb.value,
            "occurred_at": at,
            "created_at": now,
        }
        # A repeated webhook is the same event (the natural key): the first one's id is returned.
        event_id = record_engagement_event(session, row)
    log.info("engagement recorded", recipient=recipient, kind=kind, engagement=verb.value, outcome="recorded")
    return {
        "id": event_id,
        "recipient_id": recipient,
        "event": verb.value,
        "kind": kind,
        "at": at.isoformat(),
    }


def template_checks(app: App) -> tuple[list[TemplateCheck], dict[tuple[str, str], int]]:
    """Every kind with a template folder or an active subscription, rendered on both channels,
    and the active subscriptions per (kind, channel) (a missing template matters only there)."""
    with app.sessions() as session:
        subscribed = subscribed_kinds(session)
    kinds = app.templates.kinds() | {kind for kind, _ in subscribed}
    return check_templates(app.templates, kinds), subscribed


def subscriptions_without_templates(app: App) -> dict[tuple[str, str], int]:
    """Active subscriptions whose kind cannot be rendered on their channel: they will fail."""
    with app.sessions() as session:
        subscribed = subscribed_kinds(session)
    return {key: n for key, n in subscribed.items() if not app.templates.has_template(*key)}
