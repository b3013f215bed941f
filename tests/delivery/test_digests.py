"""Digests and snooze on SQLite and PostgreSQL: planned by the real planner, sent by the deliverer to
the capture adapter (what it holds is what a provider received), events and snoozes over HTTP and the
command line, retention in the maintenance pass."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.auth import create_token
from planner.cli import app as cli_app
from planner.commands.importer import import_lines
from planner.delivery.deliverer import Deliverer
from planner.processes.worker import run_maintenance
from planner.readmodels.metrics import render_metrics
from planner.settings import Settings
from planner.store.claims import claim
from planner.store.digests import bind_events, digest_counts, digest_targets
from planner.store.models import Delivery
from planner.store.tables import DELIVERIES, DIGEST_EVENTS, RECIPIENTS
from tests.api import test_api
from tests.helpers import Clock, count_statements, recipient_line, runner

server = test_api.server  # the module's loopback uvicorn

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
KIND = "comments_digest"
DIGEST = [{"kind": KIND, "channel": "email", "at": "12:30", "days": "daily", "digest": True}]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def timed_app(settings: Settings, clock: Clock) -> Iterator[App]:
    app = App(settings.model_copy(update={"rate_limit_email": "1000/second"}), clock=clock)
    yield app
    app.close()


@pytest.fixture
def capture() -> CaptureAdapter:
    return CaptureAdapter()


@pytest.fixture
def deliverer(timed_app: App, capture: CaptureAdapter) -> Deliverer:
    return build_deliverer(timed_app, adapters={"email": capture, "sms": capture})


@pytest.fixture
def http(server: tuple[test_api.Switch, str], timed_app: App) -> Iterator[httpx.Client]:
    timed_app.settings.api_token = None
    token = create_token(timed_app, "crm", ["read", "write"], NOW)
    with test_api.serve(server, timed_app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def deliveries(app: App) -> list[Delivery]:
    with app.sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def add_events(app: App, authors: list[str], at: datetime) -> None:
    with app.sessions() as session, session.begin():
        rid = session.scalar(select(RECIPIENTS.c.id))
        rows = [
            {"recipient_id": rid, "kind": KIND, "data": {"author": a}, "occurred_at": at, "received_at": at}
            for a in authors
        ]
        session.execute(insert(DIGEST_EVENTS), rows)


def listed(text: str) -> list[str]:
    return [line.split(" ")[3].rstrip(":") for line in text.splitlines() if line.startswith("- ")]


def test_ten_thousand_events_are_one_message_with_a_bounded_list_read_in_one_query(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", DIGEST)], NOW)
    runner(timed_app).run(NOW, HOUR)
    [planned] = deliveries(timed_app)
    add_events(timed_app, [f"u{i}" for i in range(10_000)], NOW)
    clock.now = planned.scheduled_at
    with count_statements(timed_app.engine) as seen:
        report = deliverer.deliver_batch([planned.id or 0])
    assert report.sent == 1
    [message] = capture.sent
    assert message.subject == "You have 10000 new comments"
    assert listed(message.text or "") == [f"u{i}" for i in range(50)], "the oldest, up to the cap"
    assert "... and 9950 more." in (message.text or "")
    touching = [s for s in seen if "digest_event" in s]
    # Which deliveries already hold events, the one binding UPDATE, the one read (capped in SQL).
    assert len(touching) == 3, touching
    assert sum("row_number" in s.lower() for s in touching) == 1


def test_quiet_hours_move_a_digest_and_it_takes_the_events_until_its_send(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    quiet = {"email": {"start": "12:00", "end": "13:00"}}
    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", DIGEST, quiet_hours=quiet)], NOW)
    runner(timed_app).run(NOW, 2 * HOUR)
    [planned] = deliveries(timed_app)
    assert planned.scheduled_at == NOW + HOUR, "deferred to the end of quiet hours like any delivery"
    add_events(timed_app, ["before"], NOW)
    add_events(timed_app, ["in-quiet-hours"], NOW + timedelta(minutes=45))
    clock.now = planned.scheduled_at
    assert deliverer.deliver_batch([planned.id or 0]).sent == 1
    assert listed(capture.sent[0].text or "") == ["before", "in-quiet-hours"]


def test_a_late_digest_is_not_sent_and_its_events_go_to_the_next_one(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", DIGEST)], NOW)
    runner(timed_app).run(NOW, 25 * HOUR)
    first, second = deliveries(timed_app)
    add_events(timed_app, ["a", "b"], NOW)
    clock.now = first.scheduled_at + 5 * HOUR  # past the default 4 h lateness
    deliverer.deliver_batch([first.id or 0])
    late = deliveries(timed_app)[0]
    assert (late.status, late.reason) == ("missed", "too_late"), "lateness applies as to any delivery"
    with timed_app.sessions() as session:
        assert digest_counts(session)[0] == 2, "the late digest let its events go"
    clock.now = second.scheduled_at
    assert deliverer.deliver_batch([second.id or 0]).sent == 1
    assert [m.subject for m in capture.sent] == ["You have 2 new comments"]


def test_retention_drops_old_events_counts_them_and_keeps_those_a_pending_digest_holds(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", DIGEST)], NOW)
    runner(timed_app).run(NOW, 25 * HOUR)
    first, second = deliveries(timed_app)
    add_events(timed_app, ["sent-1", "sent-2"], NOW)
    clock.now = first.scheduled_at
    deliverer.deliver_batch([first.id or 0])
    assert len(capture.sent) == 1
    add_events(timed_app, ["held"], NOW + HOUR)
    with timed_app.sessions() as session, session.begin():
        # A worker claimed the second digest and bound its event, then died (the lease will lapse).
        claim(session, [second.id or 0], None, "dead-worker", second.scheduled_at, deliverer.lease)
        bind_events(session, digest_targets(session, [second.id or 0]), second.scheduled_at)
    add_events(timed_app, ["never-sent"], NOW + 2 * HOUR)
    add_events(timed_app, ["recent"], NOW + 30 * timedelta(days=1))
    clock.now = NOW + timedelta(days=31)
    with structlog.testing.capture_logs() as logs:
        run_maintenance(timed_app)
    with timed_app.sessions() as session:
        left = session.scalars(select(DIGEST_EVENTS.c.data)).all()
        waiting, dropped = digest_counts(session)
    assert sorted(d["author"] for d in left) == ["held", "recent"]
    assert dropped == {"unsent": 1, "sent": 2} and waiting == 1
    [entry] = [e for e in logs if e["event"] == "digest events dropped past the retention"]
    assert (entry["unsent"], entry["sent"]) == (1, 2)
    exposition = render_metrics(timed_app, clock.now).decode()
    assert 'planner_digest_events_dropped_total{state="unsent"} 1.0' in exposition
    assert "planner_digest_events_waiting 1.0" in exposition


def _error(response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    return response.text


def test_post_events_refuses_bad_input_naming_the_field_and_repeats_are_harmless(
    http: httpx.Client, timed_app: App
) -> None:
    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", DIGEST)], NOW)
    good: dict[str, Any] = {"recipient_id": "ann", "kind": KIND, "data": {"author": "bob"}}
    assert "kind" in _error(http.post("/v1/events", json={**good, "kind": "no_such_kind"}))
    assert "data" in _error(http.post("/v1/events", json={**good, "data": [1, 2]}))
    assert "data" in _error(http.post("/v1/events", json={**good, "data": {"text": "x" * 20000}}))
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"reply": deep}
    assert "nested at most 32 deep" in _error(http.post("/v1/events", json={**good, "data": deep}))
    assert "colour" in _error(http.post("/v1/events", json={**good, "colour": "red"}))
    assert "occurred_at" in _error(http.post("/v1/events", json={**good, "occurred_at": "2026-03-02T10:00"}))
    assert "bob" in _error(http.post("/v1/events", json={**good, "recipient_id": "bob"}), 404)
    with timed_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DIGEST_EVENTS)) == 0, "nothing written"

    keyed = {**good, "idempotency_key": "comment-17"}
    first = http.post("/v1/events", json=keyed)
    assert first.status_code == 201 and first.json()["created"] is True
    again = http.post("/v1/events", json=keyed)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    header = {"Idempotency-Key": "post-1"}
    replayed = [http.post("/v1/events", json=good, headers=header) for _ in range(2)]
    assert replayed[0].json() == replayed[1].json()
    with timed_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DIGEST_EVENTS)) == 2
    assert http.delete("/v1/recipients/ann").status_code == 200
    with timed_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(DIGEST_EVENTS)) == 0, "erasure deletes them"


# The command line's parsing and messages are the same on both backends (the API tests cover both).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_events_record_and_snooze_on_the_command_line(cli: CliRunner, app: App) -> None:
    import_lines(app.sessions, [recipient_line("ann", "UTC", DIGEST)], datetime.now(UTC))
    bad = cli.invoke(cli_app, ["events", "record", "ann", KIND, "--data", "{oops"])
    assert bad.exit_code == 2 and "--data" in bad.output and "{oops" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    not_object = cli.invoke(cli_app, ["events", "record", "ann", KIND, "--data", "[1]"])
    assert not_object.exit_code == 2 and "--data" in not_object.output and "JSON object" in not_object.output
    unknown = cli.invoke(cli_app, ["events", "record", "nobody", KIND])
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    args = ["events", "record", "ann", KIND, "--data", '{"author": "ann"}', "--key", "k1", "--json"]
    made = [cli.invoke(cli_app, args) for _ in range(2)]
    assert [json.loads(r.stdout)["created"] for r in made] == [True, False], made[0].output

    snoozed = cli.invoke(cli_app, ["snooze", "ann", KIND, "email", "--until", "2026-12-24", "--json"])
    assert snoozed.exit_code == 0, snoozed.output
    assert json.loads(snoozed.stdout)["subscriptions"][0]["snooze_until"] == "2026-12-24"
    both = cli.invoke(cli_app, ["snooze", "ann", KIND, "email", "--until", "2026-12-24", "--clear"])
    assert both.exit_code == 2 and "--clear" in both.output
    bad_date = cli.invoke(cli_app, ["snooze", "ann", KIND, "email", "--until", "24/12"])
    assert bad_date.exit_code == 2 and "--until" in bad_date.output and "24/12" in bad_date.output
    cleared = cli.invoke(cli_app, ["snooze", "ann", KIND, "email", "--clear", "--json"])
    assert "snooze_until" not in json.loads(cleared.stdout)["subscriptions"][0]
    assert json.loads(cleared.stdout)["subscriptions"][0]["digest"] is True, "the rest is kept"


def test_patch_snooze_skips_pending_sends_on_snoozed_dates_and_null_plans_them_again(
    http: httpx.Client, timed_app: App
) -> None:
    reminder = [{"kind": "reminder", "channel": "email", "at": "12:30", "days": "daily"}]
    ann = {"timezone": "UTC", "email": "a@example.com", "subscriptions": reminder}
    assert http.put("/v1/recipients/ann", json=ann).status_code == 201
    runner(timed_app).run(NOW, 72 * HOUR)

    def pending_and_snoozed() -> tuple[list[date], list[date]]:
        rows = deliveries(timed_app)
        pending = sorted(d.local_date for d in rows if d.status in ("planned", "queued") and d.local_date)
        skipped = sorted(d.local_date for d in rows if d.reason == "snoozed" and d.local_date)
        return pending, skipped

    days = [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4)]
    assert pending_and_snoozed() == (days, [])
    path = "/v1/recipients/ann/subscriptions/reminder/email"
    response = http.patch(path, json={"snooze_until": "2026-03-04"})
    assert response.status_code == 200, response.text
    snoozed = {**reminder[0], "snooze_until": "2026-03-04", "active": True}
    assert response.json()["subscriptions"][0] == snoozed
    assert pending_and_snoozed() == (days[2:], days[:2]), "pending sends on snoozed dates skipped"
    assert "snooze_until" in _error(http.patch(path, json={"snooze_until": "Christmas"}))
    assert "colour" in _error(http.patch(path, json={"colour": "red"}))
    _error(http.patch("/v1/recipients/ann/subscriptions/weekly_digest/email", json={}), 404)
    cleared = http.patch(path, json={"snooze_until": None})
    assert "snooze_until" not in cleared.json()["subscriptions"][0]
    assert pending_and_snoozed()[0] == days, "ending the snooze plans those dates again"
    with timed_app.sessions() as session:
        pending = DELIVERIES.c.status.in_(["planned", "queued"])
        keys = session.scalars(select(DELIVERIES.c.dedup_key).where(pending)).all()
    assert len(keys) == len(set(keys)) == 3


def test_explain_and_simulate_show_a_digest_and_its_events(
    timed_app: App, deliverer: Deliverer, clock: Clock
) -> None:
    from planner.core.simulate import DIGEST_NOTE
    from planner.readmodels.explain import explain
    from planner.readmodels.simulate import simulate_recipient

    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", DIGEST)], NOW)
    runner(timed_app).run(NOW, 25 * HOUR)
    first, _ = deliveries(timed_app)
    add_events(timed_app, ["a", "b", "c"], NOW)

    def digest_verdict(day: date, now: datetime) -> dict[str, Any]:
        [sub] = explain(timed_app, "ann", now=now, local_date=day)["subscriptions"]
        assert sub["digest"] is True
        return next(v for v in sub["verdicts"] if v["rule"] == "digest")

    assert digest_verdict(date(2026, 3, 2), NOW)["data"] == {"bound": 0, "waiting": 3}
    clock.now = first.scheduled_at
    deliverer.deliver_batch([first.id or 0])
    sent = digest_verdict(date(2026, 3, 2), clock.now)
    assert sent["verdict"] == "pass" and sent["data"] == {"bound": 3, "waiting": 0}
    clock.now += 25 * HOUR
    deliverer.deliver_batch([deliveries(timed_app)[1].id or 0])
    empty = digest_verdict(date(2026, 3, 3), clock.now)
    assert empty["verdict"] == "fail" and "no events" in empty["detail"]
    sends, title = simulate_recipient(timed_app, "ann", date(2026, 3, 4), 3)
    assert "(digest)" in title and all(DIGEST_NOTE in s.notes for s in sends)
    # Ann never engaged: from three days inactive the planner sends every other day.
    assert [s.local_date for s in sends] == [date(2026, 3, 4), date(2026, 3, 6)]
    assert any("2026-03-05 skipped by engagement backoff" in note for note in sends[1].notes)


def test_the_testing_kit_asserts_one_digest_a_day_with_these_events(
    planner_service: Any, planner_clock: Any
) -> None:
    from planner.testing import assert_digests_sent

    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.plan_idle_hours = False  # runs only at the hours with work: quicker
    planner_service.add_recipient("ann", timezone="Europe/Paris")
    planner_service.subscribe("ann", KIND, at="08:00", days="daily", digest=True)
    planner_clock.advance(hours=5)
    planner_service.record_event("ann", KIND, {"author": "bob"})
    planner_service.record_event("ann", KIND, {"author": "cat"})
    planner_clock.advance(days=1)
    planner_service.record_event("ann", KIND, {"author": "dan"})
    planner_clock.advance(days=2)  # 2026-03-04 has no events: skipped, nothing sent
    expected = {"2026-03-02": [{"author": "bob"}, {"author": "cat"}], "2026-03-03": [{"author": "dan"}]}
    found = assert_digests_sent(
        planner_service, "ann", kind=KIND, local_time="08:00", events=expected, end="2026-03-04"
    )
    assert [m.subject for m in found] == ["You have 2 new comments", "You have 1 new comment"]
    with pytest.raises(AssertionError, match="listed other events") as wrong:
        assert_digests_sent(planner_service, "ann", kind=KIND, events={**expected, "2026-03-03": []})
    assert "2026-03-03" in str(wrong.value) and "dan" in str(wrong.value)
    with pytest.raises(AssertionError, match="unexpected"):
        assert_digests_sent(planner_service, "ann", kind=KIND, events={"2026-03-02": []}, end="2026-03-04")


def test_two_workers_claiming_email_and_sms_digests_at_once_bind_each_event_once(
    timed_app: App, deliverer: Deliverer, clock: Clock, capture: CaptureAdapter
) -> None:
    import re
    import threading

    both = [*DIGEST, {**DIGEST[0], "channel": "sms"}]
    quiet = {"sms": "none"}
    import_lines(timed_app.sessions, [recipient_line("ann", "UTC", both, quiet_hours=quiet)], NOW)
    runner(timed_app).run(NOW, HOUR)
    email, sms = deliveries(timed_app)
    add_events(timed_app, [f"u{i}" for i in range(300)], NOW)
    clock.now = email.scheduled_at
    other = build_deliverer(timed_app, adapters={"email": capture, "sms": capture})
    start = threading.Barrier(2)

    def send(worker: Deliverer, delivery_id: int) -> None:
        start.wait()
        worker.deliver_batch([delivery_id])

    threads = [
        threading.Thread(target=send, args=(w, d.id or 0)) for w, d in ((deliverer, email), (other, sms))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    listed_total = sum(int(re.findall(r"\d+", m.subject or m.text)[0]) for m in capture.sent)
    assert listed_total == 300, [m.subject or m.text for m in capture.sent]
    with timed_app.sessions() as session:
        per_delivery = dict(
            session.execute(
                select(DIGEST_EVENTS.c.delivery_id, func.count()).group_by(DIGEST_EVENTS.c.delivery_id)
            ).all()
        )
    assert sum(per_delivery.values()) == 300 and None not in per_delivery
    skipped = [d for d in deliveries(timed_app) if d.status == "skipped"]
    assert len(capture.sent) + len(skipped) == 2 and all(d.reason == "empty_digest" for d in skipped)
