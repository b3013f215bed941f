"""Values in the words a person reads: durations, lists, ordinals, values of any type.

Everything shown to a person (a page, a CLI table, a problem line of ``/readyz``) goes through
these rather than ``str()`` of a Python value, whose form (``2 days, 14:10:46.320516``,
``{'tier': 'weekly'}``, ``None``) is Python's, not the reader's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta

from planner.core.localtime import UTC, hhmm

_UNITS = (("day", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
_LONG = {"day": "day", "h": "hour", "min": "minute", "s": "second"}


def duration(value: timedelta | float | None, parts: int = 2, long: bool = False) -> str:
    """``timedelta(days=272, seconds=51046)`` as '272 days 14 h'; the ``parts`` largest units,
    whole numbers only ('2 h', '15 min', '45 s', '0.3 s' below a second; None as 'unknown').
    ``long``: the units in full, for a sentence ('1 hour 30 minutes')."""
    if value is None:
        return "unknown"
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        unit = "seconds" if long else "s"
        return f"{sign}{seconds:.1f} {unit}" if seconds else f"0 {unit}"
    left, counts = int(seconds), []
    for short, size in _UNITS:
        count, left = divmod(left, size)
        name = _LONG[short] if long else short
        counts.append((count, f"{name}s" if (name == "day" or long) and count != 1 else name))
    largest = next(i for i, (count, _) in enumerate(counts) if count)
    words = [f"{count} {name}" for count, name in counts[largest : largest + parts] if count]
    return sign + " ".join(words)


def window_length(window: timedelta) -> str:
    """A window's length as a label says it: '24 hours' up to two days, then '7 days'."""
    hours = int(window.total_seconds() // 3600)
    return f"{hours} hours" if hours < 48 else f"{hours // 24} days"


def listing(items: Iterable[str], conjunction: str = "and") -> str:
    """['a', 'b', 'c'] as 'a, b and c'."""
    values = list(items)
    if len(values) < 2:
        return "".join(values)
    return f"{', '.join(values[:-1])} {conjunction} {values[-1]}"


_ORDINAL_WORDS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}


def ordinal_word(number: int) -> str:
    """1 'first', 2 'second' ... 53 '53rd'; -1 'last', -2 'second to last'."""
    if number < 0:
        return "last" if number == -1 else f"{ordinal_word(-number)} to last"
    return _ORDINAL_WORDS.get(number) or ordinal(number)


def ordinal(number: int) -> str:
    """1 '1st', 2 '2nd', 11 '11th', 22 '22nd'."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def humanise(name: str) -> str:
    """An identifier as words: 'days_since_last_send' as 'days since last send'."""
    return name.replace("_", " ").strip()


def value_text(value: object) -> str:
    """Any stored value in words: None 'none', True 'yes', instants and dates in ISO form (UTC),
    durations as :func:`duration`, lists joined, mappings as 'key value, ...' in parentheses."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%MZ}" if value.tzinfo else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return hhmm(value)
    if isinstance(value, timedelta):
        return duration(value)
    if isinstance(value, Mapping):
        return "(" + ", ".join(f"{humanise(str(k))} {value_text(v)}" for k, v in value.items()) + ")"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(value_text(v) for v in value) or "none"
    return str(value)


def kind_name(kind: str, names: Mapping[str, str]) -> str:
    """What a person reads for a kind: the team's name for it (``PLANNER_KIND_NAMES``), else the
    kind in words: 'weekly_digest' as 'weekly digest messages'."""
    return names.get(kind) or f"{humanise(kind)} messages"
