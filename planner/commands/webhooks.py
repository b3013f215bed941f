"""Outgoing webhook endpoints: register, list, show, change, remove, rotate the secret; redeliver an
event; the attempts; the retention of settled events.

Every input is checked before anything is written (the URL's shape, then that its host resolves to
public addresses unless PLANNER_WEBHOOKS_ALLOW_PRIVATE is set, the event types, the description),
and every change is recorded in the audit log with who made it. A secret is returned only by the
registration and by a rotation, never shown again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog

from planner.app import App
from planner.core import webhook_policy
from planner.core.validation import ID_MAX
from planner.delivery.webhook_http import check_reachable
from planner.errors import InvalidInput, NotFound
from planner.store import webhook_deliveries as deliveries
from planner.store import webhook_endpoints as endpoints
from planner.store.audit import record_audit
from planner.store.db import Session

log = structlog.get_logger("planner.webhooks")

#: What an endpoint's PATCH (or ``planner webhooks update``) may change.
CHANGEABLE = ("url", "event_types", "description", "enabled")
MAX_OVERLAP = timedelta(days=30)


def _checked_url(app: App, value: Any) -> str:
    allow = app.settings.webhooks_allow_private
    url = webhook_policy.endpoint_url(value, allow)
    check_reachable(url, allow)
    return url.url


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("enabled", value, "true or false")
    return value


def endpoint_id(value: Any, field: str = "id") -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= ID_MAX:
        raise InvalidInput(field, value, "an endpoint id (a whole number from 1)")
    return value


def register(
    app: App,
    url: Any,
    event_types: Any,
    description: Any = None,
    enabled: Any = True,
    *,
    now: datetime,
    actor: str = "cli",
) -> tuple[dict[str, Any], str]:
    """A new endpoint and its secret (shown this once)."""
    types = webhook_policy.event_types(event_types)
    text = webhook_policy.description(description)
    on = _enabled(enabled)
    checked = _checked_url(app, url)
    secret = webhook_policy.new_secret()
    with app.sessions() as session, session.begin():
        created = endpoints.add_endpoint(session, checked, types, text, on, secret, now)
        detail = {"url": checked, "event_types": types}
        record_audit(session, now, actor, "webhook_endpoint_created", f"webhook:{created.id}", detail)
    log.info("webhook endpoint registered", endpoint_id=created.id, event_types=types, actor=actor)
    return created.as_dict(), secret


def list_endpoints(app: App) -> list[dict[str, Any]]:
    """Every endpoint with how many of its events wait, are delivered, or failed."""
    with app.sessions() as session:
        found = endpoints.all_endpoints(session)
        counts = deliveries.status_counts(session)
    return [e.as_dict() | {"events": _counts_of(e.id, counts)} for e in found]


def _counts_of(endpoint: int, counts: list[tuple[int, str, int]]) -> dict[str, int]:
    mine = {status: n for e, status, n in counts if e == endpoint}
    return {status: mine.get(status, 0) for status in deliveries.STATUSES}


def show(app: App, ident: Any, limit: int = 20) -> dict[str, Any]:
    """One endpoint, its event counts and its latest events."""
    number = endpoint_id(ident)
    with app.sessions() as session:
        found = endpoints.endpoint(session, number)
        counts = deliveries.status_counts(session)
        latest = deliveries.messages(session, number, limit=limit)
    return found.as_dict() | {"events": _counts_of(number, counts), "latest": latest}


def update(
    app: App, ident: Any, changes: dict[str, Any], *, now: datetime, actor: str = "cli"
) -> dict[str, Any]:
    """Change some of url, event_types, description, enabled (null clears the description)."""
    number = endpoint_id(ident)
    unknown = sorted(set(changes) - set(CHANGEABLE))
    if unknown:
        raise InvalidInput(unknown[0], changes[unknown[0]], f"only the fields {', '.join(CHANGEABLE)}")
    if not changes:
        raise InvalidInput("body", changes, f"at least one of {', '.join(CHANGEABLE)}")
    values: dict[str, Any] = {}
    if "event_types" in changes:
        values["event_types"] = webhook_policy.event_types(changes["event_types"])
    if "description" in changes:
        values["description"] = webhook_policy.description(changes["description"])
    if "enabled" in changes:
        values["enabled"] = _enabled(changes["enabled"])
    if "url" in changes:
        values["url"] = _checked_url(app, changes["url"])
    with app.sessions() as session, session.begin():
        changed = endpoints.change_endpoint(session, number, values, now)
        detail = {k: v for k, v in values.items() if k != "description"}
        record_audit(session, now, actor, "webhook_endpoint_changed", f"webhook:{number}", detail)
    return changed.as_dict()


def remove(app: App, ident: Any, *, now: datetime, actor: str = "cli") -> dict[str, Any]:
    """Remove an endpoint with its events (those still waiting are counted in the answer)."""
    number = endpoint_id(ident)
    with app.sessions() as session, session.begin():
        waiting = endpoints.remove_endpoint(session, number)
        record_audit(
            session, now, actor, "webhook_endpoint_removed", f"webhook:{number}", {"waiting": waiting}
        )
    return {"id": number, "removed": True, "events_dropped": waiting}


def rotate_secret(
    app: App, ident: Any, overlap: timedelta | None = None, *, now: datetime, actor: str = "cli"
) -> tuple[dict[str, Any], str]:
    """A new secret (shown this once); the old one keeps signing too for ``overlap`` (default
    PLANNER_WEBHOOKS_SECRET_OVERLAP), so receivers can switch without refusing a request."""
    number = endpoint_id(ident)
    span = app.settings.webhooks_secret_overlap if overlap is None else overlap
    if not timedelta(0) <= span <= MAX_OVERLAP:
        raise InvalidInput("overlap", str(span), "a duration from 0s to 30d")
    secret = webhook_policy.new_secret()
    with app.sessions() as session, session.begin():
        endpoints.rotate_secret(session, number, secret, now + span, now)
        record_audit(
            session, now, actor, "webhook_secret_rotated", f"webhook:{number}", {"overlap": str(span)}
        )
        rotated = endpoints.endpoint(session, number)
    return rotated.as_dict(), secret


def messages(app: App, ident: Any, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    number = endpoint_id(ident)
    if status is not None and status not in deliveries.STATUSES:
        raise InvalidInput("status", status, f"one of {', '.join(deliveries.STATUSES)}")
    with app.sessions() as session:
        endpoints.endpoint(session, number)  # 404 for an unknown endpoint, not an empty list
        return deliveries.messages(session, number, status, limit)


def attempts(
    app: App, ident: Any | None = None, message_id: Any | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest attempts of an endpoint, or of one of its events."""
    number = None if ident is None else endpoint_id(ident)
    message = None if message_id is None else endpoint_id(message_id, "message")
    with app.sessions() as session:
        if number is not None:
            endpoints.endpoint(session, number)
        if message is not None:
            _message_of(session, message, number)
        return deliveries.attempts(session, number, message, limit)


