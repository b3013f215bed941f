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

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import String, and_, cast, or_, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from planner.core.status import PENDING_STATUSES, DeliveryStatus
from planner.store.models import Delivery
from planner.store.timeline import event_row, record_events

SCHEDULE_CHANGED = "schedule_changed"
SNOOZED = "snoozed"


def cancel_pending_after(
    session: Session, subscription_ids: Collection[int], now: datetime, reason: str = SCHEDULE_CHANGED
) -> list[int]:
    """Cancel the pending future deliveries of these subscriptions; returns the cancelled ids."""
    if not subscription_ids:
        return []
    ids: list[int] = list(
        session.scalars(
            select(col(Delivery.id)).where(
                col(Delivery.subscription_id).in_(subscription_ids),
                or_(
                    col(Delivery.status).in_([s.value for s in PENDING_STATUSES]),
                    # A snoozed occurrence is planned again too: ending a snooze must not leave its
                    # skipped rows holding the dedup keys of dates that are no longer snoozed.
                    and_(
                        col(Delivery.status) == DeliveryStatus.skipped.value, col(Delivery.reason) == SNOOZED
                    ),
                ),
                col(Delivery.scheduled_at) > now,
            )
        )
    )
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
