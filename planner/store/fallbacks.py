"""Channel fallback in the database: planned in the transaction that records the failure.

Two writers learn that a first delivery failed, and each calls :func:`after_failure` inside its own
transaction, so the fallback exists if and only if the fact that called it was committed: the
worker's outcome write (:mod:`planner.store.outcomes`: dead, refused, an invalid address) and a
provider's report (:mod:`planner.commands.feedback`: bounced, undelivered, failed). The fallback's
dedup key is derived from the first delivery's (:func:`planner.core.fallback.fallback_key`) and the
unique constraint on it decides: two reports of one failure plan it once.

The link is kept both ways on the timelines: the fallback's first entry says whose fallback it is
and why (``fallback_for``, ``because``), the first delivery gets a ``fallback_planned`` entry naming
it. A report of ``delivered`` on the first delivery cancels a fallback still waiting
(:func:`after_delivered`); one already sent is left alone and the report is recorded.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from planner.core import fallback
from planner.core.fallback import FallbackRule
from planner.core.job_batches import JobBatch, new_job_id
from planner.core.policy import PlanningPolicy
from planner.core.status import PENDING_STATUSES, DeliveryStatus
from planner.store.caps import counted_instants, lock_caps
from planner.store.dialect import dialect_of
from planner.store.queries import insert_ignoring_duplicates
from planner.store.recipient_facts import recipient_states
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS, SUBSCRIPTIONS
from planner.store.timeline import event_row, record_events

FIRST_DELIVERED = "first_delivered"
_PENDING = sorted(s.value for s in PENDING_STATUSES)


@dataclass(frozen=True)
class FirstDelivery:
    """What planning a fallback reads of the delivery that failed."""

    id: int
    dedup_key: str
    recipient_id: int
    kind: str
    channel: str
    queue: str
    local_date: date | None
    data: dict[str, Any] | None
    sent_at: datetime | None
    #: The delivery's own rule (ad-hoc), else its subscription's; None: no fallback.
    rule: FallbackRule | None


def first_delivery(session: Session, delivery_id: int) -> FirstDelivery | None:
    d, s = DELIVERIES.c, SUBSCRIPTIONS.c
    row = session.execute(
        select(
            d.id, d.dedup_key, d.recipient_id, d.kind, d.channel, d.queue, d.local_date, d.data, d.sent_at,
            d.fallback, s.fallback.label("subscription_fallback"),
        )
        .outerjoin(SUBSCRIPTIONS, s.id == d.subscription_id)
        .where(d.id == delivery_id)
    ).first()  # fmt: skip
    if row is None:
        return None
    stored = row.fallback or row.subscription_fallback
    # A fallback has no fallback of its own: its key says what it is.
    is_fallback = row.dedup_key.startswith(fallback.KEY_PREFIX)
    rule = FallbackRule.stored(stored) if stored and not is_fallback else None
    return FirstDelivery(
        row.id, row.dedup_key, row.recipient_id, row.kind, row.channel, row.queue, row.local_date,
        row.data, row.sent_at, rule,
    )  # fmt: skip


@dataclass(frozen=True)
class Planned:
    """A fallback inserted; ``job`` is its RQ job, to enqueue after the commit (None: not to send)."""

    delivery_id: int
    status: str
    job: JobBatch | None


def after_failure(
    session: Session,
    delivery_id: int,
    conditions: Collection[str],
    *,
    reported: bool,
    policy: PlanningPolicy,
    now: datetime,
) -> Planned | None:
    """Plan the delivery's fallback if ``conditions`` (learnt at ``now``; ``reported``: from the
    provider's report) call it, in the caller's transaction; None when nothing was planned."""
    first = first_delivery(session, delivery_id)
    if first is None or first.rule is None or not any(c in first.rule.on for c in conditions):
        return None
    delivered = reported and was_delivered(session, first.id)
    call = fallback.call(
        first.rule, conditions, reported=reported, sent_at=first.sent_at, delivered=delivered, now=now
    )
    if call is None:
        return None
    if call.because is None:
        detail = {"conditions": sorted(conditions), "reason": call.not_planned}
        if call.not_planned == "outside_window":
            detail["within"] = first.rule.as_json()["within"]
        record_events(session, [event_row(first.id, now, "fallback_not_planned", detail=detail)])
        return None
    return _plan(session, first, first.rule, call.because, policy, now)


def _plan(
    session: Session,
    first: FirstDelivery,
    rule: FallbackRule,
    because: str,
    policy: PlanningPolicy,
    now: datetime,
) -> Planned | None:
    """Decide the fallback by the rule chain and insert it (once: its dedup key is unique)."""
    dialect = dialect_of(session)
    recipient = recipient_states(session, [first.recipient_id], dialect)[0][first.recipient_id]
    pair = (recipient.id, rule.channel)
    lock_caps(session, dialect, [pair])
    # Quiet hours move a send by at most a day; look that far past the cap window as well.
    reach = policy.cap_for(first.kind, rule.channel).window + timedelta(days=1)
    counted = counted_instants(
        session, dialect, [recipient.id], now - reach, now + reach, channel=rule.channel
    )
    decision = fallback.decide(rule, first.kind, recipient, policy, now, counted.get(pair, []))
    job_id = new_job_id() if decision.to_send else None
    status = DeliveryStatus.queued if job_id is not None else decision.status
    row = {
        "dedup_key": fallback.fallback_key(first.dedup_key), "recipient_id": first.recipient_id,
        "subscription_id": None, "kind": first.kind, "channel": rule.channel, "queue": first.queue,
        "local_date": first.local_date, "occurrence_at": now, "scheduled_at": decision.scheduled_at,
        "status": status.value, "reason": decision.reason, "attempts": 0, "job_id": job_id,
        "data": first.data, "created_at": now, "updated_at": now, "planned_status": decision.status.value,
        "planned_reason": decision.reason,
        "planned_detail": fallback.first_entry_detail(first.id, because, decision, policy, first.kind, now),
    }  # fmt: skip
    delivery_id = session.scalar(insert_ignoring_duplicates(session, DELIVERIES, [row]))
    if delivery_id is None:
        return None  # planned already, by another report of the same failure
    link = {"fallback_delivery_id": delivery_id, "channel": rule.channel, "because": because}
    link |= {"status": status.value, "reason": decision.reason}
    record_events(session, [event_row(first.id, now, "fallback_planned", reason=because, detail=link)])
    job = None
    if job_id is not None:
        job = JobBatch(job_id, first.queue, rule.channel, decision.scheduled_at, (delivery_id,))
    return Planned(delivery_id, status.value, job)


def was_delivered(session: Session, delivery_id: int) -> bool:
    """Whether the provider ever reported the delivery delivered (its status may have moved on)."""
    e = DELIVERY_EVENTS.c
    found = exists().where(e.delivery_id == delivery_id, e.event == "provider_delivered")
    return bool(session.scalar(select(found)))


def after_delivered(session: Session, delivery_id: int, now: datetime) -> str | None:
    """The provider reported the first delivery delivered: cancel its fallback if it still waits;
    one already on its way is recorded on the first delivery's timeline, not acted on. Returns
    the effect (``fallback_cancelled``, ``delivered_after_fallback``) or None (no fallback)."""
    d = DELIVERIES.c
    key = session.scalar(select(d.dedup_key).where(d.id == delivery_id))
    if key is None:
        return None
    found = session.execute(
        select(d.id, d.status).where(d.dedup_key == fallback.fallback_key(key)).with_for_update()
    ).first()
    if found is None:
        return None
    cancelled = session.execute(
        update(DELIVERIES)
        .where(d.id == found.id, d.status.in_(_PENDING))
        .values(status=DeliveryStatus.cancelled.value, reason=FIRST_DELIVERED, updated_at=now)
        .returning(d.id)
    ).first()
    detail = {"fallback_delivery_id": found.id}
    if cancelled is not None:
        record_events(
            session,
            [
                event_row(found.id, now, "cancelled", status="cancelled", reason=FIRST_DELIVERED,
                          detail={"fallback_for": delivery_id}),
                event_row(delivery_id, now, "fallback_cancelled", reason=FIRST_DELIVERED, detail=detail),
            ],
        )  # fmt: skip
        return "fallback_cancelled"
    detail["fallback_status"] = found.status
    record_events(session, [event_row(delivery_id, now, "delivered_after_fallback", detail=detail)])
    return "delivered_after_fallback"
