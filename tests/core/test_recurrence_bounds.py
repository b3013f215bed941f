"""Rules that never occur are refused, whatever makes them so; the dates of accepted rules are
dateutil's, also when they are decades apart, near the end of the calendar, or after COUNT/UNTIL.

The search is bounded (planner.core.rrule_expansion); its speed is measured by bench/rrule_bench.py,
never asserted here."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta

import pytest
from dateutil import rrule as du
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.core.recurrence import RecurrenceRule
from planner.errors import InvalidInput

NEVER = "a rule that occurs on at least one date"
FIRST = "an UNTIL on or after the rule's first date "
START = date(2026, 3, 1)  # a Sunday
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
END = date(9998, 12, 31)  # the last date the expansion computes

#: (rule, start, what is expected), each followed by its neighbour that does occur and its first date.
NEVER_OCCURS = [
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", START, NEVER),
    ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", START, NEVER),
    ("FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31", START, NEVER),
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", START, NEVER),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-30", START, NEVER),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", START, NEVER),
    ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=2", START, NEVER),
    ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=-2", START, NEVER),
    ("FREQ=DAILY;BYDAY=MO;BYSETPOS=2", START, NEVER),
    ("FREQ=YEARLY;BYDAY=MO;BYSETPOS=54", START, NEVER),
    ("FREQ=YEARLY;BYDAY=53MO;BYMONTHDAY=1", START, NEVER),
    ("FREQ=MONTHLY;BYDAY=5MO;BYMONTH=2;BYMONTHDAY=1", START, NEVER),
    ("FREQ=WEEKLY;INTERVAL=2;BYMONTH=2;BYDAY=MO;BYSETPOS=2", START, NEVER),
    # an INTERVAL that never lands where the rule's dates are
    ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", date(2025, 1, 1), NEVER),
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29", date(2025, 6, 1), NEVER),
    ("FREQ=YEARLY;INTERVAL=400;BYMONTH=2;BYMONTHDAY=29", date(2100, 1, 1), NEVER),
    ("FREQ=MONTHLY;INTERVAL=12;BYMONTH=4", START, NEVER),
    ("FREQ=MONTHLY;INTERVAL=2;BYMONTH=1,3,5,7,9,11", date(2026, 2, 1), NEVER),
    ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", date(2026, 3, 3), NEVER),
    ("FREQ=DAILY;INTERVAL=14;BYDAY=SA,SU", date(2026, 3, 2), NEVER),
    # an UNTIL before the first date, and the end of the calendar
    ("FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20260326", START, FIRST + "2026-03-27"),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;UNTIL=20280228", START, FIRST + "2028-02-29"),
    ("FREQ=DAILY;UNTIL=20260228", START, "an UNTIL on or after the start date 2026-03-01"),
    ("FREQ=DAILY", date(9999, 1, 1), NEVER),
]
OCCURS = [
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", START, date(2028, 2, 29)),
    ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=30", START, date(2026, 4, 30)),
    ("FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=30", START, date(2026, 4, 30)),
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", START, date(2028, 2, 29)),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-29", START, date(2028, 2, 1)),
    ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=5", START, date(2026, 3, 30)),
    ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=1", START, date(2026, 3, 2)),
    ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=-1", START, date(2026, 3, 2)),
    ("FREQ=DAILY;BYDAY=MO;BYSETPOS=-1", START, date(2026, 3, 2)),
    ("FREQ=YEARLY;BYDAY=MO;BYSETPOS=53", START, date(2029, 12, 31)),
    ("FREQ=YEARLY;BYDAY=53MO", START, date(2029, 12, 31)),
    ("FREQ=MONTHLY;BYDAY=5MO;BYMONTH=2", START, date(2044, 2, 29)),
    ("FREQ=WEEKLY;INTERVAL=2;BYMONTH=2;BYDAY=MO;BYSETPOS=1", START, date(2027, 2, 8)),
    ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", date(2024, 1, 1), date(2024, 2, 29)),
    ("FREQ=YEARLY;INTERVAL=2;BYMONTH=2;BYMONTHDAY=29", date(2024, 6, 1), date(2028, 2, 29)),
    ("FREQ=YEARLY;INTERVAL=100;BYMONTH=2;BYMONTHDAY=29", date(2100, 1, 1), date(2400, 2, 29)),
    ("FREQ=MONTHLY;INTERVAL=12;BYMONTH=4", date(2026, 4, 1), date(2026, 4, 1)),
    ("FREQ=MONTHLY;INTERVAL=2;BYMONTH=2", date(2026, 2, 1), date(2026, 2, 1)),
    ("FREQ=DAILY;INTERVAL=7;BYDAY=MO", date(2026, 3, 2), date(2026, 3, 2)),
    ("FREQ=DAILY;INTERVAL=14;BYDAY=MO,SU", date(2026, 3, 2), date(2026, 3, 2)),
    ("FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20260327", START, date(2026, 3, 27)),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", START, date(2044, 2, 29)),
    ("FREQ=DAILY", END, END),
]


@pytest.mark.parametrize(("rule", "start", "expected"), NEVER_OCCURS)
def test_a_rule_without_a_date_is_refused(rule: str, start: date, expected: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        RecurrenceRule.parse(rule, start)
    assert (caught.value.field, caught.value.value, caught.value.expected) == ("rrule", rule, expected)


@pytest.mark.parametrize(("rule", "start", "first"), OCCURS)
def test_its_neighbour_that_occurs_is_accepted_with_dateutils_first_date(
    rule: str, start: date, first: date
) -> None:
    assert RecurrenceRule.parse(rule, start).first_on_or_after(start) == first
    if first.year < 9000:  # dateutil itself raises past 9999-12-31
        assert _dateutil(rule, start).after(_midnight(start), inc=True) == _midnight(first)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rule", "start"), [(rule, start) for rule, start, why in NEVER_OCCURS if why == NEVER and start < END]
)
def test_dateutil_agrees_that_it_never_occurs(rule: str, start: date) -> None:
    """dateutil, walked to the year 9999 (seconds for a DAILY rule): not one date."""
    assert _dates_until_the_end(_dateutil(rule, start)) == []


@pytest.mark.parametrize(
    ("rule", "start"),
    [
        ("FREQ=YEARLY;INTERVAL=100;BYMONTH=2;BYMONTHDAY=29", date(2100, 1, 1)),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", START),
        ("FREQ=DAILY;INTERVAL=400;BYDAY=WE;BYMONTH=11", START),
        ("FREQ=DAILY;INTERVAL=997;BYMONTHDAY=13;BYDAY=FR", START),
        ("FREQ=WEEKLY;INTERVAL=52;BYMONTH=4", date(2026, 3, 3)),
        ("FREQ=MONTHLY;INTERVAL=13;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO", START),
        ("FREQ=WEEKLY;INTERVAL=3;WKST=SU;BYDAY=MO,FR;BYSETPOS=-1", date(2026, 3, 4)),
    ],
)
def test_dates_decades_apart_are_dateutils(rule: str, start: date) -> None:
    """The next date from any day is dateutil's, however many years the walk passes over."""
    parsed, oracle = RecurrenceRule.parse(rule, start), _dateutil(rule, start)
    expected = [d.date() for d in oracle.between(_midnight(start), datetime(2600, 1, 1), inc=True)]
    assert parsed.dates_between(start, date(2600, 1, 1)) == expected
    for day in [start, *(d + timedelta(days=1) for d in expected[:6]), date(2301, 7, 4)]:
        found = oracle.after(_midnight(day), inc=True)
        assert parsed.first_on_or_after(day) == found.date()


