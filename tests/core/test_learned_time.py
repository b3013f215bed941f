"""Learned send times, pure: the window's validation, the engagement statistic, the choice, and the
planner's decisions on a learned occurrence (DST, quiet hours, late planning)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

import pytest

from planner.core.cadence import Cadence, first_occurrence_at_or_after
from planner.core.engagement_slots import HALF_LIFE, NO_ENGAGEMENT, EngagementSlots, slot_of
from planner.core.learned_time import THRESHOLD, LearnedTime, choose
from planner.core.localtime import resolve, to_local
from planner.core.planning import ChunkInputs, SubscriptionState, decide_all, plan_chunk
from planner.core.policy import BackoffTier, Cap, PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.recipient import RecipientState
from planner.errors import InvalidInput

NY = "America/New_York"
AUTO = {"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}
WINDOW = LearnedTime(time(7), time(21), time(9))
POLICY = PlanningPolicy(
    caps={"email": Cap(100, timedelta(days=1), "100/day"), "sms": Cap(100, timedelta(days=1), "100/day")},
    tiers=(BackoffTier(0, 1),),
    quiet_defaults={"sms": QuietHours(time(21), time(8))},
)


def local(day: date, wall: str, zone: str = NY) -> tuple[datetime, time]:
    """An engagement at ``wall`` local on ``day``: its instant and its local wall time."""
    instant = resolve(day, time.fromisoformat(wall), zone)
    assert instant is not None
    return instant, to_local(instant, zone).time()


def history(zone: str, walls: dict[str, int], last: date) -> EngagementSlots:
    """``walls[w]`` engagements at local wall time ``w``, one a day up to ``last``."""
    events = [local(last - timedelta(days=i), wall, zone) for wall, n in walls.items() for i in range(n)]
    return NO_ENGAGEMENT.with_events(events)


# -- the window -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "field", "expected"),
    [
        (
            {"auto": {"between": ["07:00", "07:20"], "default": "07:00"}},
            "at.auto.between",
            "one 30-minute slot",
        ),
        ({"auto": {"between": ["21:00", "07:00"], "default": "09:00"}}, "at.auto.between", "start before"),
        ({"auto": {"between": ["07:00", "07:00"], "default": "07:00"}}, "at.auto.between", "start before"),
        ({"auto": {"between": ["07:10", "21:00"], "default": "09:00"}}, "at.auto.between", "half hour"),
        (
            {"auto": {"between": ["07:00", "21:00"], "default": "22:00"}},
            "at.auto.default",
            "inside the window",
        ),
        (
            {"auto": {"between": ["07:00", "21:00"], "default": "21:00"}},
            "at.auto.default",
            "inside the window",
        ),
        ({"auto": {"between": ["07:00", "21:00"]}}, "at.auto.default", "without enough history"),
        ({"auto": {"between": "07:00-21:00", "default": "09:00"}}, "at.auto.between", "two wall times"),
        ({"auto": {"between": ["7am", "21:00"], "default": "09:00"}}, "at.auto.between", "HH:MM"),
        (
            {"auto": {"between": ["07:00", "21:00"], "default": "09:00", "x": 1}},
            "at.auto.x",
            "only the fields",
        ),
        ({"auto": "07:00-21:00"}, "at.auto", "an object"),
        ({"learned": {}}, "at", "a wall time"),
        ([AUTO], "at", "not in a list"),
        (["08:00", AUTO], "at", "not in a list"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(at: object, field: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        Cadence.parse(at, "daily")
    assert raised.value.field == field
    assert expected in raised.value.expected


def test_a_learned_cadence_fires_at_the_window_start_and_round_trips_through_storage() -> None:
    cadence = Cadence.parse(AUTO, "weekdays")
    assert cadence.learned == WINDOW and cadence.wall_times == (time(7),)
    assert (
        str(cadence)
        == "every weekday (Monday to Friday) at a learned time between 07:00 and 21:00 (default 09:00)"
    )
    assert (
        Cadence.from_storage(time(7), "mon,tue,wed,thu,fri", None, None, None, None, time(21), time(9))
        == cadence
    )
    assert WINDOW.document() == AUTO
    assert list(WINDOW.slots) == list(range(14, 42)) and WINDOW.last_slot == time(20, 30)


def test_a_window_saved_mid_day_starts_today_while_a_slot_is_ahead() -> None:
    cadence = Cadence.parse(AUTO, "daily")
    at_ten = first_occurrence_at_or_after(cadence, NY, datetime(2026, 3, 2, 15, tzinfo=UTC))
    assert at_ten is not None and at_ten.local_date == date(2026, 3, 2)
    after_the_last_slot = first_occurrence_at_or_after(cadence, NY, datetime(2026, 3, 3, 1, 31, tzinfo=UTC))
    assert after_the_last_slot is not None and after_the_last_slot.local_date == date(2026, 3, 3)


# -- the statistic --------------------------------------------------------------------------------


def test_weights_halve_every_half_life_and_do_not_depend_on_the_order_of_events() -> None:
    events = [
        local(date(2026, 3, 1) - timedelta(days=i), wall) for i in range(20) for wall in ("08:10", "19:40")
    ]
    shuffled = events[:]
    random.Random(4).shuffle(shuffled)
    one_go = NO_ENGAGEMENT.with_events(events)
    piecemeal = NO_ENGAGEMENT
    for event in shuffled:
        piecemeal = piecemeal.with_events([event])
    assert piecemeal.as_of == one_go.as_of
    assert {s: c.events for s, c in piecemeal.slots.items()} == {16: 20, 39: 20}
    for slot, count in one_go.slots.items():
        assert piecemeal.slots[slot].weight == pytest.approx(count.weight, abs=1e-5)
    single = NO_ENGAGEMENT.with_events([local(date(2026, 3, 1), "19:40")])
    assert single.weights_at(single.as_of + HALF_LIFE)[39] == pytest.approx(0.5)  # type: ignore[operator]
    assert EngagementSlots.from_json(one_go.to_json()) == one_go


def test_a_local_habit_stays_in_its_slot_across_the_dst_change() -> None:
    # 19:40 EST on 03-06 and 19:40 EDT on 03-09 are an hour apart in UTC: one slot.
    slots = NO_ENGAGEMENT.with_events([local(date(2026, 3, 6), "19:40"), local(date(2026, 3, 9), "19:40")])
    assert {s: c.events for s, c in slots.slots.items()} == {slot_of(time(19, 40)): 2}


# -- the choice -----------------------------------------------------------------------------------


def opening(day: date) -> datetime:
    found = resolve(day, time(7), NY)
    assert found is not None
    return found


def test_too_little_history_keeps_the_default_and_enough_picks_the_leading_slot() -> None:
    day = date(2026, 3, 10)
    three = history(NY, {"19:40": 3}, day - timedelta(days=1))
    choice = choose(WINDOW, three, opening(day), None)
    assert (choice.wall_time, choice.basis) == (time(9), "default")
    assert choice.record["window_weight"] < THRESHOLD and "too little history" in choice.why
    four = history(NY, {"19:40": 4, "08:20": 1}, day - timedelta(days=1))
    choice = choose(WINDOW, four, opening(day), None)
    assert (choice.wall_time, choice.basis, choice.record["events"], choice.record["window_events"]) == (
        time(19, 30), "learned", 4, 5,
    )  # fmt: skip
    assert 0.7 < choice.record["weight"] / choice.record["window_weight"] < 0.85
    assert choice.note().startswith("learned time 19:30: ")


def test_engagement_outside_the_window_does_not_count() -> None:
    day = date(2026, 3, 10)
    late = history(NY, {"23:10": 10}, day - timedelta(days=1))
    assert choose(WINDOW, late, opening(day), None).basis == "default"


def test_ties_go_to_the_slot_nearer_the_default_then_to_the_earlier() -> None:
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    same = [(at - timedelta(hours=1), time(8, 5)), (at - timedelta(hours=1), time(11, 5)),
            (at - timedelta(hours=1), time(10, 5))] * 2  # fmt: skip
    tied = NO_ENGAGEMENT.with_events(same)
    assert choose(WINDOW, tied, at, None).wall_time == time(8)  # 08:00 and 10:00 are 60 min off 09:00
    nearer = NO_ENGAGEMENT.with_events([(e[0], time(9, 40)) for e in same[:2]] + same)
    assert choose(WINDOW, nearer, at, None).wall_time == time(9, 30)


def test_quiet_hours_clip_the_window_and_past_slots_are_left_out() -> None:
    day = date(2026, 3, 10)
    slots = history(NY, {"20:10": 6, "12:10": 4}, day - timedelta(days=1))
    assert choose(WINDOW, slots, opening(day), None).wall_time == time(20)
    clipped = choose(WINDOW, slots, opening(day), QuietHours(time(19), time(8)))
    assert clipped.wall_time == time(12) and "19:00" in clipped.quiet_slots
    late = choose(WINDOW, slots, opening(day), None, past=frozenset(range(14, 40)))
    assert late.wall_time == time(20)
    gone = choose(WINDOW, slots, opening(day), None, past=frozenset(range(48)))
    assert (gone.wall_time, gone.why) == (time(9), "the window had passed")
    night = choose(WINDOW, slots, opening(day), QuietHours(time(6), time(22)))
    assert (night.wall_time, night.basis) == (time(9), "default")
    assert night.why == "every slot of the window is inside quiet hours"


# -- the planner's decisions ----------------------------------------------------------------------


def inputs(
    zone: str, cadence: Cadence, day: date, slots: EngagementSlots, channel: str = "email"
) -> ChunkInputs:
    begins = datetime.combine(day, time(0), UTC) - timedelta(days=1)
    sub = SubscriptionState(1, 1, "brief", channel, cadence, begins, day, begins, time(0))
    recipient = RecipientState(1, "r", zone, "r@example.com", "+12125550100", {}, frozenset(), {})
    return ChunkInputs([sub], {1: recipient}, {}, {}, {}, {1: slots})


def test_the_planner_sends_at_the_chosen_slot_records_why_and_moves_the_cursor_past_the_date() -> None:
    day = date(2026, 3, 10)
    data = inputs(NY, Cadence.parse(AUTO, "daily"), day, history(NY, {"19:40": 6}, day - timedelta(days=1)))
    now = opening(day) - timedelta(hours=1)
    plan = plan_chunk(data, POLICY, now, now + timedelta(hours=1))
    [planned] = plan.deliveries
    assert planned.dedup_key == "sub:1:2026-03-10"
    assert to_local(planned.scheduled_at, NY).isoformat() == "2026-03-10T19:30:00-04:00"
    assert planned.occurrence_at == planned.scheduled_at
    learned = planned.detail["learned_time"]
    assert (learned["chosen"], learned["basis"], learned["events"], learned["window"]) == (
        "19:30", "learned", 6, "07:00-21:00",
    )  # fmt: skip
    assert planned.detail["wall_time"] == "19:30"
    cursor = plan.cursors[1]
    assert (cursor.next_local_date, cursor.next_wall_time) == (date(2026, 3, 11), time(7))


def test_a_chosen_slot_in_the_dst_gap_is_shifted_by_the_policy() -> None:
    window = {"auto": {"between": ["00:00", "06:00"], "default": "05:00"}}
    day = date(2026, 3, 8)
    data = inputs(NY, Cadence.parse(window, "daily"), day, history(NY, {"02:10": 5}, day - timedelta(days=1)))
    [decided] = decide_all(
        data, POLICY, datetime(2026, 3, 8, 4, tzinfo=UTC), datetime(2026, 3, 8, 6, tzinfo=UTC)
    )
    assert decided.choice is not None and decided.choice.wall_time == time(2)
    assert to_local(decided.decision.scheduled_at, NY).isoformat() == "2026-03-08T03:00:00-04:00"
    assert decided.planned.detail["dst"] == "gap"


def test_the_default_inside_quiet_hours_is_deferred_by_the_rule() -> None:
    window = {"auto": {"between": ["06:00", "10:00"], "default": "07:00"}}
    day = date(2026, 3, 10)
    data = inputs(NY, Cadence.parse(window, "daily"), day, NO_ENGAGEMENT, channel="sms")
    [decided] = decide_all(data, POLICY, opening(day) - timedelta(hours=2), opening(day))
    assert decided.choice is not None and decided.choice.basis == "default"
    assert to_local(decided.decision.scheduled_at, NY).time() == time(8)
    assert decided.decision.reason == "quiet_hours_deferred"


def test_a_date_planned_late_chooses_among_the_slots_still_ahead() -> None:
    day = date(2026, 3, 10)
    data = inputs(
        NY, Cadence.parse(AUTO, "daily"), day, history(NY, {"08:10": 6, "17:10": 4}, day - timedelta(days=1))
    )
    at_noon = datetime(2026, 3, 10, 16, tzinfo=UTC)  # 12:00 EDT: 08:00 has passed
    [decided] = decide_all(data, POLICY, at_noon, at_noon + timedelta(hours=1))
    assert decided.choice is not None and decided.choice.wall_time == time(17)
    assert decided.decision.to_send
    assert "08:00" in decided.planned.detail["learned_time"]["past_slots"]


def test_without_history_a_date_planned_after_its_default_goes_at_the_first_half_hour_ahead() -> None:
    day = date(2026, 3, 10)
    data = inputs(NY, Cadence.parse(AUTO, "daily"), day, NO_ENGAGEMENT)
    at_ten_past_noon = datetime(2026, 3, 10, 16, 10, tzinfo=UTC)  # 12:10 EDT: 09:00 has passed
    [decided] = decide_all(data, POLICY, at_ten_past_noon, at_ten_past_noon + timedelta(hours=1))
    assert decided.choice is not None and decided.choice.wall_time == time(12, 30)
    assert decided.choice.basis == "default" and "09:00 had passed" in decided.choice.why
    assert decided.decision.to_send and decided.decision.scheduled_at == datetime(
        2026, 3, 10, 16, 30, tzinfo=UTC
    )
