"""A year on the testing kit's clock, with the retention at its floor: rows pruned all year, months
created and dropped (PostgreSQL), the SQLite file at a steady size, and no occurrence planned twice.

The service runs as in production: the hourly planner run, each RQ job at its instant, and the
workers' maintenance pass (lease recovery, reconcile, retention) once a day. One recipient's zone
moves from UTC+14 to UTC-11 mid-year, so the planner walks local dates it had planned a day before
(their keys must still be there); backoff thins out the inactive recipients' sends down to one every
14 days, so it reads last sends up to the retention's edge.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from planner.app import App, build_deliverer, build_runner
from planner.commands.importer import import_lines
from planner.commands.recipients import plan_changes
from planner.core.cadence import Cadence, occurrences_between
from planner.processes.worker import run_maintenance
from planner.settings import Settings
from planner.store import partitions, retention
from planner.store.subscriptions import any_due
from planner.store.tables import DELIVERIES, RECIPIENTS, SUBSCRIPTIONS
from planner.testing.clock import SimClock
from planner.testing.scheduler import SimulatedScheduler
from planner.testing.sent import RecordingCaptureAdapter
from tests.helpers import recipient_line

START = datetime(2026, 1, 5, tzinfo=UTC)
END = START + timedelta(days=365)
ZONE_CHANGE = datetime(2026, 7, 20, 12, 30, tzinfo=UTC)
#: The floor with the default caps and backoff: 4 h lateness + the 14-day backoff interval + 2 days.
RETENTION = timedelta(days=17)
SUBSCRIPTIONS_OF = {
    "tokyo": ("Asia/Tokyo", [{"kind": "daily_brief", "channel": "email", "at": "08:00"}]),
    "ny": ("America/New_York", [{"kind": "reminder", "channel": "sms", "at": "09:00"}]),
    "london": ("Europe/London", [{"kind": "daily_brief", "channel": "email", "at": ["08:00", "18:30"]}]),
    "kiri": ("Pacific/Kiritimati", [{"kind": "reminder", "channel": "email", "at": "08:00"}]),
}
_CANCELLED = re.compile(r":cancelled:\d+$")


class YearService:
    """The service's processes on the simulated clock, watching every delivery the planner writes."""

    def __init__(self, app: App, clock: SimClock) -> None:
        self.app = app
        self.zones = {rid: zone for rid, (zone, _) in SUBSCRIPTIONS_OF.items()}
        self.capture = RecordingCaptureAdapter(self.zones.__getitem__, clock.now)
        adapters = {"email": self.capture, "sms": self.capture}
        deliverer = build_deliverer(app, adapters=adapters, renderer=app.templates)
        self.runner = build_runner(app)
        self.jobs = SimulatedScheduler(app.redis, deliverer, clock.now)
        #: dedup key (without a cancel's suffix) -> the ids of the deliveries that held it.
        self.keys: dict[str, set[int]] = defaultdict(set)
        self.cancelled: set[int] = set()
        self.pages: dict[date, int] = {}

    def on_instant(self, now: datetime, *, top_of_hour: bool) -> None:
        if top_of_hour:
            with self.app.sessions() as session:
                due = any_due(session, now + self.app.settings.horizon)
            if due:
                self.runner.run(now, self.app.settings.horizon)
        self.jobs.run_due_jobs(now)
        if top_of_hour and now.hour == 0:
            self.watch()
            run_maintenance(self.app)
            if self.app.settings.is_sqlite:
                with self.app.sessions() as session:
                    self.pages[now.date()] = retention.sqlite_file_pages(session)[0]

    def next_job_at(self) -> datetime | None:
        return self.jobs.next_job_at()

    def watch(self) -> None:
        """Every delivery there is now (each lives 17 days at least: none is missed daily)."""
        d = DELIVERIES.c
        with self.app.sessions() as session:
            for delivery_id, key, status in session.execute(select(d.id, d.dedup_key, d.status)):
                self.keys[_CANCELLED.sub("", key)].add(delivery_id)
                if status == "cancelled":
                    self.cancelled.add(delivery_id)


