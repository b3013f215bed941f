"""When a subscription fires: wall times on some local dates, resolved to UTC instants.

The one schedule model of the planner, explain and simulate. Which local dates fire is said by a
weekday set (``daily``, ``weekdays``, ``mon,thu``) or a recurrence rule
(:mod:`planner.core.recurrence`), limited to ``[start_date, end_date]``; each date fires at one or
more wall times. An occurrence is one (local date, wall time), resolved with
``planner.core.localtime.resolve_detailed`` (gap → shifted forward, overlap → first occurrence, missing
date → no occurrence). Walking is done on ``date`` objects and wall times, so a cursor that
advances by (local date, wall time) never repeats an occurrence and never skips one that exists.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from planner.core.learned_time import LearnedTime
from planner.core.localtime import (
    Adjustment,
    TzLike,
    get_zone,
    hhmm,
    local_date_of,
    parse_wall_time,
    resolve_detailed,
)
from planner.core.recurrence import RecurrenceRule
from planner.core.schedule_text import rule_words, times_words, weekdays_words
from planner.errors import InvalidInput, NaiveDatetimeError

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_ALL_DAYS = frozenset(range(7))
_SHORTHANDS: dict[str, frozenset[int]] = {
    "daily": _ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
_DAYS_EXPECTED = "'daily', 'weekdays', 'weekends' or a non-empty list of mon,tue,wed,thu,fri,sat,sun"

#: At most this many wall times a day.
MAX_TIMES_A_DAY = 24
_AT_EXPECTED = (
    f"a wall time 'HH:MM' or a list of 1 to {MAX_TIMES_A_DAY} distinct ones, e.g. ['08:00', '18:30']"
)
_AUTO_ALONE = "a learned time {'auto': ...} on its own, not in a list (it is one send a day)"


@dataclass(frozen=True)
class Cadence:
    """Wall times (sorted) on the local dates a weekday set (Monday=0; None means daily) or a
    recurrence rule picks, from ``start_date`` to ``end_date`` inclusive.

    With ``learned`` (:mod:`planner.core.learned_time`) each date has one send whose time is decided
    when the date is planned: the cadence fires at the window's start (its one wall time), where
    the planner decides, and :func:`planner.core.planning.timed_occurrence` moves the occurrence to
    the chosen time."""

    wall_times: tuple[time, ...]
    weekdays: frozenset[int] | None = None
    rule: RecurrenceRule | None = None
    start_date: date | None = None
    end_date: date | None = None
    learned: LearnedTime | None = None

    def __post_init__(self) -> None:
        if isinstance(self.wall_times, time):  # Cadence(time(8, 0)): one wall time
            object.__setattr__(self, "wall_times", (self.wall_times,))
        if self.learned is not None and self.wall_times != (self.learned.start,):
            raise InvalidInput("at", [hhmm(t) for t in self.wall_times], "the learned window's start alone")
        if not self.wall_times or len(self.wall_times) > MAX_TIMES_A_DAY:
            raise InvalidInput("at", [hhmm(t) for t in self.wall_times], _AT_EXPECTED)
        if any(t.tzinfo is not None for t in self.wall_times):
            raise InvalidInput("at", self.wall_times, "a wall time without a UTC offset, e.g. 08:00")
        ordered = tuple(sorted(set(self.wall_times)))
        if len(ordered) != len(self.wall_times):
            raise InvalidInput("at", [hhmm(t) for t in self.wall_times], _AT_EXPECTED)
        object.__setattr__(self, "wall_times", ordered)
        if self.weekdays is not None:
            if not self.weekdays or not self.weekdays <= _ALL_DAYS:
                raise InvalidInput("days", sorted(self.weekdays), "weekday numbers 0 (Monday) to 6 (Sunday)")
            if self.weekdays == _ALL_DAYS:
                # One canonical form, so equal schedules compare (and store) equal.
                object.__setattr__(self, "weekdays", None)
        if self.rule is not None and self.weekdays is not None:
            raise InvalidInput("days", self.days_text(), "either days or rrule, not both")
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise InvalidInput("end_date", self.end_date.isoformat(), f"a date on or after {self.start_date}")

    @classmethod
    def parse(
        cls,
        at: object,
        days: object = "daily",
        *,
        rrule: object = None,
        start_date: date | None = None,
        end_date: date | None = None,
    ) -> Cadence:
        """Validate user input: ``at`` is 'HH:MM', a list of them or a learned time
        (``{"auto": {"between": [...], "default": ...}}``); ``days`` is 'daily', 'weekdays',
        'weekends', 'mon,thu' or a list such as ``["mon", "thu"]`` (case-insensitive); ``rrule`` an
        RRULE (:mod:`planner.core.recurrence`) used instead of ``days``."""
        learned = LearnedTime.parse(at) if isinstance(at, dict) else None
        rule = None if rrule is None else RecurrenceRule.parse(rrule, start_date)
        if rule is not None and end_date is not None and rule.first_on_or_after(rule.anchor) is not None:
            first = rule.first_on_or_after(start_date or rule.anchor)
            if first is None or first > end_date:
                raise InvalidInput(
                    "end_date", end_date.isoformat(), f"a date on or after the rule's first date {first}"
                )
        weekdays = None if rule is not None else _parse_days(days)
        wall_times = (learned.start,) if learned is not None else _parse_times(at)
        return cls(wall_times, weekdays, rule, start_date, end_date, learned)

    @classmethod
    def from_storage(
        cls,
        send_time: time,
        days: str,
        times: str | None = None,
        rrule: str | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
        auto_until: time | None = None,
        auto_default: time | None = None,
    ) -> Cadence:
        """Rebuild a cadence from its stored columns (``send_time``, ``days_text()``, ``times_text()``...;
        a learned time is ``send_time`` to ``auto_until`` with ``auto_default``)."""
        if not isinstance(send_time, time):
            raise InvalidInput("send_time", send_time, "a wall time such as 08:00")
        wall_times = _parse_times(times.split(",")) if times else (send_time,)
        learned = None
        if auto_until is not None and auto_default is not None:
            learned = LearnedTime(send_time, auto_until, auto_default)
        rule = None if rrule is None else RecurrenceRule.parse(rrule, start_date)
        return cls(wall_times, None if rule else _parse_days(days), rule, start_date, end_date, learned)

    @property
    def wall_time(self) -> time:
        """The first wall time of the day (the stored ``send_time``)."""
        return self.wall_times[0]

    @property
    def several_a_day(self) -> bool:
        return len(self.wall_times) > 1

    @functools.cached_property
    def firing(self) -> Cadence:
        """When it fires: itself without the learned window (which fires at its start). The walks
        are cached by it, so learned times of one start share them, with each other and with the
        fixed time there."""
        return _shared(self if self.learned is None else replace(self, learned=None))

    def days_text(self) -> str:
        """'daily' or the weekday names in week order, e.g. 'mon,thu' (the stored form)."""
        if self.weekdays is None:
            return "daily"
        return ",".join(WEEKDAY_NAMES[day] for day in sorted(self.weekdays))

    def times_text(self) -> str | None:
        """'08:00,18:30' with several wall times (the stored form); None with one."""
        return ",".join(hhmm(t) for t in self.wall_times) if self.several_a_day else None

    def in_range(self, local_date: date) -> bool:
        return (self.start_date is None or local_date >= self.start_date) and (
            self.end_date is None or local_date <= self.end_date
        )

    def matches(self, local_date: date) -> bool:
        """Whether ``local_date`` is one of the schedule's dates (before the DST policy)."""
        if not self.in_range(local_date):
            return False
        if self.rule is not None:
            return self.rule.matches(local_date)
        return self.weekdays is None or local_date.weekday() in self.weekdays

    def next_date(self, first: date) -> date | None:
        """The first schedule date on or after ``first``; None when the schedule has ended."""
        if self.start_date is not None and first < self.start_date:
            first = self.start_date
        if self.rule is not None:
            found = self.rule.first_on_or_after(first)
        else:
            found = next(
                (first + timedelta(days=i) for i in range(7) if self.matches(first + timedelta(days=i))), None
            )
        if found is None or (self.end_date is not None and found > self.end_date):
            return None
        return found

    def why_not(self, local_date: date) -> str:
        """Why ``local_date`` is not a schedule date (for explain and simulate)."""
        if self.start_date is not None and local_date < self.start_date:
            return f"before the start date {self.start_date.isoformat()}"
        if self.end_date is not None and local_date > self.end_date:
            return f"after the end date {self.end_date.isoformat()}"
        if self.rule is not None:
            return f"not one of its dates ({rule_words(self.rule)})"
        return f"does not fire on a {local_date:%A} ({weekdays_words(self.weekdays)})"

    def describe(self) -> str:
        """The schedule in words, e.g. 'every Monday, Wednesday and Friday at 09:00, 13:00 and 17:30,
        from 2026-03-02': the one wording of a schedule that pages and messages show."""
        times = times_words(self.wall_times) if self.learned is None else self.learned.describe()
        if self.start_date:
            times += f", from {self.start_date.isoformat()}"
        if self.rule is not None:
            words = rule_words(self.rule, times)
        else:
            words = f"{weekdays_words(self.weekdays)} at {times}"
        return words + (f", until {self.end_date.isoformat()}" if self.end_date else "")

    def __str__(self) -> str:
        return self.describe()


