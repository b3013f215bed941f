"""The audit log: every change made through the API, with the name of the token that made it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from planner.store.tables import AUDIT


def record_audit(
    session: Session,
    at: datetime,
    actor: str,
    action: str,
    target: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.execute(
        insert(AUDIT).values(
            at=at, actor=actor, action=action, target=target, detail=dict(detail) if detail else None
        )
    )


def audit_entries(session: Session, limit: int = 100, actor: str | None = None) -> list[dict[str, Any]]:
    """The newest entries first."""
    query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AUDIT.c.actor == actor)
    return [dict(row._mapping) for row in session.execute(query)]
