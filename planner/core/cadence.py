"""When a subscription fires: a wall time on some local dates, resolved to UTC instants.

Every occurrence is tied to one local date and resolved with ``planner.localtime.resolve`` (gap →
shifted forward, overlap → first occurrence, missing date → no occurrence). Walking from date to
date is done on ``date`` objects, so a cursor that advances by local date never repeats a date
and never skips one that exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from planner.core.localtime import (
    Adjustment,
    TzLike,
    get_zone,
    local_date_of,
    parse_wall_time,
    resolve_detailed,
)
from planner.errors import InvalidInput, NaiveDatetimeError

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_ALL_DAYS = frozenset(range(7))
_SHORTHANDS: dict[str, frozenset[int]] = {
    "daily": _ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
_DAYS_EXPECTED = "'daily', 'weekdays', 'weekends' or a non-empty list of mon,tue,wed,thu,fri,sat,sun"

# Any weekday set matches within 7 consecutive dates; the walks start up to a day early and the
# tz database has skipped at most one date in a row. 16 leaves room for all of that.
_SEARCH_DAYS = 16


@dataclass(frozen=True)
class Cadence:
    """A wall time on some weekdays (Monday=0); ``weekdays=None`` means daily."""

    wall_time: time
    weekdays: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.wall_time.tzinfo is not None:
            raise InvalidInput("at", self.wall_time, "a wall time without a UTC offset, e.g. 08:00")
        if self.weekdays is not None:
            if not self.weekdays or not self.weekdays <= _ALL_DAYS:
                raise InvalidInput("days", sorted(self.weekdays), "weekday numbers 0 (Monday) to 6 (Sunday)")
            if self.weekdays == _ALL_DAYS:
                # One canonical form, so equal schedules compare (and store) equal.
                object.__setattr__(self, "weekdays", None)

    @classmethod
    def parse(cls, at: str, days: str | Sequence[str] = "daily") -> Cadence:
        """Validate user input: ``at`` is 'HH:MM'; ``days`` is 'daily', 'weekdays', 'weekends',
        'mon,thu' or a list such as ``["mon", "thu"]`` (case-insensitive)."""
        return cls(parse_wall_time(at, "at"), _parse_days(days))

    @classmethod
    def from_storage(cls, send_time: time, days: str) -> Cadence:
        """Rebuild a cadence from its stored columns (``send_time``, ``days_text()``)."""
        if not isinstance(send_time, time):
            raise InvalidInput("send_time", send_time, "a wall time such as 08:00")
        return cls(send_time, _parse_days(days))

    def days_text(self) -> str:
        """'daily' or the weekday names in week order, e.g. 'mon,thu' (the stored form)."""
        if self.weekdays is None:
            return "daily"
        return ",".join(WEEKDAY_NAMES[day] for day in sorted(self.weekdays))

    def matches(self, local_date: date) -> bool:
        return self.weekdays is None or local_date.weekday() in self.weekdays

    def __str__(self) -> str:
        return f"{self.wall_time.isoformat(timespec='minutes')} {self.days_text()}"


def _parse_days(days: object) -> frozenset[int] | None:
    if isinstance(days, str):
        tokens: list[object] = list(days.split(","))
    elif isinstance(days, Sequence):
        tokens = list(days)
    else:
        raise InvalidInput("days", days, _DAYS_EXPECTED)
    if not tokens:
        raise InvalidInput("days", days, _DAYS_EXPECTED)
    result: set[int] = set()
    for token in tokens:
        name = token.strip().lower() if isinstance(token, str) else None
        if name in _SHORTHANDS:
            result |= _SHORTHANDS[name]
        elif name in WEEKDAY_NAMES:
            result.add(WEEKDAY_NAMES.index(name))
        else:
            raise InvalidInput("days", days, _DAYS_EXPECTED)
    return None if result == _ALL_DAYS else frozenset(result)


@dataclass(frozen=True)
class Occurrence:
    """The cadence firing for ``local_date``: due at ``instant`` (UTC)."""

    local_date: date
    instant: datetime
    adjustment: Adjustment
    shift: timedelta


def occurrence_on(cadence: Cadence, tz: TzLike, local_date: date) -> Occurrence | None:
    """The occurrence for ``local_date``; None if the cadence skips that date or it does not exist."""
    if not cadence.matches(local_date):
        return None
    resolution = resolve_detailed(local_date, cadence.wall_time, tz)
    if resolution is None:
        return None
    return Occurrence(local_date, resolution.instant, resolution.adjustment, resolution.shift)


def _first_from(
    cadence: Cadence, tz: TzLike, first_date: date, accept: Callable[[Occurrence], bool]
) -> Occurrence:
    zone = get_zone(tz)
    for offset in range(_SEARCH_DAYS):
        occurrence = occurrence_on(cadence, zone, first_date + timedelta(days=offset))
        if occurrence is not None and accept(occurrence):
            return occurrence
    raise RuntimeError(f"no occurrence of {cadence} in {zone.key} within {_SEARCH_DAYS} days of {first_date}")


def next_occurrence_after_date(cadence: Cadence, tz: TzLike, local_date: date) -> Occurrence:
    """The first occurrence on a local date strictly after ``local_date`` (how a cursor advances)."""
    return _first_from(cadence, tz, local_date + timedelta(days=1), lambda _: True)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(value, field)
    return value


def next_occurrence(cadence: Cadence, tz: TzLike, after: datetime) -> Occurrence:
    """The first occurrence whose instant is strictly later than ``after``."""
    after = _aware(after, "after")
    # A day early: when a gap runs past midnight, the previous date's occurrence is shifted
    # onto ``after``'s date and may still be ahead of it.
    start = local_date_of(after, tz) - timedelta(days=1)
    return _first_from(cadence, tz, start, lambda occurrence: occurrence.instant > after)


def first_occurrence_at_or_after(cadence: Cadence, tz: TzLike, at: datetime) -> Occurrence:
    """The first occurrence whose instant is ``at`` or later (initialises a cursor from "now")."""
    at = _aware(at, "at")
    start = local_date_of(at, tz) - timedelta(days=1)
    return _first_from(cadence, tz, start, lambda occurrence: occurrence.instant >= at)


def occurrences_between(cadence: Cadence, tz: TzLike, start: datetime, end: datetime) -> Iterator[Occurrence]:
    """Every occurrence with ``start < instant <= end``, in increasing order, one per local date."""
    start, end = _aware(start, "start"), _aware(end, "end")
    zone = get_zone(tz)
    return _between(cadence, zone, start, end)


def _between(cadence: Cadence, tz: TzLike, start: datetime, end: datetime) -> Iterator[Occurrence]:
    day = local_date_of(start, tz) - timedelta(days=1)
    last = local_date_of(end, tz)
    while day <= last:
        occurrence = occurrence_on(cadence, tz, day)
        if occurrence is not None and start < occurrence.instant <= end:
            yield occurrence
        day += timedelta(days=1)
