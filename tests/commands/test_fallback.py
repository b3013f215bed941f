"""Channel fallback on both databases: planned once, in the transaction that records the failure (the
worker's outcome, a lease that ran out, a provider's report), through the whole rule chain, never
after the first message was delivered; a late "delivered" is recorded, not acted on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from adapters import Message, PermanentError, TransientError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.commands.feedback import apply_report
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.core.fallback import fallback_key
from planner.core.feedback import DeliveryReport
from planner.delivery.deliverer import Deliverer
from planner.dispatch.leases import recover_expired_leases
from planner.readmodels.explain import explain
from planner.settings import Settings
from planner.store import fallbacks
from planner.store.queries import find_delivery_by_key, get_delivery
from planner.store.tables import DELIVERIES
from tests.helpers import Clock, jobs_in_redis, recipient_line, runner, unthrottled_app

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TO_SMS = {"channel": "sms", "on": ["bounced", "invalid_address", "dead"], "within": "2h"}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def app(settings: Settings, clock: Clock) -> Iterator[App]:
    instance = unthrottled_app(settings, clock)
    yield instance
    instance.close()


def person(app: App, external_id: str = "ann", **fields: Any) -> None:
    line = {"type": "recipient", "id": external_id, "timezone": "UTC", "email": f"{external_id}@example.com",
            "phone": "+12125550100", **fields}  # fmt: skip
    import_lines(app.sessions, [json.dumps(line)], app.clock(), require_template=app.templates.require)


def worker(app: App, fail: Callable[[Message], None] | None = None) -> tuple[Deliverer, CaptureAdapter]:
    capture = CaptureAdapter(fail_with=fail)
    return build_deliverer(app, adapters={"email": capture, "sms": capture}), capture


def refuse_email(invalid: bool = True) -> Callable[[Message], None]:
    def refuse(message: Message) -> None:
        if message.channel == "email":
            raise PermanentError("550 5.1.1 no such user", invalid_address=invalid)

    return refuse


def shown(app: App, delivery_id: int) -> dict[str, Any]:
    with app.sessions() as session:
        return get_delivery(session, delivery_id)


def fallback_of(app: App, first_id: int) -> dict[str, Any] | None:
    with app.sessions() as session:
        return find_delivery_by_key(session, fallback_key(shown(app, first_id)["dedup_key"]))


def events(app: App, delivery_id: int) -> list[str]:
    return [e["event"] for e in shown(app, delivery_id)["timeline"]]


def sent_email(app: App, external_id: str = "ann", fallback: dict[str, Any] | None = None) -> int:
    """An ad-hoc email, sent (accepted by the capture adapter)."""
    result = notify(app, external_id, "reminder", "email", now=app.clock(), fallback=fallback or TO_SMS)
    assert worker(app)[0].deliver_batch([result.delivery["id"]]).sent == 1
    return int(result.delivery["id"])


def report(app: App, delivery_id: int, status: str, event_id: str, **extra: Any) -> dict[str, Any]:
    message_id = shown(app, delivery_id)["provider_message_id"]
    given = DeliveryReport(provider="email", event_id=event_id, message_id=message_id, status=status, **extra)
    return apply_report(app, given, app.clock())


def test_an_email_refused_for_its_address_falls_back_to_sms_planned_with_the_outcome(
    app: App, clock: Clock
) -> None:
    person(app)
    first = notify(app, "ann", "reminder", "email", now=NOW, fallback=TO_SMS).delivery["id"]
    send, capture = worker(app, refuse_email())
    assert send.deliver_batch([first]).dead == 1

    fallback = fallback_of(app, first)
    assert fallback is not None
    assert (fallback["channel"], fallback["status"], fallback["kind"]) == ("sms", "queued", "reminder")
    assert fallback["fallback_for"] == {"delivery_id": first, "because": "invalid_address"}
    assert shown(app, first)["fallback_delivery"] == {
        "delivery_id": fallback["id"],
        "channel": "sms",
        "because": "invalid_address",
    }
    assert events(app, first)[-2:] == ["dead", "fallback_planned"]
    # Its job was handed to Redis after the commit, and sends it.
    assert [fallback["id"]] in jobs_in_redis(app.redis).values()
    clock.now += timedelta(seconds=1)
    assert send.deliver_batch([fallback["id"]]).sent == 1
    assert [(m.channel, m.delivery_id) for m in capture.sent] == [("sms", fallback["id"])]
    notes = [d["fallback_note"] for d in explain(app, "ann", now=clock.now)["adhoc"]]
    assert notes == [
        f"fell back to sms: delivery {fallback['id']}, because invalid_address",
        f"fallback for delivery {first}, because invalid_address",
    ]


def test_a_failure_the_rule_does_not_name_calls_nothing(app: App) -> None:
    person(app)
    bounced_only = {"channel": "sms", "on": ["bounced"]}
    first = notify(app, "ann", "reminder", "email", now=NOW, fallback=bounced_only).delivery["id"]
    assert worker(app, refuse_email())[0].deliver_batch([first]).dead == 1
    assert fallback_of(app, first) is None
    assert "fallback_planned" not in events(app, first) and "fallback_not_planned" not in events(app, first)


def test_retries_spent_make_it_dead_and_call_the_fallback(app: App, clock: Clock) -> None:
    person(app)
    app.settings.max_attempts = 1

    def busy(message: Message) -> None:
        raise TransientError("421 try again later")

    first = notify(app, "ann", "reminder", "email", now=NOW, fallback={"channel": "sms", "on": ["dead"]})
    send, _ = worker(app, busy)
    assert send.deliver_batch([first.delivery["id"]]).dead == 1
    fallback = fallback_of(app, first.delivery["id"])
    assert fallback is not None and fallback["fallback_for"]["because"] == "dead"


def test_repeated_bounce_reports_plan_one_fallback(app: App) -> None:
    person(app)
    first = sent_email(app)
    effects = report(app, first, "bounced", "ev-1", dead_address=True)["effects"]
    fallback = fallback_of(app, first)
    assert fallback is not None and f"fallback_planned:{fallback['id']}" in effects
    # Another event of the same failure (a provider retrying with a new id): nothing more.
    assert report(app, first, "bounced", "ev-2", dead_address=True)["effects"] == ["email_invalid"]
    with app.sessions() as session:
        keys = session.scalars(select(DELIVERIES.c.dedup_key).where(DELIVERIES.c.channel == "sms")).all()
    assert keys == [fallback["dedup_key"]]


def test_a_message_reported_delivered_never_falls_back(app: App) -> None:
    person(app)
    first = sent_email(app)
    report(app, first, "delivered", "ev-1")
    assert report(app, first, "complained", "ev-2", complaint=True)["recorded"]
    # A bounce after the delivery (a late asynchronous one) calls nothing: the person has the mail.
    assert report(app, first, "bounced", "ev-3")["effects"] == []
    assert fallback_of(app, first) is None
    [entry] = [e for e in shown(app, first)["timeline"] if e["event"] == "fallback_not_planned"]
    assert entry["detail"] == {"conditions": ["bounced"], "reason": "delivered"}


def test_a_report_outside_the_window_is_recorded_and_calls_nothing(app: App, clock: Clock) -> None:
    person(app)
    first = sent_email(app, fallback={"channel": "sms", "on": ["bounced"], "within": "2h"})
    clock.now += timedelta(hours=2, minutes=1)
    assert report(app, first, "bounced", "ev-1")["effects"] == []
    assert fallback_of(app, first) is None
    [entry] = [e for e in shown(app, first)["timeline"] if e["event"] == "fallback_not_planned"]
    assert entry["detail"] == {"conditions": ["bounced"], "reason": "outside_window", "within": "2h"}


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        ({"opt_out": ["sms"]}, "suppressed", "opted_out"),
        ({"phone": None}, "suppressed", "no_address"),
        ({"quiet_hours": {"sms": {"start": "11:00", "end": "15:00"}}}, "queued", "quiet_hours_deferred"),
    ],
)
def test_the_fallback_passes_the_rule_chain_of_its_channel(
    app: App, fields: dict[str, Any], status: str, reason: str
) -> None:
    person(app, **fields)
    first = sent_email(app)
    report(app, first, "bounced", "ev-1")
    fallback = fallback_of(app, first)
    assert fallback is not None  # decided once, whatever the chain said: the link is kept
    assert (fallback["status"], fallback["reason"]) == (status, reason)
    link = next(e for e in shown(app, first)["timeline"] if e["event"] == "fallback_planned")["detail"]
    assert (link["status"], link["reason"]) == (status, reason)
    if reason == "quiet_hours_deferred":
        assert fallback["scheduled_at"] == "2026-03-02T15:00:00+00:00"
    else:
        assert fallback["job_id"] is None


def test_the_fallback_counts_against_its_channels_cap(app: App, clock: Clock) -> None:
    app.settings.cap_sms = "1/day"
    app.__dict__.pop("policy", None)  # parsed again from the changed setting
    person(app)
    earlier = notify(app, "ann", "reminder", "sms", now=NOW).delivery["id"]
    assert worker(app)[0].deliver_batch([earlier]).sent == 1
    first = sent_email(app)
    report(app, first, "bounced", "ev-1")
    fallback = fallback_of(app, first)
    assert fallback is not None
    assert (fallback["status"], fallback["reason"]) == ("suppressed", "frequency_cap")


def test_a_late_delivered_cancels_a_waiting_fallback_and_is_only_recorded_after_one_went_out(
    app: App, clock: Clock
) -> None:
    person(app, quiet_hours={"sms": {"start": "11:00", "end": "15:00"}})
    waiting = sent_email(app)
    report(app, waiting, "bounced", "ev-1")
    assert report(app, waiting, "delivered", "ev-2")["effects"] == ["fallback_cancelled"]
    fallback = fallback_of(app, waiting)
    assert fallback is not None
    assert (fallback["status"], fallback["reason"]) == ("cancelled", "first_delivered")
    assert events(app, fallback["id"])[-1] == "cancelled"
    clock.now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    send, capture = worker(app)
    assert send.deliver_batch([fallback["id"]]).claimed == 0  # its job finds nothing to send
    assert capture.sent == []

    person(app, "bob")
    gone = sent_email(app, "bob")
    report(app, gone, "bounced", "ev-3")
    later = fallback_of(app, gone)
    assert later is not None and send.deliver_batch([later["id"]]).sent == 1
    assert report(app, gone, "delivered", "ev-4")["effects"] == ["delivered_after_fallback"]
    assert shown(app, later["id"])["status"] == "sent"
    [entry] = [e for e in shown(app, gone)["timeline"] if e["event"] == "delivered_after_fallback"]
    assert entry["detail"] == {"fallback_delivery_id": later["id"], "fallback_status": "sent"}


def test_the_fallback_is_written_with_the_outcome_or_not_at_all(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    person(app)
    first = notify(app, "ann", "reminder", "email", now=NOW, fallback=TO_SMS).delivery["id"]

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the database went away after the fallback's insert")

    monkeypatch.setattr(fallbacks, "record_events", broken)
    with pytest.raises(RuntimeError):
        worker(app, refuse_email())[0].deliver_batch([first])
    # Neither the outcome nor the fallback: the delivery is still the batch's (its lease brings it back).
    assert shown(app, first)["status"] == "sending"
    assert fallback_of(app, first) is None


def test_an_outcome_written_after_the_claim_was_lost_calls_no_fallback(app: App) -> None:
    person(app)
    first = notify(app, "ann", "reminder", "email", now=NOW, fallback=TO_SMS).delivery["id"]

    def taken_over_then_refused(message: Message) -> None:
        with app.sessions() as session, session.begin():
            session.execute(update(DELIVERIES).where(DELIVERIES.c.id == first).values(claim_id="another"))
        raise PermanentError("550 5.1.1 no such user", invalid_address=True)

    assert worker(app, taken_over_then_refused)[0].deliver_batch([first]).stale == 1
    assert fallback_of(app, first) is None
    assert shown(app, first)["status"] == "sending"


def test_a_delivery_dead_because_its_worker_died_calls_the_fallback(app: App, clock: Clock) -> None:
    person(app)
    first = notify(app, "ann", "reminder", "email", now=NOW, fallback=TO_SMS).delivery["id"]
    with app.sessions() as session, session.begin():
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == first)
            .values(status="sending", attempts=app.settings.max_attempts, lease_until=NOW - timedelta(1))
        )
    assert recover_expired_leases(app.sessions, app.redis, NOW, app.retry_policy, policy=app.policy) == 1
    assert shown(app, first)["status"] == "dead"
    fallback = fallback_of(app, first)
    assert fallback is not None and fallback["fallback_for"] == {"delivery_id": first, "because": "dead"}
    assert [fallback["id"]] in jobs_in_redis(app.redis).values()


def test_a_subscriptions_fallback_is_read_when_the_delivery_fails(app: App, clock: Clock) -> None:
    subscription = {"kind": "daily_brief", "channel": "email", "at": "12:30", "fallback": {"channel": "sms"}}
    line = recipient_line("ann", "UTC", [subscription])
    import_lines(app.sessions, [line], NOW, require_template=app.templates.require)
    runner(app).run(NOW, timedelta(hours=2))
    [first] = [d["id"] for d in jobs_for(app)]
    clock.now = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    assert worker(app, refuse_email())[0].deliver_batch([first]).dead == 1
    fallback = fallback_of(app, first)
    assert fallback is not None
    link = (fallback["channel"], fallback["local_date"], fallback["subscription_id"])
    assert link == ("sms", "2026-03-02", None)
    assert fallback["dedup_key"] == "fallback:" + shown(app, first)["dedup_key"]
    verdicts = explain(app, "ann", now=clock.now)["subscriptions"][0]["verdicts"]
    [line_shown] = [v for v in verdicts if v["rule"] == "fallback"]
    expected = f"fell back to sms: delivery {fallback['id']}, because invalid_address"
    assert line_shown["detail"].startswith(expected)


def jobs_for(app: App) -> list[dict[str, Any]]:
    with app.sessions() as session:
        return [dict(r._mapping) for r in session.execute(select(DELIVERIES.c.id))]
