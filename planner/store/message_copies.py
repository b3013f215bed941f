"""Kept copies of sent messages (``delivery_message``): written with the worker's outcome, read by
``deliveries show``, the API and the dashboard, dropped past their retention and on erasure.

The writes are fragments of the outcome statements of :mod:`planner.store.outcomes`: on PostgreSQL
one more common table expression of the same statement, on SQLite one more statement of the same
transaction, so a copy exists exactly when its outcome was written under the batch's claim. A
delivery sent again (redriven after it was dead) keeps the copy of its last attempt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from planner.core.message_copy import MessageCopy
from planner.store.tables import DELIVERIES, DELIVERY_MESSAGES

_COLUMNS = "delivery_id, kept_at, subject, body_text, body_html, headers, digest, size, cut"
_UPSERT = (
    "ON CONFLICT (delivery_id) DO UPDATE SET kept_at = excluded.kept_at, subject = excluded.subject, "
    "body_text = excluded.body_text, body_html = excluded.body_html, headers = excluded.headers, "
    "digest = excluded.digest, size = excluded.size, cut = excluded.cut"
)
#: PostgreSQL: a common table expression inserting the copy of the delivery that ``u`` updated.
PG_ONE_COPY = (
    f"m AS (INSERT INTO delivery_message ({_COLUMNS}) SELECT id, %(now)s, %(m_subject)s, %(m_text)s, "
    "%(m_html)s, CAST(%(m_headers)s AS json), CAST(%(m_digest)s AS json), %(m_size)s, %(m_cut)s "
    f"FROM u {_UPSERT})"
)
#: SQLite: the copy, in the transaction of its outcome (run only when the outcome was written).
SQLITE_ONE_COPY = (
    f"INSERT INTO delivery_message ({_COLUMNS}) VALUES (:id, :now, :m_subject, :m_text, :m_html, "
    f":m_headers, :m_digest, :m_size, :m_cut) {_UPSERT}"
)
#: PostgreSQL, several outcomes in one statement: the copies of the deliveries ``u`` updated.
PG_MANY_COPIES = (
    f"m AS (INSERT INTO delivery_message ({_COLUMNS}) SELECT c.id, :now, c.subject, c.body_text, "
    "c.body_html, c.headers, c.digest, c.size, c.cut FROM unnest(CAST(:m_ids AS integer[]), "
    "CAST(:m_subjects AS text[]), CAST(:m_texts AS text[]), CAST(:m_htmls AS text[]), "
    "CAST(:m_headers AS json[]), CAST(:m_digests AS json[]), CAST(:m_sizes AS integer[]), "
    "CAST(:m_cuts AS boolean[])) AS c(id, subject, body_text, body_html, headers, digest, size, cut) "
    f"JOIN u ON u.id = c.id {_UPSERT})"
)


def copy_params(copy: MessageCopy) -> dict[str, Any]:
    """The parameters of :data:`PG_ONE_COPY` and :data:`SQLITE_ONE_COPY` (JSON as text)."""
    return {
        "m_subject": copy.subject,
        "m_text": copy.text,
        "m_html": copy.html,
        "m_headers": json.dumps(dict(copy.headers)),
        "m_digest": json.dumps(copy.digest.as_dict()) if copy.digest is not None else None,
        "m_size": copy.size,
        "m_cut": copy.cut,
    }


def many_copy_params(ids: Sequence[int], copies: Sequence[MessageCopy]) -> dict[str, Any]:
    """The parameters of :data:`PG_MANY_COPIES`."""
    from psycopg.types.json import Json  # what SQLAlchemy's JSON type binds on psycopg

    return {
        "m_ids": list(ids),
        "m_subjects": [c.subject for c in copies],
        "m_texts": [c.text for c in copies],
        "m_htmls": [c.html for c in copies],
        "m_headers": [Json(dict(c.headers)) for c in copies],
        "m_digests": [Json(c.digest.as_dict() if c.digest is not None else None) for c in copies],
        "m_sizes": [c.size for c in copies],
        "m_cuts": [c.cut for c in copies],
    }


def message_copy(session: Session, delivery_id: int) -> dict[str, Any] | None:
    """The kept copy of a delivery's message, or None (not sent, or dropped past the retention)."""
    c = DELIVERY_MESSAGES.c
    row = session.execute(select(DELIVERY_MESSAGES).where(c.delivery_id == delivery_id)).first()
    if row is None:
        return None
    return {
        "kept_at": row.kept_at.isoformat(),
        "subject": row.subject,
        "text": row.body_text,
        "html": row.body_html,
        "headers": dict(row.headers or {}),
        "digest": row.digest,
        "size": row.size,
        "cut": bool(row.cut),
    }


def drop_old_copies(session: Session, kept_before: datetime, limit: int) -> int:
    """Drop up to ``limit`` copies kept before ``kept_before``, oldest first; returns how many."""
    c = DELIVERY_MESSAGES.c
    oldest = select(c.delivery_id).where(c.kept_at < kept_before).order_by(c.kept_at).limit(limit)
    result = session.execute(delete(DELIVERY_MESSAGES).where(c.delivery_id.in_(oldest.scalar_subquery())))
    return int(result.rowcount)  # type: ignore[attr-defined]


def erase_copies(session: Session, recipient_id: int) -> None:
    """Erasure: the copies of every message sent to the recipient (they hold names and addresses)."""
    of_recipient = select(DELIVERIES.c.id).where(DELIVERIES.c.recipient_id == recipient_id)
    session.execute(
        delete(DELIVERY_MESSAGES).where(DELIVERY_MESSAGES.c.delivery_id.in_(of_recipient.scalar_subquery()))
    )
