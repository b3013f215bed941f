"""The dashboard's webhooks page in a real browser: endpoints and the notice of one the service
disabled, an endpoint's events and attempts, and a redelivery that reaches the receiver again under
the same webhook-id."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from planner.app import App, build_webhook_sender
from planner.commands import webhooks
from planner.store import webhook_endpoints
from tests.ui.conftest import NOW, follow
from tests.webhook_receiver import Receiver
from tests.webhook_support import outbox, send_notifications


@pytest.fixture(scope="module")
def hooked(ui_app: App) -> Iterator[tuple[App, Receiver, int, int]]:
    """A receiving endpoint that got one event, and one the service disabled for failing."""
    ui_app.settings.webhooks_allow_private = True
    receiver = Receiver().start()
    created, secret = webhooks.register(ui_app, receiver.url, ["delivery.sent"], now=NOW)
    receiver.secrets.append(secret)
    broken, _ = webhooks.register(ui_app, "http://127.0.0.1:9/gone", ["delivery.sent"], now=NOW)
    with ui_app.sessions() as session, session.begin():
        webhook_endpoints.record_result(session, broken["id"], False, NOW, timedelta(0))
    send_notifications(ui_app, 1, first=900)
    sender = build_webhook_sender(ui_app)
    sender.drain()
    sender.close()
    yield ui_app, receiver, created["id"], broken["id"]
    receiver.down()


def test_the_list_shows_each_endpoint_and_the_notice_of_the_disabled_one(
    page: Any, hooked: tuple[App, Receiver, int, int]
) -> None:
    _, receiver, good, broken = hooked
    page.goto("/ui/webhooks")
    rows = page.locator("#webhook-endpoints tbody tr").all_inner_texts()
    assert any(receiver.url in r and "enabled" in r for r in rows), rows
    assert any("127.0.0.1:9/gone" in r and "disabled: failing" in r for r in rows), rows
    notice = page.locator(".notice").inner_text()
    assert f"webhook endpoint {broken}" in notice and f"planner webhooks update {broken} --enable" in notice
    follow(page, f"a[href='/ui/webhooks/{good}']")
    assert page.locator("h1").inner_text() == f"Webhook endpoint {good}"


def test_events_attempts_and_redeliver(page: Any, hooked: tuple[App, Receiver, int, int]) -> None:
    app, receiver, good, _ = hooked
    [event] = [row for row in outbox(app) if row["endpoint_id"] == good]
    page.goto(f"/ui/webhooks/{good}")
    cells = page.locator("#webhook-events tbody tr").first.locator("td").all_inner_texts()
    assert cells[1] == event["msg_id"] and cells[3] == "delivered"
    attempt = page.locator("#webhook-attempts tbody tr").first.locator("td").all_inner_texts()
    assert attempt[3] == "ok" and attempt[4] == "204"
    page.click(f"#redeliver-{event['id']}")
    assert (
        page.locator(".flash").inner_text()
        == f"event {event['id']} ({event['msg_id']}) will be sent again now"
    )
    assert page.locator("#webhook-events tbody tr").first.locator("td").nth(3).inner_text() == "pending"
    sender = build_webhook_sender(app)
    sender.drain()
    sender.close()
    assert [r.webhook_id for r in receiver.received] == [event["msg_id"]] * 2 and receiver.rejected == []


def test_a_bad_endpoint_id_is_a_clear_4xx_page(page: Any) -> None:
    for path, status in (("/ui/webhooks/abc", 400), ("/ui/webhooks/9999", 404)):
        answer = page.goto(path)
        assert answer.status == status, path
        assert "Traceback" not in page.content()
