"""Schedules and durations in words: what a page or a message shows a person."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest

from planner.core.cadence import Cadence
from planner.core.wording import duration, listing, ordinal, ordinal_word, value_text

THREE_TIMES = ["09:00", "13:00", "17:30"]


@pytest.mark.parametrize(
    ("at", "days", "rrule", "start", "end", "words"),
    [
        ("09:00", "daily", None, None, None, "every day at 09:00"),
        (THREE_TIMES, None, "FREQ=WEEKLY;BYDAY=MO,WE,FR", None, None,
         "every Monday, Wednesday and Friday at 09:00, 13:00 and 17:30"),
        ("08:00", None, "FREQ=MONTHLY;BYDAY=-1FR", None, None, "on the last Friday of every month at 08:00"),
        ("08:00", "weekdays", None, None, None, "every weekday (Monday to Friday) at 08:00"),
        ("08:00", "mon,thu", None, date(2026, 3, 2), date(2026, 6, 30),
         "every Monday and Thursday at 08:00, from 2026-03-02, until 2026-06-30"),
        ("07:15", None, "FREQ=MONTHLY;BYMONTHDAY=-1", None, None, "on the last day of every month at 07:15"),
        ("07:15", None, "FREQ=MONTHLY;BYMONTHDAY=1,15", None, None,
         "on the 1st and 15th of every month at 07:15"),
        ("07:15", None, "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", None, None,
         "every year on the last Sunday of March at 07:15"),
        ("07:15", None, "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", date(2026, 3, 3), None,
         "every 2 weeks on Tuesday at 07:15, from 2026-03-03"),
        ("07:15", None, "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", None, None,
         "on the last weekday of every month at 07:15"),
        ("07:15", None, "FREQ=MONTHLY;BYDAY=2MO;COUNT=10", date(2026, 3, 3), None,
         "on the second Monday of every month at 07:15, from 2026-03-03, 10 times"),
        ("07:15", None, "FREQ=WEEKLY;UNTIL=20261231", date(2026, 3, 3), None,
         "every Tuesday at 07:15, from 2026-03-03, until 2026-12-31"),
        ("07:15", None, "FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", None, None,
         "on the 13th of every month, when it is a Friday, at 07:15"),
        ("07:15", None, "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25", None, None,
         "every year on the 25th of December at 07:15"),
        ("07:15", None, "FREQ=DAILY;BYDAY=SA,SU", None, None, "every Saturday and Sunday at 07:15"),
        ("07:15", None, "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=1", date(2026, 1, 1), None,
         "on the 1st of the month, every 3 months at 07:15, from 2026-01-01"),
        # A shape without plain words is shown as written, never guessed at.
        ("07:15", None, "FREQ=YEARLY;BYMONTHDAY=1", None, None,
         "on the dates of the rule FREQ=YEARLY;BYMONTHDAY=1 at 07:15"),
    ],
)  # fmt: skip
def test_a_schedule_in_words(
    at: object, days: str | None, rrule: str | None, start: date | None, end: date | None, words: str
) -> None:
    cadence = Cadence.parse(at, days or "daily", rrule=rrule, start_date=start, end_date=end)
    assert cadence.describe() == words


def test_why_a_date_is_not_one_of_a_rule_s_dates_is_in_words() -> None:
    cadence = Cadence.parse("08:00", rrule="FREQ=MONTHLY;BYDAY=-1FR")
    assert cadence.why_not(date(2026, 3, 20)) == "not one of its dates (on the last Friday of every month)"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (timedelta(days=272, hours=14, minutes=10, seconds=46.320516), "272 days 14 h"),
        (timedelta(hours=2), "2 h"),
        (timedelta(hours=2, seconds=5), "2 h"),
        (timedelta(minutes=1, seconds=30), "1 min 30 s"),
        (timedelta(days=1), "1 day"),
        (timedelta(seconds=0.25), "0.2 s"),
        (timedelta(0), "0 s"),
        (-timedelta(minutes=5), "-5 min"),
        (900.0, "15 min"),
        (None, "unknown"),
    ],
)
def test_durations_in_words(value: timedelta | float | None, words: str) -> None:
    assert duration(value) == words


def test_lists_ordinals_and_values() -> None:
    assert listing(["a"]) == "a"
    assert listing(["a", "b", "c"]) == "a, b and c"
    assert listing(["a", "b"], "or") == "a or b"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "31st",
    ]  # fmt: skip
    assert [ordinal_word(n) for n in (1, 2, -1, -2)] == ["first", "second", "last", "second to last"]
    engagement = {"tier": "weekly", "inactive_days": 12, "days_since_last_send": None}
    assert value_text(engagement) == "(tier weekly, inactive days 12, days since last send none)"
    assert value_text([True, time(8), date(2026, 3, 7)]) == "yes, 08:00, 2026-03-07"