def expected_keys(app: App) -> set[str]:
    """Every occurrence of the year, by its dedup key, in the zone the recipient had at the time."""
    keys = set()
    with app.sessions() as session:
        subs = session.execute(
            select(SUBSCRIPTIONS.c.id, RECIPIENTS.c.external_id).join(
                RECIPIENTS, RECIPIENTS.c.id == SUBSCRIPTIONS.c.recipient_id
            )
        ).all()
    for sub_id, rid in subs:
        zone, spec = SUBSCRIPTIONS_OF[rid]
        cadence = Cadence.parse(spec[0]["at"], "daily")
        spans = [(zone, START, END)]
        if rid == "kiri":
            spans = [(zone, START, ZONE_CHANGE), ("Pacific/Pago_Pago", ZONE_CHANGE, END)]
        for tz, begin, end in spans:
            for occurrence in occurrences_between(cadence, tz, begin, end):
                if occurrence.instant > end:
                    break
                wall = f"@{occurrence.wall_time:%H:%M}" if cadence.several_a_day else ""
                keys.add(f"sub:{sub_id}:{occurrence.local_date.isoformat()}{wall}")
    return keys


@pytest.fixture
def year(settings: Settings, planner_clock: SimClock) -> Iterator[YearService]:
    overrides = {
        "delivery_retention": RETENTION,
        "rate_limit_email": "1000/second",
        "rate_limit_sms": "1000/second",
    }
    app = App(settings.model_copy(update=overrides), clock=planner_clock.now)
    service = YearService(app, planner_clock)
    lines = [recipient_line(rid, zone, subs) for rid, (zone, subs) in SUBSCRIPTIONS_OF.items()]
    import_lines(app.sessions, lines, planner_clock.now())
    planner_clock.attach(service)
    yield service
    planner_clock.detach(service)
    app.close()


def test_a_year_with_the_retention_at_its_floor_plans_each_occurrence_once(
    year: YearService, planner_clock: SimClock
) -> None:
    app = year.app
    planner_clock.advance_to(ZONE_CHANGE)
    kiri = [recipient_line("kiri", "Pacific/Pago_Pago", SUBSCRIPTIONS_OF["kiri"][1])]
    report = import_lines(app.sessions, kiri, planner_clock.now())
    year.zones["kiri"] = "Pacific/Pago_Pago"
    plan_changes(app, report.recipient_ids, planner_clock.now())
    planner_clock.advance_to(END)

    planned_twice = {key: ids for key, ids in year.keys.items() if len(ids - year.cancelled) > 1}
    assert planned_twice == {}
    assert set(year.keys) >= expected_keys(app), "every occurrence of the year was planned"
    sent_keys = [record.message.dedup_key for record in year.capture.records]
    assert len(sent_keys) == len(set(sent_keys)), "and none was sent twice"
    with app.sessions() as session:
        removed = retention.totals(session)
        oldest = session.scalar(select(DELIVERIES.c.local_date).order_by(DELIVERIES.c.local_date).limit(1))
        months = partitions.existing_months(session)
    assert removed["deliveries"][0] > 0.9 * len(year.keys), (
        "a year of deliveries went, all but the last weeks"
    )
    assert oldest is not None and oldest >= (END - timedelta(days=17 + 31)).date()
    if app.settings.is_sqlite:
        settled, last = year.pages[date(2026, 4, 1)], year.pages[END.date()]
        assert last <= settled * 1.2, f"the file stops growing: {settled} pages in April, {last} at the end"
    else:
        assert removed["partitions_dropped"][0] >= 10 and removed["partitions_created"][0] >= 10
        assert months[0] >= date(2026, 11, 1), f"months past the retention dropped whole: {months}"
