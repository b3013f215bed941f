"""Stored first answers of POSTs carrying an ``Idempotency-Key`` (per token, 24 hours)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import IDEMPOTENCY

REPLAY_WINDOW = timedelta(hours=24)


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


def store_answer(session: Session, actor: str, key: str, answer: StoredAnswer, now: datetime) -> None:
    """Keep the first answer; an expired one of the same key makes way (a concurrent first wins)."""
    c = IDEMPOTENCY.c
    session.execute(
        delete(IDEMPOTENCY).where(c.actor == actor, c.key == key, c.created_at <= now - REPLAY_WINDOW)
    )
    row = {
        "actor": actor,
        "key": key,
        "request_hash": answer.request_hash,
        "status": answer.status,
        "content_type": answer.content_type,
        "body": answer.body,
        "created_at": now,
    }
    session.execute(insert_ignoring_duplicates(session, IDEMPOTENCY, [row]))
