"""The append-only timeline of each delivery: what happened, when and why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from planner.models import DeliveryEvent


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
    if batch:
        # A Core insert on the table, not the ORM entity: the ORM's bulk insert leaves out None values
        # and starts a new statement whenever a row's set of non-None keys changes (reason or not), so a
        # chunk of mixed outcomes cost one statement per few events. Stored values are the same.
        session.execute(insert(DeliveryEvent.__table__), batch)  # type: ignore[attr-defined]
    return len(batch)
