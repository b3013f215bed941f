"""Pausing a channel or a kind: its deliveries wait (they are never failed) until resumed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlmodel import col

from planner.core.status import Channel
from planner.store.models import Pause

PausedSet = frozenset[tuple[str, str]]

#: The reason of a pause a worker set itself because the provider refused the adapter's settings.
ADAPTER_CONFIG = "adapter_config"
PAUSE_DETAIL_MAX = 1000


def scope_of(target: str) -> tuple[str, str]:
    """'email'/'sms' name a channel; anything else names a kind."""
    return ("channel", target) if target in Channel.__members__ else ("kind", target)


def active_pauses(session: Session) -> PausedSet:
    return frozenset(
        (scope, value) for scope, value in session.execute(select(col(Pause.scope), col(Pause.value)))
    )


def is_paused(pauses: PausedSet, channel: str, kind: str) -> bool:
    return ("channel", channel) in pauses or ("kind", kind) in pauses


def pause(session: Session, target: str, now: datetime) -> bool:
    """Pause ``target``; False when it already was."""
    scope, value = scope_of(target)
    if (
        session.scalar(select(col(Pause.id)).where(col(Pause.scope) == scope, col(Pause.value) == value))
        is not None
    ):
        return False
    session.add(Pause(scope=scope, value=value, created_at=now))
    return True


def resume(session: Session, target: str) -> bool:
    """Lift a pause; False when there was none."""
    scope, value = scope_of(target)
    result = session.execute(delete(Pause).where(col(Pause.scope) == scope, col(Pause.value) == value))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def pause_for_adapter_config(session: Session, channel: str, error: str, now: datetime) -> None:
    """Pause ``channel`` with reason ``adapter_config`` and the (already redacted) error.

    An upsert on the pause's unique key: workers that hit the same refusal at once do not fail
    each other's transactions, and the latest error text wins. An operator's own pause of the
    channel keeps its reason.
    """
    table = Pause.__table__  # type: ignore[attr-defined]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(
        scope="channel", value=channel, created_at=now, reason=ADAPTER_CONFIG, detail=error[:PAUSE_DETAIL_MAX]
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["scope", "value"],
            set_={"detail": stmt.excluded.detail},
            where=table.c.reason == ADAPTER_CONFIG,
        )
    )
