"""The rule chain's contract through the doors themselves, on both databases.

Each named case sets up one recipient's facts in a real database, then asks every door that decides:
``explain`` before the run (what it says the planner will do), the planner run itself, ``simulate``,
an ad-hoc ``notify`` for the same instant (where the rule applies to ad-hoc sends), and the worker's
re-check at send time (the facts applied after the delivery was planned, the send made by a real
``Deliverer`` into the capture adapter). Each must reach the planner's verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer, build_runner
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.commands.recipients import set_preference
from planner.readmodels.explain import explain
from planner.readmodels.simulate import simulate_recipient
from planner.settings import Settings
from planner.store.tables import DELIVERIES, RECIPIENTS, SUBSCRIPTIONS
from tests.helpers import Clock, unthrottled_app

NY = "America/New_York"
DAY = date(2026, 3, 10)  # a Tuesday, EDT (-04:00)
IMPORTED = datetime(2026, 3, 9, 5, tzinfo=UTC)  # 2026-03-09 00:00 EST
Verdict = tuple[str, str | None]


@dataclass(frozen=True)
class Case:
    name: str
    planner: Verdict  # (status, reason) the planner run writes; ("none", None): no delivery at all
    kind: str = "reminder"
    channel: str = "sms"
    at: str = "10:00"
    subscription: dict[str, Any] | None = None
    #: Recipient fields of the import line (quiet hours, opt-outs).
    recipient: dict[str, Any] | None = None
    engaged_days_ago: int | None = None
    last_sent_days_ago: int | None = None
    #: Facts changed through the service after the import (a preference, an invalid address).
    after_import: Callable[[App, datetime], None] | None = None
    late: timedelta = timedelta(0)
    earlier_sends: int = 0
    #: Whether the deciding rule applies to an ad-hoc send (snooze and backoff do not).
    adhoc_applies: bool = True
    #: Whether the worker re-checks the deciding rule at send time (channel, lateness, quiet hours).
    worker_rechecks: bool = False

    @property
    def instant(self) -> datetime:
        hours, minutes = map(int, self.at.split(":"))
        return datetime(DAY.year, DAY.month, DAY.day, hours, minutes, tzinfo=UTC) + timedelta(hours=4)


def _opt_out_of_kind(app: App, now: datetime) -> None:
    set_preference(app, "ann", "sms", "reminder", True, now)


def _invalid_number(app: App, now: datetime) -> None:
    with app.sessions() as session, session.begin():
        session.execute(update(RECIPIENTS).values(sms_invalid="21211: not a mobile number"))


def _opt_out_of_sms(app: App, now: datetime) -> None:
    set_preference(app, "ann", "sms", None, True, now)


CASES = [
    Case("plain send", ("queued", None)),
    Case("snoozed", ("skipped", "snoozed"), subscription={"snooze_until": "2026-03-12"}, adhoc_applies=False),
    Case("tier 1: daily", ("queued", None), engaged_days_ago=1, last_sent_days_ago=1),
    Case(
        "tier 2, sent yesterday",
        ("skipped", "engagement_backoff"),
        engaged_days_ago=5,
        last_sent_days_ago=1,
        adhoc_applies=False,
    ),
    Case("tier 2, two days on", ("queued", None), engaged_days_ago=5, last_sent_days_ago=2),
    Case(
        "tier 4, six days on",
        ("skipped", "engagement_backoff"),
        engaged_days_ago=20,
        last_sent_days_ago=6,
        adhoc_applies=False,
    ),
    Case("tier 5, fourteen days on", ("queued", None), engaged_days_ago=40, last_sent_days_ago=14),
    Case("capped", ("suppressed", "frequency_cap"), earlier_sends=3),
    Case("quiet hours", ("queued", "quiet_hours_deferred"), at="22:30", worker_rechecks=True),
    Case("late", ("missed", "too_late"), late=timedelta(hours=5), adhoc_applies=False, worker_rechecks=True),
    Case("opted out of sms", ("suppressed", "opted_out"), after_import=_opt_out_of_sms, worker_rechecks=True),
    Case(
        "opted out of the kind",
        ("suppressed", "opted_out"),
        after_import=_opt_out_of_kind,
        worker_rechecks=True,
    ),
    Case(
        "invalid number",
        ("suppressed", "invalid_channel"),
        after_import=_invalid_number,
        worker_rechecks=True,
    ),
    Case("critical kind in quiet hours", ("queued", None), kind="password_reset", at="22:30"),
    Case("end date passed", ("none", None), subscription={"end_date": "2026-03-09"}, adhoc_applies=False),
]


@pytest.fixture
def clock() -> Clock:
    return Clock(IMPORTED)


@pytest.fixture
def door_app(settings: Settings, clock: Clock) -> Iterator[App]:
    critical = settings.model_copy(update={"critical_kinds": ["password_reset"]})
    app = unthrottled_app(critical, clock)
    yield app
    app.close()


def _set_up(app: App, case: Case) -> int:
    """Import the recipient and its facts; returns the subscription's id."""
    sub = {
        "kind": case.kind,
        "channel": case.channel,
        "at": case.at,
        "days": "daily",
        **(case.subscription or {}),
    }
    line: dict[str, Any] = {"type": "recipient", "id": "ann", "timezone": NY, "phone": "+12125550100"}
    lines = [json.dumps({**line, "subscriptions": [sub], **(case.recipient or {})})]
    if case.engaged_days_ago is not None:
        engaged = case.instant - timedelta(days=case.engaged_days_ago, hours=1)
        lines.append(
            json.dumps(
                {"type": "engagement", "recipient_id": "ann", "event": "opened", "at": engaged.isoformat()}
            )
        )
    import_lines(app.sessions, lines, IMPORTED)
    with app.sessions() as session, session.begin():
        sub_id = session.scalar(select(SUBSCRIPTIONS.c.id))
        if case.last_sent_days_ago is not None:
            _sent_before(session, sub_id, DAY - timedelta(days=case.last_sent_days_ago), case)
    assert isinstance(sub_id, int)
    return sub_id


