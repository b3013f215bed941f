"""Reading the dashboard's query strings and form fields: each bad value is an InvalidInput naming
the field, which the page shows as a 400 (never FastAPI's JSON)."""

from __future__ import annotations

from datetime import date
from typing import Any

from planner.clock import parse_instant
from planner.core import validation
from planner.core.recipient_search import RecipientSearch
from planner.core.status import Channel, DeliveryStatus
from planner.errors import InvalidInput
from planner.store.queries import DeliveryFilter


def whole_number(value: str | None, field: str, low: int = 1, high: int = validation.ID_MAX) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise InvalidInput(field, value, f"a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise InvalidInput(field, value, f"a whole number from {low} to {high}")
    return number


def optional_date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, value, "a date YYYY-MM-DD") from None


def choice(value: str | None, field: str, allowed: list[str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(field, value, f"one of {', '.join(allowed)}")
    return value


#: The deliveries page's filter fields (kept in its page links and its "requeue all").
FILTER_FIELDS = ("status", "recipient", "kind", "channel", "since")


def delivery_filter(params: Any) -> DeliveryFilter:
    """The deliveries page's filter from its query string."""
    recipient, kind, since = params.get("recipient"), params.get("kind"), params.get("since")
    return DeliveryFilter(
        status=choice(params.get("status"), "status", list(DeliveryStatus)),
        recipient=validation.external_id(recipient, "recipient") if recipient else None,
        kind=validation.kind(kind, "kind") if kind else None,
        channel=choice(params.get("channel"), "channel", list(Channel)),
        since=parse_instant(since, "since") if since else None,
    )


#: The recipients page's search fields (kept in its page links).
SEARCH_FIELDS = ("q", "zone", "opted_out", "invalid")


def recipient_search(params: Any) -> RecipientSearch:
    """The recipients page's search box and filters (each field empty when not used)."""
    return RecipientSearch.parse(**{name: params.get(name) or None for name in SEARCH_FIELDS})


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard (no open redirect to another site)."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"
