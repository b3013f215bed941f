"""The database half of the outbox's reconciler (:mod:`planner.dispatch.reconcile`): the job ids of
pending deliveries stamped in a time range, the rows of the jobs Redis lost, and pending rows that
never got a job id.

Pending rows are matched by the partial index's own predicate, as literal SQL: SQLite uses a
partial index only when the query's terms imply its WHERE, which a bound ``status IN (?, ?, ?)``
never does (it read every delivery instead: 0.2 s at 500,000). A test checks the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, TextClause, select, text
from sqlalchemy.orm import Session

from planner.core.status import DeliveryStatus
from planner.store.models import PENDING_PREDICATE
from planner.store.tables import DELIVERIES

#: The statuses of :data:`PENDING_PREDICATE`: a retry waiting in RQ's schedule is as easy to lose
#: as a first attempt.
PENDING = (DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value)


def _pending_stamped(until: datetime, after: datetime | None) -> tuple[TextClause, ColumnElement[bool]]:
    """Pending rows stamped (``updated_at``) at or before ``until`` and, when given, after ``after``
    (served by the partial index on pending rows' updated_at, ix_delivery_pending_updated)."""
    c = DELIVERIES.c
    stamped = c.updated_at <= until
    if after is not None:
        stamped = stamped & (c.updated_at > after)
    return text(PENDING_PREDICATE), stamped


def pending_jobs(session: Session, until: datetime, after: datetime | None) -> list[tuple[str | None, str]]:
    """The distinct (job id, queue) of the pending rows stamped in ``(after, until]``; a None job
    id stands for rows that never got one."""
    c = DELIVERIES.c
    rows = session.execute(select(c.job_id, c.queue).where(*_pending_stamped(until, after)).distinct())
    return [(job_id, queue) for job_id, queue in rows]


def pending_rows_of_jobs(session: Session, job_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """(id, job id, queue, channel, scheduled_at) of the pending deliveries these jobs carry."""
    c = DELIVERIES.c
    rows = session.execute(
        select(c.id, c.job_id, c.queue, c.channel, c.scheduled_at).where(
            c.job_id.in_(list(job_ids)), c.status.in_(PENDING)
        )
    )
    return [tuple(row) for row in rows]


def jobless_pending_ids(session: Session, until: datetime, after: datetime | None) -> list[int]:
    """The ids of the pending rows stamped in ``(after, until]`` that have no job id."""
    c = DELIVERIES.c
    return list(session.scalars(select(c.id).where(*_pending_stamped(until, after), c.job_id.is_(None))))
