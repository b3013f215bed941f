"""The append-only timeline of each delivery: what happened, when and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.orm import Session

from planner.store.dialect import dialect_of
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS
from planner.store.types import UTCDateTime

# PostgreSQL: one binary array per column, unnested into rows (see planner.run for why). Each entry
# copies its delivery's local date: on PostgreSQL the month partition it lives in, beside its delivery.
_PG_INSERT_EVENTS = (
    "INSERT INTO delivery_event (delivery_id, local_date, at, event, status, reason, detail)"
    " SELECT t.delivery_id, (SELECT d.local_date FROM delivery d WHERE d.id = t.delivery_id),"
    " t.at, t.event, t.status, t.reason, t.detail FROM unnest("
    "%(delivery_id)b::integer[], %(at)b::timestamptz[], %(event)b::varchar[], %(status)b::varchar[],"
    " %(reason)b::varchar[], %(detail)b::json[]) AS t(delivery_id, at, event, status, reason, detail)"
)
# SQLite: the same, one set of parameters per row.
_OF_DELIVERY = DELIVERIES.c.id == bindparam("of_delivery")
_SQLITE_INSERT_EVENTS = insert(DELIVERY_EVENTS).values(
    local_date=select(DELIVERIES.c.local_date).where(_OF_DELIVERY).scalar_subquery()
)


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
    if dialect_of(session) == "postgresql":
        dialect = session.get_bind().dialect
        from psycopg.types.json import Json  # what SQLAlchemy's JSON type binds on psycopg

        at = UTCDateTime()
        session.connection().exec_driver_sql(
            _PG_INSERT_EVENTS,
            {
                "delivery_id": [row["delivery_id"] for row in batch],
                "at": [at.process_bind_param(row["at"], dialect) for row in batch],
                "event": [row["event"] for row in batch],
                "status": [row["status"] for row in batch],
                "reason": [row["reason"] for row in batch],
                "detail": [Json(row["detail"]) for row in batch],
            },
        )
    else:
        # A Core insert on the table, not the ORM entity: the ORM's bulk insert leaves out None values
        # and starts a new statement whenever a row's set of non-None keys changes (reason or not), so a
        # chunk of mixed outcomes cost one statement per few events. Stored values are the same.
        session.execute(_SQLITE_INSERT_EVENTS, [{**row, "of_delivery": row["delivery_id"]} for row in batch])
    return len(batch)
