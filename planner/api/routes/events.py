"""``/v1/events``: something that happened for a recipient, for the next digest."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter, Response

from planner.api.dependencies import AppDep, Writer, audit
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EventRequest
from planner.commands import events

router = APIRouter(
    prefix="/v1",
    tags=["recipients", "digests"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)


@router.post("/events", status_code=201, responses={200: {"description": "Repeated."}})
def post_event(app: AppDep, body: EventRequest, response: Response, who: Writer) -> dict[str, Any]:
    """Record an event for the recipient's next digest of `kind`; a repeated `idempotency_key`
    answers 200 with the first event and records nothing. Scope: write."""
    created, result = events.record_event(
        app,
        body.recipient_id,
        body.kind,
        body.data,
        app.clock(),
        occurred_at=body.occurred_at,
        idempotency_key=body.idempotency_key,
    )
    if not created:
        response.status_code = 200
    else:
        audit(app, who, "event_recorded", f"recipient:{body.recipient_id}/{body.kind}")
    return result
