"""Digest events: stored, bound to the digest delivery that carries them, read for its template, dropped.

The binding point is the send claim. When a worker claims a digest delivery it binds, in the claim's
own transaction, every free event of the recipient and kind (one conditional UPDATE); a retry, a
recovered lease or a quiet-hours deferral claims the same delivery again and finds its events
already bound, so it renders exactly those. Events arriving after the claim stay free and go into
the next digest. An event is *free* when it is unbound, or bound to a delivery that ended without a
send (dead, suppressed, skipped, missed, cancelled): such a delivery lets its events go to the next
digest without any release step, so no path that ends a delivery can lose them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from planner.core.status import FINAL_STATUSES, DeliveryStatus
from planner.store.dialect import dialect_of
from planner.store.tables import DELIVERIES, DIGEST_DROPS, DIGEST_EVENTS, SUBSCRIPTIONS

E = DIGEST_EVENTS.c
D = DELIVERIES.c

#: A delivery in one of these let its events go: they count as free again.
_RELEASED = sorted(s.value for s in FINAL_STATUSES - {DeliveryStatus.sent})


@dataclass(frozen=True)
class DigestTarget:
    """A claimed digest delivery: whose events of which kind it collects."""

    delivery_id: int
    recipient_id: int
    kind: str


@dataclass
class DigestContents:
    """What a digest's template receives: the oldest events (capped) and how many there are."""

    events: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    @property
    def more(self) -> int:
        return self.total - len(self.events)


def _owned_by(statuses: Sequence[str]) -> ColumnElement[bool]:
    """The event's delivery exists and is in one of ``statuses`` (a primary-key lookup per event)."""
    return exists().where(D.id == E.delivery_id, D.status.in_(statuses))


def _free() -> ColumnElement[bool]:
    return or_(E.delivery_id.is_(None), _owned_by(_RELEASED))


@dataclass(frozen=True)
class StoredEvent:
    """An event as the database holds it: a repeat's answer is the first event's, not the repeat's."""

    id: int
    created: bool
    occurred_at: datetime
    received_at: datetime


def insert_event(session: Session, row: dict[str, Any]) -> StoredEvent:
    """Store an event; with an idempotency key already used for the recipient and kind, the
    first event, not created (the unique constraint decides, so concurrent posts are safe)."""
    key = row.get("idempotency_key")
    if key is None:
        new = int(session.execute(insert(DIGEST_EVENTS).values(row).returning(E.id)).scalar_one())
        return StoredEvent(new, True, row["occurred_at"], row["received_at"])
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    dialect_insert = pg_insert if dialect_of(session) == "postgresql" else sqlite_insert
    new_id = session.scalar(
        dialect_insert(DIGEST_EVENTS).values(row).on_conflict_do_nothing().returning(E.id)
    )
    if new_id is not None:
        return StoredEvent(int(new_id), True, row["occurred_at"], row["received_at"])
    existing = session.execute(
        select(E.id, E.occurred_at, E.received_at).where(
            E.recipient_id == row["recipient_id"], E.kind == row["kind"], E.idempotency_key == key
        )
    ).one()  # the conflicting row is committed: the insert waited for it
    return StoredEvent(int(existing.id), False, existing.occurred_at, existing.received_at)


def digest_channels(session: Session, recipient_id: int, kind: str) -> list[str]:
    """The channels of the recipient's active digest subscriptions of ``kind``: where its events go."""
    s = SUBSCRIPTIONS.c
    found = session.scalars(
        select(s.channel)
        .where(s.recipient_id == recipient_id, s.kind == kind, s.digest.is_(True), s.active.is_(True))
        .order_by(s.channel)
    )
    return [str(channel) for channel in found]


def digest_targets(session: Session, delivery_ids: Sequence[int]) -> list[DigestTarget]:
    """Which of these deliveries belong to a digest subscription."""
    if not delivery_ids:
        return []
    s = SUBSCRIPTIONS.c
    rows = session.execute(
        select(D.id, D.recipient_id, D.kind)
        .join(SUBSCRIPTIONS, s.id == D.subscription_id)
        .where(D.id.in_(list(delivery_ids)), s.digest.is_(True))
        .order_by(D.id)
    )
    return [DigestTarget(int(r.id), int(r.recipient_id), str(r.kind)) for r in rows]


