"""Cadences: parsing at the boundary, and occurrences that never repeat or skip a local date."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from importlib import resources
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.core.cadence import (
    WEEKDAY_NAMES,
    Cadence,
    first_occurrence_at_or_after,
    next_occurrence,
    next_occurrence_after_date,
    occurrence_on,
    occurrences_between,
)
from planner.core.localtime import UTC, available_zones, get_zone, resolve, to_local
from planner.errors import InvalidInput, NaiveDatetimeError

NY = "America/New_York"
ZONES = sorted(available_zones())


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "weekdays", "text"),
    [
        ("daily", None, "daily"),
        ("DAILY", None, "daily"),
        ("mon,thu", frozenset({0, 3}), "mon,thu"),
        ("thu, Mon", frozenset({0, 3}), "mon,thu"),
        (["Mon", "THU"], frozenset({0, 3}), "mon,thu"),
        (("sun",), frozenset({6}), "sun"),
        ("weekdays", frozenset(range(5)), "mon,tue,wed,thu,fri"),
        ("weekends", frozenset({5, 6}), "sat,sun"),
        (["weekends", "mon"], frozenset({0, 5, 6}), "mon,sat,sun"),
        (list(WEEKDAY_NAMES), None, "daily"),
        ("weekdays,weekends", None, "daily"),
    ],
)
def test_parse_days(days: Any, weekdays: frozenset[int] | None, text: str) -> None:
    cadence = Cadence.parse("08:00", days)
    assert cadence == Cadence(time(8), weekdays)
    assert cadence.days_text() == text
    assert Cadence.from_storage(cadence.wall_time, cadence.days_text()) == cadence


@pytest.mark.parametrize(
    "at", ["8:00", "24:00", "12:60", "08:00:00", "08h00", "", " 08:00", None, 800, "٠٨:٠٠"]
)
def test_parse_rejects_bad_wall_times(at: Any) -> None:
    with pytest.raises(InvalidInput) as error:
        Cadence.parse(at, "daily")
    assert error.value.field == "at"
    assert error.value.value == at
    assert error.value.expected == "a wall time 'HH:MM' such as '08:00'"


@pytest.mark.parametrize(
    "days", ["", [], "monday", "mon,,thu", "mon,", ["mon", 3], None, "funday", 5, "every day"]
)
def test_parse_rejects_bad_days(days: Any) -> None:
    with pytest.raises(InvalidInput) as error:
        Cadence.parse("08:00", days)
    assert error.value.field == "days"
    assert "daily" in error.value.expected


def test_constructor_validates_and_normalises() -> None:
    assert Cadence(time(8), frozenset(range(7))) == Cadence(time(8), None)
    assert Cadence(time(8), frozenset(range(7))).weekdays is None
    with pytest.raises(InvalidInput):
        Cadence(time(8), frozenset())
    with pytest.raises(InvalidInput):
        Cadence(time(8), frozenset({7}))
    with pytest.raises(InvalidInput):
        Cadence(time(8, tzinfo=UTC))
    with pytest.raises(InvalidInput):
        Cadence.from_storage("08:00", "daily")  # type: ignore[arg-type]
    assert str(Cadence.parse("08:00", "mon")) == "every Monday at 08:00"


def test_matches() -> None:
    cadence = Cadence.parse("08:00", "mon,thu")
    assert cadence.matches(date(2026, 3, 9))  # a Monday
    assert not cadence.matches(date(2026, 3, 10))
    assert Cadence.parse("08:00", "daily").matches(date(2026, 3, 10))


# --- single occurrences -------------------------------------------------------------------------


def test_occurrence_on_follows_the_policy() -> None:
    gap = occurrence_on(Cadence.parse("02:30", "daily"), NY, date(2026, 3, 8))
    assert gap is not None
    assert (gap.instant, gap.adjustment, gap.shift) == (utc(2026, 3, 8, 7, 30), "gap", timedelta(hours=1))
    overlap = occurrence_on(Cadence.parse("01:30", "daily"), NY, date(2026, 11, 1))
    assert overlap is not None
    assert (overlap.instant, overlap.adjustment) == (utc(2026, 11, 1, 5, 30), "overlap")
    assert overlap.local_date == date(2026, 11, 1)


def test_occurrence_on_is_none_for_other_weekdays_and_missing_dates() -> None:
    assert occurrence_on(Cadence.parse("08:00", "mon"), NY, date(2026, 3, 10)) is None
    assert occurrence_on(Cadence.parse("08:00", "daily"), "Pacific/Apia", date(2011, 12, 30)) is None


def test_cursor_steps_over_a_missing_date() -> None:
    daily = Cadence.parse("09:00", "daily")
    after = next_occurrence_after_date(daily, "Pacific/Apia", date(2011, 12, 29))
    assert after.local_date == date(2011, 12, 31)
    # 2011-12-30 was a Friday: a Friday cadence waits a full week more.
    fridays = Cadence.parse("09:00", "fri")
    after = next_occurrence_after_date(fridays, "Pacific/Apia", date(2011, 12, 23))
    assert after.local_date == date(2012, 1, 6)


def test_next_occurrence_is_strictly_after() -> None:
    cadence = Cadence.parse("08:00", "daily")
    first = next_occurrence(cadence, NY, utc(2026, 3, 7, 12, 0))
    assert first.local_date == date(2026, 3, 7)
    assert first.instant == utc(2026, 3, 7, 13, 0)
    second = next_occurrence(cadence, NY, first.instant)
    assert second.local_date == date(2026, 3, 8)
    assert second.instant == utc(2026, 3, 8, 12, 0)  # EDT from this day on


def test_the_repeated_hour_is_sent_once() -> None:
    cadence = Cadence.parse("01:30", "daily")
    first = next_occurrence(cadence, NY, utc(2026, 11, 1, 0, 0))
    assert first.instant == utc(2026, 11, 1, 5, 30)
    # 06:30Z is 01:30 EST, the second time the wall clock reads 01:30: not an occurrence.
    following = next_occurrence(cadence, NY, first.instant)
    assert following.local_date == date(2026, 11, 2)
    assert following.instant == utc(2026, 11, 2, 6, 30)
    assert next_occurrence(cadence, NY, utc(2026, 11, 1, 6, 0)) == following


def test_first_occurrence_at_or_after_includes_the_instant() -> None:
    cadence = Cadence.parse("02:30", "daily")
    at = utc(2026, 3, 8, 7, 30)
    assert first_occurrence_at_or_after(cadence, NY, at).instant == at
    assert first_occurrence_at_or_after(cadence, NY, at + timedelta(microseconds=1)).local_date == date(
        2026, 3, 9
    )


def test_weekly_cadence_waits_for_its_weekday() -> None:
    cadence = Cadence.parse("08:00", "sun")
    occurrence = next_occurrence(cadence, "Europe/Dublin", utc(2026, 3, 23, 0, 0))
    assert occurrence.local_date == date(2026, 3, 29)
    assert occurrence.instant == utc(2026, 3, 29, 7, 0)  # IST (+01:00) started that morning


@pytest.mark.parametrize("function", [next_occurrence, first_occurrence_at_or_after])
def test_naive_instants_are_rejected(function: Any) -> None:
    with pytest.raises(NaiveDatetimeError):
        function(Cadence.parse("08:00", "daily"), NY, datetime(2026, 3, 8, 8))
    with pytest.raises(NaiveDatetimeError):
        occurrences_between(Cadence.parse("08:00", "daily"), NY, datetime(2026, 3, 8), utc(2026, 3, 9))


def test_occurrences_between_bounds() -> None:
    cadence = Cadence.parse("02:30", "daily")
    start, end = utc(2026, 3, 7, 7, 30), utc(2026, 3, 9, 6, 30)
    found = list(occurrences_between(cadence, NY, start, end))
    # start is exclusive (03-07's 02:30 EST is exactly start), end inclusive (03-09's 02:30 EDT).
    assert [(o.local_date, o.instant, o.adjustment) for o in found] == [
        (date(2026, 3, 8), utc(2026, 3, 8, 7, 30), "gap"),
        (date(2026, 3, 9), utc(2026, 3, 9, 6, 30), "exact"),
    ]
    assert list(occurrences_between(cadence, NY, end, start)) == []


def test_unknown_zone_is_reported_before_iterating() -> None:
    with pytest.raises(InvalidInput):
        occurrences_between(Cadence.parse("08:00", "daily"), "Nowhere/Land", utc(2026, 1, 1), utc(2026, 1, 2))


def test_cursor_walk_neither_repeats_nor_skips_a_date() -> None:
    cadence = Cadence.parse("02:30", "daily")
    day, seen = date(2025, 12, 31), []
    for _ in range(2 * 366):
        occurrence = next_occurrence_after_date(cadence, NY, day)
        seen.append(occurrence)
        day = occurrence.local_date
    dates = [o.local_date for o in seen]
    assert dates == [date(2026, 1, 1) + timedelta(days=i) for i in range(len(dates))]
    assert all(a.instant < b.instant for a, b in pairwise(seen))


# --- every zone, a year of daily occurrences ---------------------------------------------------


def _distinct_rule_sets() -> list[str]:
    """One name per distinct tz data file: links such as US/Eastern share America/New_York's rules."""
    first: dict[bytes, str] = {}
    for name in ZONES:
        data = resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).read_bytes()
        first.setdefault(data, name)
    return sorted(first.values())