def _message_of(session: Session, message_id: int, endpoint: int | None) -> dict[str, Any]:
    """The event, which must be one of ``endpoint``'s when one is named (else it is not found)."""
    found = deliveries.message(session, message_id)
    if endpoint is not None and found["endpoint_id"] != endpoint:
        raise NotFound(f"webhook message of endpoint {endpoint}", message_id)
    return found


def message(app: App, message_id: Any, endpoint: Any | None = None) -> dict[str, Any]:
    """One event with its payload."""
    number = endpoint_id(message_id, "message")
    with app.sessions() as session:
        return _message_of(session, number, None if endpoint is None else endpoint_id(endpoint))


def redeliver(
    app: App, message_id: Any, *, now: datetime, actor: str = "cli", endpoint: Any | None = None
) -> dict[str, Any]:
    """Send an event again now (same ``webhook-id``, a fresh set of attempts)."""
    number = endpoint_id(message_id, "message")
    with app.sessions() as session, session.begin():
        _message_of(session, number, None if endpoint is None else endpoint_id(endpoint))
        result = deliveries.redeliver(session, number, now)
        record_audit(
            session,
            now,
            actor,
            "webhook_redelivered",
            f"webhook-message:{number}",
            {"webhook_id": result["msg_id"]},
        )
    log.info("webhook redelivery asked", message_id=number, webhook_id=result["msg_id"], actor=actor)
    return result


def drop_old_webhooks(app: App, now: datetime) -> int:
    """The maintenance pass's retention: delivered and failed events (and their attempts) settled
    longer than PLANNER_WEBHOOKS_RETENTION ago are forgotten, a bounded batch per pass."""
    with app.sessions() as session, session.begin():
        dropped = deliveries.drop_settled(session, now - app.settings.webhooks_retention)
    if dropped:
        log.info("settled webhook events forgotten past the retention", dropped=dropped)
    return dropped
