"""``/v1/recipients/{recipient_id}/subscriptions/{kind}/{channel}``: one subscription's schedule."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter

from planner.api.dependencies import AppDep, Writer, audit
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import ChannelName, Kind, RecipientId, SubscriptionBody, SubscriptionChanges
from planner.commands import recipients

router = APIRouter(
    prefix="/v1",
    tags=["recipients", "subscriptions"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)

PATH = "/recipients/{recipient_id}/subscriptions/{kind}/{channel}"


@router.put(PATH)
def put_subscription(
    app: AppDep,
    recipient_id: RecipientId,
    kind: Kind,
    channel: ChannelName,
    body: SubscriptionBody,
    who: Writer,
) -> dict[str, Any]:
    """Create or change a subscription; pending future deliveries of a changed schedule are
    cancelled and planned again, at once when the last run's window covers them. Scope: write."""
    result = recipients.put_subscription(app, recipient_id, kind, channel, body, app.clock())
    target = f"recipient:{recipient_id}/{kind}/{channel}"
    audit(app, who, "subscription_put", target, {"fields": sorted(body)})
    return result


@router.patch(PATH)
def patch_subscription(
    app: AppDep,
    recipient_id: RecipientId,
    kind: Kind,
    channel: ChannelName,
    body: SubscriptionChanges,
    who: Writer,
) -> dict[str, Any]:
    """Change some fields of an existing subscription, e.g. `{"snooze_until": "2026-12-24"}`
    (or null to end the snooze); the schedule-change rule of PUT applies. Scope: write."""
    result = recipients.patch_subscription(app, recipient_id, kind, channel, body, app.clock())
    target = f"recipient:{recipient_id}/{kind}/{channel}"
    audit(app, who, "subscription_patched", target, {"fields": sorted(body)})
    return result


@router.delete(PATH)
def delete_subscription(
    app: AppDep, recipient_id: RecipientId, kind: Kind, channel: ChannelName, who: Writer
) -> dict[str, Any]:
    """Stop a subscription; its pending future deliveries are cancelled. Scope: write."""
    result = recipients.delete_subscription(app, recipient_id, kind, channel, app.clock())
    audit(app, who, "subscription_deleted", f"recipient:{recipient_id}/{kind}/{channel}")
    return result
