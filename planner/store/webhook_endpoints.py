"""Webhook endpoints in the database: registered, changed, rotated, removed; which event types are
wanted; which endpoints failed long enough to be disabled."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from planner.errors import NotFound
from planner.store.tables import WEBHOOK_ENDPOINTS, WEBHOOK_MESSAGES

#: Why an endpoint was disabled by the service rather than by an operator.
FAILING = "failing"


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    description: str | None
    event_types: tuple[str, ...]
    enabled: bool
    failing_since: datetime | None
    disabled_reason: str | None
    disabled_at: datetime | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """What the API, the CLI and the dashboard show: never a secret."""
        instants = ("failing_since", "disabled_at", "previous_secret_until", "created_at", "updated_at")
        data: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "description": self.description,
            "event_types": list(self.event_types),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
        }
        return data | {name: _iso(getattr(self, name)) for name in instants}


@dataclass(frozen=True)
class Signing:
    """The secrets that sign an endpoint's requests now: its own, and the one a rotation replaced
    while the overlap lasts."""

    url: str
    secrets: tuple[str, ...]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


_SHOWN = (
    "id", "url", "description", "event_types", "enabled", "failing_since", "disabled_reason",
    "disabled_at", "previous_secret_until", "created_at", "updated_at",
)  # fmt: skip


def _endpoint(row: Any) -> Endpoint:
    values = {name: getattr(row, name) for name in _SHOWN}
    values["event_types"] = tuple(values["event_types"] or ())
    values["enabled"] = bool(values["enabled"])
    return Endpoint(**values)


def _select() -> Any:
    return select(*(WEBHOOK_ENDPOINTS.c[name] for name in _SHOWN))


def add_endpoint(
    session: Session, url: str, event_types: list[str], description: str | None, enabled: bool,
    secret: str, now: datetime,
) -> Endpoint:  # fmt: skip
    new_id = session.execute(
        insert(WEBHOOK_ENDPOINTS)
        .values(
            url=url,
            description=description,
            event_types=event_types,
            enabled=enabled,
            secret=secret,
            created_at=now,
            updated_at=now,
        )
        .returning(WEBHOOK_ENDPOINTS.c.id)
    ).scalar_one()
    return endpoint(session, int(new_id))


def endpoint(session: Session, endpoint_id: int) -> Endpoint:
    row = session.execute(_select().where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)).first()
    if row is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return _endpoint(row)


def all_endpoints(session: Session) -> list[Endpoint]:
    return [_endpoint(row) for row in session.execute(_select().order_by(WEBHOOK_ENDPOINTS.c.id))]


def change_endpoint(session: Session, endpoint_id: int, changes: dict[str, Any], now: datetime) -> Endpoint:
    """Change some of url, event_types, description, enabled. Enabling clears the failure record:
    the endpoint gets the full N days again before it can be disabled."""
    values = dict(changes)
    if values.get("enabled") is True:
        values |= {"failing_since": None, "disabled_reason": None, "disabled_at": None}
    elif values.get("enabled") is False:
        values |= {"disabled_reason": "disabled by an operator", "disabled_at": now}
    c = WEBHOOK_ENDPOINTS.c
    result = session.execute(
        update(WEBHOOK_ENDPOINTS).where(c.id == endpoint_id).values(**values, updated_at=now).returning(c.id)
    )
    if result.first() is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return endpoint(session, endpoint_id)


def rotate_secret(
    session: Session, endpoint_id: int, secret: str, overlap_until: datetime, now: datetime
) -> None:
    """The new secret signs from now on; the current one also signs until ``overlap_until``."""
    c = WEBHOOK_ENDPOINTS.c
    result = session.execute(
        update(WEBHOOK_ENDPOINTS)
        .where(c.id == endpoint_id)
        .values(secret=secret, previous_secret=c.secret, previous_secret_until=overlap_until, updated_at=now)
        .returning(c.id)
    )
    if result.first() is None:
        raise NotFound("webhook endpoint", endpoint_id)


def remove_endpoint(session: Session, endpoint_id: int) -> int:
    """Remove an endpoint; its events and their attempts go with it (the foreign keys cascade).
    Returns how many events were still waiting."""
    m = WEBHOOK_MESSAGES.c
    waiting = session.scalar(
        select(func.count()).where(m.endpoint_id == endpoint_id, m.status.in_(("pending", "sending")))
    )
    result = session.execute(
        delete(WEBHOOK_ENDPOINTS)
        .where(WEBHOOK_ENDPOINTS.c.id == endpoint_id)
        .returning(WEBHOOK_ENDPOINTS.c.id)
    )
    if result.first() is None:
        raise NotFound("webhook endpoint", endpoint_id)
    return int(waiting or 0)


def wanted_types(session: Session) -> frozenset[str]:
    """The event types some enabled endpoint wants: an emitter writes nothing for the others."""
    c = WEBHOOK_ENDPOINTS.c
    rows = session.execute(select(c.event_types).where(c.enabled.is_(True)))
    return frozenset(t for (types,) in rows for t in types or ())


def signing(session: Session, endpoint_ids: Iterable[int], now: datetime) -> dict[int, Signing]:
    """The URL and signing secrets of each endpoint among ``endpoint_ids`` (a removed one is absent)."""
    c = WEBHOOK_ENDPOINTS.c
    rows = session.execute(
        select(c.id, c.url, c.secret, c.previous_secret, c.previous_secret_until).where(
            c.id.in_(sorted(set(endpoint_ids)))
        )
    )
    found = {}
    for row in rows:
        overlap = row.previous_secret and row.previous_secret_until and row.previous_secret_until > now
        found[int(row.id)] = Signing(row.url, (row.secret, row.previous_secret) if overlap else (row.secret,))
    return found


def record_result(
    session: Session, endpoint_id: int, succeeded: bool, now: datetime, disable_after: timedelta
) -> bool:
    """Note an attempt's result on its endpoint; True when this failure disabled it (it had been
    failing, without one success, for ``disable_after``)."""
    c = WEBHOOK_ENDPOINTS.c
    if succeeded:
        session.execute(
            update(WEBHOOK_ENDPOINTS)
            .where(c.id == endpoint_id, c.failing_since.is_not(None))
            .values(failing_since=None)
        )
        return False
    session.execute(
        update(WEBHOOK_ENDPOINTS)
        .where(c.id == endpoint_id, c.failing_since.is_(None))
        .values(failing_since=now)
    )
    reason = f"{FAILING}: every attempt failed for {_days(disable_after)}"
    disabled = session.execute(
        update(WEBHOOK_ENDPOINTS)
        .where(c.id == endpoint_id, c.enabled.is_(True), c.failing_since <= now - disable_after)
        .values(enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now)
        .returning(c.id)
    )
    return disabled.first() is not None


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{span.total_seconds() / 3600:g} hours"


def failing_disabled(session: Session) -> list[Endpoint]:
    """Endpoints the service disabled because they kept failing (not those an operator disabled)."""
    c = WEBHOOK_ENDPOINTS.c
    rows = session.execute(
        _select().where(c.enabled.is_(False), c.disabled_reason.like(f"{FAILING}%")).order_by(c.id)
    )
    return [_endpoint(row) for row in rows]
