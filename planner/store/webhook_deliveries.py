"""The webhook outbox from the workers' side: claim what is due, record each attempt, redeliver.

A claim is one conditional UPDATE over the due rows of enabled endpoints (on PostgreSQL those rows
are picked ``FOR UPDATE SKIP LOCKED``, so workers split them instead of queueing), giving each a new
claim token and a lease: ``next_attempt_at`` moves to the end of the lease, so a row whose worker
died is due again once the lease is over, and is sent again under the same ``webhook-id``. An
attempt's outcome changes the row only while it is still ``sending`` under that token; the attempt
itself is always kept (it happened).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from planner.errors import NotFound, StateConflict
from planner.store.dialect import dialect_of
from planner.store.tables import WEBHOOK_ATTEMPTS, WEBHOOK_ENDPOINTS, WEBHOOK_MESSAGES
from planner.store.webhook_endpoints import record_result

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"
OPEN = (PENDING, SENDING)
STATUSES = (PENDING, SENDING, DELIVERED, FAILED)


@dataclass(frozen=True)
class ClaimedMessage:
    id: int
    msg_id: str
    endpoint_id: int
    event_type: str
    payload: str
    #: This attempt's number (counted at the claim).
    attempt: int


def claim_due(
    session: Session, token: str, now: datetime, lease: timedelta, limit: int
) -> list[ClaimedMessage]:
    """Claim up to ``limit`` due messages of enabled endpoints, oldest due first."""
    m, e = WEBHOOK_MESSAGES.c, WEBHOOK_ENDPOINTS.c
    due = (
        select(m.id)
        .join(WEBHOOK_ENDPOINTS, e.id == m.endpoint_id)
        .where(m.status.in_(OPEN), m.next_attempt_at <= now, e.enabled.is_(True))
        .order_by(m.next_attempt_at)
        .limit(limit)
    )
    if dialect_of(session) == "postgresql":
        due = due.with_for_update(of=WEBHOOK_MESSAGES, skip_locked=True)
    rows = session.execute(
        update(WEBHOOK_MESSAGES)
        .where(m.id.in_(due.scalar_subquery()), m.status.in_(OPEN), m.next_attempt_at <= now)
        .values(
            status=SENDING,
            claim_id=token,
            attempts=m.attempts + 1,
            next_attempt_at=now + lease,
            updated_at=now,
        )
        .returning(m.id, m.msg_id, m.endpoint_id, m.event_type, m.payload, m.attempts)
    )
    return sorted((ClaimedMessage(*row) for row in rows), key=lambda c: c.id)


@dataclass(frozen=True)
class AttemptResult:
    started: datetime
    succeeded: bool
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None


def record_attempt(
    session: Session,
    claimed: ClaimedMessage,
    token: str,
    result: AttemptResult,
    now: datetime,
    next_at: datetime | None,
    disable_after: timedelta,
) -> tuple[bool, bool]:
    """Keep the attempt, and settle the message if this claim still holds it: ``delivered``, due
    again at ``next_at``, or ``failed`` when there is no next attempt. Returns (still held, the
    endpoint was disabled by this failure)."""
    m = WEBHOOK_MESSAGES.c
    session.execute(
        insert(WEBHOOK_ATTEMPTS).values(
            message_id=claimed.id,
            endpoint_id=claimed.endpoint_id,
            attempt=claimed.attempt,
            at=result.started,
            succeeded=result.succeeded,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_excerpt=result.excerpt,
            error=result.error,
        )
    )
    values: dict[str, Any] = {
        "claim_id": None, "last_status_code": result.status_code, "last_error": result.error,
        "updated_at": now,
    }  # fmt: skip
    if result.succeeded:
        values |= {"status": DELIVERED, "delivered_at": now}
    elif next_at is None:
        values |= {"status": FAILED}
    else:
        values |= {"status": PENDING, "next_attempt_at": next_at}
    held = session.execute(
        update(WEBHOOK_MESSAGES)
        .where(m.id == claimed.id, m.status == SENDING, m.claim_id == token)
        .values(**values)
        .returning(m.id)
    ).first()
    disabled = record_result(session, claimed.endpoint_id, result.succeeded, now, disable_after)
    return held is not None, disabled


_MESSAGE_COLUMNS = (
    "id", "msg_id", "endpoint_id", "event_type", "status", "attempts", "next_attempt_at",
    "last_status_code", "last_error", "delivered_at", "created_at", "updated_at",
)  # fmt: skip


def _message(row: Any) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in _MESSAGE_COLUMNS}
    for name in ("next_attempt_at", "delivered_at", "created_at", "updated_at"):
        data[name] = data[name].isoformat() if data[name] is not None else None
    if data["status"] not in OPEN:
        data["next_attempt_at"] = None
    return data


def messages(
    session: Session, endpoint_id: int, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """An endpoint's messages, newest first."""
    m = WEBHOOK_MESSAGES.c
    query = select(*(m[name] for name in _MESSAGE_COLUMNS)).where(m.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(m.status == status)
    return [_message(row) for row in session.execute(query.order_by(m.id.desc()).limit(limit))]


def message(session: Session, message_id: int) -> dict[str, Any]:
    """One message with its payload (the body as sent)."""
    m = WEBHOOK_MESSAGES.c
    row = session.execute(
        select(*(m[name] for name in _MESSAGE_COLUMNS), m.payload).where(m.id == message_id)
    ).first()
    if row is None:
        raise NotFound("webhook message", message_id)
    return _message(row) | {"payload": row.payload}


def attempts(
    session: Session, endpoint_id: int | None = None, message_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Attempts, newest first: of one endpoint, or of one message."""
    a = WEBHOOK_ATTEMPTS.c
    query = select(WEBHOOK_ATTEMPTS, WEBHOOK_MESSAGES.c.msg_id, WEBHOOK_MESSAGES.c.event_type).join(
        WEBHOOK_MESSAGES, WEBHOOK_MESSAGES.c.id == a.message_id
    )
    if endpoint_id is not None:
        query = query.where(a.endpoint_id == endpoint_id)
    if message_id is not None:
        query = query.where(a.message_id == message_id)
    rows = session.execute(query.order_by(a.id.desc()).limit(limit))
    return [dict(row._mapping) | {"at": row.at.isoformat(), "succeeded": bool(row.succeeded)} for row in rows]


def redeliver(session: Session, message_id: int, now: datetime) -> dict[str, Any]:
    """Send a message again now, with a fresh set of attempts, under the same ``webhook-id``.
    Refused while it is being sent, or while its endpoint is disabled (nothing would send it)."""
    m, e = WEBHOOK_MESSAGES.c, WEBHOOK_ENDPOINTS.c
    found = session.execute(
        select(m.status, e.enabled).join(WEBHOOK_ENDPOINTS, e.id == m.endpoint_id).where(m.id == message_id)
    ).first()
    if found is None:
        raise NotFound("webhook message", message_id)
    if not found.enabled:
        raise StateConflict("endpoint", "disabled", "an enabled endpoint: enable it first, then redeliver")
    changed = session.execute(
        update(WEBHOOK_MESSAGES)
        .where(m.id == message_id, m.status != SENDING)
        .values(status=PENDING, attempts=0, next_attempt_at=now, claim_id=None, updated_at=now)
        .returning(m.id)
    ).first()
    if changed is None:
        raise StateConflict("status", SENDING, "a message not being sent right now (try again in a moment)")
    return message(session, message_id)


def status_counts(session: Session, *, waiting_only: bool = False) -> list[tuple[int, str, int]]:
    """(endpoint id, status, messages) for every endpoint and status present. ``waiting_only``:
    pending and sending only, read from the claim's partial index (what a readiness probe or a
    scrape can afford; the settled rows are most of the table)."""
    m = WEBHOOK_MESSAGES.c
    query = select(m.endpoint_id, m.status, func.count()).group_by(m.endpoint_id, m.status)
    if waiting_only:
        query = query.where(m.status.in_(OPEN))
    return [(int(e), str(s), int(n)) for e, s, n in session.execute(query)]


def drop_settled(session: Session, before: datetime, limit: int = 5000) -> int:
    """Forget up to ``limit`` delivered or failed messages (and their attempts) last changed before
    ``before``; returns how many."""
    m = WEBHOOK_MESSAGES.c
    oldest = (
        select(m.id)
        .where(m.status.in_((DELIVERED, FAILED)), m.updated_at < before)
        .order_by(m.id)
        .limit(limit)
    )
    result = session.execute(delete(WEBHOOK_MESSAGES).where(m.id.in_(oldest.scalar_subquery())))
    return int(result.rowcount)  # type: ignore[attr-defined]
