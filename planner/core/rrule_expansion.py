"""Expanding a rule (:mod:`planner.core.rrule_grammar`) on local dates, in bounded time.

``python-dateutil`` decides which dates of a period (a year, a month) a rule picks: month lengths,
the nth weekday of a month or year, negative month days, BYSETPOS. But it cannot say that a rule
has no further date: asked for the next one it scans period after period up to the year 9999
(seconds for a DAILY rule) and raises past 9999-12-31. So dateutil is only ever asked for ONE
period (an INTERVAL that puts its next period beyond the year 9999 makes it stop), and the walk
from period to period is done here:

- The dates a rule picks in a year depend only on the year's *type*: leap or not, and the weekday
  of January 1 (14 types; the weeks that straddle New Year are fixed by it too). They are computed
  once per (rule shape, year type) for INTERVAL=1, each with its period, and shared by every anchor.
- INTERVAL keeps the periods ``p0 + k * INTERVAL`` (``p0`` the anchor's period); which of a year's
  periods those are depends on the year's *phase* (its first period minus ``p0``, modulo INTERVAL).
  A whole year has a date exactly when ``-phase`` is, modulo INTERVAL, one of the periods of its
  type that hold a date: a set lookup, so a year without a date costs a few integer operations, and
  years without a kept period at all are jumped over.
- The Gregorian calendar repeats every 400 years (146097 days, exactly 20871 weeks), so a walk is
  in the same state again when (year mod 400, phase) repeats: if that happens with no date in
  between, the rule has no further date at all and the walk ends. Once all 14 year types have been
  seen without a date, it ends too; and it never passes ``LAST_DATE``. So a walk visits at most
  the 8,000 years to ``LAST_DATE``, most of them in O(1).

WEEKLY and DAILY periods are short enough to select here (weekday and month filters, then
BYSETPOS, exactly as dateutil does); dateutil's first WEEKLY period runs from the anchor to the
next WKST, not from the week's start, and so does this one.
"""

from __future__ import annotations

import bisect
import calendar
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil import rrule as du

from planner.core.rrule_grammar import RuleParts

#: Dates are expanded up to here: dateutil cannot expand the last week of the year 9999.
LAST_DATE = date(9998, 12, 31)
_DATEUTIL_FREQ = {"YEARLY": du.YEARLY, "MONTHLY": du.MONTHLY}
#: An INTERVAL (in the frequency's unit) that puts dateutil's second period past the year 9999.
_ONE_PERIOD = {"YEARLY": 8000, "MONTHLY": 8000 * 12}
_ALL_WEEKDAYS = tuple(range(7))
_CYCLE_YEARS = 400
#: A year of each of the 14 types, within dateutil's range on both sides (weeks straddle New Year).
_YEAR_OF_TYPE = {(calendar.isleap(y), date(y, 1, 1).weekday()): y for y in range(2027, 1999, -1)}


@dataclass(frozen=True)
class Shape:
    """What a period's dates depend on: the BY parts, with what the rule leaves out taken from the
    anchor as RFC 5545 (and dateutil) do (a WEEKLY rule without BYDAY fires on the anchor's weekday)."""

    freq: str
    by_day: tuple[tuple[int, int], ...]
    by_month_day: tuple[int, ...]
    by_month: tuple[int, ...]
    by_set_pos: tuple[int, ...]
    wkst: int


def shape_of(parts: RuleParts, anchor: date) -> Shape:
    by_day, by_month_day, by_month = parts.by_day, parts.by_month_day, parts.by_month
    if not by_day and not by_month_day:
        if parts.freq == "WEEKLY":
            by_day = ((0, anchor.weekday()),)
        elif parts.freq in ("MONTHLY", "YEARLY"):
            by_month_day = (anchor.day,)
            if parts.freq == "YEARLY":
                by_month = by_month or (anchor.month,)
    return Shape(parts.freq, by_day, by_month_day, by_month, parts.by_set_pos, parts.wkst)


@dataclass(frozen=True)
class Plan:
    """A rule ready to walk: its shape, its anchor (DTSTART) and its INTERVAL."""

    shape: Shape
    anchor: date
    interval: int


@dataclass(frozen=True)
class YearDates:
    """A rule's dates in a year of one type with INTERVAL=1: days after January 1 (increasing) and
    the period of each (so also increasing), counted from the period that holds January 1."""

    offsets: tuple[int, ...]
    periods: tuple[int, ...]
    period_count: int


