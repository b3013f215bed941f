"""Recurrence rules: the expansion agrees with dateutil on naive local dates; bad rules are refused."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from dateutil import rrule as du
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.core.cadence import (
    Cadence,
    first_occurrence_at_or_after,
    next_occurrence_after,
    occurrences_between,
)
from planner.core.localtime import UTC, resolve_detailed
from planner.errors import InvalidInput

ZONES = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Auckland",
    "Asia/Kathmandu",
    "Africa/Casablanca",
    "UTC",
]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def rules(draw: st.DrawFn) -> str:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = [f"FREQ={freq}", f"INTERVAL={draw(st.integers(1, 3))}"]
    if freq in {"WEEKLY", "MONTHLY", "YEARLY"} and draw(st.booleans()):
        ordinal = freq != "WEEKLY" and draw(st.booleans())
        days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True))
        prefix = draw(st.sampled_from(["1", "2", "-1", "-2"])) if ordinal else ""
        parts.append("BYDAY=" + ",".join(prefix + d for d in days))
    elif freq in {"MONTHLY", "YEARLY"} and draw(st.booleans()):
        days = draw(
            st.lists(st.sampled_from([1, 15, 28, 29, 30, 31, -1]), min_size=1, max_size=2, unique=True)
        )
        parts.append("BYMONTHDAY=" + ",".join(map(str, days)))
    if freq in {"DAILY", "MONTHLY", "YEARLY"} and draw(st.booleans()):
        months = draw(st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True))
        parts.append("BYMONTH=" + ",".join(map(str, months)))
    several_days = any(p.startswith("BYDAY=") and "," in p for p in parts)
    if freq in {"WEEKLY", "MONTHLY"} and several_days and draw(st.booleans()):
        parts.append("BYSETPOS=" + draw(st.sampled_from(["1", "-1"])))
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 40))}")
    return ";".join(parts)


def _oracle(rule: str, anchor: date, first: date, last: date) -> list[date]:
    expanded = du.rrulestr(rule, dtstart=datetime.combine(anchor, time()))
    found = expanded.between(datetime.combine(first, time()), datetime.combine(last, time()), inc=True)
    return [d.date() for d in found]


@settings(max_examples=150, deadline=None)
@given(
    rule=rules(),
    zone=st.sampled_from(ZONES),
    anchor=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
    wall=st.sampled_from(["00:30", "01:30", "02:30", "08:00", "23:30"]),
)
def test_expansion_matches_dateutil_on_naive_local_dates(
    rule: str, zone: str, anchor: date, wall: str
) -> None:
    try:
        cadence = Cadence.parse(wall, rrule=rule, start_date=anchor)
    except InvalidInput as exc:
        # The strategy writes only well-formed rules: the one refusal is a rule with no date (dateutil
        # itself would search them up to the year 9999, so they are not replayed here).
        assert exc.expected == "a rule that occurs on at least one date", exc
        return
    first, last = anchor - timedelta(days=3), anchor + timedelta(days=400)
    expected = _oracle(rule, anchor, first, last)
    start = datetime.combine(first, time(), UTC) - timedelta(days=1)
    end = datetime.combine(last, time(23, 59), UTC) - timedelta(days=1)
    walked = [o for o in occurrences_between(cadence, zone, start, end) if first <= o.local_date <= last]
    # Each date once, at the wall time resolved by the DST policy, never by arithmetic on instants.
    assert [o.local_date for o in walked] == [d for d in expected if d in {o.local_date for o in walked}]
    inner = [d for d in expected if first + timedelta(days=2) <= d <= last - timedelta(days=2)]
    assert inner == [o.local_date for o in walked if o.local_date in set(inner)]
    for occurrence in walked:
        resolution = resolve_detailed(occurrence.local_date, cadence.wall_time, zone)
        assert resolution is not None and occurrence.instant == resolution.instant


@settings(max_examples=60, deadline=None)
@given(
    rule=rules(),
    zone=st.sampled_from(ZONES),
    anchor=st.dates(date(2025, 1, 1), date(2027, 12, 31)),
    times=st.lists(
        st.sampled_from(["01:30", "02:30", "08:00", "18:30"]), min_size=1, max_size=3, unique=True
    ),
)
def test_the_cursor_walk_visits_every_date_and_wall_time_once(
    rule: str, zone: str, anchor: date, times: list[str]
) -> None:
    try:
        cadence = Cadence.parse(times, rrule=rule, start_date=anchor)
    except InvalidInput:
        return
    expected = [
        (d, t)
        for d in _oracle(rule, anchor, anchor, anchor + timedelta(days=200))
        for t in cadence.wall_times
    ]
    walked = []
    occurrence = first_occurrence_at_or_after(
        cadence, zone, datetime.combine(anchor, time(), UTC) - timedelta(days=1)
    )
    while occurrence is not None and occurrence.local_date <= anchor + timedelta(days=200):
        walked.append((occurrence.local_date, occurrence.wall_time))
        occurrence = next_occurrence_after(cadence, zone, occurrence.local_date, occurrence.wall_time)
    assert walked == expected


def test_bymonthday_31_skips_months_without_a_31st() -> None:
    cadence = Cadence.parse("09:00", rrule="FREQ=MONTHLY;BYMONTHDAY=31")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    dates = [
        o.local_date
        for o in occurrences_between(cadence, "Europe/Berlin", start, start + timedelta(days=365))
    ]
    assert [d.month for d in dates] == [1, 3, 5, 7, 8, 10, 12]


def test_last_friday_of_each_month() -> None:
    cadence = Cadence.parse("09:00", rrule="FREQ=MONTHLY;BYDAY=-1FR")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    dates = [o.local_date for o in occurrences_between(cadence, "UTC", start, start + timedelta(days=120))]
    assert dates == [date(2026, 1, 30), date(2026, 2, 27), date(2026, 3, 27), date(2026, 4, 24)]


def test_start_end_and_count_end_the_schedule() -> None:
    cadence = Cadence.parse(
        ["08:00", "18:30"], "weekdays", start_date=date(2026, 3, 2), end_date=date(2026, 3, 3)
    )
    start = datetime(2026, 3, 1, tzinfo=UTC)
    found = list(occurrences_between(cadence, "UTC", start, start + timedelta(days=30)))
    assert [(o.local_date.day, o.wall_time.hour) for o in found] == [(2, 8), (2, 18), (3, 8), (3, 18)]
    assert next_occurrence_after(cadence, "UTC", date(2026, 3, 3), time(18, 30)) is None
    counted = Cadence.parse("08:00", rrule="FREQ=DAILY;INTERVAL=2;COUNT=3", start_date=date(2026, 3, 1))
    found = list(occurrences_between(counted, "UTC", start - timedelta(days=1), start + timedelta(days=30)))
    assert [o.local_date.day for o in found] == [1, 3, 5]


@pytest.mark.parametrize(
    ("rule", "start", "field", "expected"),
    [
        ("FREQ=FORTNIGHTLY", None, "rrule", "an RRULE such as"),
        ("not a rule", None, "rrule", "an RRULE such as"),
        ("FREQ=HOURLY", None, "rrule", "FREQ of DAILY, WEEKLY, MONTHLY or YEARLY"),
        ("FREQ=MINUTELY;INTERVAL=5", None, "rrule", "FREQ of DAILY"),
        ("FREQ=SECONDLY", None, "rrule", "FREQ of DAILY"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", None, "rrule", "a rule that occurs on at least one date"),
        ("FREQ=MONTHLY;BYMONTH=4;BYMONTHDAY=31", None, "rrule", "a rule that occurs on at least one date"),
        ("FREQ=WEEKLY;BYDAY=MO;BYSETPOS=3", None, "rrule", "a rule that occurs on at least one date"),
        ("FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29", date(2025, 1, 1), "rrule", "a rule that occurs"),
        ("FREQ=DAILY;UNTIL=20260101", date(2026, 3, 1), "rrule", "an UNTIL on or after the start date"),
        ("FREQ=DAILY;BYHOUR=8", None, "rrule", "no BYHOUR"),
        ("FREQ=DAILY;INTERVAL=2", None, "start_date", "a local date"),
        ("FREQ=DAILY;COUNT=0", date(2026, 3, 1), "rrule", "COUNT a whole number"),
        ("FREQ=DAILY;FREQ=WEEKLY", None, "rrule", "each part at most once"),
        ("FREQ=MONTHLY;BYDAY=XX", None, "rrule", "BYDAY weekdays MO to SU"),
    ],
)
def test_bad_rules_are_refused_naming_field_value_and_expectation(
    rule: str, start: date | None, field: str, expected: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        Cadence.parse("08:00", rrule=rule, start_date=start)
    assert caught.value.field == field
    assert expected in caught.value.expected
    assert field != "rrule" or caught.value.value == rule


def test_more_than_24_times_a_day_and_repeated_times_are_refused() -> None:
    times = [f"{h:02d}:{m:02d}" for h in range(13) for m in (0, 30)][:25]
    with pytest.raises(InvalidInput, match=r"at: .* expected a wall time 'HH:MM' or a list of 1 to 24"):
        Cadence.parse(times)
    with pytest.raises(InvalidInput, match="distinct"):
        Cadence.parse(["08:00", "08:00"])
    assert len(Cadence.parse(times[:24]).wall_times) == 24
