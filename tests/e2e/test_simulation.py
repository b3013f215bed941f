"""Weeks of hourly planner runs over the sample fixtures, across DST changes in both hemispheres.

Whatever the run pattern (on time, skipped hours, late, repeated, two at once), every (subscription,
existing local date) ends as exactly one delivery, nothing is sent inside quiet hours, caps hold,
and backoff follows the policy.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import select

from planner.app import App
from planner.commands.importer import import_file
from planner.core.cadence import first_occurrence_at_or_after, occurrences_between
from planner.core.localtime import local_date_of
from planner.core.quiet_hours import QuietHours, effective_quiet_hours, in_quiet_hours
from planner.core.rules import engagement_backoff
from planner.settings import Settings
from planner.store.chunks import cadence_of
from planner.store.models import Delivery, EngagementEvent, Recipient, Subscription
from tests.conftest import new_pg_database, new_sqlite_database
from tests.helpers import runner
from tests.servers import PostgresServer

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "sample.jsonl"
HOUR = timedelta(hours=1)
Snapshot = dict[str, tuple[str, str | None, datetime]]


def hours(start: datetime, end: datetime, offset: timedelta = timedelta(0)) -> list[datetime]:
    count = int((end - start) / HOUR)
    return [start + offset + i * HOUR for i in range(count)]


def simulate(
    app: App, schedule: Iterable[datetime], *, repeat: int = 1, parallel: int = 1, **options: object
) -> None:
    plan = runner(app, **options)  # type: ignore[arg-type]
    for now in schedule:
        for _ in range(repeat):
            if parallel == 1:
                plan.run(now, HOUR)
                continue
            threads = [threading.Thread(target=plan.run, args=(now, HOUR)) for _ in range(parallel)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()


def snapshot(app: App, until: datetime) -> Snapshot:
    with app.sessions() as session:
        rows = session.scalars(select(Delivery).where(Delivery.occurrence_at <= until))
        return {d.dedup_key: (d.status, d.reason, d.scheduled_at) for d in rows}


def check_invariants(app: App, imported_at: datetime, until: datetime) -> dict[str, int]:
    policy = app.policy
    with app.sessions() as session:
        recipients = {r.id: r for r in session.scalars(select(Recipient))}
        subs = list(session.scalars(select(Subscription).where(Subscription.active.is_(True))))  # type: ignore[attr-defined]
        # In occurrence order: the backoff check below walks each subscription's deliveries in time
        # (by date alone, two planners' rows for one date come back in any order on PostgreSQL).
        order = (Delivery.local_date, Delivery.occurrence_at, Delivery.id)
        rows = list(session.scalars(select(Delivery).order_by(*order)))  # type: ignore[arg-type]
        events: dict[int, list[datetime]] = defaultdict(list)
        for e in session.scalars(select(EngagementEvent)):
            events[e.recipient_id].append(e.occurred_at)
    for instants in events.values():
        instants.sort()
    by_sub: dict[int, list[Delivery]] = defaultdict(list)
    for d in rows:
        by_sub[d.subscription_id or 0].append(d)
    stats: dict[str, int] = defaultdict(int)

    for sub in subs:
        person = recipients[sub.recipient_id]
        cadence = cadence_of(sub)
        first = first_occurrence_at_or_after(cadence, person.timezone, imported_at)
        expected = []
        if first is not None and first.instant <= until:
            expected = [first, *occurrences_between(cadence, person.timezone, first.instant, until)]
        got = sorted(
            (d.local_date, d.occurrence_at)
            for d in by_sub[sub.id or 0]
            if d.occurrence_at and d.occurrence_at <= until
        )
        # One delivery per occurrence (local date, wall time), at exactly the instant the DST policy gives.
        assert got == sorted((o.local_date, o.instant) for o in expected), (
            f"subscription {sub.id} ({person.timezone})"
        )
        stats["occurrences"] += len(got)
        stats["dst_adjusted"] += sum(o.adjustment != "exact" for o in expected)

        last_sent = None
        for d in by_sub[sub.id or 0]:
            assert d.local_date is not None and d.occurrence_at is not None
            if d.reason == "snoozed":
                assert sub.snooze_until is not None and d.local_date < sub.snooze_until
                stats["snoozed"] += 1
            elif d.status in ("queued", "skipped") and d.reason != "frequency_cap":
                engaged = [t for t in events[person.id or 0] if t <= d.occurrence_at]
                engaged_date = local_date_of(engaged[-1] if engaged else sub.created_at, person.timezone)
                verdict = engagement_backoff(policy.tiers_for(d.kind), d.local_date, engaged_date, last_sent)
                assert (d.status == "queued") == verdict.send, f"backoff of {d.dedup_key}: {verdict}"
                stats["skipped" if d.status == "skipped" else "sent"] += 1
            if d.status == "queued":
                last_sent = d.local_date

    counted: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for d in rows:
        if d.status != "queued":
            continue
        person = recipients[d.recipient_id]
        own = getattr(person, f"{d.channel}_quiet_start"), getattr(person, f"{d.channel}_quiet_end")
        quiet = effective_quiet_hours(
            d.channel, QuietHours(*own) if own[0] is not None else None, policy.quiet_defaults
        )
        assert not in_quiet_hours(quiet, person.timezone, d.scheduled_at), f"{d.dedup_key} in quiet hours"
        stats["deferred"] += d.reason == "quiet_hours_deferred"
        bisect.insort(counted[(d.recipient_id, d.channel)], d.scheduled_at)
    for (_, channel), instants in counted.items():
        cap = policy.caps[channel]
        for i, end in enumerate(instants):
            inside = i + 1 - bisect.bisect_right(instants, end - cap.window)
            assert inside <= cap.amount
    return stats


def fresh_app(settings: Settings, url: str) -> App:
    return App(settings.model_copy(update={"database_url": url}))


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    """These tests choose their databases themselves; they run once, not once per backend."""
    return Settings(database_url="sqlite://", redis_url=redis_url, outbox_dir=tmp_path / "outbox")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return new_sqlite_database(tmp_path / "sim.db")


IMPORTED = datetime(2026, 3, 5, 0, 0, tzinfo=UTC)


def test_five_weeks_of_hourly_runs_across_dst_in_both_hemispheres(
    settings: Settings, sqlite_url: str
) -> None:
    # 2026-03-08 US spring forward, 03-29 EU spring forward, 04-04/05 Chile, Australia, New Zealand fall back.
    end = datetime(2026, 4, 8, 0, 0, tzinfo=UTC)
    app = fresh_app(settings, sqlite_url)
    try:
        import_file(app.sessions, SAMPLE, IMPORTED)
        simulate(app, hours(IMPORTED, end))
        stats = check_invariants(app, IMPORTED, end)
        assert stats["occurrences"] > 10_000
        assert stats["skipped"] > 100 and stats["deferred"] > 50
        assert stats["dst_adjusted"] >= 10, (
            "the sample's 02:30/01:30 subscriptions must hit gaps and overlaps"
        )
    finally:
        app.close()


VARIANTS = {
    "skipped_hours": {"schedule_offset": timedelta(0), "skip": 3},
    "late_runs": {"schedule_offset": timedelta(minutes=40), "skip": 1},
    "repeated_runs": {"schedule_offset": timedelta(0), "skip": 1, "repeat": 2},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_run_patterns_give_the_same_deliveries(
    settings: Settings, sqlite_url: str, tmp_path: Path, variant: str
) -> None:
    end = datetime(2026, 3, 12, 0, 0, tzinfo=UTC)
    baseline_app = fresh_app(settings, sqlite_url)
    other_url = new_sqlite_database(tmp_path / "variant.db")
    other_app = fresh_app(settings, other_url)
    try:
        for app in (baseline_app, other_app):
            import_file(app.sessions, SAMPLE, IMPORTED)
        simulate(baseline_app, hours(IMPORTED, end))
        spec = VARIANTS[variant]
        schedule = hours(IMPORTED, end, spec["schedule_offset"])[:: spec["skip"]]  # type: ignore[misc]
        simulate(other_app, schedule, repeat=int(spec.get("repeat", 1)))  # type: ignore[call-overload]
        common_end = end - 2 * HOUR
        assert snapshot(other_app, common_end) == snapshot(baseline_app, common_end)
        check_invariants(other_app, IMPORTED, common_end)
    finally:
        baseline_app.close()
        other_app.close()


@pytest.mark.postgres
def test_two_planners_every_hour_on_postgres(settings: Settings, pg: PostgresServer, sqlite_url: str) -> None:
    end = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    baseline = fresh_app(settings, sqlite_url)
    racing = fresh_app(settings, new_pg_database(pg))
    try:
        for app in (baseline, racing):
            import_file(app.sessions, SAMPLE, IMPORTED)
        simulate(baseline, hours(IMPORTED, end))
        simulate(racing, hours(IMPORTED, end), parallel=2, chunk_size=40, concurrency=2)
        common_end = end - 2 * HOUR
        assert set(snapshot(racing, common_end)) == set(snapshot(baseline, common_end))
        check_invariants(racing, IMPORTED, common_end)
    finally:
        baseline.close()
        racing.close()


def test_cli_run_reads_a_frozen_clock(
    settings: Settings, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from planner.cli import app as cli_app

    app = fresh_app(settings, sqlite_url)
    import_file(app.sessions, SAMPLE, IMPORTED)
    app.close()
    monkeypatch.setenv("PLANNER_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PLANNER_REDIS_URL", settings.redis_url or "")
    with freeze_time("2026-03-05T08:00:00Z"):
        result = CliRunner().invoke(cli_app, ["run", "--json"])
    assert result.exit_code == 0, result.stderr
    assert '"now": "2026-03-05T08:00:00+00:00"' in result.stdout