def _parse_times(at: object) -> tuple[time, ...]:
    values = at if isinstance(at, list | tuple) else [at]
    if any(isinstance(v, dict) for v in values):
        raise InvalidInput("at", at, _AUTO_ALONE)
    if not values or len(values) > MAX_TIMES_A_DAY:
        raise InvalidInput("at", at, _AT_EXPECTED)
    parsed = [parse_wall_time(v, "at") for v in values]
    if len(set(parsed)) != len(parsed):
        raise InvalidInput("at", at, _AT_EXPECTED)
    return tuple(sorted(parsed))


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
    """The cadence firing for ``local_date`` at ``wall_time``: due at ``instant`` (UTC)."""

    local_date: date
    instant: datetime
    adjustment: Adjustment
    shift: timedelta
    wall_time: time


def occurrences_on(cadence: Cadence, tz: TzLike, local_date: date) -> list[Occurrence]:
    """The occurrences on ``local_date`` by wall time; none if the cadence skips it or it does not exist."""
    if not cadence.matches(local_date):
        return []
    found = []
    for wall_time in cadence.wall_times:
        resolution = resolve_detailed(local_date, wall_time, tz)
        if resolution is None:
            return []
        found.append(
            Occurrence(local_date, resolution.instant, resolution.adjustment, resolution.shift, wall_time)
        )
    return found


