"""``/v1/notify`` and ``/v1/engagement``: an ad-hoc notification, and what the recipient did with one
(also under the deprecated ``/notify`` and ``/engagement``: :mod:`planner.api.deprecation`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter, Response

from planner.api.dependencies import AppDep, Writer, audit
from planner.api.deprecation import legacy_router
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EngagementRequest, NotifyRequest
from planner.commands.engagement import record_engagement
from planner.commands.notify import notify

router = APIRouter(prefix="/v1", tags=["notifications"], responses=COMMON_RESPONSES, route_class=ApiRoute)
legacy = legacy_router("notifications")

NOTIFY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "A repeated dedup key: the first delivery, not sent again."},
    202: {"description": "Saved but Redis is unavailable: the reconcile enqueues it."},
    **responses(404, 409),
}


@router.post("/notify", status_code=201, responses=NOTIFY_RESPONSES)
@legacy.post("/notify", status_code=201, responses=NOTIFY_RESPONSES)
def notify_endpoint(app: AppDep, body: NotifyRequest, response: Response, who: Writer) -> dict[str, Any]:
    """An ad-hoc notification through the same rules; a repeated dedup key returns the first (200).

    Scope: write."""
    result = notify(
        app,
        body.recipient_id,
        body.kind,
        body.channel,
        now=app.clock(),
        dedup_key=body.dedup_key,
        data=body.data,
        priority=body.priority,
        at=body.at,
        actor=who.name,
        fallback=body.fallback,
    )
    if result.created:
        audit(app, who, "notified", f"delivery:{result.delivery.get('id')}")
    if not result.created:
        response.status_code = 200
    elif result.outcome == "saved":
        response.status_code = 202
    return result.as_dict()


@router.post("/engagement", status_code=201, responses=responses(404))
@legacy.post("/engagement", status_code=201, responses=responses(404))
def engagement(app: AppDep, body: EngagementRequest, who: Writer) -> dict[str, Any]:
    """Record an open, click or reply (provider webhooks). Scope: write."""
    result = record_engagement(app, body.recipient_id, body.event.value, body.at, app.clock(), kind=body.kind)
    audit(app, who, "engagement_recorded", f"recipient:{body.recipient_id}", {"event": body.event.value})
    return result
