"""``planner simulate``'s core: every send, where it lands and why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

import pytest

from planner.core.cadence import Cadence
from planner.core.planning import ChunkInputs, SubscriptionState
from planner.core.policy import BackoffTier, Cap, PlanningPolicy
from planner.core.quiet_hours import NO_QUIET_HOURS, QuietHours
from planner.core.recipient import RecipientState
from planner.core.simulate import SimulatedSend, start_of
from planner.core.simulate import simulate as simulate_inputs
from planner.errors import InvalidInput, UnknownTimezoneError

NY = "America/New_York"
SMS_QUIET = QuietHours(time(21), time(8))
#: No cap and no backoff in the way: these tests are about where each send lands.
POLICY = PlanningPolicy(
    caps={"email": Cap(100, timedelta(days=1), "100/day"), "sms": Cap(100, timedelta(days=1), "100/day")},
    tiers=(BackoffTier(0, 1),),
)


@dataclass(frozen=True)
class Spec:
    at: str
    kind: str = "digest"
    channel: str = "email"
    quiet: QuietHours = NO_QUIET_HOURS


def spec(at: str, kind: str = "digest", channel: str = "email", quiet: QuietHours = NO_QUIET_HOURS) -> Spec:
    return Spec(at, kind, channel, quiet)


def simulate(zone: str, specs: list[Spec], from_date: date, days: int) -> list[SimulatedSend]:
    """The planner run ahead for one recipient in ``zone`` with these subscriptions."""
    begins = start_of(from_date, zone)
    subs = [
        SubscriptionState(i, 1, s.kind, s.channel, Cadence.parse(s.at, "daily"), begins, from_date, begins)
        for i, s in enumerate(specs, start=1)
    ]
    quiet = {s.channel: s.quiet for s in specs}
    recipient = RecipientState(1, "r", zone, "r@example.com", "+12125550100", quiet, frozenset(), {})
    inputs = ChunkInputs(subs, {1: recipient}, {}, {}, {})
    return simulate_inputs(inputs, POLICY, from_date, days)


def summary(sends: list[SimulatedSend]) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [
        (s.local_date.isoformat(), s.send_local.isoformat(), s.send_at.isoformat(), s.notes) for s in sends
    ]


def test_0230_across_spring_forward_is_shifted_with_a_note() -> None:
    sends = simulate(NY, [spec("02:30")], date(2026, 3, 7), 3)
    assert summary(sends) == [
        ("2026-03-07", "2026-03-07T02:30:00-05:00", "2026-03-07T07:30:00+00:00", ()),
        (
            "2026-03-08",
            "2026-03-08T03:30:00-04:00",
            "2026-03-08T07:30:00+00:00",
            ("DST gap: 02:30 does not exist, shifted +1:00 to 03:30 EDT",),
        ),
        ("2026-03-09", "2026-03-09T02:30:00-04:00", "2026-03-09T06:30:00+00:00", ()),
    ]


def test_0230_across_fall_back_exists_once() -> None:
    # The repeated hour is 01:00–02:00, so 02:30 on 11-01 is ordinary (EST).
    sends = simulate(NY, [spec("02:30")], date(2026, 10, 31), 3)
    assert summary(sends)[1] == ("2026-11-01", "2026-11-01T02:30:00-05:00", "2026-11-01T07:30:00+00:00", ())
    assert all(not s.notes for s in sends)


def test_0130_across_fall_back_is_sent_once_at_the_first_occurrence() -> None:
    sends = simulate(NY, [spec("01:30")], date(2026, 10, 31), 3)
    on_the_day = [s for s in sends if s.local_date == date(2026, 11, 1)]
    assert summary(on_the_day) == [
        (
            "2026-11-01",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T05:30:00+00:00",
            ("DST overlap: 01:30 happens twice, first occurrence (EDT) used",),
        )
    ]
    assert len(sends) == 3


def test_quiet_hours_deferral_is_explained() -> None:
    sends = simulate(
        NY, [spec("21:30", kind="reminder", channel="sms", quiet=SMS_QUIET)], date(2026, 3, 7), 1
    )
    [send] = sends
    assert send.planned_local.isoformat() == "2026-03-07T21:30:00-05:00"
    assert send.send_local.isoformat() == "2026-03-08T08:00:00-04:00"
    assert send.send_at.isoformat() == "2026-03-08T12:00:00+00:00"
    assert send.deferred
    assert send.notes == ("quiet hours 21:00–08:00: deferred from 21:30 to 08:00 the next day",)


def test_quiet_hours_ending_in_a_gap_say_so() -> None:
    quiet = QuietHours(time(0), time(2, 30))
    [send] = simulate(NY, [spec("01:00", channel="sms", quiet=quiet)], date(2026, 3, 8), 1)
    assert send.send_local.isoformat() == "2026-03-08T03:30:00-04:00"
    assert send.notes == (
        "quiet hours 00:00–02:30: deferred from 01:00 to 03:30"
        " (02:30 does not exist that day, shifted +1:00)",
    )


def test_sends_of_all_subscriptions_are_sorted_by_send_time() -> None:
    subscriptions = [
        spec("21:30", kind="reminder", channel="sms", quiet=SMS_QUIET),
        spec("07:00", kind="digest", channel="email"),
        spec("12:00", kind="digest", channel="sms", quiet=SMS_QUIET),
    ]
    sends = simulate(NY, subscriptions, date(2026, 6, 1), 2)
    assert len(sends) == 6
    assert [s.send_at for s in sends] == sorted(s.send_at for s in sends)
    assert [(s.kind, s.channel, s.send_local.strftime("%d %H:%M")) for s in sends[:3]] == [
        ("digest", "email", "01 07:00"),
        ("digest", "sms", "01 12:00"),
        ("digest", "email", "02 07:00"),
    ]


def test_missing_date_is_reported_on_the_next_send() -> None:
    sends = simulate("Pacific/Apia", [spec("09:00")], date(2011, 12, 29), 3)
    assert [s.local_date.isoformat() for s in sends] == ["2011-12-29", "2011-12-31"]
    assert sends[1].notes == ("2011-12-30 does not exist in Pacific/Apia: no send that day",)


def test_arguments_are_validated() -> None:
    assert simulate(NY, [spec("08:00")], date(2026, 1, 1), 0) == []
    with pytest.raises(InvalidInput):
        simulate(NY, [spec("08:00")], date(2026, 1, 1), -1)
    with pytest.raises(UnknownTimezoneError):
        simulate("Eastern", [spec("08:00")], date(2026, 1, 1), 1)