def _sent_before(session: Any, sub_id: int, day: date, case: Case) -> None:
    at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=14)
    recipient_id = session.scalar(select(RECIPIENTS.c.id))
    session.execute(
        insert(DELIVERIES).values(
            dedup_key=f"sub:{sub_id}:{day.isoformat()}", recipient_id=recipient_id, subscription_id=sub_id,
            kind=case.kind, channel=case.channel, queue="default", local_date=day, occurrence_at=at,
            scheduled_at=at, status="sent", attempts=1, sent_at=at, created_at=at, updated_at=at,
        )
    )  # fmt: skip


def _planned(app: App, sub_id: int) -> Any:
    with app.sessions() as session:
        return session.execute(
            select(DELIVERIES).where(DELIVERIES.c.dedup_key == f"sub:{sub_id}:{DAY.isoformat()}")
        ).first()


def _explained(app: App, now: datetime) -> str:
    [sub] = explain(app, "ann", now=now, local_date=DAY)["subscriptions"]
    return str(sub["outcome"])


def _expected_explain(verdict: Verdict) -> str:
    status, reason = verdict
    if status == "none":
        return "no send: cadence"
    if status == "queued":
        return "would be sent" + (" (deferred by quiet hours)" if reason == "quiet_hours_deferred" else "")
    return f"would be {status}: {reason}" + (" until 2026-03-12" if reason == "snoozed" else "")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_door_reaches_the_planners_verdict(door_app: App, clock: Clock, case: Case) -> None:
    app = door_app
    sub_id = _set_up(app, case)
    for _ in range(case.earlier_sends):
        notify(app, "ann", "reminder", "sms", now=case.instant - timedelta(hours=3))
    if case.after_import is not None:
        case.after_import(app, IMPORTED)
    now = case.instant - timedelta(minutes=30) + case.late
    clock.now = now
    explained = _explained(app, now)
    sends, _ = simulate_recipient(app, "ann", DAY, 1)

    build_runner(app).run(now, timedelta(hours=1))
    row = _planned(app, sub_id)
    verdict: Verdict = ("none", None) if row is None else (row.status, row.reason)
    assert verdict == case.planner
    assert explained == _expected_explain(case.planner)
    if not case.late:  # a forecast is never late
        to_send = case.planner[0] == "queued"
        assert [s.send_at for s in sends] == ([row.scheduled_at] if to_send else [])
    if case.adhoc_applies and case.planner[0] != "none":
        result = notify(app, "ann", case.kind, case.channel, now=now, at=case.instant, dedup_key="adhoc-1")
        adhoc = result.delivery
        assert (adhoc["status"], adhoc["reason"]) == case.planner
        assert adhoc["scheduled_at"] == row.scheduled_at.isoformat()


@pytest.mark.parametrize("case", [c for c in CASES if c.worker_rechecks], ids=lambda c: c.name)
def test_the_workers_recheck_reaches_the_planners_verdict(door_app: App, clock: Clock, case: Case) -> None:
    """Planned on plain facts, then the case's facts arrive before the send: the worker's re-check
    stops (or defers) it exactly as the planner would have."""
    app = door_app
    sub_id = _set_up(app, Case("plain", ("queued", None), at="10:00"))
    build_runner(app).run(IMPORTED, timedelta(days=2))
    row = _planned(app, sub_id)
    assert row.status == "queued"
    if case.after_import is not None:
        case.after_import(app, IMPORTED)
    if case.at != "10:00":  # quiet hours: the recipient's own window now covers the planned time
        with app.sessions() as session, session.begin():
            session.execute(
                update(RECIPIENTS).values(
                    sms_quiet_start=datetime(2026, 1, 1, 9).time(),
                    sms_quiet_end=datetime(2026, 1, 1, 11).time(),
                )
            )
    clock.now = row.scheduled_at + case.late
    capture = CaptureAdapter()
    build_deliverer(app, adapters={"email": capture, "sms": capture}).deliver_batch([row.id])
    after = _planned(app, sub_id)
    expected_status = "queued" if case.planner[0] == "queued" else case.planner[0]
    assert (after.status, after.reason) == (expected_status, case.planner[1])
    assert capture.sent == []
