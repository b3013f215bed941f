"""What happens when a schedule changes under the planner.

Rule: when a recipient's zone or quiet hours, or a subscription's time or days change (or the
subscription is removed), the subscription's cursor is recomputed from *now*, and every delivery of
it that is still pending (planned, queued, retrying), or recorded skipped because it was snoozed, and
due after now is cancelled with reason ``schedule_changed``. The cancelled row keeps its history but
gives up its dedup key (a suffix is appended), so the planner can plan that local date again at the
new time. A delivery already sent, or due before now, is left alone: its dedup key still blocks a
second send for that local date.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import String, and_, cast, or_, select, update
from sqlalchemy.orm import Session

from planner.core.status import PENDING_STATUSES, DeliveryStatus
from planner.store.dialect import dialect_of, id_rows, not_indexed
from planner.store.models import Delivery
from planner.store.subscription_keys import key_range
from planner.store.tables import DELIVERIES
from planner.store.timeline import event_row, record_events

SCHEDULE_CHANGED = "schedule_changed"
SNOOZED = "snoozed"


def cancel_pending_after(
    session: Session, subscription_ids: Collection[int], now: datetime, reason: str = SCHEDULE_CHANGED
) -> list[int]:
    """Cancel the pending future deliveries of these subscriptions; returns the cancelled ids."""
    if not subscription_ids:
        return []
    ids = _pending_after(session, sorted(subscription_ids), now)
    if not ids:
        return []
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids))  # type: ignore[union-attr]
        .values(
            status=DeliveryStatus.cancelled.value,
            reason=reason,
            dedup_key=Delivery.dedup_key + ":cancelled:" + cast(Delivery.id, String),
            updated_at=now,
        )
    )
    record_events(
        session,
        (event_row(i, now, "cancelled", status=DeliveryStatus.cancelled.value, reason=reason) for i in ids),
    )
    return ids


def _pending_after(session: Session, subscription_ids: Sequence[int], now: datetime) -> list[int]:
    """The deliveries of these subscriptions still to be sent, or skipped as snoozed, due after now."""
    d = DELIVERIES.c
    dialect = dialect_of(session)
    # On SQLite each subscription's range of the dedup key (store.subscription_keys), not every future
    # delivery by time: the due time is a filter there, not an index to walk.
    due = not_indexed(d.scheduled_at) if dialect == "sqlite" else d.scheduled_at
    conditions = [
        or_(
            d.status.in_([s.value for s in PENDING_STATUSES]),
            # A snoozed occurrence is planned again too: ending a snooze must not leave its skipped
            # rows holding the dedup keys of dates that are no longer snoozed.
            and_(d.status == DeliveryStatus.skipped.value, d.reason == SNOOZED),
        ),
        due > now,
    ]
    if dialect == "sqlite":
        subs = id_rows(subscription_ids, dialect)
        by_key = [d.subscription_id == subs.c.id, *key_range(subs.c.id)]
        found = select(d.id).join(subs, and_(*by_key)).where(*conditions)
    else:
        found = select(d.id).where(d.subscription_id.in_(subscription_ids), *conditions)
    return [int(i) for i in session.scalars(found)]
