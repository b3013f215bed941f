"""Stored first answers of POSTs carrying an ``Idempotency-Key`` (per token, 24 hours).

A key is reserved before its request runs: the row is inserted, in its own transaction, with the
status :data:`IN_PROGRESS`, and the unique (actor, key) constraint lets only one request take it.
A second request with the key meanwhile finds the reservation and is told to come back; the first
then stores its answer over the reservation, or releases it when the answer is not one to keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import IDEMPOTENCY

REPLAY_WINDOW = timedelta(hours=24)
#: The status of a reservation whose request is still running (no HTTP status is 0).
IN_PROGRESS = 0
#: A reservation this old belongs to a request whose process died: another request may take it.
ABANDONED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status: int
    content_type: str | None
    body: str


def find_answer(session: Session, actor: str, key: str, now: datetime) -> StoredAnswer | None:
    c = IDEMPOTENCY.c
    row = session.execute(
        select(c.request_hash, c.status, c.content_type, c.body).where(
            c.actor == actor, c.key == key, c.created_at > now - REPLAY_WINDOW
        )
    ).first()
    return None if row is None else StoredAnswer(row.request_hash, row.status, row.content_type, row.body)


def reserve(session: Session, actor: str, key: str, request_hash: str, now: datetime) -> StoredAnswer | None:
    """Take the key for a request about to run: None when taken, else what holds it already (an
    answer, or a reservation with status :data:`IN_PROGRESS`). Commit before running the request.

    An expired answer and an abandoned reservation make way; of two requests racing for the key,
    the unique constraint lets one insert.
    """
    c = IDEMPOTENCY.c
    stale = or_(
        c.created_at <= now - REPLAY_WINDOW,
        (c.status == IN_PROGRESS) & (c.created_at <= now - ABANDONED_AFTER),
    )
    session.execute(delete(IDEMPOTENCY).where(c.actor == actor, c.key == key, stale))
    row = {
        "actor": actor,
        "key": key,
        "request_hash": request_hash,
        "status": IN_PROGRESS,
        "content_type": None,
        "body": "",
        "created_at": now,
    }
    if session.execute(insert_ignoring_duplicates(session, IDEMPOTENCY, [row])).first() is not None:
        return None
    # Gone again already (its request released it): still not ours; the caller is told to retry.
    return find_answer(session, actor, key, now) or StoredAnswer(request_hash, IN_PROGRESS, None, "")


def store_answer(session: Session, actor: str, key: str, answer: StoredAnswer) -> None:
    """The reserved key's first answer, kept for :data:`REPLAY_WINDOW`."""
    c = IDEMPOTENCY.c
    session.execute(
        update(IDEMPOTENCY)
        .where(c.actor == actor, c.key == key, c.status == IN_PROGRESS)
        .values(status=answer.status, content_type=answer.content_type, body=answer.body)
    )


def release(session: Session, actor: str, key: str) -> None:
    """Give the key back (the answer is not one to keep: the request may be sent again)."""
    c = IDEMPOTENCY.c
    session.execute(delete(IDEMPOTENCY).where(c.actor == actor, c.key == key, c.status == IN_PROGRESS))
