"""Provider callbacks in the database: each applied once, found by the provider's message id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, NamedTuple

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import DELIVERIES, PROVIDER_EVENTS, RECIPIENTS
from planner.store.timeline import event_row, record_events

Claim = Literal["new", "repeat", "token_reused"]


class ReportedDelivery(NamedTuple):
    """The delivery a provider's report is about."""

    id: int
    recipient_id: int
    kind: str
    channel: str
    dedup_key: str
    scheduled_at: datetime
    status: str
    reason: str | None


def claim_event(
    session: Session,
    provider: str,
    event_id: str,
    token: str | None,
    delivery_id: int | None,
    now: datetime,
) -> Claim:
    """Record the callback as applied; "repeat" when this event was applied already, and
    "token_reused" when its signing token already signed another event (a replayed signature).

    The unique constraints decide, so two copies of one callback arriving at once apply once.
    """
    row = {
        "provider": provider,
        "event_id": event_id,
        "token": token,
        "delivery_id": delivery_id,
        "received_at": now,
    }
    if session.execute(insert_ignoring_duplicates(session, PROVIDER_EVENTS, [row])).first() is not None:
        return "new"
    c = PROVIDER_EVENTS.c
    same_event = session.scalar(select(c.id).where(c.provider == provider, c.event_id == event_id))
    return "repeat" if same_event is not None else "token_reused"


def drop_old_provider_events(session: Session, received_before: datetime, limit: int = 5000) -> int:
    """Forget up to ``limit`` applied callbacks received before ``received_before``; returns how
    many. A bounded batch per pass: the first pass after an upgrade may find months of them."""
    c = PROVIDER_EVENTS.c
    oldest = select(c.id).where(c.received_at < received_before).order_by(c.id).limit(limit)
    result = session.execute(delete(PROVIDER_EVENTS).where(c.id.in_(oldest.scalar_subquery())))
    return int(result.rowcount)  # type: ignore[attr-defined]


def delivery_by_message_id(session: Session, message_ids: Sequence[str]) -> ReportedDelivery | None:
    """The delivery a provider's message id belongs to (the latest, should a provider reuse one),
    locked: two callbacks for one message are applied one after the other."""
    d = DELIVERIES.c
    row = session.execute(
        select(d.id, d.recipient_id, d.kind, d.channel, d.dedup_key, d.scheduled_at, d.status, d.reason)
        .where(d.provider_message_id.in_(list(message_ids)))
        .order_by(d.id.desc())
        .limit(1)
        .with_for_update()
    ).first()
    return None if row is None else ReportedDelivery(*row)


def record_provider_status(
    session: Session, delivery_id: int, status: str, detail: dict[str, Any], now: datetime
) -> None:
    """The provider's status on the delivery, and an entry ``provider_<status>`` on its timeline."""
    session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id)
        .values(provider_status=status, updated_at=now)
    )
    record_events(session, [event_row(delivery_id, now, f"provider_{status}", detail=detail)])


def mark_address_invalid(
    session: Session, recipient_id: int, channel: str, reason: str, now: datetime
) -> None:
    """What an adapter's "invalid address" failure records: the rule chain stops the channel."""
    session.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id)
        .values({f"{channel}_invalid": reason[:500], "updated_at": now})
    )


def set_sms_opt_out_by_phone(session: Session, phone: str, opted_out: bool, now: datetime) -> list[str]:
    """Opt every recipient with this number out of SMS (or back in), in one statement; the
    external ids of those that changed."""
    r = RECIPIENTS.c
    changed = session.execute(
        update(RECIPIENTS)
        .where(r.phone == phone, or_(r.sms_opt_out.is_(None), r.sms_opt_out.is_not(opted_out)))
        .values(sms_opt_out=opted_out, updated_at=now)
        .returning(r.external_id)
    )
    return sorted(str(external_id) for (external_id,) in changed)
