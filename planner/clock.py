"""The one place the planner reads the wall clock.

Everything else receives ``now`` as an argument, so freezegun, ``--now`` and tests control time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

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


_COMPACT = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?")
_ISO = re.compile(
    r"P(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:[.,][0-9]+)?)S)?)?"
)
#: No setting or option means more than a year; bigger values are typos (and overflow timedelta).
LONGEST = timedelta(days=366)
DURATION_TEXT = (
    "a positive duration such as '30s', '5m', '4h', '1d', '1h30m' or ISO 8601 'PT4H' (at most 366d)"
)


def parse_duration(value: object, field: str = "duration", *, allow_zero: bool = False) -> timedelta:
    """``30s``, ``5m``, ``4h``, ``1d`` (combined as ``1h30m``) or ISO 8601 (``PT4H``, ``P1D``).

    The one duration parser: CLI options and ``PLANNER_*`` settings both use it. A bare number is
    refused (seconds or minutes?), and so is a negative or zero duration unless ``allow_zero``.
    """
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, str) and value.strip():
        duration = _parse_duration_text(value.strip(), field)
    else:
        raise InvalidInput(field, value, DURATION_TEXT)
    if duration < timedelta(0) or (duration == timedelta(0) and not allow_zero) or duration > LONGEST:
        raise InvalidInput(field, value if isinstance(value, str) else str(value), DURATION_TEXT)
    return duration


def _parse_duration_text(text: str, field: str) -> timedelta:
    compact = _COMPACT.fullmatch(text.lower())
    if compact and any(compact.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in compact.groups())
        return _bounded_delta(text, field, days=days, hours=hours, minutes=minutes, seconds=seconds)
    iso = _ISO.fullmatch(text.upper())
    if iso and any(iso.groups()) and not text.upper().endswith("T"):
        weeks, iso_days, iso_hours, iso_minutes = (int(g or 0) for g in iso.groups()[:4])
        iso_seconds = float((iso.group(5) or "0").replace(",", "."))
        return _bounded_delta(
            text, field, weeks=weeks, days=iso_days, hours=iso_hours, minutes=iso_minutes, seconds=iso_seconds
        )
    raise InvalidInput(field, text, DURATION_TEXT)


def _bounded_delta(text: str, field: str, **parts: float) -> timedelta:
    if any(amount > 10**8 for amount in parts.values()):  # timedelta itself would overflow
        raise InvalidInput(field, text, DURATION_TEXT)
    return timedelta(**parts)


def format_duration(value: timedelta) -> str:
    """The compact form parse_duration reads: ``4h``, ``90m`` → ``1h30m``, ``30s``."""
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
