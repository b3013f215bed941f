"""The retention pass: final deliveries past PLANNER_DELIVERY_RETENTION go with everything that names
them, open ones never; the other growing tables go past theirs; in bounded batches, counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.notify import notify
from planner.commands.retention import PASS_EVERY, dry_run, maintenance_pass, prune
from planner.readmodels.metrics import render_metrics
from planner.readmodels.status import collect_status
from planner.settings import Settings, settings_problems
from planner.store import retention
from planner.store.db import transaction
from planner.store.tables import (
    AUDIT,
    DELIVERIES,
    DELIVERY_EVENTS,
    DIGEST_DROPS,
    DIGEST_EVENTS,
    ENGAGEMENT,
    RECIPIENTS,
    RUNS,
)
from planner.store.timeline import event_row, record_events
from tests.commands.test_ops import add_recipient

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def add_delivery(app: App, status: str, due: datetime, *, sub: int = 1) -> int:
    """A delivery of recipient u-1 due at ``due`` (its key names subscription ``sub``, its local date
    is the UTC date), with one stored timeline entry."""
    with transaction(app.sessions) as session:
        recipient_id = session.scalar(select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == "u-1"))
        day = due.date()
        dedup_key = f"sub:{sub}:{day.isoformat()}@{due:%H:%M}"
        row: dict[str, Any] = {
            "dedup_key": dedup_key, "recipient_id": recipient_id, "subscription_id": None, "kind": "reminder",
            "channel": "email", "queue": "default", "local_date": day, "occurrence_at": due,
            "scheduled_at": due, "status": status, "attempts": 1, "created_at": due, "updated_at": due,
        }  # fmt: skip
        delivery_id = int(session.scalar(insert(DELIVERIES).values(row).returning(DELIVERIES.c.id)) or 0)
        record_events(session, [event_row(delivery_id, due, "retrying", status="retrying", reason="timeout")])
    return delivery_id


def ids_and_counts(app: App) -> tuple[list[int], int]:
    with app.sessions() as session:
        ids = sorted(session.scalars(select(DELIVERIES.c.id)))
        events = session.scalar(select(func.count()).select_from(DELIVERY_EVENTS)) or 0
    return ids, int(events)


@pytest.fixture
def old_and_new(app: App) -> dict[str, int]:
    add_recipient(app)
    old = NOW - 130 * DAY  # on PostgreSQL a month goes once all of it is past the retention
    return {
        "old_sent": add_delivery(app, "sent", old),
        "old_dead": add_delivery(app, "dead", old + timedelta(hours=1)),
        "old_queued": add_delivery(app, "queued", old + timedelta(hours=2)),
        "old_retrying": add_delivery(app, "retrying", old + timedelta(hours=3)),
        "recent_sent": add_delivery(app, "sent", NOW - 10 * DAY),
    }


def test_final_deliveries_past_the_retention_go_with_their_timelines_open_ones_stay(
    app: App, old_and_new: dict[str, int]
) -> None:
    report = prune(app, NOW)
    ids, events = ids_and_counts(app)
    kept = ("old_queued", "old_retrying", "recent_sent")
    assert ids == sorted(old_and_new[name] for name in kept)
    assert events == 3, "each remaining delivery keeps its timeline; the pruned ones' went with them"
    assert (report.removed["deliveries"], report.removed["delivery_events"]) == (2, 2)
    with app.sessions() as session:
        assert retention.totals(session)["deliveries"][0] == 2
    assert prune(app, NOW).removed["deliveries"] == 0, "a second pass finds nothing more"


def test_a_dry_run_counts_and_removes_nothing(app: App, old_and_new: dict[str, int]) -> None:
    counted = dry_run(app, NOW)
    assert counted["removed"]["deliveries"] == 2
    assert counted["cutoffs"]["deliveries"] == (NOW - 90 * DAY).isoformat()
    assert len(ids_and_counts(app)[0]) == 5


def test_batches_are_bounded_and_a_budget_leaves_the_rest_to_the_next_pass(app: App) -> None:
    add_recipient(app)
    for i in range(25):
        add_delivery(app, "sent", NOW - 200 * DAY + i * timedelta(hours=1))
    small = App(app.settings.model_copy(update={"prune_batch_size": 10}), clock=app.clock)
    try:
        spent = iter([0.0, 0.0, 0.0, 100.0])  # the budget runs out after two batches
        report = prune(small, NOW, budget=50.0, monotonic=lambda: next(spent, 100.0))
        assert (report.removed["deliveries"], report.complete) == (20, False)
        assert prune(small, NOW).removed["deliveries"] == 5
    finally:
        small.close()


def test_an_ad_hoc_key_is_held_for_the_retention_then_free_again(app: App) -> None:
    add_recipient(app)
    notify(app, "u-1", "reminder", "email", now=NOW - 130 * DAY, dedup_key="order-7")
    assert (
        notify(app, "u-1", "reminder", "email", now=NOW - 129 * DAY, dedup_key="order-7").outcome
        == "duplicate"
    )
    with transaction(app.sessions) as session:  # sent long ago
        session.execute(DELIVERIES.update().values(status="sent"))
    assert prune(app, NOW).removed["adhoc_keys"] == 1
    again = notify(app, "u-1", "reminder", "email", now=NOW, dedup_key="order-7")
    assert again.created and again.delivery["created_at"] == NOW.isoformat()


def test_digest_events_go_with_their_sent_digest_and_come_free_from_the_others(
    app: App, old_and_new: dict[str, int]
) -> None:
    with transaction(app.sessions) as session:
        recipient_id = session.scalar(select(DELIVERIES.c.recipient_id).limit(1))
        base = {"recipient_id": recipient_id, "kind": "reminder", "occurred_at": NOW, "received_at": NOW}
        session.execute(
            insert(DIGEST_EVENTS),
            [
                {**base, "delivery_id": old_and_new["old_sent"]},
                {**base, "delivery_id": old_and_new["old_dead"]},
            ],
        )
    report = prune(app, NOW)
    with app.sessions() as session:
        left = session.execute(select(DIGEST_EVENTS.c.delivery_id)).scalars().all()
        dropped = session.scalar(select(func.sum(DIGEST_DROPS.c.sent)))
    assert left == [None], "the dead digest's event waits for the next digest"
    assert (report.removed["digest_events"], dropped) == (1, 1), "the sent one is counted dropped"


def test_the_other_tables_go_past_their_retentions_keeping_each_recipients_latest_engagement(
    app: App,
) -> None:
    add_recipient(app)
    with transaction(app.sessions) as session:
        recipient_id = session.scalar(select(RECIPIENTS.c.id))
        session.execute(
            insert(ENGAGEMENT),
            [
                {
                    "recipient_id": recipient_id,
                    "event": "opened",
                    "occurred_at": NOW - days * DAY,
                    "created_at": NOW,
                }
                for days in (800, 500, 400)
            ],
        )
        session.execute(
            insert(AUDIT),
            [{"at": NOW - days * DAY, "actor": "ops", "action": "paused"} for days in (400, 10)],
        )
        run = {"window_end": NOW, "status": "succeeded", "occurrences": 0}
        session.execute(
            insert(RUNS),
            [{**run, "run_id": f"r{days}", "started_at": NOW - days * DAY} for days in (100, 1)],
        )
    report = prune(app, NOW)
    assert (report.removed["engagement_events"], report.removed["audit"], report.removed["runs"]) == (2, 1, 1)
    with app.sessions() as session:
        latest = session.scalars(select(ENGAGEMENT.c.occurred_at)).all()
    assert latest == [NOW - 400 * DAY], "backoff still knows when the recipient last engaged"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_one_pass_runs_per_interval_across_workers(app: App) -> None:
    assert maintenance_pass(app, NOW) is not None
    assert maintenance_pass(app, NOW + PASS_EVERY / 2) is None, "another worker's pass ran a moment ago"
    assert maintenance_pass(app, NOW + PASS_EVERY) is not None


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("delivery_retention", "1d", "PLANNER_DELIVERY_RETENTION='1d': expected at least '16d4h'"),
        ("delivery_retention", "-3d", "PLANNER_DELIVERY_RETENTION='-3d': expected a positive duration"),
        ("audit_retention", "400d", "PLANNER_AUDIT_RETENTION='400d': expected a positive duration"),
        ("engagement_retention", "0d", "PLANNER_ENGAGEMENT_RETENTION='0d': expected a positive duration"),
        ("run_retention", "12h", "PLANNER_RUN_RETENTION='12h': expected a duration of at least '1d'"),
    ],
)
def test_a_bad_retention_is_one_line_naming_the_setting_value_and_bound(
    setting: str, value: str, expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{setting: value})  # type: ignore[arg-type]
    line = settings_problems(caught.value)
    assert line.startswith(expected) and "\n" not in line


def test_the_floor_follows_the_lateness_the_caps_and_the_backoff() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(delivery_retention="20d", max_lateness_by_kind={"digest": "5d"})  # type: ignore[arg-type]
    assert "expected at least '21d'" in settings_problems(caught.value)
    assert Settings(delivery_retention="17d").delivery_retention == timedelta(days=17)
    with pytest.raises(ValidationError, match="'32d4h'"):
        Settings(delivery_retention="30d", cap_sms="5/month")  # type: ignore[arg-type]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_what_a_pass_removed_is_in_the_metrics_and_the_status_line(
    app: App, old_and_new: dict[str, int], cli: CliRunner
) -> None:
    maintenance_pass(app, NOW)
    lines = render_metrics(app, NOW).decode().splitlines()
    assert 'planner_pruned_rows_total{kind="deliveries"} 2.0' in lines
    assert "planner_retention_last_pass_timestamp_seconds 1.7841168e+09" in lines
    status = collect_status(app, NOW)["retention"]
    assert status["removed"]["deliveries"] == 2 and status["last_pass"] == NOW.isoformat()
    shown = cli.invoke(cli_app, ["status"], env={"COLUMNS": "300"})
    assert "removed so far 2 deliveries, 2 delivery_events" in shown.output
