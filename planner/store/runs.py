"""What a planner run asks of the database besides its chunks' SQL (:mod:`planner.store.chunks`):
its row in ``planner_run`` from start to finish, the window the last successful run covered, and
how this database takes chunks (which SQL, how many writers at once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from planner.store.chunks import ChunkStore
from planner.store.db import SessionFactory
from planner.store.dialect import dialect_of
from planner.store.models import PlannerRun
from planner.store.tables import RUNS


def start_run(session: Session, run_id: str, window_end: datetime, now: datetime) -> None:
    """The run's row, ``running`` from ``now``."""
    session.add(PlannerRun(run_id=run_id, window_end=window_end, started_at=now, status="running"))


def finish_run(
    session: Session,
    run_id: str,
    *,
    status: str,
    finished_at: datetime,
    occurrences: int,
    counts: dict[str, Any],
    error: str | None,
) -> None:
    """What the run came to: its status, when it finished, its counts and error."""
    session.execute(
        update(RUNS)
        .where(RUNS.c.run_id == run_id)
        .values(status=status, finished_at=finished_at, occurrences=occurrences, counts=counts, error=error)
    )


def covered_until(session: Session) -> datetime | None:
    """The end of the window the successful runs covered (None before the first)."""
    value = session.scalar(select(func.max(RUNS.c.window_end)).where(RUNS.c.status == "succeeded"))
    return value if isinstance(value, datetime) else None


def chunk_store(sessions: SessionFactory) -> ChunkStore:
    """The chunk SQL for the database these sessions talk to."""
    return ChunkStore(dialect_of(sessions))


def chunk_writers(sessions: SessionFactory, wanted: int) -> int:
    """How many chunks to plan at once: SQLite has one writer at a time, so more threads would only
    queue on its lock; PostgreSQL takes ``wanted`` (at least one)."""
    return 1 if dialect_of(sessions) == "sqlite" else max(1, wanted)