def occurrence_on(cadence: Cadence, tz: TzLike, local_date: date) -> Occurrence | None:
    """The first occurrence on ``local_date`` (see :func:`occurrences_on`)."""
    found = occurrences_on(cadence, tz, local_date)
    return found[0] if found else None


def _walk(cadence: Cadence, tz: TzLike, first_date: date) -> Iterator[Occurrence]:
    """Every occurrence from ``first_date`` on, in (local date, wall time) order, until the schedule ends."""
    zone = get_zone(tz)
    day: date | None = first_date
    while day is not None:
        day = cadence.next_date(day)
        if day is None:
            return
        yield from occurrences_on(cadence, zone, day)
        day += timedelta(days=1)


@functools.lru_cache(maxsize=4096)
def _shared(cadence: Cadence) -> Cadence:
    """The first of the equal cadences asked for: the walks' cache then finds its keys by identity,
    without comparing two schedules field by field (a learned time's ``firing`` is a copy)."""
    return cadence


def _first_from(
    cadence: Cadence, tz: TzLike, first_date: date, accept: Callable[[Occurrence], bool]
) -> Occurrence | None:
    return next((o for o in _walk(cadence, tz, first_date) if accept(o)), None)


def next_occurrence_after(
    cadence: Cadence, tz: TzLike, local_date: date, wall_time: time
) -> Occurrence | None:
    """The first occurrence after (``local_date``, ``wall_time``) (how a cursor advances); None at the end."""
    key = tz if isinstance(tz, str) else tz.key
    if key is None:  # an anonymous zone built from a file: nothing stable to cache it by
        return _next_after(cadence, tz, local_date, wall_time)
    return _next_after_named(cadence.firing, key, local_date, wall_time)


