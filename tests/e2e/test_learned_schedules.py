"""Learned send times end to end, in simulated time with the testing kit only: weeks of engagement in
two hemispheres across their DST changes, quiet hours clipping a window, a cap shared with a fixed
time, and a recipient who never engages. Each asserts one send on every date (never two, never
none), inside the window, at the time the engagement says."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pytest

from planner.commands.importer import ImportFailed
from planner.core.localtime import parse_wall_time as wall
from planner.core.localtime import resolve, to_local
from planner.testing import (
    PlannerService,
    SentMessages,
    SimClock,
    assert_next_send_at,
    assert_sent_on_local_dates,
    learned_time,
)

# Engagement backoff would thin out the sends of a recipient who never engages: not these tests' rule.
pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]])

NY, SYDNEY = "America/New_York", "Australia/Sydney"


def dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def engage_daily(
    service: PlannerService, clock: SimClock, habits: Iterable[tuple[str, str, date, str]], until: datetime
) -> None:
    """(recipient, zone, local date, 'HH:MM') engagements, each recorded when it happens (the clock
    advanced to it first, running the planner and the sends on the way), then on to ``until``."""
    instants = []
    for recipient, zone, day, hh_mm in habits:
        at = resolve(day, wall(hh_mm, "habit"), zone)
        assert at is not None
        instants.append((at, recipient, day, hh_mm))
    for at, recipient, day, hh_mm in sorted(instants):
        clock.advance_to(at)
        service.engage_at_local(recipient, hh_mm, on=day, event="clicked")
    clock.advance_to(until)


def test_the_learned_time_follows_engagement_in_both_hemispheres_across_their_dst_changes(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    # 10:30Z: 05:30 in New York, 21:30 in Sydney; neither window is open, so each starts clean.
    planner_clock.start_at("2026-02-26T10:30Z")
    for recipient, zone in (("ann", NY), ("sue", SYDNEY)):
        planner_service.add_recipient(recipient, timezone=zone)
        planner_service.subscribe(recipient, "daily_brief", at=learned_time(("07:00", "21:00"), "09:00"))
    assert_next_send_at(planner_service, "ann", kind="daily_brief", local_time="09:00")  # no history
    first = {"ann": date(2026, 2, 26), "sue": date(2026, 2, 27)}
    switch, last = date(2026, 3, 21), date(2026, 4, 14)
    # Evenings at 19:40 until the switch, then mornings at 08:10; New York moves to EDT on 03-08,
    # Sydney back to AEST on 04-05.
    habits = [
        (who, zone, day, "19:40" if day < switch else "08:10")
        for who, zone in (("ann", NY), ("sue", SYDNEY))
        for day in dates(first[who], last)
    ]
    engage_daily(planner_service, planner_clock, habits, until=datetime.fromisoformat("2026-04-16T00:00Z"))

    for who, zone in (("ann", NY), ("sue", SYDNEY)):
        sends = assert_sent_on_local_dates(
            sent_messages, who, kind="daily_brief", dates=dates(first[who], last + timedelta(days=1))
        )
        times = "".join(f"{m.local_time} " for m in sends)
        # Four dates by default (three evenings weigh 2.8 < 3), then the evening, then the morning.
        phases = re.fullmatch(r"((?:09:00 ){4})((?:19:30 )+)((?:08:00 )+)", times)
        assert phases is not None, f"{who}: {times}"
        flipped = first[who] + timedelta(days=(len(phases[1]) + len(phases[2])) // 6)
        assert switch < flipped <= switch + timedelta(days=14), f"{who} took the morning on {flipped}"
        records = [
            r
            for r in planner_service.deliveries(who, kind="daily_brief", status="sent")
            if r.local_date is not None and r.local_date <= last + timedelta(days=1)
        ]
        assert [r.learned["chosen"] for r in records if r.learned] == [m.local_time for m in sends]
        assert [r.learned["basis"] for r in records[:5] if r.learned] == ["default"] * 4 + ["learned"]
        assert all(to_local(m.sent_at, zone).date() == m.local_date for m in sends)
    by_date = {(m.recipient, m.local_date): m for m in sent_messages}
    # The learned hour is local: the same wall time on both sides of each change, another offset.
    assert (by_date["ann", date(2026, 3, 7)].local_time, by_date["ann", date(2026, 3, 7)].utc_offset) == (
        "19:30", "-05:00",
    )  # fmt: skip
    assert (by_date["ann", date(2026, 3, 9)].local_time, by_date["ann", date(2026, 3, 9)].utc_offset) == (
        "19:30", "-04:00",
    )  # fmt: skip
    assert (by_date["sue", date(2026, 4, 4)].local_time, by_date["sue", date(2026, 4, 4)].utc_offset) == (
        "08:00", "+11:00",
    )  # fmt: skip
    assert (by_date["sue", date(2026, 4, 6)].local_time, by_date["sue", date(2026, 4, 6)].utc_offset) == (
        "08:00", "+10:00",
    )  # fmt: skip
    assert_next_send_at(planner_service, "sue", kind="daily_brief", local_time="08:00")


@pytest.mark.planner_settings(cap_sms="1/day")
def test_quiet_hours_clip_the_window_and_the_cap_holds_with_a_fixed_time(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    # Three weeks with no clock change in Berlin: a rolling day of 23 hours would let the cap take a
    # date (the rule, for fixed times too), which is another test's subject.
    planner_clock.start_at("2026-04-06T00:00Z")
    planner_service.add_recipient("bob", timezone="Europe/Berlin")
    # SMS quiet hours default to 21:00-08:00: the window's 07:00-07:30 and 21:00-21:30 are left out.
    planner_service.subscribe(
        "bob", "daily_brief", channel="sms", at=learned_time(("07:00", "22:00"), "09:00")
    )
    planner_service.subscribe("bob", "reminder", channel="sms", at="17:45")
    first, last = date(2026, 4, 6), date(2026, 4, 26)
    # Bob reads at 21:20 (inside quiet hours: never a candidate), and now and then at 17:10.
    habits = [("bob", "Europe/Berlin", day, "21:20") for day in dates(first, last)]
    habits += [("bob", "Europe/Berlin", day, "17:10") for day in dates(first, last) if day.day % 2 == 0]
    engage_daily(planner_service, planner_clock, habits, until=datetime.fromisoformat("2026-04-28T00:00Z"))

    briefs = assert_sent_on_local_dates(
        sent_messages, "bob", kind="daily_brief", dates=dates(first, last + timedelta(days=1))
    )
    assert {m.local_time for m in briefs} == {"09:00", "17:00"}
    assert briefs[-1].local_time == "17:00"
    assert all("08:00" <= m.local_time < "21:00" for m in briefs), "never inside quiet hours"
    learned = [r.learned for r in planner_service.deliveries("bob", kind="daily_brief") if r.learned]
    assert all(r["quiet_slots"] == ["07:00", "07:30", "21:00", "21:30"] for r in learned)
    # The cap (one SMS a rolling day): the 17:45 reminder goes only on dates the brief left room.
    sms = sorted(m.sent_at for m in sent_messages.for_recipient("bob"))
    assert all(b - a >= timedelta(days=1) for a, b in itertools.pairwise(sms)), sms
    suppressed = planner_service.deliveries("bob", kind="reminder", status="suppressed")
    assert suppressed and all(r.reason == "frequency_cap" for r in suppressed)


def test_without_any_engagement_every_date_goes_at_the_default(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    # Noon in Santiago (today's window has passed); its clocks jump from 00:00 to 01:00 on 2026-09-06.
    planner_clock.start_at("2026-08-30T16:00Z")
    planner_service.add_recipient("cai", timezone="America/Santiago")
    planner_service.subscribe("cai", "daily_brief", at=learned_time(("06:00", "10:00"), "07:15"))
    assert_next_send_at(planner_service, "cai", kind="daily_brief", local_time="07:15")
    planner_clock.advance_to("2026-09-20T15:00Z")
    sends = assert_sent_on_local_dates(
        sent_messages, "cai", kind="daily_brief", dates=dates(date(2026, 8, 31), date(2026, 9, 20)),
        local_time="07:15",
    )  # fmt: skip
    assert len(sends) == 21
    assert {m.utc_offset for m in sends} == {"-04:00", "-03:00"}
    reasons = {r.learned["why"] for r in planner_service.deliveries("cai") if r.learned}
    assert reasons == {"too little history (recent engagement 0.0 in the window, under 3)"}


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (learned_time(("07:00", "07:20")), "subscriptions[0].at.auto.between: ['07:00', '07:20'] is invalid"),
        (learned_time(("21:00", "07:00")), "start before the end"),
        (learned_time(("07:00", "21:00"), "21:30"), "subscriptions[0].at.auto.default: '21:30' is invalid"),
        ([learned_time()], "subscriptions[0].at: "),
    ],
)
def test_the_kit_refuses_a_bad_learned_time_as_the_service_does(
    planner_service: PlannerService, at: object, message: str
) -> None:
    planner_service.add_recipient("ann", timezone=NY)
    with pytest.raises(ImportFailed, match=re.escape(message)):
        planner_service.subscribe("ann", "daily_brief", at=at)  # type: ignore[arg-type]
    assert planner_service.deliveries("ann") == []
    assert planner_service.recipient_line("ann")["subscriptions"] == []