def walk(plan: Plan, start: date, end: date) -> Iterator[date]:
    """The rule's dates from ``start`` to ``end`` (inclusive), increasing."""
    start, end = max(start, plan.anchor), min(end, LAST_DATE)
    if start > end:
        return
    p0 = period_of(plan.shape, plan.anchor)
    if plan.shape.freq != "WEEKLY":
        yield from _years(plan, p0, start, end)
        return
    yield from (d for d in first_week(plan.shape, plan.anchor) if start <= d <= end)
    yield from _years(plan, p0 + 1, start, end)


def _years(plan: Plan, p_min: int, start: date, end: date) -> Iterator[date]:
    """The dates of the periods from ``p_min`` on, year by year (see the module's docstring). The
    loop is the hot path of a long walk: a year costs a few integer operations unless it has a date."""
    shape, step, p0 = plan.shape, plan.interval, period_of(plan.shape, plan.anchor)
    p_end, first_whole = period_of(shape, end), start.toordinal()
    seen: dict[tuple[bool, int], tuple[YearDates, frozenset[int]]] = {}
    since_hit: set[tuple[int, int]] = set()
    year = start.year
    while year <= end.year:
        ordinal, leap, p_first, p_last = _year_facts(shape, year)
        lowest = p_min if p_min > p_first else p_first
        kept = lowest + (p0 - lowest) % step
        if kept > p_last:  # no kept period in this year: on to the year of the next one
            if kept > p_end:
                return
            year = period_start(shape, kept).year
            continue
        kind = (leap, (ordinal + 6) % 7)  # ordinal 1 is a Monday
        if kind not in seen:
            seen[kind] = _type_dates(shape, step, kind)
            if len(seen) == len(_YEAR_OF_TYPE) and not any(d.offsets for d, _ in seen.values()):
                return  # no year of any type has a date
        dates, residues = seen[kind]
        phase = (p_first - p0) % step
        if ordinal >= first_whole and year < end.year and p_first >= p_min and -phase % step not in residues:
            # A whole year without a date. The calendar repeats every 400 years and the phase
            # decides the rest: in the same state again with nothing found since, nothing ever will be.
            if (year % _CYCLE_YEARS, phase) in since_hit:
                return
            since_hit.add((year % _CYCLE_YEARS, phase))
            year += 1
            continue
        jan1 = date(year, 1, 1)
        window = ((start - jan1).days, (end - jan1).days, lowest - p_first)
        for found in _kept_dates(dates, jan1, phase, step, window):
            since_hit.clear()
            yield found
        year += 1


def _type_dates(shape: Shape, step: int, kind: tuple[bool, int]) -> tuple[YearDates, frozenset[int]]:
    """``year_dates`` and the periods that hold a date, modulo ``step``: a whole year has a kept date
    exactly when ``-phase % step`` is one of them."""
    dates = year_dates(shape, kind)
    return dates, frozenset(p % step for p in dates.periods)


def _year_facts(shape: Shape, year: int) -> tuple[int, bool, int, int]:
    """January 1's ordinal, whether ``year`` is a leap year, and its first and last period."""
    before = year - 1
    ordinal = 1 + 365 * before + before // 4 - before // 100 + before // 400
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if shape.freq == "DAILY":
        return ordinal, leap, ordinal, ordinal + 364 + leap
    if shape.freq == "WEEKLY":
        return ordinal, leap, (ordinal - 1 - shape.wkst) // 7, (ordinal + 363 + leap - shape.wkst) // 7
    if shape.freq == "MONTHLY":
        return ordinal, leap, year * 12, year * 12 + 11
    return ordinal, leap, year, year


def _kept_dates(
    dates: YearDates, jan1: date, phase: int, step: int, window: tuple[int, int, int]
) -> Iterator[date]:
    """The year's dates in the kept periods (``(phase + period) % step == 0``) within ``window``:
    (first offset, last offset, first period). Goes through whichever is fewer: dates or periods."""
    low, high, first_period = window
    if len(dates.offsets) <= dates.period_count // step + 1:
        for index in range(bisect.bisect_left(dates.offsets, low), len(dates.offsets)):
            offset, period = dates.offsets[index], dates.periods[index]
            if offset > high:
                return
            if period >= first_period and (phase + period) % step == 0:
                yield jan1 + timedelta(days=offset)
        return
    for period in range(first_period + (-phase - first_period) % step, dates.period_count, step):
        index = bisect.bisect_left(dates.periods, period)
        while index < len(dates.periods) and dates.periods[index] == period:
            if dates.offsets[index] > high:
                return
            if dates.offsets[index] >= low:
                yield jan1 + timedelta(days=dates.offsets[index])
            index += 1


def period_of(shape: Shape, day: date) -> int:
    """The number of the period (day, week from WKST, month, year) that holds ``day``."""
    if shape.freq == "DAILY":
        return day.toordinal()
    if shape.freq == "WEEKLY":
        return (day.toordinal() - 1 - shape.wkst) // 7  # ordinal 1 is a Monday (weekday 0)
    if shape.freq == "MONTHLY":
        return day.year * 12 + day.month - 1
    return day.year