@functools.lru_cache(maxsize=1 << 16)
def _next_after_named(cadence: Cadence, key: str, local_date: date, wall_time: time) -> Occurrence | None:
    """A planner run advances 100,000 cursors that share a few thousand (schedule, zone, position)
    triples: each walk is done once. Cadences and occurrences are immutable and the zone's rules are
    pinned per process (``planner.core.localtime``), so the answer depends on nothing else."""
    return _next_after(cadence, key, local_date, wall_time)


def _next_after(cadence: Cadence, tz: TzLike, local_date: date, wall_time: time) -> Occurrence | None:
    return _first_from(
        cadence, tz, local_date, lambda o: (o.local_date, o.wall_time) > (local_date, wall_time)
    )


def next_occurrence_after_date(cadence: Cadence, tz: TzLike, local_date: date) -> Occurrence | None:
    """The first occurrence on a local date strictly after ``local_date``; None once the schedule ended."""
    return _first_from(cadence, tz, local_date + timedelta(days=1), lambda _: True)


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(value, field)
    return value


def next_occurrence(cadence: Cadence, tz: TzLike, after: datetime) -> Occurrence | None:
    """The first occurrence whose instant is strictly later than ``after``."""
    after = _aware(after, "after")
    # A day early: when a gap runs past midnight, the previous date's occurrence is shifted
    # onto ``after``'s date and may still be ahead of it.
    start = local_date_of(after, tz) - timedelta(days=1)
    return _first_from(cadence, tz, start, lambda occurrence: occurrence.instant > after)


def first_occurrence_at_or_after(cadence: Cadence, tz: TzLike, at: datetime) -> Occurrence | None:
    """The first occurrence whose instant is ``at`` or later (initialises a cursor from "now").

    With a learned time, the first date whose window still has a slot starting at ``at`` or later:
    a subscription saved at 10:00 with a 07:00-21:00 window is planned today, among the slots ahead.
    """
    at = _aware(at, "at")
    start = local_date_of(at, tz) - timedelta(days=1)
    learned = cadence.learned
    if learned is None:
        return _first_from(cadence, tz, start, lambda occurrence: occurrence.instant >= at)

    def window_ahead(occurrence: Occurrence) -> bool:
        last = resolve_detailed(occurrence.local_date, learned.last_slot, tz)
        return last is not None and last.instant >= at

    return _first_from(cadence, tz, start, window_ahead)


def occurrences_between(cadence: Cadence, tz: TzLike, start: datetime, end: datetime) -> Iterator[Occurrence]:
    """Every occurrence with ``start < instant <= end``, in increasing order."""
    start, end = _aware(start, "start"), _aware(end, "end")
    zone = get_zone(tz)
    return _between(cadence, zone, start, end)


def _between(cadence: Cadence, tz: TzLike, start: datetime, end: datetime) -> Iterator[Occurrence]:
    last = local_date_of(end, tz)
    for occurrence in _walk(cadence, tz, local_date_of(start, tz) - timedelta(days=1)):
        if occurrence.local_date > last:
            return
        if start < occurrence.instant <= end:
            yield occurrence
