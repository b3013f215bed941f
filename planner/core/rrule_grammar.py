"""The RRULE grammar of :mod:`planner.core.recurrence`: RFC 5545 section 3.3.10, read strictly.

One parse for every door (import, HTTP, CLI, the testing kit). Each rule part is read by its own
RFC production with ASCII digits only (``[0-9]``, never ``str.isdigit``, which accepts '³' and
'٢'), checked against its RFC range, and kept: a part is refused or used, never dropped. The
grammar, with the subset's own limits:

- ``FREQ`` DAILY, WEEKLY, MONTHLY or YEARLY (required; times of day go in the cadence's ``at``).
- ``INTERVAL`` 1 to ``MAX_INTERVAL``; ``COUNT`` 1 to ``MAX_COUNT``; not both ``COUNT`` and ``UNTIL``.
- ``BYDAY`` weekdays MO..SU, each optionally preceded by an ordinal 1 to 53 or -53 to -1 (``+``
  allowed). RFC 5545 allows ordinals only with MONTHLY or YEARLY; where they count within a month
  (MONTHLY, or YEARLY with BYMONTH) only 1 to 5 and -5 to -1 are accepted, because a month never
  has a sixth Monday: ``BYDAY=6MO`` there is refused as the grammar error it is, not walked.
  Plain and ordinal weekdays are not mixed in one list (``MO,2TU``): RFC 5545 means a date that is
  either, dateutil one that is both at once (none is), so such a rule would silently never fire.
- ``BYMONTHDAY`` 1 to 31 or -31 to -1 (not with WEEKLY, RFC 5545); ``BYMONTH`` 1 to 12;
  ``BYSETPOS`` 1 to 366 or -366 to -1, only together with another BYxxx part (RFC 5545).
- ``UNTIL`` a DATE ``YYYYMMDD`` or a DATE-TIME ``YYYYMMDDTHHMMSS`` / ``YYYYMMDDTHHMMSSZ`` (hour
  00-23, minute 00-59, second 00-60). Rules are expanded on local dates, before the recipient's
  zone is known, so a DATE-TIME counts by its date as written: the rule's last possible date is
  that date, whatever the time (``T000000Z`` and ``T235959Z`` alike). The normalised text says so
  (``UNTIL=YYYYMMDD``). Offsets such as ``+0200`` are not RFC 5545 and are refused.
- ``WKST`` a weekday.

Each part at most once (a repeated part is refused, never last-wins), each list value at most once,
no empty value, no unknown part; names and values are case-insensitive (ASCII only) and an
``RRULE:`` prefix is allowed. The normalised text keeps the parts in the order given, with numbers
in plain form (``+02`` becomes ``2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from planner.errors import InvalidInput, shown

FIELD = "rrule"
MAX_LENGTH = 500
#: Far beyond any notification schedule (1000 months is 83 years, 1000 dates of a daily rule almost
#: three); COUNT's bound also bounds the walk that finds a COUNT rule's last date.
MAX_INTERVAL = 1000
MAX_COUNT = 1000
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
EXPECTED = (
    "an RRULE such as 'FREQ=MONTHLY;BYDAY=-1FR' (FREQ DAILY, WEEKLY, MONTHLY or YEARLY; INTERVAL, BYDAY, "
    "BYMONTHDAY, BYMONTH, BYSETPOS, COUNT, UNTIL, WKST)"
)
_PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "COUNT", "UNTIL", "WKST")
_TIMES_OF_DAY = ("BYHOUR", "BYMINUTE", "BYSECOND")
_OUTSIDE_SUBSET = ("DTSTART", "BYYEARDAY", "BYWEEKNO", *_TIMES_OF_DAY)
_REFUSED_FREQS = ("SECONDLY", "MINUTELY", "HOURLY")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: Names and values are case-insensitive, in ASCII only (a bare IGNORECASE would let 'ſ' be 's').
_CASELESS = re.ASCII | re.IGNORECASE
_NAME = re.compile(r"[A-Z][A-Z-]*", _CASELESS)
_WHOLE = re.compile(r"[0-9]{1,5}")
_WEEKDAY_NUM = re.compile(r"(?:([+-]?)([0-9]{1,2}))?(MO|TU|WE|TH|FR|SA|SU)", _CASELESS)
_UNTIL = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})Z?)?", _CASELESS)

#: What each list part accepts: (one value's RFC 5545 production, its largest size, the refusal).
_LISTS = {
    "BYMONTHDAY": (
        re.compile(r"[+-]?[0-9]{1,2}"),
        31,
        "BYMONTHDAY days of the month 1 to 31 or -31 to -1, comma-separated, each once",
    ),
    "BYMONTH": (re.compile(r"[0-9]{1,2}"), 12, "BYMONTH months 1 to 12, comma-separated, each once"),
    "BYSETPOS": (
        re.compile(r"[+-]?[0-9]{1,3}"),
        366,
        "BYSETPOS positions 1 to 366 or -366 to -1, comma-separated, each once",
    ),
}
_BYDAY = "BYDAY weekdays MO to SU, each optionally after an ordinal 1 to 53 or -53 to -1, each once"


@dataclass(frozen=True)
class RuleParts:
    """A rule as read: ``by_day`` holds (ordinal, weekday) with ordinal 0 for a plain weekday and
    Monday as weekday 0; ``until`` is the last date the rule may fire; ``text`` the normalised rule."""

    freq: str
    interval: int
    by_day: tuple[tuple[int, int], ...]
    by_month_day: tuple[int, ...]
    by_month: tuple[int, ...]
    by_set_pos: tuple[int, ...]
    count: int | None
    until: date | None
    wkst: int
    text: str

    @property
    def ordinals_count_in_month(self) -> bool:
        """Whether BYDAY ordinals count within a month (RFC 5545) rather than within the year."""
        return self.freq == "MONTHLY" or (self.freq == "YEARLY" and bool(self.by_month))


def refuse(value: object, expected: str, item: str | None = None) -> InvalidInput:
    """The house-style error for ``value``; ``item`` is the offending piece, named when given."""
    return InvalidInput(FIELD, value, expected if item is None else f"{expected}; got {shown(item, 40)}")


def parse_parts(value: object) -> RuleParts:
    """Read ``value`` by the grammar above; raises ``InvalidInput`` (field 'rrule')."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LENGTH:
        raise InvalidInput(FIELD, value, EXPECTED)
    text = value.strip()
    if text[: len("RRULE:")].translate(_ASCII_UPPER) == "RRULE:":
        text = text[len("RRULE:") :]
    raw = _split(value, text)
    freq = raw.get("FREQ", "").translate(_ASCII_UPPER)
    if freq in _REFUSED_FREQS:
        raise refuse(value, "FREQ of DAILY, WEEKLY, MONTHLY or YEARLY (times of day go in 'at')")
    if freq not in FREQS:
        raise refuse(value, EXPECTED)
    parts = _read_values(value, freq, raw)
    _check_combinations(value, parts)
    return parts