def bind_events(session: Session, targets: Sequence[DigestTarget], now: datetime) -> None:
    """Bind the free events of each target's recipient and kind to it, unless it already has events
    (a re-claim keeps the events of the first claim). Call inside the claim's transaction.

    One UPDATE for the whole batch; two digests of one recipient and kind in the batch (email and
    SMS) leave every event to the lower delivery id. The ``free`` condition is re-checked on each
    row a concurrent claim bound first, so an event is bound to one live delivery at most.
    """
    if not targets:
        return
    ids = [t.delivery_id for t in targets]
    bound = set(session.scalars(select(E.delivery_id).where(E.delivery_id.in_(ids)).distinct()))
    fresh = [i for i in ids if i not in bound]
    if not fresh:
        return
    same_stream = and_(D.id.in_(fresh), D.recipient_id == E.recipient_id, D.kind == E.kind)
    session.execute(
        update(DIGEST_EVENTS)
        .where(E.received_at <= now, _free(), exists().where(same_stream))
        .values(delivery_id=select(func.min(D.id)).where(same_stream).scalar_subquery())
    )


def load_contents(session: Session, delivery_ids: Sequence[int], cap: int) -> dict[int, DigestContents]:
    """Each delivery's bound events, oldest first and at most ``cap``, with their total: one query
    however many events there are (the window functions count and cut in the database)."""
    contents = {i: DigestContents() for i in delivery_ids}
    if not delivery_ids:
        return contents
    ranked = (
        select(
            E.id,
            E.delivery_id,
            E.data,
            E.occurred_at,
            func.row_number().over(partition_by=E.delivery_id, order_by=(E.occurred_at, E.id)).label("n"),
            func.count().over(partition_by=E.delivery_id).label("total"),
        )
        .where(E.delivery_id.in_(list(delivery_ids)))
        .subquery()
    )
    rows = session.execute(select(ranked).where(ranked.c.n <= cap).order_by(ranked.c.delivery_id, ranked.c.n))
    for r in rows:
        item = contents[int(r.delivery_id)]
        item.total = int(r.total)
        item.events.append({"id": int(r.id), "occurred_at": r.occurred_at, "data": r.data or {}})
    return contents


def drop_expired(session: Session, cutoff: datetime, now: datetime) -> tuple[int, int]:
    """Delete events received before ``cutoff`` that no pending digest owns; (never sent, sent).

    Events of a digest still to be sent are kept, so a retry renders what the first attempt did.
    A row in ``digest_drop`` keeps the counts (the metrics read them).
    """
    old = E.received_at < cutoff
    sent = _deleted(session, old, _owned_by([DeliveryStatus.sent.value]))
    unsent = _deleted(session, old, _free())
    if sent or unsent:
        session.execute(insert(DIGEST_DROPS).values(at=now, unsent=unsent, sent=sent))
    return int(unsent), int(sent)


def _deleted(session: Session, *conditions: ColumnElement[bool]) -> int:
    result = session.execute(delete(DIGEST_EVENTS).where(*conditions))
    return int(result.rowcount)  # type: ignore[attr-defined]


def digest_counts(session: Session) -> tuple[int, dict[str, int]]:
    """Events waiting for a digest, and the events dropped so far (by whether they were sent)."""
    waiting = session.scalar(select(func.count()).select_from(DIGEST_EVENTS).where(_free())) or 0
    c = DIGEST_DROPS.c
    totals = select(func.coalesce(func.sum(c.unsent), 0), func.coalesce(func.sum(c.sent), 0))
    drops = session.execute(totals).one()
    return int(waiting), {"unsent": int(drops[0]), "sent": int(drops[1])}


def digest_state(session: Session, recipient_id: int, kind: str, delivery_id: int | None) -> tuple[int, int]:
    """For ``explain``: the events bound to a digest delivery, and those waiting for the next one."""
    bound = 0
    if delivery_id is not None:
        bound = session.scalar(select(func.count()).where(E.delivery_id == delivery_id)) or 0
    waiting = session.scalar(
        select(func.count()).where(E.recipient_id == recipient_id, E.kind == kind, _free())
    )
    return int(bound), int(waiting or 0)


def event_data_of(session: Session, delivery_id: int) -> list[dict[str, Any]]:
    """The ``data`` of the events bound to this digest delivery, oldest first (``{}`` for none)."""
    e = DIGEST_EVENTS.c
    rows = session.scalars(select(e.data).where(e.delivery_id == delivery_id).order_by(e.occurred_at, e.id))
    return [dict(data or {}) for data in rows]
