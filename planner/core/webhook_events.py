"""Outgoing webhook events, pure: their types, their payloads and which fact each one reports.

A payload is the JSON text sent as the body, built once when the event is emitted and stored with
it, so every attempt (and every redelivery) sends the same bytes under the same ``webhook-id``::

    {"type": "delivery.sent", "version": 1, "timestamp": "2026-03-02T12:30:00Z", "data": {...}}

``timestamp`` is when the service learnt the fact; ``version`` changes only when a type's ``data``
changes incompatibly (fields may be added within a version). The ``data`` of each type is described
by :data:`planner.core.webhook_schemas.EVENT_SCHEMAS`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from planner.core.status import DeliveryStatus

PAYLOAD_VERSION = 1

DELIVERY_SENT = "delivery.sent"
DELIVERY_DELIVERED = "delivery.delivered"
DELIVERY_UNDELIVERED = "delivery.undelivered"
DELIVERY_FAILED = "delivery.failed"
DELIVERY_DEAD = "delivery.dead"
DELIVERY_SKIPPED = "delivery.skipped"
DELIVERY_SUPPRESSED = "delivery.suppressed"
RECIPIENT_UNSUBSCRIBED = "recipient.unsubscribed"
RECIPIENT_OPTED_OUT = "recipient.opted_out"
RECIPIENT_OPTED_IN = "recipient.opted_in"
RECIPIENT_COMPLAINED = "recipient.complained"
RECIPIENT_ADDRESS_INVALID = "recipient.address_invalid"

#: Every event type an endpoint may ask for, in the order the docs list them.
EVENT_TYPES = (
    DELIVERY_SENT,
    DELIVERY_DELIVERED,
    DELIVERY_UNDELIVERED,
    DELIVERY_FAILED,
    DELIVERY_DEAD,
    DELIVERY_SKIPPED,
    DELIVERY_SUPPRESSED,
    RECIPIENT_UNSUBSCRIBED,
    RECIPIENT_OPTED_OUT,
    RECIPIENT_OPTED_IN,
    RECIPIENT_COMPLAINED,
    RECIPIENT_ADDRESS_INVALID,
)

#: What the provider reported after accepting a message, as an event (``deferred`` is progress:
#: the provider is still trying, and says so again when it settles).
_PROVIDER_EVENTS = {
    "delivered": DELIVERY_DELIVERED,
    "undelivered": DELIVERY_UNDELIVERED,
    "failed": DELIVERY_UNDELIVERED,
    "bounced": DELIVERY_UNDELIVERED,
}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event, ready to be written to the outbox: ``msg_id`` is its ``webhook-id`` (the same for
    every endpoint that gets it, and on every attempt), ``payload`` the exact body."""

    msg_id: str
    type: str
    at: datetime
    payload: str


#: How an erased recipient's row is named (planner.store.recipients.erase_recipient): never sent.
_ERASED = "#erased-"


def public_recipient_id(external_id: str | None) -> str | None:
    """The recipient id an event carries: the client's own id, or None once the recipient was erased."""
    return None if external_id is None or external_id.startswith(_ERASED) else external_id


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def timestamp_text(at: datetime) -> str:
    """An instant as RFC 3339 in UTC with a ``Z``: what every payload's instants look like."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_event(event_type: str, at: datetime, data: dict[str, Any]) -> WebhookEvent:
    assert event_type in EVENT_TYPES, event_type
    body = {"type": event_type, "version": PAYLOAD_VERSION, "timestamp": timestamp_text(at), "data": data}
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return WebhookEvent(new_message_id(), event_type, at, payload)


def outcome_event_type(status: str, reason: str | None) -> str | None:
    """The event a delivery's final status reports: a permanent refusal is ``delivery.failed``,
    any other end without a send (attempts spent, lease lost on the last one, an unknown outcome
    twice) ``delivery.dead``; None for a status no event reports (cancelled, missed)."""
    if status == DeliveryStatus.sent:
        return DELIVERY_SENT
    if status == DeliveryStatus.dead:
        return DELIVERY_FAILED if reason == "permanent_failure" else DELIVERY_DEAD
    if status == DeliveryStatus.skipped:
        return DELIVERY_SKIPPED
    if status == DeliveryStatus.suppressed:
        return DELIVERY_SUPPRESSED
    return None


def provider_event_type(provider_status: str) -> str | None:
    return _PROVIDER_EVENTS.get(provider_status)


@dataclass(frozen=True, slots=True)
class DeliveryFacts:
    """What every ``delivery.*`` event says of its delivery."""

    delivery_id: int
    recipient_id: str | None
    kind: str
    channel: str
    dedup_key: str
    scheduled_at: datetime

    def data(self, status: str, reason: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "recipient_id": self.recipient_id,
            "kind": self.kind,
            "channel": self.channel,
            "dedup_key": self.dedup_key,
            "scheduled_at": timestamp_text(self.scheduled_at),
            "status": status,
            "reason": reason,
            **extra,
        }


def delivery_outcome_event(
    facts: DeliveryFacts,
    status: str,
    reason: str | None,
    at: datetime,
    *,
    attempts: int | None = None,
    provider_message_id: str | None = None,
    error: str | None = None,
) -> WebhookEvent | None:
    """The event of a delivery's final status (None when no event reports it)."""
    event_type = outcome_event_type(status, reason)
    if event_type is None:
        return None
    extra: dict[str, Any] = {"attempts": attempts}
    if event_type == DELIVERY_SENT:
        extra["provider_message_id"] = provider_message_id
    if event_type in (DELIVERY_FAILED, DELIVERY_DEAD):
        extra["error"] = error[:500] if error else None
    return make_event(event_type, at, facts.data(status, reason, **extra))


def recipient_event(
    event_type: str, at: datetime, recipient_id: str | None, channel: str, **extra: Any
) -> WebhookEvent:
    """A ``recipient.*`` event: ``source`` says how the service learnt it (see the docs note)."""
    assert event_type.startswith("recipient."), event_type
    return make_event(event_type, at, {"recipient_id": recipient_id, "channel": channel, **extra})
