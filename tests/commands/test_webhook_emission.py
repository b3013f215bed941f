"""Every fact a webhook reports is emitted where the service learns it, in that change's transaction:
the planner's skipped and suppressed deliveries, an ad-hoc notification suppressed, a delivery dead
after its worker died, provider reports, SMS STOP and START, one-click unsubscribes, preferences."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from planner.app import App, retry_policy
from planner.commands import recipients
from planner.commands.feedback import apply_inbound_sms, apply_report
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.core.feedback import DeliveryReport, InboundSms
from planner.core.unsubscribe import UnsubscribeTarget
from planner.core.webhook_events import make_event
from planner.dispatch.leases import recover_expired_leases
from planner.store.tables import DELIVERIES
from planner.store.webhooks import emit
from tests.helpers import count_statements, recipient_line, runner
from tests.webhook_support import outbox, register, send_notifications, types_of

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
URL = "https://hooks.example.com/in"
REMINDER = {"kind": "reminder", "channel": "email", "at": "12:30"}


def data(app: App) -> list[dict[str, Any]]:
    return [row["body"]["data"] for row in outbox(app)]


def test_the_planner_emits_skipped_and_suppressed_in_bulk(app: App) -> None:
    register(app, URL, ["delivery.skipped", "delivery.suppressed"])
    lines = [
        recipient_line("snoozer", "UTC", [{**REMINDER, "snooze_until": "2026-03-05"}]),
        recipient_line("out", "UTC", [REMINDER], opt_out=["email"]),
        recipient_line("in", "UTC", [REMINDER]),
    ]
    import_lines(app.sessions, lines, NOW)
    with count_statements(app.engine) as seen:
        runner(app).run(NOW, timedelta(hours=1))
    got = {d["recipient_id"]: (d["status"], d["reason"]) for d in data(app)}
    assert got == {"snoozer": ("skipped", "snoozed"), "out": ("suppressed", "opted_out")}
    assert len([s for s in seen if "webhook_message" in s]) == 1, "one insert for the chunk"
    assert len([s for s in seen if "FROM webhook_endpoint" in s and "INSERT" not in s]) == 1


def test_a_planner_run_with_no_endpoint_wanting_them_costs_nothing(app: App) -> None:
    register(app, URL, ["delivery.sent"])
    line = recipient_line("s", "UTC", [{**REMINDER, "snooze_until": "2026-03-05"}])
    import_lines(app.sessions, [line], NOW)
    with count_statements(app.engine) as seen:
        runner(app).run(NOW, timedelta(hours=1))
    assert outbox(app) == [] and not [s for s in seen if "webhook_message" in s]


def test_an_ad_hoc_notification_suppressed_is_an_event(app: App) -> None:
    register(app, URL, ["delivery.suppressed"])
    import_lines(app.sessions, [recipient_line("out", "UTC", [], opt_out=["sms"])], NOW)
    result = notify(app, "out", "reminder", "sms", now=NOW)
    assert result.outcome == "suppressed"
    [event] = data(app)
    assert (event["delivery_id"], event["reason"], event["channel"]) == (
        result.delivery["id"],
        "opted_out",
        "sms",
    )


def test_a_delivery_dead_after_its_worker_died_on_the_last_attempt(app: App) -> None:
    register(app, URL, ["delivery.dead"])
    app.clock = lambda: NOW
    [delivery_id] = send_notifications(app, 1)
    policy = retry_policy(app.settings)
    with app.sessions() as session, session.begin():
        session.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.id == delivery_id)
            .values(status="sending", attempts=policy.max_attempts, lease_until=NOW - timedelta(seconds=1))
        )
    recover_expired_leases(app.sessions, app.redis, NOW, policy)
    [event] = outbox(app)
    assert event["event_type"] == "delivery.dead"
    assert (event["body"]["data"]["reason"], event["body"]["data"]["recipient_id"]) == ("lease_expired", "u0")


def test_provider_reports_delivered_bounced_and_complained(app: App) -> None:
    register(
        app,
        URL,
        ["delivery.delivered", "delivery.undelivered", "recipient.address_invalid", "recipient.complained"],
    )
    app.clock = lambda: NOW
    first, second = send_notifications(app, 2)

    def report(delivery_id: int, event: str, **flags: bool) -> None:
        apply_report(
            app,
            DeliveryReport(
                "email", f"{event}-{delivery_id}", f"capture-{delivery_id}", event, code="550", **flags
            ),
            NOW,
        )

    report(first, "delivered")
    report(second, "bounced", dead_address=True)
    report(second, "complained", complaint=True)
    report(second, "complained", complaint=True)  # the same callback again changes nothing
    assert types_of(app) == [
        "delivery.delivered", "delivery.undelivered", "recipient.address_invalid", "recipient.complained",
    ]  # fmt: skip
    delivered, bounced, invalid, complained = data(app)
    assert (delivered["provider"], delivered["provider_status"], delivered["status"]) == (
        "email",
        "delivered",
        "sent",
    )
    assert (bounced["provider_status"], bounced["code"]) == ("bounced", "550")
    assert (invalid["source"], invalid["error"]) == ("provider_report", "email reported bounced (550)")
    assert (complained["kind"], complained["delivery_id"]) == ("reminder", second)


def test_sms_stop_and_start_are_opted_out_and_opted_in_per_recipient(app: App) -> None:
    register(app, URL, ["recipient.opted_out", "recipient.opted_in"])
    import_lines(app.sessions, [recipient_line(r, "UTC", []) for r in ("a", "b")], NOW)  # one shared phone
    apply_inbound_sms(app, InboundSms("SM1", "+12125550100", True), NOW)
    apply_inbound_sms(app, InboundSms("SM1", "+12125550100", True), NOW)  # Twilio's retry
    apply_inbound_sms(app, InboundSms("SM2", "+12125550100", False), NOW)
    assert [(r["event_type"], r["body"]["data"]["recipient_id"]) for r in outbox(app)] == [
        ("recipient.opted_out", "a"), ("recipient.opted_out", "b"),
        ("recipient.opted_in", "a"), ("recipient.opted_in", "b"),
    ]  # fmt: skip
    assert {r["body"]["data"]["source"] for r in outbox(app)} == {"sms_keyword"}


def test_one_click_unsubscribe_and_preferences(app: App) -> None:
    register(app, URL, ["recipient.unsubscribed", "recipient.opted_out", "recipient.opted_in"])
    import_lines(app.sessions, [recipient_line("ann", "UTC", [])], NOW)
    target = UnsubscribeTarget(1, "daily_brief", "email")
    assert recipients.unsubscribe(app, target, NOW)
    assert not recipients.unsubscribe(app, target, NOW), "a second click changes nothing"
    recipients.set_preference(app, "ann", "sms", None, True, NOW)
    recipients.set_preference(app, "ann", "sms", None, True, NOW)
    recipients.set_preference(app, "ann", "email", "daily_brief", False, NOW)
    ann = {"recipient_id": "ann"}
    assert [(r["event_type"], r["body"]["data"]) for r in outbox(app)] == [
        ("recipient.unsubscribed", ann | {"channel": "email", "kind": "daily_brief", "source": "one_click"}),
        ("recipient.opted_out", ann | {"channel": "sms", "kind": None, "source": "preferences"}),
        ("recipient.opted_in", ann | {"channel": "email", "kind": "daily_brief", "source": "preferences"}),
    ]


def test_an_event_is_written_with_its_change_or_not_at_all(app: App) -> None:
    register(app, URL, ["recipient.complained"])
    event = make_event("recipient.complained", NOW, {"recipient_id": "x", "channel": "email"})
    with pytest.raises(RuntimeError), app.sessions() as session, session.begin():
        emit(session, [event], NOW)
        session.execute(text("UPDATE recipient SET updated_at = updated_at"))
        raise RuntimeError("the change fails after the event was written")
    assert outbox(app) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_removing_an_endpoint_while_an_event_is_emitted_for_it_fails_neither(app: App) -> None:
    endpoint, _ = register(app, URL, ["recipient.complained"])
    event = make_event("recipient.complained", NOW, {"recipient_id": "x", "channel": "email"})
    removal = app.sessions()
    removal.begin()
    removal.execute(text("DELETE FROM webhook_endpoint WHERE id = :id"), {"id": endpoint.id})
    done = threading.Event()

    def emitting() -> None:
        with app.sessions() as session, session.begin():
            emit(session, [event], NOW)  # waits for the removal's row lock, then skips the row
        done.set()

    thread = threading.Thread(target=emitting)
    thread.start()
    time.sleep(0.5)
    assert not done.is_set(), "the emission waits for the removal in progress"
    removal.commit()
    removal.close()
    thread.join(10)
    assert done.is_set() and outbox(app) == []
