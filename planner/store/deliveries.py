"""Delivery rows read for people and processes: a page of the list, the rows due now and what
became of them, every row of a recipient or of the database (the testing kit, the demo).

One delivery with its timeline, and the plain filtered list, are :mod:`planner.store.queries`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from planner.core.status import PENDING_STATUSES
from planner.store.models import OPEN_PREDICATE, OPEN_STATUSES, Delivery
from planner.store.queries import DeliveryFilter, after_cursor, delivery_dict, list_order
from planner.store.tables import DELIVERIES, RECIPIENTS

#: Ids per ``IN`` list when rows are read back by id.
_IDS_PER_READ = 1000


class DeliveryState(NamedTuple):
    id: int
    status: str
    reason: str | None
    scheduled_at: datetime


def due_ids(session: Session, now: datetime) -> list[int]:
    """The pending deliveries due at or before ``now``."""
    c = DELIVERIES.c
    pending = [s.value for s in PENDING_STATUSES]
    return list(session.scalars(select(c.id).where(c.status.in_(pending), c.scheduled_at <= now)))


def states_of(session: Session, ids: Sequence[int]) -> list[DeliveryState]:
    """Status, reason and due time of these deliveries, a thousand ids per statement."""
    c = DELIVERIES.c
    found: list[DeliveryState] = []
    for start in range(0, len(ids), _IDS_PER_READ):
        part = ids[start : start + _IDS_PER_READ]
        rows = session.execute(select(c.id, c.status, c.reason, c.scheduled_at).where(c.id.in_(part)))
        found += [DeliveryState(*row) for row in rows]
    return found


def deliveries_with_recipient(
    session: Session,
    *,
    recipient: str | None = None,
    kind: str | None = None,
    channel: str | None = None,
    status: str | None = None,
) -> list[tuple[Delivery, str]]:
    """Every delivery matching the filters given, with its recipient's client id, by due time."""
    c = DELIVERIES.c
    stmt = (
        select(Delivery, RECIPIENTS.c.external_id)
        .join(RECIPIENTS, RECIPIENTS.c.id == c.recipient_id)
        .order_by(c.scheduled_at, c.id)
    )
    if recipient is not None:
        stmt = stmt.where(RECIPIENTS.c.external_id == recipient)
    if kind is not None:
        stmt = stmt.where(c.kind == kind)
    if channel is not None:
        stmt = stmt.where(c.channel == channel)
    if status is not None:
        stmt = stmt.where(c.status == status)
    return [(delivery, str(external_id)) for delivery, external_id in session.execute(stmt)]


def all_deliveries(session: Session) -> list[Delivery]:
    return list(session.scalars(select(Delivery)))


def page_of_deliveries(session: Session, flt: DeliveryFilter, limit: int) -> list[dict[str, Any]]:
    """``limit`` deliveries matching ``flt``, in its order from its cursor on (keyset paging: a page
    deep in the list costs what the first does), as :func:`~planner.store.queries.delivery_dict`.
    The page's ids are found first, from the delivery table alone (an index walk); only they are
    joined to their recipients.
    """
    c = DELIVERIES.c
    ids = select(c.id)
    if flt.status:
        ids = ids.where(c.status == flt.status)
        if flt.status in OPEN_STATUSES:  # the open-status index (literal: SQLite's partial index needs it)
            ids = ids.where(text(OPEN_PREDICATE))
    if flt.recipient:
        wanted = select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == flt.recipient)
        ids = ids.where(c.recipient_id == wanted.scalar_subquery())
    if flt.kind:
        ids = ids.where(c.kind == flt.kind)
    if flt.channel:
        ids = ids.where(c.channel == flt.channel)
    if flt.since:
        ids = ids.where(c.scheduled_at >= flt.since)
    order = list_order(flt)
    page_ids = ids.where(*after_cursor(flt)).order_by(*order).limit(limit)
    stmt = (
        select(DELIVERIES, RECIPIENTS.c.external_id.label("recipient_external_id"))
        .join(RECIPIENTS, RECIPIENTS.c.id == c.recipient_id)
        .where(c.id.in_(page_ids.scalar_subquery()))
        .order_by(*order)
    )
    return [delivery_dict(row, row.recipient_external_id) for row in session.execute(stmt)]
