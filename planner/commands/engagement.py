"""Engagement from outside (an open, a click, a reply: a provider webhook or an operator), for
engagement backoff."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.clock import ensure_utc
from planner.core import validation
from planner.errors import NotFound
from planner.store.engagement_writes import record_engagement as record_engagement_event
from planner.store.recipients import recipient_id_of

log = structlog.get_logger("planner.ops")


def record_engagement(
    app: App, recipient: str, event: str, at: datetime, now: datetime, kind: str | None = None
) -> dict[str, Any]:
    """Store an open/click/reply (from a provider webhook or an operator) for engagement backoff."""
    validation.external_id(recipient, "recipient_id")
    verb = validation.engagement_event(event, "event")
    at = ensure_utc(at, "at")
    if kind is not None:
        validation.kind(kind, "kind")
    with app.sessions() as session, session.begin():
        recipient_id = recipient_id_of(session, recipient)
        if recipient_id is None:
            raise NotFound("recipient", recipient)
        row = {
            "recipient_id": recipient_id,
            "kind": kind,
            "event": verb.value,
            "occurred_at": at,
            "created_at": now,
        }
        # A repeated webhook is the same event (the natural key): the first one's id is returned.
        event_id = record_engagement_event(session, row)
    log.info("engagement recorded", recipient=recipient, kind=kind, engagement=verb.value, outcome="recorded")
    return {
        "id": event_id,
        "recipient_id": recipient,
        "event": verb.value,
        "kind": kind,
        "at": at.isoformat(),
    }
