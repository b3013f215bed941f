"""The wall time → UTC policy, checked against hand-worked cases and an independent oracle."""

from __future__ import annotations

import datetime as dt
import functools
import json
import pickle
import re
import time as systime
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from planner.core.localtime import (
    UTC,
    available_zones,
    format_local,
    format_offset,
    get_zone,
    local_date_of,
    parse_wall_time,
    resolve,
    resolve_detailed,
    to_local,
    tzdata_version,
)
from planner.errors import InvalidInput, NaiveDatetimeError, UnknownTimezoneError

CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).resolve().parents[2] / "fixtures" / "dst_cases.json").read_text(encoding="utf-8")
)
ZONES = sorted(available_zones())


def _case_args(case: dict[str, Any]) -> tuple[date, time, str]:
    return date.fromisoformat(case["date"]), time.fromisoformat(case["time"]), case["zone"]


def brute_force(local_date: date, wall_time: time, zone: ZoneInfo) -> tuple[datetime | None, int]:
    """The policy computed the slow way, from UTC→local conversions alone (which are unambiguous).

    Scans every UTC minute that could show ``local_date`` on the wall. Returns the instant and
    how many instants show the requested wall time (0 = gap, 2 = overlap).
    """
    wanted = datetime.combine(local_date, wall_time)
    start = datetime.combine(local_date - timedelta(days=1), time(0), tzinfo=UTC)
    minutes = [start + timedelta(minutes=i) for i in range(3 * 24 * 60)]
    walls = [m.astimezone(zone).replace(tzinfo=None) for m in minutes]
    hits = [m for m, wall in zip(minutes, walls, strict=True) if wall == wanted]
    if hits:
        return hits[0], len(hits)
    if not any(wall.date() == local_date for wall in walls):
        return None, 0
    # In a gap: the wall time is read with the offset in force just before the clocks jumped.
    jump = next(i for i, wall in enumerate(walls) if wall > wanted)
    offset_before = minutes[jump - 1].astimezone(zone).utcoffset()
    assert offset_before is not None
    return (wanted - offset_before).replace(tzinfo=UTC), 0


# --- the hand-worked table ------------------------------------------------------------------


def test_fixture_covers_every_zone_named_in_the_policy() -> None:
    zones = {case["zone"] for case in CASES}
    required = {
        "America/New_York",
        "Australia/Lord_Howe",
        "Antarctica/Troll",
        "America/Santiago",
        "America/Havana",
        "Europe/Dublin",
        "Africa/Casablanca",
        "Africa/Cairo",
        "Pacific/Apia",
        "Australia/Sydney",
        "Asia/Kathmandu",
        "Asia/Kolkata",
    }
    assert required <= zones
    assert len(CASES) >= 20
    assert len({case["name"] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_dst_case(case: dict[str, Any]) -> None:
    resolution = resolve_detailed(*_case_args(case))
    if case["expected_utc"] is None:
        assert resolution is None
        assert resolve(*_case_args(case)) is None
        return
    assert resolution is not None
    assert resolution.instant.isoformat() == case["expected_utc"]
    assert resolution.local.isoformat() == case["expected_local"]
    assert resolution.adjustment == case["adjustment"]
    assert resolution.instant.tzinfo is dt.UTC
    assert resolve(*_case_args(case)) == resolution.instant


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_dst_case_agrees_with_brute_force_scan(case: dict[str, Any]) -> None:
    local_date, wall_time, zone_name = _case_args(case)
    zone = get_zone(zone_name)
    instant, hits = brute_force(local_date, wall_time, zone)
    if case["expected_utc"] is None:
        assert instant is None
        return
    assert instant is not None
    assert instant.isoformat() == case["expected_utc"]
    assert instant.astimezone(zone).isoformat() == case["expected_local"]
    assert {0: "gap", 1: "exact", 2: "overlap"}[hits] == case["adjustment"]


def test_gap_shift_is_the_length_of_the_gap() -> None:
    assert resolve_detailed(date(2026, 3, 8), time(2, 30), "America/New_York") == resolve_detailed(
        date(2026, 3, 8), time(2, 30), ZoneInfo("America/New_York")
    )
    shifts = {
        ("America/New_York", date(2026, 3, 8), time(2, 30)): timedelta(hours=1),
        ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15)): timedelta(minutes=30),
        ("Antarctica/Troll", date(2026, 3, 29), time(1, 0)): timedelta(hours=2),
    }
    for (zone, local_date, wall_time), shift in shifts.items():
        resolution = resolve_detailed(local_date, wall_time, zone)
        assert resolution is not None
        assert (resolution.adjustment, resolution.shift) == ("gap", shift)


def test_exact_and_overlap_have_no_shift() -> None:
    for wall_time, adjustment in ((time(0, 59), "exact"), (time(1, 0), "overlap"), (time(2, 0), "exact")):
        resolution = resolve_detailed(date(2026, 11, 1), wall_time, "America/New_York")
        assert resolution is not None
        assert (resolution.adjustment, resolution.shift) == (adjustment, timedelta(0))


