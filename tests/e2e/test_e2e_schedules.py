"""End-to-end schedules through the whole service, in simulated time, with the testing kit only.

Each test imports recipients through the real import path, lets the kit's clock run the hourly
planner and the in-process worker, and asserts on what the capture adapter received, in the
recipient's local time.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from planner.core.policy import DEFAULT_BACKOFF_TIERS
from planner.store.models import Subscription
from planner.testing import (
    PlannerService,
    SentMessages,
    SimClock,
    assert_sent_on_local_dates,
    assert_sent_once_daily_at,
)

# The team's own kinds (security_alert, promo) have their own templates, in the kit as in the service.
TEMPLATES = Path(__file__).parent / "templates"
# Engagement backoff would thin out sends to recipients who never engage; only its own test
# (which overrides this) is about that rule.
pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]], templates_dir=str(TEMPLATES))


# -- DST, northern hemisphere (America/New_York) ------------------------------------------------


def test_0230_daily_across_the_new_york_spring_forward_is_sent_at_0330_edt(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-01T00:00Z")
    planner_service.add_recipient("ny", timezone="America/New_York")
    planner_service.subscribe("ny", "daily_brief", at="02:30")

    planner_clock.advance_to("2026-04-01T00:00Z")

    sends = assert_sent_once_daily_at(
        sent_messages, "ny", kind="daily_brief", local_time="02:30", start="2026-03-01", end="2026-03-31"
    )
    assert len(sends) == 31
    by_date = {m.local_date: m for m in sends}
    assert (by_date[date(2026, 3, 7)].local_time, by_date[date(2026, 3, 7)].utc_offset) == ("02:30", "-05:00")
    # 02:30 does not exist on 2026-03-08: shifted forward by the gap, to 03:30 EDT.
    spring = by_date[date(2026, 3, 8)]
    assert (spring.local_time, spring.utc_offset) == ("03:30", "-04:00")
    assert spring.sent_at.isoformat() == "2026-03-08T07:30:00+00:00"
    assert (by_date[date(2026, 3, 9)].local_time, by_date[date(2026, 3, 9)].utc_offset) == ("02:30", "-04:00")


def test_0130_on_the_new_york_fall_back_day_is_sent_once_at_the_first_0130(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-10-30T00:00Z")
    planner_service.add_recipient("ny", timezone="America/New_York")
    planner_service.subscribe("ny", "daily_brief", at="01:30")

    planner_clock.advance_to("2026-11-03T12:00Z")

    fall_back = sent_messages.for_recipient("ny").on_local_date("2026-11-01").one()
    assert (fall_back.local_time, fall_back.utc_offset) == ("01:30", "-04:00")
    assert fall_back.sent_at.isoformat() == "2026-11-01T05:30:00+00:00"
    # Nothing at the second 01:30 (06:30Z), and one send on every other day.
    assert_sent_once_daily_at(
        sent_messages, "ny", kind="daily_brief", local_time="01:30", start="2026-10-30", end="2026-11-03"
    )
    assert [m.utc_offset for m in sent_messages] == ["-04:00", "-04:00", "-04:00", "-05:00", "-05:00"]


# -- DST, southern hemisphere (Australia/Sydney) ------------------------------------------------


def test_sydney_weekday_brief_at_0800_across_the_april_change(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-29T00:00Z")
    planner_service.add_recipient("ann", timezone="Australia/Sydney")
    planner_service.subscribe("ann", "daily_brief", at="08:00", days="weekdays")

    planner_clock.advance_to("2026-04-11T00:00Z")

    sends = assert_sent_once_daily_at(
        sent_messages,
        "ann",
        kind="daily_brief",
        local_time="08:00",
        start="2026-03-30",
        end="2026-04-10",
        weekdays_only=True,
    )
    assert [(m.local_date.isoformat(), m.utc_offset) for m in sends] == [
        ("2026-03-30", "+11:00"),
        ("2026-03-31", "+11:00"),
        ("2026-04-01", "+11:00"),
        ("2026-04-02", "+11:00"),
        ("2026-04-03", "+11:00"),
        ("2026-04-06", "+10:00"),
        ("2026-04-07", "+10:00"),
        ("2026-04-08", "+10:00"),
        ("2026-04-09", "+10:00"),
        ("2026-04-10", "+10:00"),
    ]


def test_sydney_0230_in_the_april_overlap_is_sent_once_at_the_first_0230(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-04-03T00:00Z")
    planner_service.add_recipient("syd", timezone="Australia/Sydney")
    planner_service.subscribe("syd", "daily_brief", at="02:30")

    planner_clock.advance_to("2026-04-07T00:00Z")

    overlap = sent_messages.for_recipient("syd").on_local_date("2026-04-05").one()
    assert (overlap.local_time, overlap.utc_offset) == ("02:30", "+11:00")
    assert_sent_once_daily_at(
        sent_messages, "syd", kind="daily_brief", local_time="02:30", start="2026-04-04", end="2026-04-06"
    )


def test_sydney_0230_in_the_october_gap_is_sent_at_0330_aedt(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-10-02T00:00Z")
    planner_service.add_recipient("syd", timezone="Australia/Sydney")
    planner_service.subscribe("syd", "daily_brief", at="02:30")

    planner_clock.advance_to("2026-10-05T12:00Z")

    gap = sent_messages.for_recipient("syd").on_local_date("2026-10-04").one()
    assert (gap.local_time, gap.utc_offset) == ("03:30", "+11:00")
    assert [m.utc_offset for m in sent_messages] == ["+10:00", "+11:00", "+11:00"]
    assert_sent_once_daily_at(
        sent_messages, "syd", kind="daily_brief", local_time="02:30", start="2026-10-03", end="2026-10-05"
    )


# -- quiet hours --------------------------------------------------------------------------------


def test_sms_at_2200_inside_quiet_hours_across_midnight_is_sent_at_0800_next_morning(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("bo", timezone="Europe/Berlin", quiet_hours={"sms": ("21:00", "08:00")})
    planner_service.subscribe("bo", "reminder", channel="sms", at="22:00")

    planner_clock.advance_to("2026-03-07T12:00Z")

    sends = sent_messages.for_recipient("bo").of_kind("reminder")
    assert [(m.planned_local_date, m.local_date, m.local_time) for m in sends] == [
        (date(2026, 3, d), date(2026, 3, d + 1), "08:00") for d in range(2, 7)
    ]
    deferred = planner_service.deliveries("bo", status="sent")
    assert [(d.occurrence_at, d.scheduled_at) for d in deferred] == [
        (m.scheduled_at - timedelta(hours=10), m.scheduled_at) for m in sends
    ]
    assert not planner_service.deliveries("bo", status="suppressed")
    assert not planner_service.deliveries("bo", status="missed")


@pytest.mark.planner_settings(critical_kinds=["security_alert"])
def test_critical_kinds_ignore_quiet_hours(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("cy", timezone="UTC")
    planner_service.subscribe("cy", "security_alert", channel="sms", at="23:00")
    planner_service.subscribe("cy", "reminder", channel="sms", at="23:00")

    planner_clock.advance(days=1, hours=12)

    assert [(m.kind, m.local_date, m.local_time) for m in sent_messages] == [
        ("security_alert", date(2026, 3, 2), "23:00"),
        ("reminder", date(2026, 3, 3), "08:00"),
    ]


# -- engagement backoff -------------------------------------------------------------------------


@pytest.mark.planner_settings(backoff_tiers=DEFAULT_BACKOFF_TIERS)
def test_a_recipient_who_never_engages_is_backed_off_tier_by_tier(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    assert DEFAULT_BACKOFF_TIERS[:4] == [(0, 1), (3, 2), (7, 3), (14, 7)]
    # Midnight in Tokyo: the subscription starts (and inactivity counts from) 2026-03-02.
    planner_clock.start_at("2026-03-01T15:00Z")
    planner_service.add_recipient("quiet", timezone="Asia/Tokyo")
    planner_service.subscribe("quiet", "daily_brief", at="09:00")

    planner_clock.advance(days=21)

    day0 = date(2026, 3, 2)
    # Daily on days 0-2, then every 2nd day (inactive 3-6 days), every 3rd (7-13), weekly (14+).
    offsets = [0, 1, 2, 4, 6, 9, 12, 19]
    assert_sent_on_local_dates(
        sent_messages,
        "quiet",
        kind="daily_brief",
        dates=[day0 + timedelta(days=n) for n in offsets],
        start=day0,
        end=day0 + timedelta(days=20),
        local_time="09:00",
    )
    skipped = planner_service.deliveries("quiet", status="skipped")
    assert len(skipped) == 21 - len(offsets)
    assert {d.reason for d in skipped} == {"engagement_backoff"}


@pytest.mark.planner_settings(backoff_tiers=[[0, 1], [3, 2], [7, 3]])
def test_engaging_again_brings_back_daily_sends(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-01T15:00Z")
    planner_service.add_recipient("back", timezone="Asia/Tokyo")
    planner_service.subscribe("back", "daily_brief", at="09:00")
    planner_clock.advance(days=10)  # backed off by now: sends on days 0, 1, 2, 4, 6, 9

    planner_service.engage("back", "clicked", kind="daily_brief")  # 2026-03-12 00:00 Tokyo
    planner_clock.advance(days=4)

    # Daily again from 03-12; on 03-15 the last engagement is 3 days old: every 2nd day again.
    assert sent_messages.for_recipient("back").local_dates() == [
        date(2026, 3, d) for d in (2, 3, 4, 6, 8, 11, 12, 13, 14)
    ]
    assert planner_service.deliveries("back")[-1].status == "skipped"


# -- frequency caps -----------------------------------------------------------------------------


def test_the_fourth_sms_of_a_day_is_suppressed_by_the_3_per_day_cap(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    assert planner_service.settings.cap_sms == "3/day"
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("dee", timezone="America/Chicago")
    for hour, kind in zip(
        (9, 11, 13, 15), ("reminder", "daily_brief", "weekly_digest", "promo"), strict=True
    ):
        planner_service.subscribe("dee", kind, channel="sms", at=f"{hour:02d}:00", days=["mon"])

    planner_clock.advance(days=2)

    sms = sent_messages.for_recipient("dee").on_channel("sms")
    assert [(m.kind, m.local_time) for m in sms] == [
        ("reminder", "09:00"),
        ("daily_brief", "11:00"),
        ("weekly_digest", "13:00"),
    ]
    [capped] = planner_service.deliveries("dee", status="suppressed")
    assert (capped.kind, capped.reason, capped.local_date) == ("promo", "frequency_cap", date(2026, 3, 2))


# -- dedup ----------------------------------------------------------------------------------------


def test_running_the_planner_twice_for_the_same_hour_sends_once(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T07:00Z")
    planner_service.add_recipient("eve", timezone="Europe/London")
    planner_service.subscribe("eve", "daily_brief", at="07:30")

    planner_clock.advance_to("2026-03-02T07:00Z")  # the clock's own 07:00 run
    first = planner_service.run_planner()  # and a second run for the same hour
    assert (planner_service.runs[0].inserted, first.inserted) == (1, 0)

    # A run that lost its cursor update (crashed after inserting) plans the same occurrence
    # again; the dedup key keeps it to one delivery.
    with planner_service.sessions() as session, session.begin():
        session.execute(
            update(Subscription).values(
                next_at=planner_service.runs[0].now + timedelta(minutes=30), next_local_date=date(2026, 3, 2)
            )
        )
    again = planner_service.run_planner()
    assert (again.occurrences, again.inserted, again.duplicates) == (1, 0, 1)

    planner_clock.advance_to("2026-03-03T00:00Z")
    assert len(sent_messages.for_recipient("eve")) == 1
    assert len(planner_service.deliveries("eve")) == 1
