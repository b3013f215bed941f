"""Three simulated months with the testing kit: recurrence rules across the DST changes of both
hemispheres, several wall times a day and a snooze. One delivery per occurrence, none while snoozed."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from dateutil import rrule as du

from planner.testing import PlannerService, SentMessages, SimClock, assert_sent_once_daily_at

pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]])

SUNDAYS = "FREQ=WEEKLY;BYDAY=SU"
LAST_FRIDAY = "FREQ=MONTHLY;BYDAY=-1FR"

# (first day, last day): the northern spring change with the southern autumn one, and the reverse.
WINDOWS = {
    "north_spring_south_fall": (date(2026, 3, 1), date(2026, 5, 31)),
    "north_fall_south_spring": (date(2026, 9, 1), date(2026, 11, 30)),
}
# Local (date, wall time) → the wall clock the send shows, on the DST-change Sundays.
DST_SUNDAYS = {
    ("new_york", date(2026, 3, 8), "02:30"): ("03:30", "-04:00"),  # spring gap, shifted forward
    ("new_york", date(2026, 11, 1), "01:30"): ("01:30", "-04:00"),  # fall overlap, first occurrence
    ("sydney", date(2026, 4, 5), "02:30"): ("02:30", "+11:00"),  # southern fall overlap, first
    ("sydney", date(2026, 10, 4), "02:30"): ("03:30", "+11:00"),  # southern spring gap
}


def _sundays(first: date, last: date) -> list[date]:
    rule = du.rrulestr(SUNDAYS, dtstart=datetime.combine(first, time()))
    return [
        d.date()
        for d in rule.between(datetime.combine(first, time()), datetime.combine(last, time()), inc=True)
    ]


@pytest.mark.parametrize(
    "window",
    [
        # About 40 s on the CI machine: with the soak tests (the other window runs in the default suite).
        pytest.param("north_spring_south_fall", marks=pytest.mark.slow),
        "north_fall_south_spring",
    ],
)
def test_three_months_of_rules_across_both_hemispheres_dst(
    window: str, planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    first, last = WINDOWS[window]
    snooze_until = date(first.year, first.month + 1, 1)
    # Sydney's day starts half a day before UTC's: start the clock the day before.
    planner_clock.start_at(f"{(first - timedelta(days=1)).isoformat()}T00:00Z")
    service = planner_service
    service.plan_idle_hours = False  # weekly and monthly rules: most hours have nothing due
    service.add_recipient("new_york", timezone="America/New_York")
    service.subscribe("new_york", "weekly_digest", at=["01:30", "02:30"], rrule=SUNDAYS)
    service.add_recipient("sydney", timezone="Australia/Sydney")
    service.subscribe("sydney", "weekly_digest", at="02:30", rrule=SUNDAYS)
    service.subscribe("sydney", "reminder", at="09:00", rrule=LAST_FRIDAY)
    service.add_recipient("berlin", timezone="Europe/Berlin")
    service.subscribe("berlin", "weekly_digest", at="02:30", rrule=SUNDAYS, snooze_until=snooze_until)

    planner_clock.advance_to(f"{last.isoformat()}T23:59Z")

    sundays = _sundays(first, last)
    for who, times in (("new_york", ["01:30", "02:30"]), ("sydney", ["02:30"])):
        got = sorted(
            (m.local_date, m.planned_local_date, m.scheduled_at)
            for m in sent_messages.for_recipient(who).of_kind("weekly_digest")
        )
        # Exactly one delivery per (Sunday, wall time), nothing else.
        assert len(got) == len(sundays) * len(times), (who, got)
        assert sorted({g[1] for g in got}) == sundays
    for (who, day, wall), (shown, offset) in DST_SUNDAYS.items():
        if first <= day <= last:
            sends = sent_messages.for_recipient(who).of_kind("weekly_digest").on_local_date(day)
            index = 0 if wall == "01:30" or who == "sydney" else 1
            message = sorted(sends, key=lambda m: m.scheduled_at)[index]
            assert (message.local_time, message.utc_offset) == (shown, offset), (who, day)
    # The last Friday of each month at 09:00 local, with the kit's assertion.
    assert_sent_once_daily_at(
        sent_messages, "sydney", kind="reminder", local_time="09:00", start=first, end=last, rrule=LAST_FRIDAY
    )
    # Snoozed Sundays are recorded skipped, not sent; the others are sent once each.
    berlin = sent_messages.for_recipient("berlin")
    assert sorted(m.planned_local_date for m in berlin) == [d for d in sundays if d >= snooze_until]
    skipped = [d for d in service.deliveries(recipient="berlin") if d.status == "skipped"]
    assert {d.reason for d in skipped} == {"snoozed"}
    assert len(skipped) == len([d for d in sundays if d < snooze_until])