def test_after_its_last_date_a_rule_has_none() -> None:
    counted = RecurrenceRule.parse("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;COUNT=3", START)
    leap_days = [date(2028, 2, 29), date(2032, 2, 29), date(2036, 2, 29)]
    assert counted.dates_between(START, date(2100, 1, 1)) == leap_days
    assert counted.last == date(2036, 2, 29)
    assert counted.first_on_or_after(date(2036, 3, 1)) is None
    until = RecurrenceRule.parse("FREQ=MONTHLY;BYDAY=-1FR;UNTIL=20260601", START)
    assert until.dates_between(START, date(2100, 1, 1))[-1] == date(2026, 5, 29)
    assert until.first_on_or_after(date(2026, 5, 30)) is None
    endless = RecurrenceRule.parse("FREQ=DAILY", START)
    assert endless.first_on_or_after(END) == END
    assert endless.first_on_or_after(date(9999, 1, 1)) is None  # the end of the expansion's calendar


def test_count_counts_the_rules_dates_from_the_anchor_not_the_anchor_itself() -> None:
    """dateutil's reading (the anchor counts only if the rule picks it), not RFC 5545's."""
    rule = RecurrenceRule.parse("FREQ=WEEKLY;BYDAY=MO;COUNT=2", START)  # START is a Sunday
    assert rule.dates_between(START, date(2026, 12, 31)) == [date(2026, 3, 2), date(2026, 3, 9)]


