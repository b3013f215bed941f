"""What the webhook tests share: endpoints registered straight in the store, the outbox as rows."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import jsonschema_rs
from sqlalchemy import select

from planner.app import App
from planner.core.webhook_policy import new_secret
from planner.core.webhook_schemas import EVENT_SCHEMAS
from planner.store.tables import WEBHOOK_MESSAGES
from planner.store.webhook_endpoints import Endpoint, add_endpoint


def register(
    app: App, url: str, event_types: list[str], *, enabled: bool = True, now: datetime | None = None
) -> tuple[Endpoint, str]:
    """An endpoint and its secret, written as the commands do (without their URL checks)."""
    secret = new_secret()
    with app.sessions() as session, session.begin():
        endpoint = add_endpoint(session, url, event_types, None, enabled, secret, now or app.clock())
    return endpoint, secret


def outbox(app: App) -> list[dict[str, Any]]:
    """Every outbox row, oldest first, with its payload parsed and checked against its type's
    published JSON Schema (by jsonschema_rs, a validator of its own)."""
    with app.sessions() as session:
        rows = session.execute(select(WEBHOOK_MESSAGES).order_by(WEBHOOK_MESSAGES.c.id))
        found = [dict(row._mapping) | {"body": json.loads(row.payload)} for row in rows]
    for row in found:
        jsonschema_rs.validate(EVENT_SCHEMAS[row["event_type"]], row["body"])
    return found


def types_of(app: App) -> list[str]:
    return [row["event_type"] for row in outbox(app)]


def send_notifications(app: App, count: int = 1, first: int = 0) -> list[int]:
    """``count`` notifications sent now through a capturing adapter, to recipients ``u<first>``...
    (so ``count`` ``delivery.sent`` events when an endpoint wants them); their delivery ids."""
    from adapters.capture import CaptureAdapter
    from planner.app import build_deliverer
    from planner.commands.importer import import_lines
    from planner.commands.notify import notify
    from tests.helpers import recipient_line

    names = [f"u{i}" for i in range(first, first + count)]
    import_lines(app.sessions, [recipient_line(name, "UTC", []) for name in names], app.clock())
    ids = [int(notify(app, name, "reminder", "email", now=app.clock()).delivery["id"]) for name in names]
    capture = CaptureAdapter()
    report = build_deliverer(app, adapters={"email": capture, "sms": capture}).deliver_batch(ids)
    assert report.sent == count, report
    return ids
