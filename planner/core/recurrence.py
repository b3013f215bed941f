"""Recurrence rules: an RFC 5545 RRULE subset, expanded on local calendar dates only.

A rule says on which local *dates* a subscription fires; the wall times and the DST policy
(:mod:`planner.core.localtime`) are applied afterwards, per date. Every step is a step on the
calendar (``date`` objects), never arithmetic on an aware datetime.

``RecurrenceRule.parse(value, start_date)`` is the one entry point of every door (import, HTTP,
CLI, the testing kit). The grammar, read strictly, is in :mod:`planner.core.rrule_grammar`:
``FREQ`` (DAILY, WEEKLY, MONTHLY, YEARLY), ``INTERVAL``, ``BYDAY`` (ordinals such as ``-1FR`` or
``2MO`` with MONTHLY and YEARLY), ``BYMONTHDAY`` (``-1`` is the last day), ``BYMONTH``,
``BYSETPOS``, ``COUNT``, ``UNTIL`` (a date, or a date-time counted by its date) and ``WKST``. As RFC
5545 says, a date that does not exist in a month is skipped, never moved: ``BYMONTHDAY=31`` fires in
the seven months that have a 31st. The dates are python-dateutil's (the test suite checks them
against it), expanded one period at a time by :mod:`planner.core.rrule_expansion`.

The anchor (``DTSTART``) is the subscription's ``start_date``. A rule that depends on its anchor
(``INTERVAL`` above 1, ``COUNT``, or a WEEKLY/MONTHLY/YEARLY rule that takes its weekday or day from
it) needs one; a rule that does not is anchored on a fixed date, so it means the same whenever it
is imported. ``COUNT`` counts the rule's dates from the anchor (the anchor itself only if the rule
picks it: dateutil's reading, not RFC 5545's "DTSTART is always the first").

A rule with no date is refused: one that never occurs (``FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30``, a
BYSETPOS beyond its set, a leap day on years the INTERVAL skips) and one whose UNTIL comes before its
first date. The proof is a bounded walk (see :mod:`planner.core.rrule_expansion`): the calendar
repeats every 400 years, so the walk stops when its state repeats with no date found, and dates
are only computed up to ``LAST_DATE`` (9998-12-31); a walk visits at most those 8,000 years, a
year without a date in a few integer operations. The same walk answers "the first date on or
after D", so no call the planner makes walks without bound.

Bound, measured with ``bench/rrule_bench.py`` (CPU milliseconds, medians of 7, on the 2-core
development machine, with 3,000 random rules searched for the slowest): a parse takes at most
about 10 ms (the worst found: COUNT=1000 rules whose dates are years apart, counted up to 9998),
a rule that never occurs is refused in at most about 3.5 ms (0.4 ms once its shape has been seen
by the process), ordinary rules in 0.02-0.5 ms; ``first_on_or_after`` takes at most about 3 ms
(a rule whose dates are decades apart, asked past its last date before 9998) and about 0.01 ms for
ordinary rules.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date

from planner.core.rrule_expansion import LAST_DATE, Plan, shape_of, walk
from planner.core.rrule_grammar import RuleParts, parse_parts, refuse
from planner.errors import InvalidInput

#: The anchor of rules that do not depend on one (a Monday, so WKST=MO weeks line up).
NEUTRAL_ANCHOR = date(2000, 1, 3)
NEVER = "a rule that occurs on at least one date"


@dataclass(frozen=True)
class RecurrenceRule:
    """A validated rule (``text`` is its normalised form), the local date it counts from and its
    UNTIL date; ``last`` is the last date it may have (UNTIL, its COUNT-th date or ``LAST_DATE``)."""

    text: str
    anchor: date
    until: date | None
    last: date = field(compare=False)
    plan: Plan = field(compare=False, repr=False)

    @classmethod
    def parse(cls, value: object, start_date: date | None) -> RecurrenceRule:
        """Validate user input; raises ``InvalidInput`` naming the field, the value and what was expected."""
        parts = parse_parts(value)
        if start_date is None and _needs_anchor(parts):
            raise InvalidInput(
                "start_date", None, f"a local date YYYY-MM-DD: {parts.text!r} counts from its first date"
            )
        anchor = start_date or NEUTRAL_ANCHOR
        if parts.until is not None and parts.until < anchor:
            raise refuse(value, f"an UNTIL on or after the start date {anchor.isoformat()}")
        plan = Plan(shape_of(parts, anchor), anchor, parts.interval)
        last = parts.until or LAST_DATE
        first = next(walk(plan, anchor, last), None)
        if first is None:
            unbounded = next(walk(plan, anchor, LAST_DATE), None) if parts.until else None
            if unbounded is not None:
                raise refuse(value, f"an UNTIL on or after the rule's first date {unbounded.isoformat()}")
            raise refuse(value, NEVER)
        if parts.count is not None:
            counted = itertools.islice(walk(plan, first, last), parts.count - 1, None)
            last = next(counted, last)
        return cls(parts.text, anchor, parts.until, last, plan)

    def first_on_or_after(self, day: date) -> date | None:
        """The first date of the rule on or after ``day``; None when the rule has ended (COUNT, UNTIL)."""
        return next(walk(self.plan, day, self.last), None)

    def dates_between(self, first: date, last: date) -> list[date]:
        """Every date of the rule in ``[first, last]``."""
        return list(walk(self.plan, first, min(last, self.last)))

    def matches(self, day: date) -> bool:
        return self.first_on_or_after(day) == day

    def __str__(self) -> str:
        return self.text


def _needs_anchor(parts: RuleParts) -> bool:
    if parts.interval > 1 or parts.count is not None:
        return True
    if parts.freq == "WEEKLY":
        return not parts.by_day
    if parts.freq in ("MONTHLY", "YEARLY"):
        # Without a day, the rule takes the anchor's day of the month (and, yearly, its month).
        return not parts.by_day and not parts.by_month_day
    return False