def period_start(shape: Shape, period: int) -> date:
    if shape.freq == "DAILY":
        return date.fromordinal(period)
    if shape.freq == "WEEKLY":
        return date.fromordinal(period * 7 + 1 + shape.wkst)
    if shape.freq == "MONTHLY":
        return date(period // 12, period % 12 + 1, 1)
    return date(period, 1, 1)


@functools.lru_cache(maxsize=4096)  # at most 14 per rule shape, a few kB each
def year_dates(shape: Shape, kind: tuple[bool, int]) -> YearDates:
    """The rule's dates in a year of type ``kind`` (leap, weekday of January 1), INTERVAL=1."""
    year = _YEAR_OF_TYPE[kind]
    jan1 = date(year, 1, 1)
    found: list[tuple[date, int]]
    if shape.freq == "WEEKLY":
        found = _weeks_of(shape, year)
    elif shape.freq == "DAILY":
        found = [(d, (d - jan1).days) for d in _days_of(shape, year)]
    elif shape.freq == "MONTHLY":
        found = [(d, month - 1) for month in range(1, 13) for d in _one_period(shape, date(year, month, 1))]
    else:
        found = [(d, 0) for d in _one_period(shape, jan1)]
    return YearDates(
        offsets=tuple((d - jan1).days for d, _ in found),
        periods=tuple(p for _, p in found),
        period_count=period_of(shape, date(year, 12, 31)) - period_of(shape, jan1) + 1,
    )


def _one_period(shape: Shape, start: date) -> list[date]:
    """dateutil's dates for the YEARLY or MONTHLY period that begins on ``start``."""
    rule = du.rrule(
        _DATEUTIL_FREQ[shape.freq],
        dtstart=datetime.combine(start, time()),
        interval=_ONE_PERIOD[shape.freq],
        wkst=shape.wkst,
        bysetpos=shape.by_set_pos or None,
        bymonth=shape.by_month or None,
        bymonthday=shape.by_month_day or None,
        byweekday=[du.weekday(day, ordinal or None) for ordinal, day in shape.by_day] or None,
    )
    return [found.date() for found in rule]


def _days_of(shape: Shape, year: int) -> list[date]:
    """The days a DAILY rule keeps in ``year``: dateutil filters a day exactly as it filters the
    days of a year, so one YEARLY period (with every weekday unless BYDAY limits them) gives them."""
    if shape.by_set_pos and not {1, -1} & set(shape.by_set_pos):
        return []  # a day is a set of one date: only position 1 or -1 selects it
    rule = du.rrule(
        du.YEARLY,
        dtstart=datetime.combine(date(year, 1, 1), time()),
        interval=_ONE_PERIOD["YEARLY"],
        bymonth=shape.by_month or None,
        bymonthday=shape.by_month_day or None,
        byweekday=tuple(day for _, day in shape.by_day) or _ALL_WEEKDAYS,
    )
    return [found.date() for found in rule]


def _weeks_of(shape: Shape, year: int) -> list[tuple[date, int]]:
    jan1, dec31 = date(year, 1, 1), date(year, 12, 31)
    start = jan1 - timedelta(days=(jan1.weekday() - shape.wkst) % 7)
    found: list[tuple[date, int]] = []
    for week in range(period_of(shape, dec31) - period_of(shape, jan1) + 1):
        days = [start + timedelta(days=7 * week + i) for i in range(7)]
        found += [(d, week) for d in _week_dates(shape, days) if d.year == year]
    return found


@functools.lru_cache(maxsize=4096)
def first_week(shape: Shape, anchor: date) -> tuple[date, ...]:
    """The first WEEKLY period as dateutil has it: from the anchor to the day before the next WKST."""
    length = (shape.wkst - anchor.weekday()) % 7 or 7
    return tuple(_week_dates(shape, [anchor + timedelta(days=i) for i in range(length)]))


def _week_dates(shape: Shape, days: list[date]) -> list[date]:
    weekdays = {day for _, day in shape.by_day}
    kept = [d for d in days if d.weekday() in weekdays and (not shape.by_month or d.month in shape.by_month)]
    return select_positions(kept, shape.by_set_pos)


def select_positions(kept: list[date], positions: tuple[int, ...]) -> list[date]:
    """BYSETPOS as dateutil applies it: 1 is the first of the period's dates, -1 the last; a position
    beyond them selects nothing."""
    if not positions:
        return kept
    indexes = {p - 1 if p > 0 else p for p in positions}
    return sorted({kept[i] for i in indexes if -len(kept) <= i < len(kept)})
