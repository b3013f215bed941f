"""Quiet hours: deferral to the window's end across midnight and clock changes, never a drop."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.core.cadence import Cadence, first_occurrence_at_or_after
from planner.core.localtime import UTC, available_zones, resolve, to_local
from planner.core.quiet_hours import (
    DEFAULT_QUIET_HOURS,
    NO_QUIET_HOURS,
    QuietHours,
    apply_quiet_hours,
    effective_quiet_hours,
    in_quiet_hours,
    quiet_window_end,
)
from planner.errors import InvalidInput, NaiveDatetimeError

NY = "America/New_York"
SMS = QuietHours(time(21), time(8))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local_text(instant: datetime, tz: str = NY) -> str:
    return to_local(instant, tz).isoformat()


# --- the window itself ----------------------------------------------------------------------------


def test_parse_names_the_offending_field() -> None:
    assert QuietHours.parse("21:00", "08:00", "quiet_hours.sms") == SMS
    with pytest.raises(InvalidInput) as error:
        QuietHours.parse("9pm", "08:00", "quiet_hours.sms")
    assert error.value.field == "quiet_hours.sms.start"
    with pytest.raises(InvalidInput) as error:
        QuietHours.parse("21:00", "24:00", "quiet_hours.sms")
    assert error.value.field == "quiet_hours.sms.end"
    with pytest.raises(InvalidInput):
        QuietHours(time(21, tzinfo=UTC), time(8))


@pytest.mark.parametrize(
    ("window", "inside", "outside"),
    [
        (SMS, [time(21), time(23, 59), time(0), time(7, 59)], [time(8), time(12), time(20, 59)]),
        (QuietHours(time(12), time(14)), [time(12), time(13, 59)], [time(11, 59), time(14), time(0)]),
        (NO_QUIET_HOURS, [], [time(0), time(12), time(23, 59)]),
    ],
)
def test_contains(window: QuietHours, inside: list[time], outside: list[time]) -> None:
    assert all(window.contains(t) for t in inside)
    assert not any(window.contains(t) for t in outside)


def test_empty_and_text() -> None:
    assert QuietHours(time(0), time(0)).is_empty
    assert QuietHours(time(7), time(7)).is_empty
    assert not SMS.is_empty
    assert SMS.text() == "21:00–08:00"
    assert NO_QUIET_HOURS.text() == "none"


def test_effective_quiet_hours() -> None:
    own = QuietHours(time(22), time(7))
    assert effective_quiet_hours("sms", None) == SMS
    assert effective_quiet_hours("email", None).is_empty
    assert effective_quiet_hours("sms", own) == own
    assert effective_quiet_hours("email", own) == own
    assert effective_quiet_hours("sms", NO_QUIET_HOURS).is_empty  # an explicit "none" wins
    assert effective_quiet_hours("pager", None).is_empty
    assert effective_quiet_hours("sms", None, {"sms": own}) == own
    assert DEFAULT_QUIET_HOURS["sms"] == SMS


def test_in_quiet_hours_uses_the_real_local_time() -> None:
    assert in_quiet_hours(SMS, NY, utc(2026, 1, 15, 2, 30))  # 21:30 EST
    assert not in_quiet_hours(SMS, NY, utc(2026, 1, 15, 1, 30))  # 20:30 EST
    assert in_quiet_hours(SMS, "Asia/Kathmandu", utc(2026, 1, 15, 15, 15))  # 21:00 +05:45
    with pytest.raises(NaiveDatetimeError):
        in_quiet_hours(SMS, NY, datetime(2026, 1, 15, 2, 30))


# --- deferral from "now" (freezegun), across midnight and clock changes -------------------------


@freeze_time("2026-01-15 02:30:00")  # 21:30 EST on 01-14
def test_deferred_across_midnight() -> None:
    now = datetime.now(UTC)
    deferral = apply_quiet_hours(SMS, NY, now)
    assert deferral.deferred
    assert deferral.original == now
    assert local_text(deferral.instant) == "2026-01-15T08:00:00-05:00"


@freeze_time("2026-03-08 02:30:00")  # 21:30 EST on 03-07; clocks spring forward overnight
def test_deferred_across_spring_forward() -> None:
    now = datetime.now(UTC)
    deferral = apply_quiet_hours(SMS, NY, now)
    # 08:00 EDT, one hour earlier in UTC than the 13:00Z of an 08:00 EST morning.
    assert deferral.instant == utc(2026, 3, 8, 12, 0)
    assert local_text(deferral.instant) == "2026-03-08T08:00:00-04:00"
    assert deferral.instant - now == timedelta(hours=9, minutes=30)  # a night one hour shorter


@freeze_time("2026-11-01 01:30:00")  # 21:30 EDT on 10-31; clocks fall back overnight
def test_deferred_across_fall_back() -> None:
    now = datetime.now(UTC)
    deferral = apply_quiet_hours(SMS, NY, now)
    assert local_text(deferral.instant) == "2026-11-01T08:00:00-05:00"
    assert deferral.instant - now == timedelta(hours=11, minutes=30)  # a night one hour longer


@freeze_time("2026-03-08 05:00:00")  # 00:00 EST on 03-08
def test_window_ending_inside_the_gap_is_shifted_like_a_cadence() -> None:
    window = QuietHours(time(21), time(2, 30))
    now = datetime.now(UTC)
    assert in_quiet_hours(window, NY, now)
    # 02:30 does not exist that night: the end moves to 03:30 EDT, as a 02:30 cadence would.
    assert quiet_window_end(window, NY, now) == utc(2026, 3, 8, 7, 30)
    assert quiet_window_end(window, NY, now) == resolve(date(2026, 3, 8), time(2, 30), NY)
    assert quiet_window_end(window, NY, utc(2026, 3, 8, 6, 59)) == utc(2026, 3, 8, 7, 30)


@freeze_time("2026-03-07 12:00:00")
def test_cadence_from_now_then_quiet_hours() -> None:
    # The planner's path: the next 21:30 occurrence from "now", then the SMS window.
    occurrence = first_occurrence_at_or_after(Cadence.parse("21:30", "daily"), NY, datetime.now(UTC))
    assert occurrence.instant == utc(2026, 3, 8, 2, 30)
    deferral = apply_quiet_hours(SMS, NY, occurrence.instant)
    assert local_text(deferral.instant) == "2026-03-08T08:00:00-04:00"


def test_repeated_hour_second_pass_ends_at_the_second_occurrence() -> None:
    window = QuietHours(time(0, 30), time(1, 45))
    first_pass = utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    second_pass = utc(2026, 11, 1, 6, 30)  # 01:30 EST
    assert quiet_window_end(window, NY, first_pass) == utc(2026, 11, 1, 5, 45)  # 01:45 EDT
    # Not 01:45 EDT (already past) and not a day later: 01:45 EST.
    assert quiet_window_end(window, NY, second_pass) == utc(2026, 11, 1, 6, 45)


def test_window_end_on_a_missing_date_moves_to_the_next_date() -> None:
    # Apia, 2011-12-29 22:00 (-10): the next morning, 2011-12-30, never happened.
    instant = utc(2011, 12, 30, 8, 0)
    deferral = apply_quiet_hours(SMS, "Pacific/Apia", instant)
    assert deferral.deferred
    assert local_text(deferral.instant, "Pacific/Apia") == "2011-12-31T08:00:00+14:00"


def test_outside_quiet_hours_is_unchanged() -> None:
    instant = utc(2026, 1, 15, 17, 0)  # 12:00 EST
    assert apply_quiet_hours(SMS, NY, instant) == apply_quiet_hours(NO_QUIET_HOURS, NY, instant)
    deferral = apply_quiet_hours(SMS, NY, instant)
    assert (deferral.instant, deferral.deferred, deferral.original) == (instant, False, instant)


def test_same_day_window_ends_the_same_day() -> None:
    lunch = QuietHours(time(12), time(14))
    deferral = apply_quiet_hours(lunch, "Europe/Dublin", utc(2026, 6, 1, 12, 0))  # 13:00 IST
    assert local_text(deferral.instant, "Europe/Dublin") == "2026-06-01T14:00:00+01:00"


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(sorted(available_zones())),
    instant=st.datetimes(datetime(1990, 1, 1), datetime(2040, 12, 31)).map(lambda d: d.replace(tzinfo=UTC)),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_deferral_never_drops_or_moves_backwards(
    zone_name: str, instant: datetime, start: time, end: time
) -> None:
    window = QuietHours(start, end)
    deferral = apply_quiet_hours(window, zone_name, instant)
    assert deferral.original == instant
    assert deferral.deferred == in_quiet_hours(window, zone_name, instant)
    if not deferral.deferred:
        assert deferral.instant == instant
        return
    assert deferral.instant > instant
    assert deferral.instant - instant <= timedelta(days=2)
    landed = to_local(deferral.instant, zone_name)
    if landed.time() == end:
        # The usual case: the window is over when the send goes out.
        assert not in_quiet_hours(window, zone_name, deferral.instant)
