"""Stored first answers of POSTs carrying an ``Idempotency-Key`` (per token, 24 hours).

A key is reserved before its request runs: the row is inserted, in its own transaction, with the
status :data:`IN_PROGRESS`, and the unique (actor, key) constraint lets only one request take it.
A second request with the key meanwhile finds the reservation and is told to come back; the first
then stores its answer over the reservation, or releases it when the answer is not one to keep.

A reservation is never released once its request's work committed: while the request runs
(:func:`marking_carried_out`), every transaction that commits marks it :data:`CARRIED_OUT` in that
same transaction, so whatever goes wrong afterwards (an answer that cannot be written, the database
gone before the audit entry), the answer given is kept and a retry gets it again instead of doing
the work twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, event, or_, select, update
from sqlalchemy.orm import Session

from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import IDEMPOTENCY

REPLAY_WINDOW = timedelta(hours=24)
#: The status of a reservation whose request is still running (no HTTP status is 0).
IN_PROGRESS = 0
#: The status of a reservation whose request committed some work and has not stored its answer yet:
#: never released, as the request must not run again.
CARRIED_OUT = 1
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
        .where(c.actor == actor, c.key == key, c.status.in_((IN_PROGRESS, CARRIED_OUT)))
        .values(status=answer.status, content_type=answer.content_type, body=answer.body)
    )


def release(session: Session, actor: str, key: str, answer: StoredAnswer | None = None) -> None:
    """Give the key back: the answer is not one to keep, the request may be sent again. Unless its
    work committed (:data:`CARRIED_OUT`): then ``answer`` is kept, as any other first answer."""
    c = IDEMPOTENCY.c
    session.execute(delete(IDEMPOTENCY).where(c.actor == actor, c.key == key, c.status == IN_PROGRESS))
    if answer is not None:
        store_answer(session, actor, key, answer)


#: The reservation (actor, key) of the request running in this context, while it runs.
_running: ContextVar[tuple[str, str] | None] = ContextVar("planner_idempotency_running", default=None)


@contextmanager
def marking_carried_out(actor: str, key: str) -> Iterator[None]:
    """While the block runs, each transaction committed in this context (and in the tasks and
    worker threads it starts, which copy the context) marks the reservation :data:`CARRIED_OUT`."""
    token = _running.set((actor, key))
    try:
        yield
    finally:
        _running.reset(token)


@event.listens_for(Session, "before_commit")
def _mark_carried_out(session: Session) -> None:
    held = _running.get()
    if held is None:
        return
    c = IDEMPOTENCY.c
    session.execute(
        update(IDEMPOTENCY)
        .where(c.actor == held[0], c.key == held[1], c.status == IN_PROGRESS)
        .values(status=CARRIED_OUT)
    )
