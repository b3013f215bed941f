"""A worker batch's hold on its deliveries: the claim, the rows it loads, the lease it keeps alive.

A batch claims its deliveries with one conditional UPDATE (pending -> ``sending``, the attempt
counted, a lease, and a new claim token in ``claim_id``). Every later write of that batch (its
outcomes in :mod:`planner.store.outcomes`, its lease extensions here, its releases through
:func:`planner.dispatch.reassign.reassign`) is conditional on the token: once a batch's lease ran
out and its rows were recovered (and perhaps claimed again), nothing it writes changes them.

Only the deliveries of the batch's own RQ job are claimed, and a retry only once it is due: a
duplicate job (an operator's requeue, a reconcile race) or a job run early by a host whose clock is
ahead cannot send a retry before its time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Engine, Row, and_, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from planner.core.status import DeliveryStatus
from planner.store.recipient_facts import RECIPIENT_COLUMNS
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS, RECIPIENTS

log = structlog.get_logger("planner.delivery")

#: A job may run a little before its instant (clock skew between hosts); not more, and never a retry.
EARLY_TOLERANCE = timedelta(seconds=5)
CLAIMABLE = (DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value)
_FIRST_TRIES = (DeliveryStatus.planned.value, DeliveryStatus.queued.value)

#: What a batch reads of each claimed delivery.
DELIVERY_COLUMNS = (
    "id", "recipient_id", "kind", "channel", "dedup_key", "local_date", "scheduled_at", "attempts", "data",
    "reason",
)  # fmt: skip
#: What a batch reads of each recipient: what the rules read, then what templates get.
RECIPIENT_MESSAGE_COLUMNS = (*RECIPIENT_COLUMNS, "locale", "attributes")

#: A claimed delivery and its recipient as plain rows (attribute access by column name): the batch is
#: only read, and ORM objects would cost more to build and read than the rest of the work on them.
DeliveryRow = Row[Any]
RecipientRow = Row[Any]


def new_claim_token() -> str:
    return uuid.uuid4().hex


def _due(now: datetime) -> Any:
    """Claimable now: a first try up to the early tolerance ahead, a retry only once it is due."""
    c = DELIVERIES.c
    return or_(
        and_(c.status.in_(_FIRST_TRIES), c.scheduled_at <= now + EARLY_TOLERANCE),
        and_(c.status == DeliveryStatus.retrying.value, c.scheduled_at <= now),
    )


def claim(
    session: Session,
    ids: Sequence[int],
    job_id: str | None,
    token: str,
    now: datetime,
    lease: timedelta,
) -> list[int]:
    """Claim the due deliveries of ``ids`` that carry ``job_id`` (any, when None); returns their ids."""
    c = DELIVERIES.c
    stmt = update(DELIVERIES).where(c.id.in_(list(ids)), c.status.in_(CLAIMABLE), _due(now))
    if job_id is not None:
        stmt = stmt.where(c.job_id == job_id)
    result = session.execute(
        stmt.values(
            status=DeliveryStatus.sending.value,
            attempts=c.attempts + 1,
            lease_until=now + lease,
            claim_id=token,
            updated_at=now,
        ).returning(c.id)
    )
    return [int(row[0]) for row in result]


@dataclass(frozen=True)
class EarlyRow:
    id: int
    status: str
    reason: str | None
    scheduled_at: datetime


def reached_early(session: Session, ids: Sequence[int], job_id: str | None, now: datetime) -> list[EarlyRow]:
    """Pending deliveries of this job it reached before their time: they need a job at that time."""
    c = DELIVERIES.c
    stmt = select(c.id, c.status, c.reason, c.scheduled_at).where(
        c.id.in_(sorted(ids)), c.status.in_(CLAIMABLE), ~_due(now)
    )
    if job_id is not None:
        stmt = stmt.where(c.job_id == job_id)
    return [EarlyRow(r.id, r.status, r.reason, r.scheduled_at) for r in session.execute(stmt)]


def load_batch(session: Session, claimed: Sequence[int]) -> tuple[list[DeliveryRow], dict[int, RecipientRow]]:
    """The claimed deliveries (in id order) and their recipients, in two statements."""
    deliveries = list(
        session.execute(
            select(*(DELIVERIES.c[name] for name in DELIVERY_COLUMNS))
            .where(DELIVERIES.c.id.in_(claimed))
            .order_by(DELIVERIES.c.id)
        )
    )
    recipient_ids = {d.recipient_id for d in deliveries}
    recipients = {
        r.id: r
        for r in session.execute(
            select(*(RECIPIENTS.c[name] for name in RECIPIENT_MESSAGE_COLUMNS)).where(
                RECIPIENTS.c.id.in_(recipient_ids)
            )
        )
    }
    return deliveries, recipients


def extend_lease(engine: Engine, ids: Sequence[int], token: str, until: datetime) -> set[int] | None:
    """Extend the lease of the batch's deliveries it still holds (``sending`` under its token);
    returns their ids, or None when the database cannot be reached (nothing was extended)."""
    c = DELIVERIES.c
    try:
        with engine.begin() as connection:
            kept = connection.execute(
                update(DELIVERIES)
                .where(c.id.in_(list(ids)), c.status == DeliveryStatus.sending.value, c.claim_id == token)
                .values(lease_until=until)
                .returning(c.id)
            )
            return {int(row[0]) for row in kept}
    except DBAPIError as exc:
        log.warning("lease not renewed; the database is unreachable", error=str(exc.orig))
        return None


def last_unknown_outcome(session: Session, delivery_id: int) -> datetime | None:
    """When the delivery's last attempt with an unknown outcome started (None if it never had one)."""
    e = DELIVERY_EVENTS.c
    row = session.execute(
        select(e.detail)
        .where(e.delivery_id == delivery_id, e.event == "outcome_unknown")
        .order_by(e.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    started = (row.detail or {}).get("attempt_started_at")
    return datetime.fromisoformat(started) if isinstance(started, str) else None
