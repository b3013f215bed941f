"""The rows of an operator's actions on deliveries: retry, redrive, resume (locked, then handed to
:func:`planner.dispatch.reassign.reassign` by the caller) and cancel."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from planner.core.status import PENDING_STATUSES, DeliveryStatus
from planner.store.queries import DeliveryFilter, filter_conditions
from planner.store.tables import DELIVERIES


class HeldDelivery(NamedTuple):
    """A delivery row locked until the transaction ends."""

    id: int
    queue: str
    channel: str
    kind: str
    status: str
    attempts: int
    reason: str | None
    job_id: str | None


def lock_deliveries(
    session: Session,
    statuses: Collection[str],
    *,
    ids: Collection[int] | None = None,
    kind: str | None = None,
) -> list[HeldDelivery]:
    """The deliveries in ``statuses`` (of these ``ids``, of this ``kind``, when given) in id order,
    locked until the transaction ends."""
    c = DELIVERIES.c
    stmt = select(c.id, c.queue, c.channel, c.kind, c.status, c.attempts, c.reason, c.job_id).where(
        c.status.in_(list(statuses))
    )
    if ids is not None:
        stmt = stmt.where(c.id.in_(list(ids)))
    if kind is not None:
        stmt = stmt.where(c.kind == kind)
    return [HeldDelivery(*row) for row in session.execute(stmt.order_by(c.id).with_for_update())]


def _matching(stmt: Any, statuses: Collection[str], flt: DeliveryFilter) -> Any:
    """``stmt`` limited to the deliveries in ``statuses`` that match ``flt`` (its status aside)."""
    stmt = stmt.where(DELIVERIES.c.status.in_(list(statuses)))
    return stmt.where(*filter_conditions(flt))


def count_matching(session: Session, statuses: Collection[str], flt: DeliveryFilter) -> int:
    """How many deliveries in ``statuses`` match ``flt``."""
    return int(session.scalar(_matching(select(func.count()).select_from(DELIVERIES), statuses, flt)) or 0)


def lock_matching(
    session: Session, statuses: Collection[str], flt: DeliveryFilter, limit: int
) -> list[HeldDelivery]:
    """The first ``limit`` (by id) deliveries in ``statuses`` matching ``flt``, locked until the
    transaction ends."""
    c = DELIVERIES.c
    columns = select(c.id, c.queue, c.channel, c.kind, c.status, c.attempts, c.reason, c.job_id)
    stmt = _matching(columns, statuses, flt).order_by(c.id).limit(limit).with_for_update()
    return [HeldDelivery(*row) for row in session.execute(stmt)]


def status_of(session: Session, delivery_id: int) -> str | None:
    """The delivery's status, or None when there is no such delivery."""
    status = session.scalar(select(DELIVERIES.c.status).where(DELIVERIES.c.id == delivery_id))
    return None if status is None else str(status)


def cancel_if_pending(session: Session, delivery_id: int, reason: str, now: datetime) -> bool:
    """Cancel the delivery if it is pending (planned, queued, retrying), in one conditional update;
    False when it is not (or does not exist). Its dedup key is kept: the occurrence stays planned."""
    c = DELIVERIES.c
    cancelled = session.execute(
        update(DELIVERIES)
        .where(c.id == delivery_id, c.status.in_([s.value for s in PENDING_STATUSES]))
        .values(status=DeliveryStatus.cancelled.value, reason=reason, lease_until=None, updated_at=now)
        .returning(c.id)
    ).first()
    return cancelled is not None


def waiting_on_pause(session: Session, scope: str, value: str) -> list[tuple[int, str, str]]:
    """(id, channel, kind) of the queued deliveries a pause of ``scope`` (``channel``, ``kind``)
    ``value`` holds back."""
    c = DELIVERIES.c
    rows = session.execute(
        select(c.id, c.channel, c.kind).where(
            c.status == DeliveryStatus.queued.value, c.reason == "paused", c[scope] == value
        )
    )
    return [(int(i), str(channel), str(kind)) for i, channel, kind in rows]
