"""Learned send times through the planner run, on both databases: what it costs in statements, that
a date is decided once (later engagement never moves or repeats it), and the statistic the
engagement writes keep (deduplicated, never losing an event to a concurrent writer)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from planner.app import App
from planner.commands.engagement import record_engagement
from planner.commands.importer import import_lines
from planner.commands.recipients import erase, plan_changes
from planner.core.engagement_slots import EngagementSlots, slot_of
from planner.core.localtime import to_local
from planner.store.models import Delivery
from planner.store.tables import RECIPIENTS
from tests.helpers import count_statements, recipient_line, runner

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
LEARNED = {"auto": {"between": ["12:30", "21:00"], "default": "13:00"}}


def engagement_line(rid: str, at: datetime, event: str = "opened") -> str:
    stamp = at.isoformat().replace("+00:00", "Z")
    return json.dumps({"type": "engagement", "recipient_id": rid, "event": event, "at": stamp})


def slots_of(app: App, external_id: str) -> EngagementSlots:
    with app.sessions() as session:
        stored = session.execute(
            select(RECIPIENTS.c.engagement_slots).where(RECIPIENTS.c.external_id == external_id)
        ).scalar_one()
    return EngagementSlots.from_json(stored)


def deliveries(app: App) -> list[Delivery]:
    with app.sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def test_a_chunk_of_learned_times_costs_the_statements_of_fixed_times(app: App) -> None:
    zones = ["UTC", "Europe/London", "Africa/Abidjan"]
    fixed = [
        recipient_line(
            f"f{i}",
            zones[i % 3],
            [{"kind": "daily_brief", "channel": "email", "at": "12:30", "end_date": "2026-03-02"}],
        )
        for i in range(3000)
    ]
    learned = [
        recipient_line(f"l{i}", zones[i % 3], [{"kind": "daily_brief", "channel": "email", "at": LEARNED}])
        for i in range(3000)
    ]
    # Half of the learned recipients read at 19:40, enough to learn it; the rest have no history.
    history = [
        engagement_line(f"l{i}", NOW - timedelta(days=day, hours=-7, minutes=-40))
        for i in range(0, 3000, 2)
        for day in range(1, 6)
    ]
    import_lines(app.sessions, fixed, NOW)
    import_lines(app.sessions, learned + history, NOW + timedelta(days=1))
    counts = []
    for at in (NOW, NOW + timedelta(days=1)):
        with count_statements(app.engine) as seen:
            report = runner(app, chunk_size=1000, concurrency=1).run(at, HOUR)
        assert report.outcomes["queued"] == 3000
        counts.append(seen)
    assert len(counts[1]) <= len(counts[0]), "\n".join(s[:80] for s in counts[1])
    assert sum(1 for s in counts[1] if "FROM recipient" in s) == 3
    learned_rows = [d for d in deliveries(app) if d.local_date == NOW.date() + timedelta(days=1)]
    times = sorted({d.scheduled_at.time() for d in learned_rows})
    assert times == [time(13), time(19, 30)], "the default, and the learned 19:30 (all zones are UTC+0)"


def test_a_date_is_decided_once_and_later_engagement_never_moves_or_repeats_it(app: App) -> None:
    window = {"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}
    line = recipient_line("ann", "UTC", [{"kind": "brief", "channel": "email", "at": window}])
    evenings = [engagement_line("ann", datetime(2026, 3, day, 19, 40, tzinfo=UTC)) for day in range(1, 6)]
    import_lines(app.sessions, [line, *evenings], datetime(2026, 3, 5, 23, tzinfo=UTC))
    six = datetime(2026, 3, 6, 6, tzinfo=UTC)
    runner(app).run(six, HOUR)  # covers 07:00, where the window opens
    [planned] = deliveries(app)
    assert planned.scheduled_at == datetime(2026, 3, 6, 19, 30, tzinfo=UTC)
    basis = planned.planned_detail["learned_time"]  # type: ignore[index]
    assert (basis["chosen"], basis["basis"], basis["events"], basis["window"]) == (
        "19:30",
        "learned",
        5,
        "07:00-21:00",
    )
    # Ten opens at 08:10 recorded after the decision: the 6th stays at 19:30, the 7th goes at 08:00.
    mornings = [
        engagement_line("ann", datetime(2026, 3, 6, 8, 10, tzinfo=UTC) + timedelta(seconds=s))
        for s in range(10)
    ]
    import_lines(app.sessions, mornings, six + timedelta(hours=2, minutes=30))
    for hour in range(7, 22):
        assert runner(app).run(six.replace(hour=hour), HOUR).inserted == 0
    assert [(d.local_date.isoformat(), d.scheduled_at.time()) for d in deliveries(app)] == [
        ("2026-03-06", time(19, 30))
    ]  # type: ignore[union-attr]
    runner(app).run(datetime(2026, 3, 7, 6, tzinfo=UTC), HOUR)
    assert [d.scheduled_at for d in deliveries(app)][1] == datetime(2026, 3, 7, 8, 0, tzinfo=UTC)


def test_recorded_engagement_is_counted_once_in_local_time(app: App) -> None:
    import_lines(app.sessions, [recipient_line("ny", "America/New_York", [])], NOW)
    # 19:40 EST before the 2026-03-08 change and 19:40 EDT after it: one slot, in local time.
    lines = [
        engagement_line("ny", datetime(2026, 3, 6, 0, 40, tzinfo=UTC)),
        engagement_line("ny", datetime(2026, 3, 9, 23, 40, tzinfo=UTC), "clicked"),
    ]
    import_lines(app.sessions, lines, NOW)
    import_lines(app.sessions, lines, NOW)  # again: already recorded, counted once
    record_engagement(app, "ny", "opened", datetime(2026, 3, 6, 0, 40, tzinfo=UTC), NOW)  # the API's repeat
    slots = slots_of(app, "ny")
    assert {s: c.events for s, c in slots.slots.items()} == {slot_of(time(19, 40)): 2}
    assert slots.as_of == datetime(2026, 3, 9, 23, 40, tzinfo=UTC)


def test_concurrent_webhooks_for_one_recipient_lose_no_event(app: App) -> None:
    import_lines(app.sessions, [recipient_line("busy", "Asia/Tokyo", [])], NOW)

    def record(worker: int) -> None:
        for n in range(15):
            at = NOW - timedelta(hours=worker, minutes=n)
            record_engagement(app, "busy", "clicked", at, NOW)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(record, range(6)))
    slots = slots_of(app, "busy")
    assert slots.events == 90
    expected: dict[int, int] = {}
    for worker in range(6):
        for n in range(15):
            slot = slot_of(to_local(NOW - timedelta(hours=worker, minutes=n), "Asia/Tokyo").time())
            expected[slot] = expected.get(slot, 0) + 1
    assert {s: c.events for s, c in slots.slots.items()} == expected


def test_a_subscription_saved_mid_window_goes_today_at_the_first_half_hour_ahead(app: App) -> None:
    runner(app).run(NOW, HOUR)  # the 12:00 run covers 12:00-13:00
    saved_at = NOW + timedelta(minutes=10)
    window = {"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}
    report = import_lines(
        app.sessions,
        [recipient_line("late", "UTC", [{"kind": "b", "channel": "email", "at": window}])],
        saved_at,
    )
    assert plan_changes(app, report.recipient_ids, saved_at) == 1
    [today] = deliveries(app)
    assert (today.local_date, today.scheduled_at) == (NOW.date(), NOW.replace(minute=30))
    assert "09:00 had passed" in today.planned_detail["learned_time"]["why"]  # type: ignore[index]


def test_erasure_empties_the_statistic(app: App) -> None:
    import_lines(app.sessions, [recipient_line("gone", "UTC", [])], NOW)
    record_engagement(app, "gone", "opened", NOW - HOUR, NOW)
    assert slots_of(app, "gone").events == 1
    erase(app, "gone", NOW)
    with app.sessions() as session:
        stored = session.execute(
            select(RECIPIENTS.c.engagement_slots).where(RECIPIENTS.c.external_id.like("#erased-%"))
        ).scalar_one()
    assert EngagementSlots.from_json(stored).as_of is None
