"""Recurrence rules: an RFC 5545 RRULE subset, expanded on local calendar dates only.

A rule says on which local *dates* a subscription fires; the wall times and the DST policy
(:mod:`planner.core.localtime`) are applied afterwards, per date. The rule is handed to
``python-dateutil``'s ``rrule`` with a naive midnight ``DTSTART``, so every step dateutil takes is a
step on the calendar, never arithmetic on an aware datetime.

The subset: ``FREQ`` (DAILY, WEEKLY, MONTHLY, YEARLY), ``INTERVAL``, ``BYDAY`` (with ordinals such
as ``-1FR`` or ``2MO``), ``BYMONTHDAY`` (``-1`` is the last day), ``BYMONTH``, ``BYSETPOS``,
``COUNT``, ``UNTIL`` (a local date, ``YYYYMMDD``) and ``WKST``. As RFC 5545 says, a date that does
not exist in a month is skipped, never moved: ``BYMONTHDAY=31`` fires in the seven months that
have a 31st.

The anchor (``DTSTART``) is the subscription's ``start_date``. A rule that depends on its anchor
(``INTERVAL`` above 1, ``COUNT``, or a WEEKLY/MONTHLY/YEARLY rule that takes its weekday or day from
it) needs one; a rule that does not is anchored on a fixed date, so it means the same whenever it
is imported.
"""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time

from dateutil import rrule as du

from planner.errors import InvalidInput

FIELD = "rrule"
EXPECTED = (
    "an RRULE such as 'FREQ=MONTHLY;BYDAY=-1FR' (FREQ DAILY, WEEKLY, MONTHLY or YEARLY; INTERVAL, BYDAY, "
    "BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL=YYYYMMDD, WKST)"
)
MAX_LENGTH = 500
#: The anchor of rules that do not depend on one (a Monday, so WKST=MO weeks line up).
NEUTRAL_ANCHOR = date(2000, 1, 3)

_FREQS = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY, "YEARLY": du.YEARLY}
_REFUSED_FREQS = {"SECONDLY", "MINUTELY", "HOURLY"}
_KEYS = {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "COUNT", "UNTIL", "WKST"}
_UNTIL = re.compile(r"(\d{4})(\d{2})(\d{2})(T\d{6}Z?)?")
_DAY = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)")
_INT_LIST = re.compile(r"[+-]?\d{1,3}(,[+-]?\d{1,3})*")
_LEAP_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True)
class RecurrenceRule:
    """A validated rule (``text`` is its normalised form) and the local date it counts from."""

    text: str
    anchor: date
    until: date | None

    @classmethod
    def parse(cls, value: object, start_date: date | None) -> RecurrenceRule:
        """Validate user input; raises ``InvalidInput`` naming the field, the value and what was expected."""
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_LENGTH:
            raise InvalidInput(FIELD, value, EXPECTED)
        text = value.strip().upper().removeprefix("RRULE:")
        parts = _split(value, text)
        freq = parts.get("FREQ")
        if freq in _REFUSED_FREQS:
            raise InvalidInput(
                FIELD, value, "FREQ of DAILY, WEEKLY, MONTHLY or YEARLY (times of day go in 'at')"
            )
        if freq not in _FREQS:
            raise InvalidInput(FIELD, value, EXPECTED)
        _check_values(value, parts)
        if start_date is None and _needs_anchor(parts):
            raise InvalidInput(
                "start_date", None, f"a local date YYYY-MM-DD: {text!r} counts from its first date"
            )
        anchor = start_date or NEUTRAL_ANCHOR
        until = _until(value, parts.get("UNTIL"))
        if until is not None and until < anchor:
            raise InvalidInput(FIELD, value, f"an UNTIL on or after the start date {anchor.isoformat()}")
        normalised = ";".join(f"{k}={v}" for k, v in parts.items())
        rule = cls(normalised, anchor, until)
        # With COUNT or UNTIL dateutil's search ends by itself; without, _can_occur decides.
        if not _can_occur(parts, anchor) or (
            ("COUNT" in parts or until is not None) and rule.first_on_or_after(anchor) is None
        ):
            raise InvalidInput(FIELD, value, "a rule that occurs on at least one date")
        return rule

    def first_on_or_after(self, day: date) -> date | None:
        """The first date of the rule on or after ``day``; None when the rule has ended (COUNT, UNTIL)."""
        found = _expanded(self.text, self.anchor, self.until).after(datetime.combine(day, time()), inc=True)
        return None if found is None else found.date()

    def dates_between(self, first: date, last: date) -> list[date]:
        """Every date of the rule in ``[first, last]``."""
        rule = _expanded(self.text, self.anchor, self.until)
        return [
            d.date()
            for d in rule.between(datetime.combine(first, time()), datetime.combine(last, time()), inc=True)
        ]

    def matches(self, day: date) -> bool:
        return self.first_on_or_after(day) == day

    def __str__(self) -> str:
        return self.text


