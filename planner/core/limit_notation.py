"""The ``limits`` package's rate-limit notation ('10/day', '5 per 2 hours'), read without importing it.

Caps and rate limits are written in that notation in the settings, and the worker hands rate
limits to ``limits`` itself. A planner run only needs each cap's amount and window, and importing
``limits`` (its asyncio storage, ``deprecated``, ``wrapt``) cost 0.2 s of every run's start-up.
The grammar and the units are ``limits.util.parse``'s; tests/core/test_limit_notation.py checks
that both read every form alike.
"""

from __future__ import annotations

import re

_SINGLE = r"\s*([0-9]+)\s*(/|\s*per\s*)\s*([0-9]+)?\s*([a-z]+)\s*"
_EXPRESSION = re.compile(rf"^{_SINGLE}(:?[,;|]{{1}}{_SINGLE})*$", re.IGNORECASE)
_FIRST = re.compile(_SINGLE, re.IGNORECASE)

#: Seconds per unit, as ``limits`` counts them (a month is 30 days, a year 12 of those).
UNIT_SECONDS = {
    "day": 60 * 60 * 24,
    "month": 60 * 60 * 24 * 30,
    "year": 60 * 60 * 24 * 30 * 12,
    "hour": 60 * 60,
    "minute": 60,
    "second": 1,
}


def parse_limit(text: object) -> tuple[int, int]:
    """(amount, window in seconds) of the first limit in ``text``; ValueError when it is not the notation."""
    if not isinstance(text, str) or not _EXPRESSION.match(text):
        raise ValueError(f"couldn't parse rate limit string {text!r}")
    match = _FIRST.match(re.split(r"[,;|]{1}", text)[0])
    assert match is not None  # the whole expression matched
    amount, _, multiples, unit = match.groups()
    name = unit.lower()
    seconds = UNIT_SECONDS.get(name.removesuffix("s")) if name.endswith("s") else UNIT_SECONDS.get(name)
    if seconds is None:
        raise ValueError(f"no granularity matched for {unit}")
    return int(amount), seconds * (int(multiples) if multiples else 1)
