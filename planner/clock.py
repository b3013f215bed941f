"""The one place the planner reads the wall clock.

Everything else receives ``now`` as an argument, so freezegun, ``--now`` and tests control time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from planner.errors import InvalidInput, NaiveDatetimeError

Clock = Callable[[], datetime]

#: Instants accepted at a boundary. Far enough for any schedule, near enough that adding a day,
#: a cap window or a zone offset never leaves ``datetime``'s range (year 1..9999).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
WINDOW_TEXT = "an instant from 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z"


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def ensure_utc(value: datetime, field: str = "datetime") -> datetime:
    """Return ``value`` converted to UTC; a naive datetime is an error, never assumed UTC.

    Instants outside :data:`EARLIEST`..:data:`LATEST` are refused, naming the window: they are
    typos, and converting one near year 1 or 9999 overflows.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(value.isoformat(), field)
    try:
        converted = value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(field, value.isoformat(), WINDOW_TEXT) from None
    if not EARLIEST <= converted <= LATEST:
        raise InvalidInput(field, value.isoformat(), WINDOW_TEXT)
    return converted


def parse_instant(text: str, field: str = "at") -> datetime:
    """Parse an ISO-8601 instant that carries an offset ('Z' or '+hh:mm'), inside the window."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise InvalidInput(
            field, text, "an ISO-8601 timestamp with an offset, e.g. '2026-03-01T13:05:00Z'"
        ) from exc
    return ensure_utc(parsed, field)