@st.composite
def wide_rules(draw: st.DrawFn, first: date, freqs: tuple[str, ...] = FREQS) -> str:
    """Any rule of the grammar (an UNTIL from ``first`` on), BYSETPOS and WKST with every FREQ,
    sparse and never-occurring ones too."""
    freq = draw(st.sampled_from(freqs))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.sampled_from([1, 2, 3, 5, 7, 12, 13, 52, 100]))}")
    months = draw(st.lists(st.integers(1, 12), max_size=3, unique=True))
    if months:
        parts.append("BYMONTH=" + ",".join(map(str, months)))
    if draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=4, unique=True))
        top = 53 if freq == "YEARLY" and not months else 5
        ordinals = freq in ("MONTHLY", "YEARLY") and draw(st.booleans())
        numbers = st.integers(1, top).flatmap(lambda n: st.sampled_from([n, -n]))
        parts.append("BYDAY=" + ",".join((str(draw(numbers)) if ordinals else "") + day for day in days))
    if freq != "WEEKLY" and draw(st.booleans()):
        values = st.sampled_from([1, 2, 13, 28, 29, 30, 31, -1, -2, -29, -30, -31])
        days_of_month = draw(st.lists(values, min_size=1, max_size=3, unique=True))
        parts.append("BYMONTHDAY=" + ",".join(map(str, days_of_month)))
    if len(parts) > 1 + any(p.startswith("INTERVAL") for p in parts) and draw(st.booleans()):
        positions = st.sampled_from([1, 2, 3, 5, -1, -2, -5, 53, -53, 366])
        chosen = draw(st.lists(positions, min_size=1, max_size=2, unique=True))
        parts.append("BYSETPOS=" + ",".join(map(str, chosen)))
    if draw(st.booleans()):
        parts.append("WKST=" + draw(st.sampled_from(DAYS)))
    ending = draw(st.sampled_from(["", "COUNT", "UNTIL"]))
    if ending == "COUNT":
        parts.append(f"COUNT={draw(st.integers(1, 60))}")
    elif ending == "UNTIL":
        parts.append(f"UNTIL={draw(st.dates(first, END)):%Y%m%d}")
    return ";".join(draw(st.permutations(parts)))


@settings(max_examples=300, deadline=None)
@given(rule=wide_rules(date(9990, 1, 1)), start=st.dates(date(9990, 1, 1), date(9996, 12, 31)))
def test_every_date_and_every_refusal_is_dateutils(rule: str, start: date) -> None:
    """Anchored in the 9990s, dateutil walks every rule to its end in a few years (and raises past
    9999-12-31): its dates up to 9998-12-31, where the expansion stops, are exactly ours, and a
    rule is refused as never occurring exactly when dateutil has no date there either."""
    _agrees_with_dateutil(rule, start)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    rule=wide_rules(date(2390, 1, 1), ("MONTHLY", "YEARLY")),
    start=st.dates(date(2390, 1, 1), date(2397, 12, 31)),
)
def test_over_seventy_centuries_every_date_and_every_refusal_is_dateutils(rule: str, start: date) -> None:
    """The same, walked from the 2390s to the end (a second or so per rule for dateutil): the
    400-year cycle, the INTERVAL's phase and the leap days of 2400 and 2800 all come into play."""
    _agrees_with_dateutil(rule, start)


def _agrees_with_dateutil(rule: str, start: date) -> None:
    expected = [d for d in _dates_until_the_end(_dateutil(rule, start)) if d <= END]
    try:
        parsed = RecurrenceRule.parse(rule, start)
    except InvalidInput as refused:
        assert expected == []
        assert refused.expected == NEVER or refused.expected.startswith("an UNTIL on or after the ")
        return
    assert parsed.dates_between(start, END) == expected
    for day in [start, *(d + timedelta(days=1) for d in expected[:: max(1, len(expected) // 5)])]:
        assert parsed.first_on_or_after(day) == next((d for d in expected if d >= day), None)


def _dates_until_the_end(rule: du.rrule) -> list[date]:
    found: list[date] = []
    with contextlib.suppress(ValueError):  # dateutil raises when it reaches 9999-12-31
        for day in rule:
            found.append(day.date())
    return found


def _dateutil(rule: str, start: date) -> du.rrule:
    return du.rrulestr(rule, dtstart=_midnight(start))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())
