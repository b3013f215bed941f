"""A schedule in words: 'every Monday, Wednesday and Friday at 09:00, 13:00 and 17:30'.

:meth:`planner.core.cadence.Cadence.describe` is the one place a schedule is put into words (the
dashboard, ``explain`` and the API all call it); this module words its parts: the wall times, a
weekday set, and a recurrence rule (:mod:`planner.core.recurrence`) where its shape has plain words
(RFC 5545's own examples: the last Friday of every month, every 2 weeks on Tuesday, the last
weekday of the month). A rule outside those shapes is shown as written, never guessed at.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from datetime import date, time

from planner.core.localtime import hhmm
from planner.core.recurrence import RecurrenceRule
from planner.core.wording import listing, ordinal, ordinal_word

_DAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_DAY_NAMES = tuple(calendar.day_name)  # Monday first, as date.weekday()
_WORKDAYS = frozenset(range(5))
_PERIODS = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}
_BYDAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")


def times_words(wall_times: Sequence[time]) -> str:
    """'09:00, 13:00 and 17:30'."""
    return listing(hhmm(t) for t in wall_times)


def weekdays_words(weekdays: frozenset[int] | None) -> str:
    """None 'every day'; Monday to Friday 'every weekday (Monday to Friday)'; else
    'every Monday and Thursday'."""
    if weekdays is None:
        return "every day"
    if weekdays == _WORKDAYS:
        return "every weekday (Monday to Friday)"
    return "every " + listing(_DAY_NAMES[d] for d in sorted(weekdays))


def rule_words(rule: RecurrenceRule, times: str | None = None) -> str:
    """The rule in words, e.g. 'on the last Friday of every month'; as written when it has none.
    ``times`` (the wall times in words) go after the dates and before a COUNT or UNTIL."""
    parts = dict(item.split("=", 1) for item in rule.text.split(";"))
    try:
        words = _RULE_WORDS[parts["FREQ"]](parts, rule.anchor)
    except _NoWords:
        words = f"on the dates of the rule {rule.text}"
    else:
        if "BYDAY" in parts and "BYMONTHDAY" in parts:
            weekdays = _day_list({d for _, d in _days(parts)}, "or")
            words += f", when it is a {weekdays}" + ("," if times else "")
    if times:
        words += f" at {times}"
    if "COUNT" in parts:
        words += f", {parts['COUNT']} times"
    if rule.until is not None:
        words += f", until {rule.until.isoformat()}"
    return words


class _NoWords(Exception):
    """The rule's shape has no plain wording here: it is shown as written."""


def _every(parts: dict[str, str]) -> str:
    count, period = int(parts.get("INTERVAL", "1")), _PERIODS[parts["FREQ"]]
    return f"every {period}" if count == 1 else f"every {count} {period}s"


def _ints(parts: dict[str, str], key: str) -> list[int]:
    return [int(v) for v in parts[key].split(",")] if key in parts else []


def _days(parts: dict[str, str]) -> list[tuple[int | None, int]]:
    """BYDAY as (ordinal or None, weekday number Monday=0)."""
    found = []
    for item in parts.get("BYDAY", "").split(",") if "BYDAY" in parts else []:
        match = _BYDAY.fullmatch(item)
        if match is None:
            raise _NoWords
        found.append((int(match[1]) if match[1] else None, _DAY_CODES.index(match[2])))
    return found


def _months(parts: dict[str, str]) -> str:
    """' in January and March' for a BYMONTH filter, else ''."""
    months = _ints(parts, "BYMONTH")
    return f" in {listing(calendar.month_name[m] for m in months)}" if months else ""


def _day_choice(parts: dict[str, str]) -> str | None:
    """The dates a period picks, e.g. 'the last Friday', 'the 1st and 15th', 'the last weekday';
    None when the rule names no day (it takes the anchor's)."""
    days, monthdays, positions = _days(parts), _ints(parts, "BYMONTHDAY"), _ints(parts, "BYSETPOS")
    if positions:
        if monthdays or not days or any(n is not None for n, _ in days):
            raise _NoWords
        chosen = {d for _, d in days}
        kind = "weekday" if chosen == _WORKDAYS else f"day that is a {_day_list(chosen, 'or')}"
        return f"the {listing(ordinal_word(p) for p in positions)} {kind}"
    if monthdays:  # with days too: rule_words adds 'when it is a Friday'
        return f"the {_monthdays(monthdays)}"
    if days and all(n is None for n, _ in days):
        return f"every {_day_list({d for _, d in days})}"
    if days:
        return listing(f"the {ordinal_word(n) if n else 'every'} {_DAY_NAMES[d]}" for n, d in days)
    return None


def _day_list(days: set[int], conjunction: str = "and") -> str:
    return listing((_DAY_NAMES[d] for d in sorted(days)), conjunction)


def _monthdays(monthdays: list[int]) -> str:
    """[1, 15] '1st and 15th'; [-1] 'last day'; [1, -1] '1st and last day'."""
    words = [ordinal(d) if d > 0 else ordinal_word(d) for d in monthdays]
    return listing(words) + (" day" if any(d < 0 for d in monthdays) else "")


def _daily(parts: dict[str, str], anchor: date) -> str:
    days, every = _days(parts), _every(parts)
    if _ints(parts, "BYSETPOS") or any(n is not None for n, _ in days):
        raise _NoWords
    choice = _day_choice(parts)
    if days and every == "every day" and "BYMONTHDAY" not in parts:
        return f"{choice}{_months(parts)}"
    return every + (f", on {choice}" if choice else "") + _months(parts)


def _weekly(parts: dict[str, str], anchor: date) -> str:
    days, every = _days(parts), _every(parts)
    if "BYMONTHDAY" in parts or any(n is not None for n, _ in days) or _ints(parts, "BYSETPOS"):
        raise _NoWords
    chosen = {d for _, d in days} or {anchor.weekday()}
    if every == "every week":
        return f"every {_day_list(chosen)}{_months(parts)}"
    return f"{every} on {_day_list(chosen)}{_months(parts)}"


def _monthly(parts: dict[str, str], anchor: date) -> str:
    choice = _day_choice(parts) or f"the {ordinal(anchor.day)}"
    every, months = _every(parts), _months(parts)
    if choice.startswith("every "):  # every Monday of the month: the months are the filter
        return f"{choice} of {every}{months}" if every != "every month" else f"{choice}{months}"
    if every == "every month":
        return f"on {choice} of every month{months}"
    return f"on {choice} of the month, {every}{months}"


def _yearly(parts: dict[str, str], anchor: date) -> str:
    months, every = _ints(parts, "BYMONTH"), _every(parts)
    choice = _day_choice(parts)
    if not months:
        if choice is None:
            return f"{every} on {anchor.day} {calendar.month_name[anchor.month]}"
        if "BYMONTHDAY" in parts or _ints(parts, "BYSETPOS"):
            raise _NoWords  # RFC 5545 applies these to every month of the year: no plain words
        if choice.startswith("every "):
            return choice if every == "every year" else f"{choice}, {every}"
        return f"{every} on {choice} of the year"
    named = listing(calendar.month_name[m] for m in months)
    if choice is not None and choice.startswith("every "):
        return f"{choice} in {named}" + ("" if every == "every year" else f", {every}")
    return f"{every} on {choice or f'the {ordinal(anchor.day)}'} of {named}"


_RULE_WORDS = {"DAILY": _daily, "WEEKLY": _weekly, "MONTHLY": _monthly, "YEARLY": _yearly}