def _split(value: str, text: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, val = item.partition("=")
        if not sep or not val or key not in _KEYS or key in parts:
            if key in {"DTSTART", "BYHOUR", "BYMINUTE", "BYSECOND", "BYYEARDAY", "BYWEEKNO"}:
                raise InvalidInput(
                    FIELD, value, f"no {key} ({EXPECTED}; the anchor is start_date, times go in 'at')"
                )
            raise InvalidInput(FIELD, value, EXPECTED)
        parts[key] = val
    return parts


def _check_values(value: str, parts: dict[str, str]) -> None:
    for key in ("INTERVAL", "COUNT"):
        if key in parts and not (parts[key].isdigit() and 1 <= int(parts[key]) <= 10_000):
            raise InvalidInput(FIELD, value, f"{key} a whole number from 1 to 10000")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidInput(FIELD, value, "COUNT or UNTIL, not both (RFC 5545)")
    for key in ("BYMONTHDAY", "BYMONTH", "BYSETPOS"):
        if key in parts and not _INT_LIST.fullmatch(parts[key]):
            raise InvalidInput(FIELD, value, f"{key} a comma-separated list of numbers")
    if "BYDAY" in parts and not all(_DAY.fullmatch(d) for d in parts["BYDAY"].split(",")):
        raise InvalidInput(FIELD, value, "BYDAY a list such as MO,WE or -1FR,2MO")
    if "WKST" in parts and parts["WKST"] not in {"MO", "TU", "WE", "TH", "FR", "SA", "SU"}:
        raise InvalidInput(FIELD, value, "WKST one of MO..SU")


def _needs_anchor(parts: dict[str, str]) -> bool:
    if int(parts.get("INTERVAL", "1")) > 1 or "COUNT" in parts:
        return True
    freq = parts["FREQ"]
    if freq == "WEEKLY":
        return "BYDAY" not in parts
    if freq in {"MONTHLY", "YEARLY"}:
        # Without a day, dateutil takes the anchor's day of the month (and, yearly, its month).
        return "BYDAY" not in parts and "BYMONTHDAY" not in parts
    return False


def _until(value: str, raw: str | None) -> date | None:
    if raw is None:
        return None
    match = _UNTIL.fullmatch(raw)
    try:
        return date(int(match[1]), int(match[2]), int(match[3])) if match else None
    except ValueError:
        pass
    raise InvalidInput(FIELD, value, "UNTIL a local date YYYYMMDD")


@functools.lru_cache(maxsize=4096)
def _expanded(text: str, anchor: date, until: date | None) -> du.rrule:
    """The dateutil rule, naive and anchored at local midnight; cached (with dateutil's own cache of
    dates it has generated) so a planner process expands each rule once."""
    without_until = ";".join(p for p in text.split(";") if not p.startswith("UNTIL="))
    rule = du.rrulestr(without_until, dtstart=datetime.combine(anchor, time()), cache=True)
    assert isinstance(rule, du.rrule)
    if until is not None:
        rule = rule.replace(until=datetime.combine(until, time()))
    return rule


def _ints(parts: dict[str, str], key: str) -> list[int]:
    return [int(v) for v in parts[key].split(",")] if key in parts else []


def _can_occur(parts: dict[str, str], anchor: date) -> bool:
    """Whether the rule has any date, decided without expanding it.

    dateutil walks every period of a rule that never occurs up to the year 9999 (seconds to
    minutes), so the impossible cases are found here: day numbers no chosen month has (Feb 30),
    set positions beyond what a period can hold, and a leap day only on years the interval skips.
    """
    months = _ints(parts, "BYMONTH") or list(range(1, 13))
    if any(not 1 <= m <= 12 for m in months):
        return False
    monthdays = _ints(parts, "BYMONTHDAY")
    if any(d == 0 or abs(d) > 31 for d in monthdays):
        return False
    if monthdays:
        possible = [(m, d) for m in months for d in monthdays if abs(d) <= _LEAP_MONTH_DAYS[m - 1]]
        if not possible:
            return False
        if all((m, abs(d)) == (2, 29) for m, d in possible) and not _leap_year_reached(parts, anchor):
            return False
    positions = _ints(parts, "BYSETPOS")
    return not positions or (0 not in positions and min(abs(p) for p in positions) <= _set_bound(parts))


def _leap_year_reached(parts: dict[str, str], anchor: date) -> bool:
    step = int(parts.get("INTERVAL", "1")) if parts["FREQ"] == "YEARLY" else 1
    return any(calendar.isleap(anchor.year + k * step) for k in range(400))


def _set_bound(parts: dict[str, str]) -> int:
    """An upper bound on how many dates one period (a day, week, month or year) can hold."""
    days = parts["BYDAY"].split(",") if "BYDAY" in parts else []
    # A weekday with an ordinal (2MO) is one date a month, a plain one (MO) up to five.
    per_month = len(_ints(parts, "BYMONTHDAY")) or sum(1 if d[0] in "+-0123456789" else 5 for d in days) or 1
    bounds = {"DAILY": 1, "WEEKLY": len(days) or 1, "MONTHLY": min(per_month, 31), "YEARLY": 366}
    return bounds[parts["FREQ"]]
