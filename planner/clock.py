"""The one place the planner reads the wall clock.

Everything else receives ``now`` as an argument, so freezegun, ``--now`` and tests control time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from planner.errors import NaiveDatetimeError

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime, field: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; a naive datetime is an error, never assumed UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(value.isoformat(), field)
    return value.astimezone(UTC)


def parse_instant(text: str, field: str = "at") -> datetime:
    """Parse an ISO-8601 instant that carries an offset ('Z' or '+hh:mm')."""
    from planner.errors import InvalidInput

    try:
        parsed = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(
            field, text, "an ISO-8601 timestamp with an offset, e.g. '2026-03-01T13:05:00Z'"
        ) from exc
    return ensure_utc(parsed, field)
