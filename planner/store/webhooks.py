"""Emitting webhook events: the outbox rows, written in the caller's transaction.

An event becomes one ``webhook_message`` row per enabled endpoint that wants its type, chosen by
the INSERT itself (``INSERT ... SELECT`` over the endpoints), so an endpoint disabled or removed
meanwhile gets nothing and a removal cannot make the emitting transaction fail: on PostgreSQL the
endpoint rows are read ``FOR KEY SHARE`` (a removal in progress is waited for, then skipped; one
that comes later waits for this commit and takes the new rows with it). SQLite has one writer at a
time. Emitters first ask :func:`planner.store.webhook_endpoints.wanted_types` and build no event
of a type nobody wants.

:data:`PG_ONE` and :data:`SQLITE_ONE` are the single-event form for the worker's outcome write
(:mod:`planner.store.outcomes`), which sends its own statements to the driver.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from planner.core.webhook_events import WebhookEvent
from planner.store.dialect import dialect_of, utc_binder
from planner.store.tables import RECIPIENTS

_COLUMNS = (
    "INSERT INTO webhook_message (msg_id, endpoint_id, event_type, payload, status, attempts, "
    "next_attempt_at, created_at, updated_at) "
)
_PG_WANTS = "CAST(ep.event_types AS jsonb) @> jsonb_build_array(CAST({type} AS varchar))"
_SQLITE_WANTS = "EXISTS (SELECT 1 FROM json_each(ep.event_types) AS k WHERE k.value = {type})"

#: One event after a conditional update named ``u`` in the same statement (a CTE): rows only when
#: ``u`` changed its row. Parameters: w_id, w_type, w_payload, w_at, now.
PG_ONE = (
    f"{_COLUMNS}SELECT %(w_id)s, ep.id, %(w_type)s, %(w_payload)s, 'pending', 0, %(now)s, %(w_at)s, "
    "%(now)s FROM webhook_endpoint AS ep WHERE EXISTS (SELECT 1 FROM u) AND ep.enabled AND "
    + _PG_WANTS.format(type="%(w_type)s")
    + " FOR KEY SHARE OF ep"
)
#: One event, after the caller's update (same transaction). Parameters as :data:`PG_ONE`.
SQLITE_ONE = (
    f"{_COLUMNS}SELECT :w_id, ep.id, :w_type, :w_payload, 'pending', 0, :now, :w_at, :now "
    "FROM webhook_endpoint AS ep WHERE ep.enabled AND " + _SQLITE_WANTS.format(type=":w_type")
)

# Binary arrays (``%(name)b``), as the planner's chunk insert sends them: psycopg would escape every
# payload's quotes into a text array otherwise (planner.store.plan_writes).
_PG_MANY = (
    f"{_COLUMNS}SELECT t.msg_id, ep.id, t.event_type, t.payload, 'pending', 0, %(now)s, t.at, %(now)s "
    "FROM unnest(%(ids)b::varchar[], %(types)b::varchar[], %(payloads)b::text[], %(ats)b::timestamptz[]) "
    "AS t(msg_id, event_type, payload, at) JOIN webhook_endpoint AS ep ON ep.enabled AND "
    + _PG_WANTS.format(type="t.event_type")
    + " FOR KEY SHARE OF ep"
)
_SQLITE_MANY = (
    f"{_COLUMNS}SELECT json_extract(t.value, '$[0]'), ep.id, json_extract(t.value, '$[1]'), "
    "json_extract(t.value, '$[2]'), 'pending', 0, :now, json_extract(t.value, '$[3]'), :now "
    "FROM json_each(:rows) AS t JOIN webhook_endpoint AS ep ON ep.enabled AND "
    + _SQLITE_WANTS.format(type="json_extract(t.value, '$[1]')")
)


def one_params(event: WebhookEvent, instant: Callable[[datetime | None], Any]) -> dict[str, Any]:
    """The parameters of :data:`PG_ONE` / :data:`SQLITE_ONE` for ``event`` (``instant`` binds an
    instant as the driver takes it), besides ``now``."""
    return {"w_id": event.msg_id, "w_type": event.type, "w_payload": event.payload, "w_at": instant(event.at)}


def emit(session: Session, events: Sequence[WebhookEvent], now: datetime) -> None:
    """Write ``events`` to the outbox in the session's transaction, one statement for all of them."""
    if not events:
        return
    utc = utc_binder(session)
    if dialect_of(session) == "postgresql":
        columns = {
            "ids": [e.msg_id for e in events],
            "types": [e.type for e in events],
            "payloads": [e.payload for e in events],
            "ats": [utc(e.at) for e in events],
            "now": utc(now),
        }
        session.connection().exec_driver_sql(_PG_MANY, columns)
        return
    rows = [[e.msg_id, e.type, e.payload, utc(e.at)] for e in events]
    session.connection().exec_driver_sql(_SQLITE_MANY, {"rows": json.dumps(rows), "now": utc(now)})


def external_ids(session: Session, recipient_ids: Iterable[int]) -> dict[int, str]:
    """The external ids of recipients, by row id (what events name a recipient by)."""
    wanted = sorted(set(recipient_ids))
    if not wanted:
        return {}
    r = RECIPIENTS.c
    return {int(i): str(e) for i, e in session.execute(select(r.id, r.external_id).where(r.id.in_(wanted)))}
