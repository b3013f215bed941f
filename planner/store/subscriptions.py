"""Subscriptions in the database: a recipient's, written in batches, and whether any is due."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from planner.store.models import Subscription
from planner.store.tables import SUBSCRIPTIONS


def subscriptions_of(session: Session, recipient_ids: Collection[int]) -> list[Subscription]:
    """Every subscription (active or not) of these recipients, in id order."""
    c = SUBSCRIPTIONS.c
    stmt = select(Subscription).where(c.recipient_id.in_(list(recipient_ids))).order_by(c.id)
    return list(session.scalars(stmt))


def recipient_subscriptions(
    session: Session, recipient_id: int, kind: str | None = None
) -> list[Subscription]:
    """One recipient's subscriptions (of ``kind`` when given), active or not, by kind and channel."""
    c = SUBSCRIPTIONS.c
    stmt = select(Subscription).where(c.recipient_id == recipient_id)
    if kind is not None:
        stmt = stmt.where(c.kind == kind)
    return list(session.scalars(stmt.order_by(c.kind, c.channel)))


def insert_subscriptions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New subscriptions, in one statement."""
    if rows:
        session.execute(insert(SUBSCRIPTIONS), list(rows))


def update_subscriptions(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Existing subscriptions, each row holding its ``id`` and the columns to set, in one statement."""
    if rows:
        session.execute(update(Subscription), list(rows))


def any_due(session: Session, by: datetime) -> bool:
    """Whether an active subscription's next occurrence is at or before ``by``."""
    c = SUBSCRIPTIONS.c
    found = session.execute(select(c.id).where(c.active.is_(True), c.next_at <= by).limit(1)).first()
    return found is not None
