"""The JSON Schema (draft 2020-12) of each outgoing webhook event's payload, version 1.

What receivers can rely on; docs/how-to/outgoing-webhooks.md prints them and the tests check every
payload a receiver gets against them. A later version may add fields to ``data``; removing or changing one
makes a new ``version``.
"""

from __future__ import annotations

from typing import Any

from planner.core.webhook_events import (
    DELIVERY_DEAD,
    DELIVERY_DELIVERED,
    DELIVERY_FAILED,
    DELIVERY_SENT,
    DELIVERY_SKIPPED,
    DELIVERY_SUPPRESSED,
    DELIVERY_UNDELIVERED,
    EVENT_TYPES,
    PAYLOAD_VERSION,
    RECIPIENT_ADDRESS_INVALID,
    RECIPIENT_COMPLAINED,
    RECIPIENT_OPTED_IN,
    RECIPIENT_OPTED_OUT,
    RECIPIENT_UNSUBSCRIBED,
)

_TEXT = {"type": "string"}
_TEXT_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_INSTANT = {"type": "string", "format": "date-time"}
_CHANNEL = {"enum": ["email", "sms"]}

#: What every ``delivery.*`` event's ``data`` holds; ``recipient_id`` is the external id (null once
#: the recipient was erased).
_DELIVERY = {
    "delivery_id": {"type": "integer"},
    "recipient_id": _TEXT_OR_NULL,
    "kind": _TEXT,
    "channel": _CHANNEL,
    "dedup_key": _TEXT,
    "scheduled_at": _INSTANT,
    "status": _TEXT,
    "reason": _TEXT_OR_NULL,
}
_OUTCOME = {**_DELIVERY, "attempts": _INT_OR_NULL}
_PROVIDER = {
    **_DELIVERY,
    "provider": _TEXT,
    "provider_status": {"enum": ["delivered", "undelivered", "failed", "bounced"]},
    "code": _TEXT_OR_NULL,
    "detail": _TEXT_OR_NULL,
}
_RECIPIENT = {"recipient_id": _TEXT_OR_NULL, "channel": _CHANNEL}


def _data(properties: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    props = {**properties, **{name: {"const": value} for name, value in fixed.items()}}
    return {"type": "object", "properties": props, "required": sorted(props)}


DATA_SCHEMAS: dict[str, dict[str, Any]] = {
    DELIVERY_SENT: _data({**_OUTCOME, "provider_message_id": _TEXT_OR_NULL}, status="sent"),
    DELIVERY_DELIVERED: _data(_PROVIDER),
    DELIVERY_UNDELIVERED: _data(_PROVIDER),
    DELIVERY_FAILED: _data({**_OUTCOME, "error": _TEXT_OR_NULL}, status="dead", reason="permanent_failure"),
    DELIVERY_DEAD: _data({**_OUTCOME, "error": _TEXT_OR_NULL}, status="dead"),
    DELIVERY_SKIPPED: _data(_OUTCOME, status="skipped"),
    DELIVERY_SUPPRESSED: _data(_OUTCOME, status="suppressed"),
    RECIPIENT_UNSUBSCRIBED: _data({**_RECIPIENT, "kind": _TEXT}, source="one_click"),
    RECIPIENT_OPTED_OUT: _data(
        {**_RECIPIENT, "kind": _TEXT_OR_NULL, "source": {"enum": ["sms_keyword", "provider", "preferences"]}}
    ),
    RECIPIENT_OPTED_IN: _data(
        {**_RECIPIENT, "kind": _TEXT_OR_NULL, "source": {"enum": ["sms_keyword", "preferences"]}}
    ),
    RECIPIENT_COMPLAINED: _data(
        {**_RECIPIENT, "kind": _TEXT, "delivery_id": {"type": "integer"}, "provider": _TEXT}
    ),
    RECIPIENT_ADDRESS_INVALID: _data(
        {
            **_RECIPIENT,
            "delivery_id": {"type": "integer"},
            "error": _TEXT,
            "source": {"enum": ["provider_report", "send"]},
        }
    ),
}


def event_schema(event_type: str) -> dict[str, Any]:
    """The whole payload's schema for one event type."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": event_type,
        "type": "object",
        "properties": {
            "type": {"const": event_type},
            "version": {"const": PAYLOAD_VERSION},
            "timestamp": _INSTANT,
            "data": DATA_SCHEMAS[event_type],
        },
        "required": ["type", "version", "timestamp", "data"],
    }


EVENT_SCHEMAS: dict[str, dict[str, Any]] = {t: event_schema(t) for t in EVENT_TYPES}