def _split(value: str, text: str) -> dict[str, str]:
    raw: dict[str, str] = {}
    for item in text.split(";"):
        given, sep, val = item.partition("=")
        if not item:
            raise refuse(value, "parts separated by single ';', with none empty (no ';' at the end)")
        if not sep or not _NAME.fullmatch(given):
            raise refuse(value, EXPECTED, item)
        name = given.translate(_ASCII_UPPER)
        if name in _OUTSIDE_SUBSET:
            where = "times of day go in 'at'" if name in _TIMES_OF_DAY else "the anchor is start_date"
            raise refuse(value, f"no {name} ({EXPECTED}; {where})")
        if name not in _PARTS:
            raise refuse(value, f"only the parts {', '.join(_PARTS)}", given)
        if name in raw:
            raise refuse(value, f"each part at most once (RFC 5545); {name} is repeated")
        if not val:
            raise refuse(value, f"a value for {name}")
        raw[name] = val
    return raw


def _read_values(value: str, freq: str, raw: dict[str, str]) -> RuleParts:
    interval = _whole(value, raw, "INTERVAL", MAX_INTERVAL)
    count = _whole(value, raw, "COUNT", MAX_COUNT)
    by_day = _by_day(value, raw.get("BYDAY"))
    lists = {name: _int_list(value, name, raw.get(name)) for name in _LISTS}
    until = _until(value, raw.get("UNTIL"))
    wkst = raw.get("WKST", "MO").translate(_ASCII_UPPER)
    if wkst not in WEEKDAYS:
        raise refuse(value, "WKST one of MO, TU, WE, TH, FR, SA, SU", raw["WKST"])
    shown_values = {
        **raw,
        "FREQ": freq,
        **({"WKST": wkst} if "WKST" in raw else {}),
        **{k: str(n) for k, n in (("INTERVAL", interval), ("COUNT", count)) if n is not None},
        **{k: ",".join(map(str, v)) for k, v in lists.items() if v},
        **({"BYDAY": ",".join(_day_text(d) for d in by_day)} if by_day else {}),
        **({"UNTIL": f"{until.year:04d}{until.month:02d}{until.day:02d}"} if until else {}),
    }
    return RuleParts(
        freq=freq,
        interval=interval or 1,
        by_day=by_day,
        by_month_day=lists["BYMONTHDAY"],
        by_month=lists["BYMONTH"],
        by_set_pos=lists["BYSETPOS"],
        count=count,
        until=until,
        wkst=WEEKDAYS.index(wkst),
        text=";".join(f"{name}={shown_values[name]}" for name in raw),
    )


