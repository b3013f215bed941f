"""Read-side queries shared by the CLI and the HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from planner.errors import NotFound
from planner.models import Delivery, DeliveryEvent, Recipient


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    recipient: str | None = None
    kind: str | None = None
    channel: str | None = None
    since: datetime | None = None
    limit: int | None = None


def delivery_dict(delivery: Delivery, recipient_external_id: str) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "dedup_key": delivery.dedup_key,
        "recipient_id": recipient_external_id,
        "subscription_id": delivery.subscription_id,
        "kind": delivery.kind,
        "channel": delivery.channel,
        "queue": delivery.queue,
        "local_date": delivery.local_date.isoformat() if delivery.local_date else None,
        "occurrence_at": delivery.occurrence_at.isoformat() if delivery.occurrence_at else None,
        "scheduled_at": delivery.scheduled_at.isoformat(),
        "status": delivery.status,
        "reason": delivery.reason,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "provider_message_id": delivery.provider_message_id,
        "job_id": delivery.job_id,
        "sent_at": delivery.sent_at.isoformat() if delivery.sent_at else None,
        "created_at": delivery.created_at.isoformat(),
        "updated_at": delivery.updated_at.isoformat(),
    }


def list_deliveries(session: Session, flt: DeliveryFilter) -> list[dict[str, Any]]:
    stmt = select(Delivery, Recipient.external_id).join(Recipient, Recipient.id == Delivery.recipient_id)  # type: ignore[arg-type]
    if flt.status:
        stmt = stmt.where(Delivery.status == flt.status)  # type: ignore[arg-type]
    if flt.recipient:
        stmt = stmt.where(Recipient.external_id == flt.recipient)  # type: ignore[arg-type]
    if flt.kind:
        stmt = stmt.where(Delivery.kind == flt.kind)  # type: ignore[arg-type]
    if flt.channel:
        stmt = stmt.where(Delivery.channel == flt.channel)  # type: ignore[arg-type]
    if flt.since:
        stmt = stmt.where(Delivery.scheduled_at >= flt.since)
    stmt = stmt.order_by(Delivery.scheduled_at, Delivery.id)  # type: ignore[arg-type]
    if flt.limit:
        stmt = stmt.limit(flt.limit)
    return [delivery_dict(d, ext) for d, ext in session.execute(stmt)]


def get_delivery(session: Session, delivery_id: int) -> dict[str, Any]:
    row = session.execute(
        select(Delivery, Recipient.external_id)
        .join(Recipient, Recipient.id == Delivery.recipient_id)  # type: ignore[arg-type]
        .where(Delivery.id == delivery_id)  # type: ignore[arg-type]
    ).first()
    if row is None:
        raise NotFound("delivery", delivery_id)
    data = delivery_dict(row[0], row[1])
    data["timeline"] = timeline(session, delivery_id)
    data["data"] = row[0].data
    return data


def timeline(session: Session, delivery_id: int) -> list[dict[str, Any]]:
    events: Sequence[DeliveryEvent] = session.scalars(
        select(DeliveryEvent).where(DeliveryEvent.delivery_id == delivery_id).order_by(DeliveryEvent.id)  # type: ignore[arg-type]
    ).all()
    return [
        {"at": e.at.isoformat(), "event": e.event, "status": e.status, "reason": e.reason, "detail": e.detail}
        for e in events
    ]


def status_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: int(count) for status, count in rows}
