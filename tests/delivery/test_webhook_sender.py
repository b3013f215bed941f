"""Outgoing webhooks against a real receiver on loopback, which verifies every request it gets
(tests/webhook_receiver.py): signatures, retries on a simulated clock, rotation, the disabling of an
endpoint that keeps failing, and the limits that make the sender safe to point at the internet."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jsonschema_rs
import pytest
from sqlalchemy import select

from planner.app import App, build_webhook_sender
from planner.commands import webhooks
from planner.core.webhook_policy import MAX_ATTEMPTS, schedule_bounds
from planner.core.webhook_schemas import EVENT_SCHEMAS
from planner.delivery.webhook_sender import WebhookSender
from planner.settings import Settings
from planner.store.tables import WEBHOOK_ENDPOINTS
from tests.helpers import Clock
from tests.webhook_receiver import Receiver
from tests.webhook_support import outbox, send_notifications

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EVENTS = ["delivery.sent", "delivery.skipped"]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def hook_app(settings: Settings, clock: Clock) -> Iterator[App]:
    changed = {
        "rate_limit_email": "1000/second",
        "webhooks_allow_private": True,
        "webhooks_timeout": timedelta(seconds=2),
    }
    app = App(settings.model_copy(update=changed), clock=clock)
    yield app
    app.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    if server.hold is not None:
        server.hold.set()
    server.down()


@pytest.fixture
def sender(hook_app: App) -> Iterator[WebhookSender]:
    built = build_webhook_sender(hook_app)
    yield built
    built.close()


def register(app: App, receiver: Receiver, types: list[str] = EVENTS) -> int:
    created, secret = webhooks.register(app, receiver.url, types, now=app.clock())
    receiver.secrets.append(secret)
    return int(created["id"])


def sent_events(app: App, clock: Clock, count: int, first: int = 0) -> list[str]:
    """``count`` delivery.sent events (:func:`tests.webhook_support.send_notifications`): the
    webhook-ids of the whole outbox."""
    send_notifications(app, count, first)
    return [r["msg_id"] for r in outbox(app)]


def test_every_event_arrives_once_signed_verified_and_as_its_schema_says(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    endpoint = register(hook_app, receiver)
    sent = sent_events(hook_app, clock, 5)
    assert sender.drain() == 5
    assert receiver.rejected == []
    assert receiver.ids() == {msg_id: 1 for msg_id in sent}
    for payload in receiver.payloads():
        jsonschema_rs.validate(EVENT_SCHEMAS[payload["type"]], payload)
    assert {r["status"] for r in outbox(hook_app)} == {"delivered"}
    tried = webhooks.attempts(hook_app, endpoint)
    assert [(a["succeeded"], a["status_code"], a["attempt"]) for a in tried] == [(True, 204, 1)] * 5
    assert all(a["latency_ms"] >= 0 for a in tried)


def test_a_receiver_down_for_an_hour_gets_every_event_once_it_is_back_under_the_same_ids(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    register(hook_app, receiver)
    sent = sent_events(hook_app, clock, 4)
    receiver.down()
    back_at = clock.now + timedelta(hours=1)
    while clock.now < back_at:
        sender.drain()
        clock.now += timedelta(minutes=1)
    tried = {r["msg_id"]: r["attempts"] for r in outbox(hook_app)}
    assert all(4 <= n <= 5 for n in tried.values()), "15 s, 1 min, 4 min, 16 min (and 64 min) into the hour"
    assert {r["status"] for r in outbox(hook_app)} == {"pending"}
    receiver.up()
    for _ in range(12 * 8):  # the next attempt is at most 4 h 16 min (plus jitter) away
        sender.drain()
        if {r["status"] for r in outbox(hook_app)} == {"delivered"}:
            break
        clock.now += timedelta(minutes=5)
    assert receiver.rejected == []
    assert receiver.ids() == {msg_id: 1 for msg_id in sent}, "each once, under the id it was emitted with"
    assert {r["status"] for r in outbox(hook_app)} == {"delivered"}


def test_the_retry_schedule_covers_more_than_a_day_then_the_event_is_failed(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    shortest, longest = schedule_bounds()
    assert timedelta(days=1) < shortest <= longest < timedelta(days=2)
    register(hook_app, receiver)
    [msg_id] = sent_events(hook_app, clock, 1)
    receiver.status = 500
    first = clock.now
    while outbox(hook_app)[0]["status"] != "failed":
        sender.drain()
        clock.now += timedelta(minutes=10)
        assert clock.now - first < timedelta(days=2)
    [row] = outbox(hook_app)
    assert row["attempts"] == MAX_ATTEMPTS and row["last_status_code"] == 500
    assert clock.now - first >= shortest
    assert receiver.ids() == {msg_id: MAX_ATTEMPTS}, "every attempt under the same webhook-id"


def test_a_rotation_signs_with_both_secrets_until_the_overlap_ends(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    endpoint = register(hook_app, receiver)
    [old] = receiver.secrets
    _, new = webhooks.rotate_secret(hook_app, endpoint, timedelta(hours=1), now=clock.now)
    sent_events(hook_app, clock, 1)
    receiver.secrets = [old]
    sender.drain()
    receiver.secrets = [new]
    webhooks.redeliver(hook_app, outbox(hook_app)[0]["id"], now=clock.now)
    sender.drain()
    assert receiver.rejected == [] and len(receiver.received) == 2
    assert [len(r.signatures) for r in receiver.received] == [2, 2]
    clock.now += timedelta(hours=2)
    webhooks.redeliver(hook_app, outbox(hook_app)[0]["id"], now=clock.now)
    sender.drain()
    assert receiver.rejected == [] and len(receiver.received[-1].signatures) == 1, "the new one alone"
    receiver.secrets = [old]
    webhooks.redeliver(hook_app, outbox(hook_app)[0]["id"], now=clock.now)
    sender.drain()
    assert len(receiver.rejected) == 1, "after the overlap the old secret no longer signs"


def test_an_endpoint_failing_for_days_is_disabled_and_its_events_wait(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    endpoint = register(hook_app, receiver)
    receiver.status = 503
    first = clock.now
    while webhooks.show(hook_app, endpoint)["enabled"]:
        sent_events(hook_app, clock, 1, first=len(outbox(hook_app)))  # a steady trickle, each failing
        sender.drain()
        clock.now += timedelta(hours=6)
        assert clock.now - first < timedelta(days=7)
    shown = webhooks.show(hook_app, endpoint)
    assert shown["disabled_reason"].startswith("failing") and clock.now - first >= timedelta(days=5)
    waiting = shown["events"]["pending"]
    assert waiting > 0
    before = len(receiver.received)
    clock.now += timedelta(days=1)
    sender.drain()
    assert len(receiver.received) == before, "a disabled endpoint gets nothing"
    receiver.status = 200
    webhooks.update(hook_app, endpoint, {"enabled": True}, now=clock.now)
    sender.drain()
    assert webhooks.show(hook_app, endpoint)["events"]["pending"] == 0
    assert receiver.rejected == []


def test_answers_are_bounded_redirects_not_followed_and_slow_receivers_cut_off(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    endpoint = register(hook_app, receiver)
    sent_events(hook_app, clock, 1)
    receiver.answer = b"x" * (4 * 1024 * 1024)
    receiver.status = 200
    sender.drain()
    [big] = webhooks.attempts(hook_app, endpoint)
    assert big["succeeded"] and len(big["response_excerpt"]) == 1000
    message_id = outbox(hook_app)[0]["id"]
    receiver.answer, receiver.status, receiver.location = b"moved", 302, "http://169.254.169.254/latest"
    webhooks.redeliver(hook_app, message_id, now=clock.now)
    sender.drain()
    moved = webhooks.attempts(hook_app, endpoint)[0]
    assert not moved["succeeded"] and moved["status_code"] == 302
    assert "not followed" in moved["error"]
    receiver.location, receiver.status, receiver.hold = None, 200, threading.Event()
    webhooks.redeliver(hook_app, message_id, now=clock.now)
    started = time.monotonic()
    sender.drain()
    assert time.monotonic() - started < 2 + 1.5, "the whole call within PLANNER_WEBHOOKS_TIMEOUT (2 s)"
    slow = webhooks.attempts(hook_app, endpoint)[0]
    assert not slow["succeeded"] and "timed out" in slow["error"]
    receiver.hold.set()


def test_a_private_address_is_refused_at_delivery_too(
    hook_app: App, clock: Clock, receiver: Receiver
) -> None:
    endpoint = register(hook_app, receiver)
    sent_events(hook_app, clock, 1)
    strict = App(hook_app.settings.model_copy(update={"webhooks_allow_private": False}), clock=clock)
    sender = build_webhook_sender(strict)
    try:
        sender.drain()
    finally:
        sender.close()
        strict.close()
    [attempt] = webhooks.attempts(hook_app, endpoint)
    assert not attempt["succeeded"] and attempt["status_code"] is None
    assert "127.0.0.1, which is not a public address" in attempt["error"]
    assert receiver.received == [] and receiver.rejected == []


def test_a_worker_that_lost_its_claim_changes_nothing(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    register(hook_app, receiver)
    sent_events(hook_app, clock, 1)
    receiver.hold = threading.Event()
    late = threading.Thread(target=sender.run_once)
    late.start()
    while not receiver.held:
        time.sleep(0.01)
    clock.now += timedelta(minutes=5)  # the first claim's lease is over: another worker takes it
    other = build_webhook_sender(hook_app)
    second = threading.Thread(target=other.drain)
    second.start()
    # Both answers held until the second worker's claim is made and its request is in: the first
    # worker's outcome comes after it lost the claim.
    while len(receiver.held) < 2:
        time.sleep(0.01)
    receiver.hold.set()
    try:
        second.join(10)
    finally:
        other.close()
    late.join(10)
    [row] = outbox(hook_app)
    assert row["status"] == "delivered" and row["attempts"] == 2
    assert len(set(receiver.ids())) == 1 and sum(receiver.ids().values()) == 2


def test_the_payload_is_the_stored_text_byte_for_byte(
    hook_app: App, clock: Clock, receiver: Receiver, sender: WebhookSender
) -> None:
    register(hook_app, receiver)
    sent_events(hook_app, clock, 1)
    sender.drain()
    [row] = outbox(hook_app)
    [got] = receiver.received
    assert got.body == row["payload"].encode()
    assert got.webhook_id == row["msg_id"] and json.loads(got.body)["type"] == "delivery.sent"
    with hook_app.sessions() as session:
        assert session.scalar(select(WEBHOOK_ENDPOINTS.c.failing_since)) is None
