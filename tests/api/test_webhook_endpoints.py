"""``/v1/webhook-endpoints`` over real HTTP on loopback, on SQLite and PostgreSQL: registration
with a secret shown once, scopes, bad input refused with nothing written, and the events, attempts
and redelivery of an endpoint that a real receiver (tests/webhook_receiver.py) verifies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from planner.app import App, build_webhook_sender
from planner.auth import create_token
from planner.store.tables import AUDIT, WEBHOOK_ENDPOINTS
from tests.api import test_api
from tests.webhook_receiver import Receiver
from tests.webhook_support import send_notifications

server = test_api.server  # the module's loopback uvicorn

NOW = datetime(2026, 3, 6, 10, 20, tzinfo=UTC)
PATH = "/v1/webhook-endpoints"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver().start()
    yield started
    started.down()


@pytest.fixture
def admin(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = None
    app.settings.webhooks_allow_private = True
    app.clock = lambda: NOW
    token = create_token(app, "ops", ["read", "admin"], NOW)
    with test_api.serve(server, app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def endpoint_count(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WEBHOOK_ENDPOINTS)) or 0)


def test_register_shows_the_secret_once_then_never(admin: httpx.Client, receiver: Receiver) -> None:
    answer = admin.post(
        PATH, json={"url": receiver.url, "event_types": ["delivery.sent"], "description": "CRM"}
    )
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) == len("whsec_") + 32
    assert created["enabled"] is True and created["event_types"] == ["delivery.sent"]
    listed = admin.get(PATH).json()
    shown = admin.get(f"{PATH}/{created['id']}").json()
    assert "secret" not in listed[0] and "secret" not in shown
    assert created["secret"] not in admin.get(PATH).text + admin.get(f"{PATH}/{created['id']}").text
    assert shown["events"] == {"pending": 0, "sending": 0, "delivered": 0, "failed": 0}


def test_change_rotate_and_remove(admin: httpx.Client, receiver: Receiver, app: App) -> None:
    created = admin.post(PATH, json={"url": receiver.url, "event_types": ["delivery.sent"]}).json()
    endpoint = f"{PATH}/{created['id']}"
    changed = admin.patch(
        endpoint, json={"event_types": ["delivery.dead", "delivery.failed"], "enabled": False}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["delivery.failed", "delivery.dead"]
    assert changed.json()["disabled_reason"] == "disabled by an operator"
    assert admin.patch(endpoint, json={"enabled": True}).json()["disabled_reason"] is None
    rotated = admin.post(f"{endpoint}/rotate-secret", json={"overlap": "2h"}).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_until"] == (NOW + timedelta(hours=2)).isoformat()
    removed = admin.delete(endpoint)
    assert removed.json() == {"id": created["id"], "removed": True, "events_dropped": 0}
    assert admin.get(endpoint).status_code == 404
    with app.sessions() as session:
        actions = list(session.scalars(select(AUDIT.c.action).where(AUDIT.c.actor == "ops")))
    assert actions == [
        "webhook_endpoint_created",
        "webhook_endpoint_changed",
        "webhook_endpoint_changed",
        "webhook_secret_rotated",
        "webhook_endpoint_removed",
    ]


def test_reading_needs_read_and_changing_needs_admin(
    admin: httpx.Client, app: App, receiver: Receiver
) -> None:
    reader = create_token(app, "reader", ["read", "write"], NOW)
    body = {"url": receiver.url, "event_types": ["delivery.sent"]}
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert admin.get(PATH, headers=as_reader).status_code == 200
    assert admin.post(PATH, json=body, headers=as_reader).status_code == 403
    assert admin.post(PATH, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert endpoint_count(app) == 0


@pytest.mark.parametrize(
    ("body", "field", "allow_private"),
    [
        ({"url": "http://127.0.0.1:9/hooks", "event_types": ["delivery.sent"]}, "url", False),
        ({"url": "https://10.1.2.3/hooks", "event_types": ["delivery.sent"]}, "url", False),
        ({"url": "https://[::1]/hooks", "event_types": ["delivery.sent"]}, "url", False),
        ({"url": "https://169.254.169.254/latest", "event_types": ["delivery.sent"]}, "url", False),
        ({"url": "https://localhost/hooks", "event_types": ["delivery.sent"]}, "url", False),
        ({"url": "https://nowhere.invalid/hooks", "event_types": ["delivery.sent"]}, "url", True),
        ({"url": "ftp://hooks.example.com/", "event_types": ["delivery.sent"]}, "url", True),
        ({"url": "https://user:pw@hooks.example.com/", "event_types": ["delivery.sent"]}, "url", True),
        ({"url": "https://8.8.8.8/hooks", "event_types": ["delivery.sending"]}, "event_types.0", True),
        ({"url": "https://8.8.8.8/hooks", "event_types": []}, "event_types", True),
        ({"url": "https://8.8.8.8/hooks", "event_types": ["delivery.sent"], "secret": "x"}, "secret", True),
    ],
)
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
    admin: httpx.Client, app: App, body: dict[str, Any], field: str, allow_private: bool
) -> None:
    app.settings.webhooks_allow_private = allow_private
    answer = admin.post(PATH, json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert (
        problem["errors"][0]["loc"][-len(field.split(".")) :] == field.split(".")
        or problem["errors"][0].get("field") == field
    ), problem
    assert "\n" not in problem["detail"] and "Traceback" not in answer.text
    assert endpoint_count(app) == 0


def test_events_attempts_and_redelivery_through_the_api(
    admin: httpx.Client, app: App, receiver: Receiver
) -> None:
    created = admin.post(PATH, json={"url": receiver.url, "event_types": ["delivery.sent"]}).json()
    receiver.secrets.append(created["secret"])
    send_notifications(app)
    sender = build_webhook_sender(app)
    try:
        assert sender.drain() == 1
        endpoint = f"{PATH}/{created['id']}"
        [event] = admin.get(f"{endpoint}/messages").json()
        assert (event["status"], event["attempts"], event["last_status_code"]) == ("delivered", 1, 204)
        [attempt] = admin.get(f"{endpoint}/attempts").json()
        assert attempt["succeeded"] and attempt["status_code"] == 204 and attempt["latency_ms"] >= 0
        detail = admin.get(f"{endpoint}/messages/{event['id']}").json()
        assert detail["payload"].startswith('{"type":"delivery.sent","version":1,')
        again = admin.post(f"{endpoint}/messages/{event['id']}/redeliver")
        assert again.status_code == 202 and again.json()["status"] == "pending"
        assert sender.drain() == 1
    finally:
        sender.close()
    assert [r.webhook_id for r in receiver.received] == [event["msg_id"]] * 2, "the same webhook-id"
    assert receiver.rejected == []
    assert admin.post(f"{PATH}/{created['id'] + 1}/messages/{event['id']}/redeliver").status_code == 404
    admin.patch(f"{PATH}/{created['id']}", json={"enabled": False})
    refused = admin.post(f"{PATH}/{created['id']}/messages/{event['id']}/redeliver")
    assert refused.status_code == 409 and "enable it first" in refused.json()["detail"]


def test_an_unknown_endpoint_is_a_404(admin: httpx.Client) -> None:
    for answer in (
        admin.get(f"{PATH}/999"),
        admin.patch(f"{PATH}/999", json={"enabled": True}),
        admin.delete(f"{PATH}/999"),
        admin.post(f"{PATH}/999/rotate-secret"),
        admin.get(f"{PATH}/999/messages"),
    ):
        assert answer.status_code == 404, answer.text
