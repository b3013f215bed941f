"""The webhook outbox: each event is written in the transaction of the change it reports, one row
per enabled endpoint that wants its type, and nothing at all when no endpoint wants it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters import Message, PermanentError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.commands.importer import import_lines
from planner.settings import Settings
from tests.helpers import Clock, count_statements, recipient_line, runner, unthrottled_app
from tests.run.test_run import deliveries
from tests.webhook_support import outbox, register, types_of

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
URL = "https://hooks.example.com/planner"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def timed_app(settings: Settings, clock: Clock) -> Iterator[App]:
    app = unthrottled_app(settings, clock)
    yield app
    app.close()


def _planned(app: App, clock: Clock, count: int = 2) -> list[int]:
    lines = [
        recipient_line(f"u{i}", "UTC", [{"kind": "reminder", "channel": "email", "at": "12:30"}])
        for i in range(count)
    ]
    import_lines(app.sessions, lines, NOW)
    runner(app).run(NOW, HOUR)
    clock.now = NOW + timedelta(minutes=30)
    return [d.id or 0 for d in deliveries(app)]


def test_a_send_and_its_event_are_written_together_for_each_endpoint_that_wants_it(
    timed_app: App, clock: Clock
) -> None:
    wants, _ = register(timed_app, URL, ["delivery.sent", "delivery.dead"])
    other, _ = register(timed_app, URL + "/2", ["delivery.sent"])
    register(timed_app, URL + "/3", ["delivery.skipped"])
    register(timed_app, URL + "/4", ["delivery.sent"], enabled=False)
    ids = _planned(timed_app, clock)
    capture = CaptureAdapter()
    report = build_deliverer(timed_app, adapters={"email": capture, "sms": capture}).deliver_batch(ids)
    assert report.sent == 2
    rows = outbox(timed_app)
    assert sorted((r["endpoint_id"], r["body"]["data"]["delivery_id"]) for r in rows) == sorted(
        (e, d) for e in (wants.id, other.id) for d in ids
    )
    assert {r["msg_id"] for r in rows if r["endpoint_id"] == wants.id} == {
        r["msg_id"] for r in rows if r["endpoint_id"] == other.id
    }, "one webhook-id per event, whichever endpoint gets it"
    body = rows[0]["body"]
    assert body["type"] == "delivery.sent" and body["version"] == 1
    assert body["data"]["recipient_id"] in ("u0", "u1") and body["data"]["status"] == "sent"
    assert {r["status"] for r in rows} == {"pending"}


def test_no_endpoint_wanting_a_type_writes_nothing_and_costs_no_statement(
    timed_app: App, clock: Clock
) -> None:
    register(timed_app, URL, ["recipient.complained"])
    ids = _planned(timed_app, clock, 3)
    capture = CaptureAdapter()
    deliverer = build_deliverer(timed_app, adapters={"email": capture, "sms": capture})
    with count_statements(timed_app.engine) as seen:
        assert deliverer.deliver_batch(ids).sent == 3
    assert not outbox(timed_app)
    assert not [s for s in seen if "webhook_message" in s]
    assert len([s for s in seen if "webhook_endpoint" in s]) == 1, "the batch asks once, at its claim"


def test_a_permanent_failure_is_delivery_failed_with_the_address_invalid_event(
    timed_app: App, clock: Clock
) -> None:
    register(timed_app, URL, ["delivery.failed", "recipient.address_invalid"])
    ids = _planned(timed_app, clock, 1)

    def refuse(_message: Message) -> None:
        raise PermanentError("550 no such user", invalid_address=True)

    capture = CaptureAdapter(fail_with=refuse)
    build_deliverer(timed_app, adapters={"email": capture, "sms": capture}).deliver_batch(ids)
    assert types_of(timed_app) == ["delivery.failed", "recipient.address_invalid"]
    failed, invalid = (r["body"]["data"] for r in outbox(timed_app))
    assert (failed["status"], failed["reason"], failed["error"]) == (
        "dead",
        "permanent_failure",
        "550 no such user",
    )
    assert (invalid["recipient_id"], invalid["channel"], invalid["source"]) == ("u0", "email", "send")
