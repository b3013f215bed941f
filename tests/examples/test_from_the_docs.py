"""Tests a team writes from "Testing your schedules" (docs/testing.md) alone: only what that page shows.

If one of these fails while the service is right, the page is what needs fixing.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from planner.testing import assert_digests_sent, assert_sent_on_local_dates, assert_sent_once_daily_at

# Nobody opens anything here: engagement backoff off, as the page shows.
pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]])


@pytest.mark.parametrize(
    ("start", "change", "sent_at", "offset"),
    [
        # Berlin springs forward on 2026-03-29: 02:00 CET jumps to 03:00 CEST, so 02:30 is shifted.
        ("2026-03-27T12:00Z", date(2026, 3, 29), "03:30", "+02:00"),
        # Berlin falls back on 2026-10-25: 02:30 shows twice; only the first (CEST) is sent.
        ("2026-10-23T12:00Z", date(2026, 10, 25), "02:30", "+02:00"),
    ],
)
def test_a_daily_0230_send_across_both_dst_changes_in_berlin(
    planner_service, planner_clock, sent_messages, start, change, sent_at, offset
):
    planner_clock.start_at(start)
    planner_service.add_recipient("jo", timezone="Europe/Berlin")
    planner_service.subscribe("jo", "daily_brief", at="02:30", days="daily")

    planner_clock.advance(days=4)

    assert_sent_once_daily_at(
        sent_messages, "jo", kind="daily_brief", local_time="02:30",
        start=change - timedelta(days=1), end=change + timedelta(days=1),
    )  # fmt: skip
    on_the_day = sent_messages.for_recipient("jo").on_local_date(change).one()
    assert (on_the_day.local_time, on_the_day.utc_offset) == (sent_at, offset)


def test_the_last_friday_at_two_times_a_day_in_chicago(planner_service, planner_clock, sent_messages):
    planner_service.plan_idle_hours = False
    planner_clock.start_at("2026-04-01T00:00Z")
    planner_service.add_recipient("kim", timezone="America/Chicago")
    planner_service.subscribe("kim", "reminder", at=["08:15", "16:45"], rrule="FREQ=MONTHLY;BYDAY=-1FR")

    planner_clock.advance_to("2026-07-01T00:00Z")

    for wall_time in ("08:15", "16:45"):
        sent = assert_sent_once_daily_at(
            sent_messages.where(lambda m, wall_time=wall_time: m.local_time == wall_time),
            "kim", kind="reminder", local_time=wall_time,
            start=date(2026, 4, 1), end=date(2026, 6, 30), rrule="FREQ=MONTHLY;BYDAY=-1FR",
        )  # fmt: skip
        assert [m.local_date for m in sent] == [date(2026, 4, 24), date(2026, 5, 29), date(2026, 6, 26)]
        assert {m.utc_offset for m in sent} == {"-05:00"}


def test_a_snoozed_reminder_is_skipped_then_resumes(planner_service, planner_clock, sent_messages):
    planner_clock.start_at("2026-05-04T00:00Z")  # a Monday
    planner_service.add_recipient("lee", timezone="Asia/Tokyo")
    planner_service.subscribe("lee", "reminder", at="09:00", days="daily", snooze_until="2026-05-07")

    planner_clock.advance_to("2026-05-09T00:00Z")

    assert_sent_on_local_dates(
        sent_messages, "lee", kind="reminder", local_time="09:00",
        dates=["2026-05-07", "2026-05-08"], start="2026-05-04", end="2026-05-08",
    )  # fmt: skip
    skipped = planner_service.deliveries("lee", status="skipped")
    assert [(d.local_date, d.reason) for d in skipped] == [
        (date(2026, 5, 4), "snoozed"),  # 09:00 in Tokyo is the clock's start, 00:00Z
        (date(2026, 5, 5), "snoozed"),
        (date(2026, 5, 6), "snoozed"),
    ]


def test_a_daily_digest_sends_only_on_days_with_events(planner_service, planner_clock):
    planner_clock.start_at("2026-05-04T00:00Z")
    planner_service.add_recipient("max", timezone="America/Sao_Paulo")
    planner_service.subscribe("max", "comments_digest", at="07:30", days="daily", digest=True)

    planner_service.record_event("max", "comments_digest", {"author": "ana", "text": "First"})
    planner_clock.advance_to("2026-05-05T00:00Z")  # Monday's 07:30 (10:30Z) lists ana's comment
    planner_clock.advance_to("2026-05-06T00:00Z")  # Tuesday: nothing to say
    planner_service.record_event("max", "comments_digest", {"author": "bea", "text": "Second"})
    planner_service.record_event("max", "comments_digest", {"author": "cal", "text": "Third"})
    planner_clock.advance_to("2026-05-07T00:00Z")

    assert_digests_sent(
        planner_service, "max", kind="comments_digest", local_time="07:30",
        start="2026-05-04", end="2026-05-06",
        events={
            "2026-05-04": [{"author": "ana", "text": "First"}],
            "2026-05-06": [{"author": "bea", "text": "Second"}, {"author": "cal", "text": "Third"}],
        },
    )  # fmt: skip
    assert [d.reason for d in planner_service.deliveries("max", status="skipped")] == ["empty_digest"]