def test_fold_of_the_requested_wall_time_is_ignored() -> None:
    first = resolve(date(2026, 11, 1), time(1, 30), "America/New_York")
    assert resolve(date(2026, 11, 1), time(1, 30, fold=1), "America/New_York") == first


def test_aware_wall_time_is_rejected() -> None:
    with pytest.raises(InvalidInput) as error:
        resolve(date(2026, 1, 1), time(8, tzinfo=UTC), "UTC")
    assert error.value.field == "wall_time"


# --- zones ------------------------------------------------------------------------------------


def test_get_zone_is_cached_and_accepts_zoneinfo_and_utc() -> None:
    zone = get_zone("America/New_York")
    assert get_zone("America/New_York") is zone
    assert get_zone(zone) is zone
    assert get_zone(ZoneInfo("America/New_York")) is zone
    assert str(zone) == "America/New_York"
    assert get_zone("UTC").utcoffset(datetime(2026, 1, 1)) == timedelta(0)


@pytest.mark.parametrize(
    "name",
    ["", "local", "localtime", "UTC+3", "GMT+3:00", "america/new_york", "../etc/passwd", "Mars/Olympus"],
)
def test_unknown_zone_names_are_errors_never_utc(name: str) -> None:
    with pytest.raises(UnknownTimezoneError) as error:
        get_zone(name)
    assert error.value.field == "timezone"
    assert error.value.value == name
    assert "IANA" in str(error.value)


@pytest.mark.parametrize("value", [None, 3, b"UTC"])
def test_non_string_zones_are_errors(value: object) -> None:
    with pytest.raises(UnknownTimezoneError):
        get_zone(value)  # type: ignore[arg-type]


def test_zones_pickle_by_name() -> None:
    zone = get_zone("Europe/Dublin")
    assert pickle.loads(pickle.dumps(zone)) is zone
    local = datetime(2026, 6, 1, 12, tzinfo=zone)
    assert pickle.loads(pickle.dumps(local)) == local


def test_rules_come_from_the_tzdata_package_not_the_host() -> None:
    # The host's /usr/share/zoneinfo may be older; even a ZoneInfo built from it is re-read by
    # name, so the pinned rules decide (tzdata 2026f: British Columbia stops falling back).
    assert re.fullmatch(r"\d{4}[a-z]", tzdata_version())
    host = ZoneInfo("America/Vancouver")
    assert resolve(date(2026, 11, 1), time(1, 30), host) == datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
    assert "localtime" not in available_zones()
    assert "America/New_York" in available_zones()


def test_result_does_not_depend_on_the_host_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    before = [resolve(*_case_args(case)) for case in CASES]
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    systime.tzset()
    try:
        assert [resolve(*_case_args(case)) for case in CASES] == before
    finally:
        monkeypatch.undo()
        systime.tzset()


# --- conversions and formatting ----------------------------------------------------------------


def test_to_local_and_local_date_of() -> None:
    instant = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)
    assert to_local(instant, "America/New_York").isoformat() == "2026-03-08T03:30:00-04:00"
    assert local_date_of(datetime(2026, 1, 1, 3, tzinfo=UTC), "America/New_York") == date(2025, 12, 31)
    assert local_date_of(datetime(2026, 1, 1, 3, tzinfo=UTC), "Asia/Tokyo") == date(2026, 1, 1)