def _whole(value: str, raw: dict[str, str], name: str, top: int) -> int | None:
    if name not in raw:
        return None
    text = raw[name]
    if not _WHOLE.fullmatch(text) or not 1 <= int(text) <= top:
        raise refuse(value, f"{name} a whole number from 1 to {top}", text)
    return int(text)


def _int_list(value: str, name: str, text: str | None) -> tuple[int, ...]:
    if text is None:
        return ()
    production, top, expected = _LISTS[name]
    numbers: list[int] = []
    for item in text.split(","):
        if not production.fullmatch(item) or not 1 <= abs(int(item)) <= top or int(item) in numbers:
            raise refuse(value, expected, item)
        numbers.append(int(item))
    return tuple(numbers)


def _by_day(value: str, text: str | None) -> tuple[tuple[int, int], ...]:
    if text is None:
        return ()
    days: list[tuple[int, int]] = []
    for item in text.split(","):
        match = _WEEKDAY_NUM.fullmatch(item)
        ordinal = int(match[1] + match[2]) if match and match[2] else 0
        if not match or (match[2] and not 1 <= abs(ordinal) <= 53):
            raise refuse(value, _BYDAY, item)
        day = (ordinal, WEEKDAYS.index(match[3].upper()))
        if day in days:
            raise refuse(value, _BYDAY, item)
        days.append(day)
    return tuple(days)


def _day_text(day: tuple[int, int]) -> str:
    ordinal, weekday = day
    return f"{ordinal or ''}{WEEKDAYS[weekday]}"


def _until(value: str, text: str | None) -> date | None:
    if text is None:
        return None
    match = _UNTIL.fullmatch(text)
    try:
        if match and _valid_time(match):
            return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:  # a month 13 or a February 30
        pass
    raise refuse(
        value, "UNTIL a date YYYYMMDD or a date-time YYYYMMDDTHHMMSS or YYYYMMDDTHHMMSSZ (RFC 5545)", text
    )


def _valid_time(match: re.Match[str]) -> bool:
    if match[4] is None:
        return True
    return int(match[4]) <= 23 and int(match[5]) <= 59 and int(match[6]) <= 60


def _check_combinations(value: str, parts: RuleParts) -> None:
    """The RFC 5545 rules between parts, and the subset's: a refusal names the rule broken."""
    if parts.count is not None and parts.until is not None:
        raise refuse(value, "COUNT or UNTIL, not both (RFC 5545)")
    ordinals = [day for day in parts.by_day if day[0]]
    if ordinals and parts.freq in ("DAILY", "WEEKLY"):
        raise refuse(
            value,
            f"BYDAY without ordinals with FREQ={parts.freq} (RFC 5545: ordinals such as 2MO only "
            "with MONTHLY or YEARLY)",
            _day_text(ordinals[0]),
        )
    if ordinals and len(ordinals) < len(parts.by_day):
        raise refuse(value, "BYDAY weekdays all with ordinals (1MO,-1FR) or all without (MO,FR), not a mix")
    beyond = [day for day in ordinals if abs(day[0]) > 5]
    if beyond and parts.ordinals_count_in_month:
        within = "FREQ=MONTHLY" if parts.freq == "MONTHLY" else "FREQ=YEARLY and BYMONTH"
        raise refuse(
            value,
            f"BYDAY ordinals 1 to 5 or -5 to -1 with {within} (a month has at most five of a weekday)",
            _day_text(beyond[0]),
        )
    if parts.by_month_day and parts.freq == "WEEKLY":
        raise refuse(value, "no BYMONTHDAY with FREQ=WEEKLY (RFC 5545)")
    if parts.by_set_pos and not (parts.by_day or parts.by_month_day or parts.by_month):
        raise refuse(value, "BYSETPOS only together with BYDAY, BYMONTHDAY or BYMONTH (RFC 5545)")
