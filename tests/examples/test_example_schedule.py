"""Example: prove a notification schedule in simulated time with the planner testing kit.

Copy this file into your own tests. The fixtures come from the ``planner.testing`` pytest plugin,
installed with the planner: no servers to start and nothing to configure. Time is frozen and
only moves when the test advances it; on the way, the hourly planner runs at every top of the
hour and each message is sent at the simulated instant it is due.
"""

from __future__ import annotations

from datetime import date

import pytest

from planner.testing import PlannerService, SentMessages, SimClock, assert_sent_once_daily_at

# Nobody opens anything in these tests; without this, engagement backoff would thin the sends
# out after a few days (that rule has its own test).
pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]])


def test_ann_gets_her_brief_at_8_every_weekday_across_dst(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-22T00:00Z")
    planner_service.add_recipient("ann", timezone="Australia/Sydney", email="ann@example.com")
    planner_service.subscribe("ann", "daily_brief", channel="email", at="08:00", days="weekdays")

    # A month; Sydney leaves daylight saving on Sunday 2026-04-05.
    planner_clock.advance_to("2026-04-21T00:00Z")

    assert_sent_once_daily_at(
        sent_messages,
        "ann",
        kind="daily_brief",
        local_time="08:00",
        start=date(2026, 3, 23),
        end=date(2026, 4, 21),
        weekdays_only=True,
    )
    ann = sent_messages.for_recipient("ann")
    assert ann.on_local_date(date(2026, 4, 3)).one().utc_offset == "+11:00"
    assert ann.on_local_date(date(2026, 4, 6)).one().utc_offset == "+10:00"


def test_an_sms_due_in_quiet_hours_waits_for_the_morning(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-06-01T00:00Z")
    planner_service.add_recipient(
        "bob", timezone="America/New_York", phone="+12125550100", quiet_hours={"sms": ("21:00", "08:00")}
    )
    planner_service.subscribe("bob", "reminder", channel="sms", at="22:00", days=["mon"])

    planner_clock.advance(days=2)

    reminder = sent_messages.for_recipient("bob").one()
    assert (reminder.local_date, reminder.local_time, reminder.utc_offset) == (
        date(2026, 6, 2),
        "08:00",
        "-04:00",
    )
    assert reminder.planned_local_date == date(2026, 6, 1)