def test_second_pass_of_an_overlap_is_reported_with_fold() -> None:
    local = to_local(datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York")
    assert (local.hour, local.minute, local.fold, local.tzname()) == (1, 30, 1, "EST")


@pytest.mark.parametrize("function", [to_local, local_date_of])
def test_naive_datetimes_are_rejected(function: Any) -> None:
    with pytest.raises(NaiveDatetimeError):
        function(datetime(2026, 1, 1, 8), "UTC")


def test_format_helpers() -> None:
    local = to_local(datetime(2026, 1, 15, 3, 15, tzinfo=UTC), "Asia/Kathmandu")
    assert format_local(local) == "2026-01-15T09:00:00+05:45"
    assert format_offset(local.utcoffset()) == "+05:45"
    assert format_offset(timedelta(hours=-3, minutes=-30)) == "-03:30"
    with pytest.raises(NaiveDatetimeError):
        format_local(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"), [("00:00", time(0)), ("08:05", time(8, 5)), ("23:59", time(23, 59))]
)
def test_parse_wall_time(text: str, expected: time) -> None:
    assert parse_wall_time(text, "at") == expected


@pytest.mark.parametrize(
    "text", ["8:00", "24:00", "12:60", "08:00:00", " 08:00", "0800", "", "٠٨:٠٠", None, 800]
)
def test_parse_wall_time_rejects(text: object) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_wall_time(text, "quiet_hours.sms.start")
    assert error.value.field == "quiet_hours.sms.start"
    assert "'HH:MM'" in error.value.expected


# --- properties over every zone -----------------------------------------------------------------

zones = st.sampled_from(ZONES)
dates = st.dates(date(1990, 1, 1), date(2040, 12, 31))
wall_times = st.times()


@functools.cache
def _transitions(zone_name: str, year: int) -> tuple[tuple[datetime, timedelta], ...]:
    """(UTC instant, offset just before) of each clock change in ``year``, to the minute."""
    zone = get_zone(zone_name)

    def offset(instant: datetime) -> timedelta | None:
        return instant.astimezone(zone).utcoffset()

    found = []
    step = timedelta(hours=12)
    low = datetime(year, 1, 1, tzinfo=UTC)
    while low.year == year:
        high = low + step
        before = offset(low)
        if offset(high) != before and before is not None:
            lo, hi = low, high
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            found.append((hi, before))
        low = high
    return tuple(found)


@st.composite
def near_transitions(draw: st.DrawFn) -> tuple[str, date, time]:
    """A zone, date and wall time close to one of the zone's clock changes (gaps, overlaps)."""
    zone_name = draw(zones)
    changes = _transitions(zone_name, draw(st.integers(1990, 2040)))
    if not changes:
        return zone_name, draw(dates), draw(wall_times)
    instant, before = draw(st.sampled_from(changes))
    # The wall clock read this just before the change: a gap starts here, an overlap ends here.
    minutes = draw(st.one_of(st.integers(0, 200), st.integers(-200, -1)))
    wall = (instant + before).replace(tzinfo=None) + timedelta(minutes=minutes)
    return zone_name, wall.date(), wall.time()


cases = st.one_of(st.tuples(zones, dates, wall_times), near_transitions())
PROPERTY = settings(max_examples=300, deadline=None)


def _occurrences_of(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every instant at which the wall clock in ``zone`` shows ``wall`` (offsets are within ±26 h)."""
    offsets = {
        (wall.replace(tzinfo=UTC) + timedelta(hours=hours)).astimezone(zone).utcoffset()
        for hours in range(-30, 31)
    }
    candidates = {(wall - offset).replace(tzinfo=UTC) for offset in offsets if offset is not None}
    return sorted(c for c in candidates if c.astimezone(zone).replace(tzinfo=None) == wall)


@PROPERTY
@given(case=cases)
def test_resolution_is_never_earlier_than_the_wall_time(case: tuple[str, date, time]) -> None:
    zone_name, local_date, wall_time = case
    zone = get_zone(zone_name)
    wall = datetime.combine(local_date, wall_time.replace(fold=0))
    resolution = resolve_detailed(local_date, wall_time, zone)
    occurrences = _occurrences_of(wall, zone)
    event("missing date" if resolution is None else resolution.adjustment)
    if resolution is None:
        assert not occurrences
        return
    landed = resolution.local.replace(tzinfo=None)
    assert resolution.instant.tzinfo is dt.UTC
    assert resolution.local.astimezone(UTC) == resolution.instant
    assert landed >= wall
    assert landed - wall == resolution.shift
    if occurrences:
        # The wall time exists: it is hit exactly, at its first occurrence.
        assert landed == wall
        assert resolution.instant == occurrences[0]
        assert resolution.adjustment == ("overlap" if len(occurrences) > 1 else "exact")
    else:
        assert resolution.adjustment == "gap"
        # Shifted by exactly the jump: just before it, the clock read the wall time minus the shift.
        before = (resolution.instant - resolution.shift).astimezone(zone)
        assert before.replace(tzinfo=None) == wall - resolution.shift
        assert before.utcoffset() == resolution.local.utcoffset() - resolution.shift  # type: ignore[operator]


@PROPERTY
@given(case=cases)
def test_existing_wall_times_round_trip(case: tuple[str, date, time]) -> None:
    zone_name, local_date, wall_time = case
    resolution = resolve_detailed(local_date, wall_time, zone_name)
    if resolution is None or resolution.adjustment == "gap":
        return
    local = to_local(resolution.instant, zone_name)
    assert local.date() == local_date
    assert local.time() == wall_time.replace(fold=0)
    assert local_date_of(resolution.instant, zone_name) == local_date


@PROPERTY
@given(zone_name=zones, local_date=dates)
def test_a_date_is_missing_only_if_no_instant_shows_it(zone_name: str, local_date: date) -> None:
    zone = get_zone(zone_name)
    start = datetime.combine(local_date - timedelta(days=1), time(0), tzinfo=UTC)
    shown = {(start + timedelta(minutes=15 * i)).astimezone(zone).date() for i in range(3 * 24 * 4)}
    assert (resolve(local_date, time(12), zone) is None) == (local_date not in shown)