@pytest.mark.parametrize("wall_time", [time(0, 0), time(2, 30)])
def test_every_zone_has_one_increasing_occurrence_per_date(wall_time: time) -> None:
    cadence = Cadence(wall_time)
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    for name in _distinct_rule_sets():
        zone = get_zone(name)
        occurrences = [occurrence_on(cadence, zone, day) for day in days]
        # No zone skips a date in 2026, so every date has its occurrence.
        assert all(o is not None for o in occurrences), name
        instants = [o.instant for o in occurrences if o is not None]
        assert all(a < b for a, b in pairwise(instants)), name
        for day, o in zip(days, occurrences, strict=True):
            assert o is not None
            if o.adjustment != "exact":
                landed = to_local(o.instant, zone).replace(tzinfo=None)
                assert landed - datetime.combine(day, wall_time) == o.shift, (name, day)


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    start=st.dates(date(1990, 1, 1), date(2039, 12, 31)),
    wall_time=st.one_of(
        st.sampled_from([time(0), time(0, 30), time(1, 30), time(2, 30), time(23, 30)]),
        st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    ),
)
def test_a_year_of_daily_occurrences(zone_name: str, start: date, wall_time: time) -> None:
    zone = get_zone(zone_name)
    cadence = Cadence(wall_time)
    days = [start + timedelta(days=i) for i in range(366)]
    begin = datetime.combine(start, time(0), UTC) - timedelta(days=2)
    end = datetime.combine(days[-1], time(0), UTC) + timedelta(days=2)
    found = list(occurrences_between(cadence, zone, begin, end))
    instants = [o.instant for o in found]
    assert all(a < b for a, b in pairwise(instants))
    by_date = {o.local_date: o for o in found}
    assert len(by_date) == len(found)
    for day in days:
        occurrence = by_date.get(day)
        if occurrence is None:
            # Only a date that does not exist at all in the zone has no occurrence.
            shown = {
                (datetime.combine(day, time(0), UTC) + timedelta(hours=h)).astimezone(zone).date()
                for h in range(-15, 40)
            }
            assert day not in shown, (zone_name, day)
            assert resolve(day, wall_time, zone) is None
        else:
            landed = to_local(occurrence.instant, zone).replace(tzinfo=None)
            assert (
                datetime.combine(day, wall_time)
                <= landed
                < datetime.combine(day, wall_time) + timedelta(days=1)
            )
