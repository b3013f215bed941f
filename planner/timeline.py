"""The append-only timeline of each delivery: what happened, when and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, bindparam, insert, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from planner.models import DeliveryEvent
from planner.types import UTCDateTime

_EVENT_COLUMNS = (
    ("delivery_id", Integer, "INTEGER[]"),
    ("at", UTCDateTime, "TIMESTAMPTZ[]"),
    ("event", String, "VARCHAR[]"),
    ("status", String, "VARCHAR[]"),
    ("reason", String, "VARCHAR[]"),
    ("detail", JSON, "JSON[]"),
)
_PG_INSERT_EVENTS = text(
    "INSERT INTO delivery_event (delivery_id, at, event, status, reason, detail) SELECT * FROM unnest("
    + ", ".join(f"CAST(:{name} AS {sql})" for name, _, sql in _EVENT_COLUMNS)
    + ")"
).bindparams(*(bindparam(name, type_=ARRAY(kind)) for name, kind, _ in _EVENT_COLUMNS))


def event_row(
    delivery_id: int,
    at: datetime,
    event: str,
    *,
    status: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "at": at,
        "event": event,
        "status": status,
        "reason": reason,
        "detail": dict(detail) if detail else None,
    }


def record_events(session: Session, rows: Iterable[dict[str, Any]]) -> int:
    """Insert timeline rows in one statement; returns how many."""
    batch = list(rows)
    if not batch:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        # One array per column, unnested: a short statement the driver parses once and caches, where
        # a multi-row VALUES insert (6 parameters a row) is re-parsed by psycopg on every execution.
        columns = {name: [row[name] for row in batch] for name, _, _ in _EVENT_COLUMNS}
        session.execute(_PG_INSERT_EVENTS, columns)
    else:
        # A Core insert on the table, not the ORM entity: the ORM's bulk insert leaves out None values
        # and starts a new statement whenever a row's set of non-None keys changes (reason or not), so a
        # chunk of mixed outcomes cost one statement per few events. Stored values are the same.
        session.execute(insert(DeliveryEvent.__table__), batch)  # type: ignore[attr-defined]
    return len(batch)
