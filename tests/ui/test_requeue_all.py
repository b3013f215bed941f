"""Requeue all the dead deliveries a filter matches, from the deliveries page, in Chromium."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from adapters import Message, PermanentError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.commands.notify import notify
from planner.store.audit import audit_entries
from tests.ui.conftest import NOW, follow

ERROR = "554 5.7.1 rejected by policy"


def _dead_reminders(app: App) -> list[int]:
    """Three dead reminders of their own (the other tests' dead letters are daily briefs)."""
    def reject(_message: Message) -> None:
        raise PermanentError(ERROR)

    adapter = CaptureAdapter(fail_with=reject)
    ids = []
    for n in range(3):
        result = notify(app, f"u-{40 + n}", "reminder", "email", now=NOW)
        sender = build_deliverer(app, adapters={"email": adapter, "sms": adapter})
        sender.deliver_batch([result.delivery["id"]])
        ids.append(int(result.delivery["id"]))
    return ids


def _statuses(app: App, ids: list[int]) -> set[str]:
    with app.sessions() as session:
        rows = session.execute(text("SELECT status FROM delivery WHERE id = ANY(:ids)"), {"ids": ids})
        return {str(status) for (status,) in rows}


def test_requeue_all_dead_reminders(page: Any, ui_app: App) -> None:
    ids = _dead_reminders(ui_app)
    assert _statuses(ui_app, ids) == {"dead"}
    page.goto("/ui/deliveries?status=dead&kind=reminder")
    follow(page, "#requeue-all")
    assert page.url.endswith("/ui/requeue?status=dead&kind=reminder")
    with ui_app.sessions() as session:
        matching = session.scalar(
            text("SELECT count(*) FROM delivery WHERE status = 'dead' AND kind = 'reminder'")
        )
    assert matching >= 3
    counted = page.locator("#requeue-count").inner_text()
    assert counted.startswith(f"{matching} deliveries match: dead, kind reminder"), counted

    follow(page, "#requeue")
    assert page.locator(".flash").inner_text() == f"{matching} queued again"
    assert "status=dead" in page.url and "kind=reminder" in page.url
    assert page.locator("#deliveries-table tbody tr").inner_text() == "No delivery matches."
    assert _statuses(ui_app, ids) == {"queued"}
    with ui_app.sessions() as session:
        entry = audit_entries(session, limit=1)[0]
    assert (entry["actor"], entry["action"]) == ("api-token", "deliveries_requeued")
    assert entry["detail"] == {"filter": {"status": "dead", "kind": "reminder"}, "requeued": matching}


def test_requeue_all_needs_the_csrf_token_and_a_retryable_status(page: Any, ui_app: App) -> None:
    ids = _dead_reminders(ui_app)
    page.goto("/ui/requeue?status=dead&kind=reminder")
    page.evaluate("document.querySelector('#requeue').form.querySelector('[name=csrf]').remove()")
    follow(page, "#requeue")
    assert page.locator("h1").inner_text() == "403 · Refused"
    assert _statuses(ui_app, ids) == {"dead"}
    response = page.goto("/ui/requeue?status=sent")
    assert response.status == 400
    assert page.locator("#error-message").inner_text().startswith("status: 'sent' is invalid")
    page.goto("/ui/deliveries?status=sent")
    assert page.locator("#requeue-all").count() == 0
