"""The one way a delivery gets a new RQ job: lock, update, timeline entry, in the caller's transaction.

Every path that hands a delivery to a fresh job (the outbox's requeue, a job that ran early, a worker
releasing a delivery it will not send now, lease recovery, an operator's retry, redrive and resume)
calls :func:`reassign` inside its own transaction, and enqueues the returned batches after that
transaction commits (:func:`planner.dispatch.reassign.enqueue_reassigned`). A crash between the two
leaves rows whose job is not in Redis; the reconcile enqueues them again under the same job id.

Every reassignment writes the same timeline entry shape: ``event`` with the new status and reason,
and a detail holding ``job_id``, ``next_attempt_at``, ``previous_status``, ``previous_reason``,
``previous_attempts``, ``previous_job_id`` and ``attempts`` (what was done to the count), plus
whatever the caller adds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.orm import Session

from planner.core.job_batches import JobBatch, assign_batches, batches_from_rows
from planner.core.status import DeliveryStatus
from planner.store import dead_letter_days
from planner.store.tables import DELIVERIES
from planner.store.timeline import event_row, record_events

#: What happens to ``attempts``: kept (a real attempt was spent), reset to 0 (a fresh budget, as
#: a redrive gives), or refunded by one (the claim counted an attempt that never reached a provider).
AttemptChange = Literal["keep", "reset", "refund"]

_KEEP: Any = object()

#: Statuses a delivery can be handed to a new job from without an operator's say-so.
PENDING = (DeliveryStatus.planned, DeliveryStatus.queued, DeliveryStatus.retrying)

_TABLE = DELIVERIES


@dataclass(frozen=True)
class Move:
    """One delivery to reassign: its id, the instant its new job is due, and per-row extras."""

    delivery_id: int
    at: datetime
    detail: Mapping[str, Any] | None = None
    #: A new ``last_error``; left unchanged unless given.
    last_error: Any = _KEEP


@dataclass(frozen=True)
class Reassigned:
    """What :func:`reassign` changed: the ids moved and the jobs to enqueue after the commit."""

    ids: list[int] = field(default_factory=list)
    batches: list[JobBatch] = field(default_factory=list)

    def __add__(self, other: Reassigned) -> Reassigned:
        return Reassigned(self.ids + other.ids, self.batches + other.batches)


def reassign(
    session: Session,
    moves: Sequence[Move],
    now: datetime,
    *,
    status: DeliveryStatus,
    reason: str | None,
    event: str,
    from_statuses: Collection[DeliveryStatus],
    attempts: AttemptChange = "keep",
    batch_size: int = 100,
    detail: Mapping[str, Any] | None = None,
    claim: str | None = None,
) -> Reassigned:
    """Give the deliveries of ``moves`` still in ``from_statuses`` a new job, inside ``session``'s
    transaction, and record one ``event`` per delivery. Rows in another status are left alone
    (another worker or operator got there first), and so are rows another batch holds when ``claim``
    (the token of the worker batch releasing them) is given. Call :func:`enqueue_reassigned` after
    the commit.
    """
    if not moves:
        return Reassigned()
    wanted = {m.delivery_id: m for m in moves}
    rows = _locked(session, sorted(wanted), from_statuses, claim)
    if not rows:
        return Reassigned()
    jobs = assign_batches(((wanted[r.id].at, r.channel, r.queue, r.id) for r in rows), batch_size)
    dead_letter_days.lock_counts(session, [r.id for r in rows if r.status == DeliveryStatus.dead.value])
    _update(session, rows, wanted, jobs, now, status=status, reason=reason, attempts=attempts)
    common = dict(detail or {})
    entries = (
        event_row(
            r.id,
            now,
            event,
            status=status.value,
            reason=reason,
            detail={
                **_previous(r, jobs[r.id], wanted[r.id].at, attempts),
                **common,
                **(wanted[r.id].detail or {}),
            },
        )
        for r in rows
    )
    record_events(session, entries)
    return Reassigned(
        ids=[r.id for r in rows],
        batches=batches_from_rows((r.id, jobs[r.id], r.queue, r.channel, wanted[r.id].at) for r in rows),
    )


def _locked(
    session: Session, ids: Sequence[int], from_statuses: Collection[DeliveryStatus], claim: str | None
) -> Sequence[Any]:
    """The rows still in ``from_statuses`` (and held under ``claim`` when given), locked until the
    commit: the status read here is the status the update replaces."""
    c = _TABLE.c
    stmt = (
        select(c.id, c.queue, c.channel, c.status, c.reason, c.attempts, c.job_id)
        .where(c.id.in_(ids), c.status.in_([s.value for s in from_statuses]))
        .order_by(c.id)
    )
    if claim is not None:
        stmt = stmt.where(c.claim_id == claim)
    return session.execute(stmt.with_for_update()).all()


def _previous(row: Any, job_id: str, at: datetime, attempts: AttemptChange) -> dict[str, Any]:
    """What a reassignment's timeline entry says of the new job and of the state it replaced."""
    return {
        "job_id": job_id,
        "next_attempt_at": at.isoformat(),
        "previous_status": row.status,
        "previous_reason": row.reason,
        "previous_attempts": row.attempts,
        "previous_job_id": row.job_id,
        "attempts": attempts,
    }


def _update(
    session: Session,
    rows: Sequence[Any],
    wanted: Mapping[int, Move],
    jobs: Mapping[object, str],
    now: datetime,
    *,
    status: DeliveryStatus,
    reason: str | None,
    attempts: AttemptChange,
) -> None:
    c = _TABLE.c
    values: dict[str, Any] = {
        "status": status.value,
        "reason": reason,
        "job_id": bindparam("new_job_id"),
        "scheduled_at": bindparam("new_at"),
        "lease_until": None,
        "claim_id": None,
        "updated_at": now,
    }
    if attempts == "reset":
        values["attempts"] = 0
    elif attempts == "refund":
        # Never below zero: a refund undoes the claim's increment, nothing more.
        values["attempts"] = case((c.attempts > 0, c.attempts - 1), else_=0)
    errors = {r.id: wanted[r.id].last_error for r in rows if wanted[r.id].last_error is not _KEEP}
    params = [
        {"b_id": r.id, "new_job_id": jobs[r.id], "new_at": wanted[r.id].at, "new_error": errors.get(r.id)}
        for r in rows
    ]
    # Rows with and without a new error are two executemany groups (one statement shape each).
    for with_error in (True, False):
        group = [p for p in params if (p["b_id"] in errors) is with_error]
        if not group:
            continue
        group_values = values | ({"last_error": bindparam("new_error")} if with_error else {})
        if not with_error:
            group = [{k: v for k, v in p.items() if k != "new_error"} for p in group]
        session.execute(update(_TABLE).where(c.id == bindparam("b_id")).values(**group_values), group)
