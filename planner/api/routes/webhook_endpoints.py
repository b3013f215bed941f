"""``/v1/webhook-endpoints``: the URLs the service posts its events to (outgoing webhooks, signed
per the Standard Webhooks specification), their events, the attempts, and redelivery.

Reading needs the ``read`` scope; registering, changing, removing, rotating a secret and
redelivering need ``admin`` (an endpoint receives recipients' data). The secret is in the answer to
the registration and to a rotation only.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from planner.api.dependencies import Admin, AppDep, Reader
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.clock import parse_duration
from planner.commands import webhooks
from planner.core import validation
from planner.core.webhook_events import EVENT_TYPES

router = APIRouter(
    prefix="/v1/webhook-endpoints",
    tags=["webhook endpoints"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)

EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
EndpointId = Annotated[int, Path(ge=1, le=validation.ID_MAX, description="The endpoint's id.")]
MessageId = Annotated[int, Path(ge=1, le=validation.ID_MAX, description="The event's id (per endpoint).")]
Limit = Annotated[int, Query(ge=1, le=500)]
_URL_TEXT = "https:// (http:// and private addresses only with PLANNER_WEBHOOKS_ALLOW_PRIVATE)."


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description=_URL_TEXT)
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES))
    description: str | None = Field(None, max_length=500)
    enabled: bool = True


class EndpointChanges(BaseModel):
    """The fields to change; the others stay. ``description: null`` clears it."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=2000, description=_URL_TEXT)
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=len(EVENT_TYPES))
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = None


class Rotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap: str | None = Field(
        None,
        max_length=40,
        description="How long the old secret keeps signing too, e.g. '24h' or '0s' (default "
        "PLANNER_WEBHOOKS_SECRET_OVERLAP).",
    )


@router.post("", status_code=201, responses=responses(422))
def register(app: AppDep, body: EndpointCreate, who: Admin) -> dict[str, Any]:
    """Register an endpoint. The answer carries its `secret` (`whsec_...`), shown this once: the
    receiver verifies each request's `webhook-signature` with it. Scope: admin."""
    created, secret = webhooks.register(
        app, body.url, body.event_types, body.description, body.enabled, now=app.clock(), actor=who.name
    )
    return created | {"secret": secret}


@router.get("")
def list_endpoints(app: AppDep, who: Reader) -> list[dict[str, Any]]:
    """Every endpoint, with its events waiting, delivered and failed. Scope: read."""
    return webhooks.list_endpoints(app)


@router.get("/{endpoint_id}")
def show(app: AppDep, endpoint_id: EndpointId, who: Reader) -> dict[str, Any]:
    """One endpoint, its event counts and its latest events. Scope: read."""
    return webhooks.show(app, endpoint_id)


@router.patch("/{endpoint_id}", responses=responses(422))
def update(app: AppDep, endpoint_id: EndpointId, body: EndpointChanges, who: Admin) -> dict[str, Any]:
    """Change the URL, the event types, the description, or enable or disable it (enabling gives a
    disabled endpoint its waiting events and a fresh failure allowance). Scope: admin."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return webhooks.update(app, endpoint_id, changes, now=app.clock(), actor=who.name)


@router.delete("/{endpoint_id}")
def remove(app: AppDep, endpoint_id: EndpointId, who: Admin) -> dict[str, Any]:
    """Remove the endpoint and its events (the answer counts those still waiting). Scope: admin."""
    return webhooks.remove(app, endpoint_id, now=app.clock(), actor=who.name)


@router.post("/{endpoint_id}/rotate-secret", responses=responses(422))
def rotate_secret(
    app: AppDep, endpoint_id: EndpointId, who: Admin, body: Rotation | None = None
) -> dict[str, Any]:
    """A new secret, in the answer only; the old one also signs until `previous_secret_until`, so
    the receiver can switch without refusing a request. Scope: admin."""
    overlap = None
    if body is not None and body.overlap is not None:
        overlap = parse_duration(body.overlap, "overlap", allow_zero=True)
    rotated, secret = webhooks.rotate_secret(app, endpoint_id, overlap, now=app.clock(), actor=who.name)
    return rotated | {"secret": secret}


@router.get("/{endpoint_id}/messages")
def messages(
    app: AppDep,
    endpoint_id: EndpointId,
    who: Reader,
    status: Literal["pending", "sending", "delivered", "failed"] | None = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    """The endpoint's events, newest first: status, attempts, the last answer. Scope: read."""
    return webhooks.messages(app, endpoint_id, status, limit)


@router.get("/{endpoint_id}/messages/{message_id}")
def message(app: AppDep, endpoint_id: EndpointId, message_id: MessageId, who: Reader) -> dict[str, Any]:
    """One event with its payload (the body as sent) and its attempts. Scope: read."""
    found = webhooks.message(app, message_id, endpoint_id)
    attempts = webhooks.attempts(app, endpoint_id, message_id)
    return found | {"attempts": attempts}


@router.get("/{endpoint_id}/attempts")
def attempts(
    app: AppDep,
    endpoint_id: EndpointId,
    who: Reader,
    message: Annotated[int | None, Query(ge=1, le=validation.ID_MAX)] = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    """The latest attempts (status, latency, response code, body excerpt), of the endpoint or of
    one of its events. Scope: read."""
    return webhooks.attempts(app, endpoint_id, message, limit)


@router.post("/{endpoint_id}/messages/{message_id}/redeliver", responses=responses(409))
def redeliver(
    app: AppDep, endpoint_id: EndpointId, message_id: MessageId, who: Admin, response: Response
) -> dict[str, Any]:
    """Send the event again now, under the same `webhook-id`, with a fresh set of attempts (409
    while it is being sent or while the endpoint is disabled). Scope: admin."""
    response.status_code = 202
    return webhooks.redeliver(app, message_id, now=app.clock(), actor=who.name, endpoint=endpoint_id)
