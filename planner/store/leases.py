"""Deliveries whose worker died: ``sending`` past their lease, found and given back in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from planner.core.job_batches import JobBatch
from planner.core.policy import PlanningPolicy
from planner.core.status import DeliveryStatus
from planner.core.webhook_events import (
    DELIVERY_DEAD,
    DeliveryFacts,
    delivery_outcome_event,
    public_recipient_id,
)
from planner.store.dialect import dialect_of
from planner.store.fallbacks import after_failure
from planner.store.reassign import Move, Reassigned, reassign
from planner.store.tables import DELIVERIES, RECIPIENTS
from planner.store.timeline import event_row, record_events
from planner.store.webhook_endpoints import wanted_types
from planner.store.webhooks import emit


@dataclass(frozen=True)
class Recovered:
    #: The deliveries given a new job (enqueue after the commit).
    moved: Reassigned
    #: Found past their lease, and of those, the ones whose last attempt it was (now dead).
    found: int
    dead: int
    #: The jobs of the fallbacks the dead ones called (enqueue after the commit).
    fallbacks: tuple[JobBatch, ...] = ()


def recover(
    session: Session, now: datetime, max_attempts: int, batch_size: int, policy: PlanningPolicy | None = None
) -> Recovered:
    """In the caller's transaction: deliveries ``sending`` past their lease go back to the queue
    (``retrying``, ``lease_expired``), their attempt still counted; those on their last attempt are
    ``dead``, and with ``policy`` their fallbacks are planned."""
    c = DELIVERIES.c
    stmt = select(c.id, c.attempts).where(c.status == DeliveryStatus.sending.value, c.lease_until < now)
    if dialect_of(session) == "postgresql":
        # Two recoverers (workers, cron) split the work instead of queueing on each other's locks.
        stmt = stmt.with_for_update(skip_locked=True)
    rows = session.execute(stmt).all()
    exhausted = [r.id for r in rows if r.attempts >= max_attempts]
    if exhausted:
        dead, reason = DeliveryStatus.dead.value, "lease_expired"
        ended = session.execute(
            update(DELIVERIES)
            .where(c.id.in_(exhausted), c.status == DeliveryStatus.sending.value)
            .values(status=dead, reason=reason, lease_until=None, updated_at=now)
            .returning(c.id)
        )
        exhausted = [int(i) for i in ended.scalars()]
        record_events(session, [event_row(i, now, reason, status=dead, reason=reason) for i in exhausted])
        _emit_dead(session, exhausted, now)
    moved = reassign(
        session,
        [Move(r.id, now) for r in rows if r.attempts < max_attempts],
        now,
        status=DeliveryStatus.retrying,
        reason="lease_expired",
        event="lease_expired",
        from_statuses=[DeliveryStatus.sending],
        batch_size=batch_size,
    )
    jobs = []
    for delivery_id in exhausted:
        if policy is None:
            break
        planned = after_failure(session, delivery_id, {"dead"}, reported=False, policy=policy, now=now)
        if planned is not None and planned.job is not None:
            jobs.append(planned.job)
    return Recovered(moved, len(rows), len(exhausted), tuple(jobs))


def _emit_dead(session: Session, ids: list[int], now: datetime) -> None:
    """``delivery.dead`` for deliveries whose worker died on their last attempt, when wanted."""
    if DELIVERY_DEAD not in wanted_types(session):
        return
    c, r = DELIVERIES.c, RECIPIENTS.c
    rows = session.execute(
        select(c.id, r.external_id, c.kind, c.channel, c.dedup_key, c.scheduled_at, c.attempts)
        .join(RECIPIENTS, r.id == c.recipient_id)
        .where(c.id.in_(ids), c.status == DeliveryStatus.dead.value)
    )
    error = "the worker's lease expired during its last attempt"
    events = [
        delivery_outcome_event(
            DeliveryFacts(row.id, public_recipient_id(row.external_id), row.kind, row.channel,
                          row.dedup_key, row.scheduled_at),
            DeliveryStatus.dead.value, "lease_expired", now, attempts=row.attempts, error=error,
        )
        for row in rows
    ]  # fmt: skip
    emit(session, [e for e in events if e is not None], now)
