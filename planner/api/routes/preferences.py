"""``/v1/recipients/{recipient_id}/preferences/...``: opt a recipient out of a channel or a kind."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter

from planner.api.dependencies import AppDep, Writer, audit
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import ChannelName, Kind, Preference, RecipientId
from planner.commands import recipients

router = APIRouter(
    prefix="/v1",
    tags=["recipients", "preferences"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)


@router.put("/recipients/{recipient_id}/preferences/{channel}")
def put_channel_preference(
    app: AppDep, recipient_id: RecipientId, channel: ChannelName, body: Preference, who: Writer
) -> dict[str, Any]:
    """Opt the recipient out of (or back into) a whole channel. Scope: write."""
    result = recipients.set_preference(app, recipient_id, channel, None, body.opted_out, app.clock())
    audit(app, who, "preference_set", f"recipient:{recipient_id}/{channel}", {"opted_out": body.opted_out})
    return result


@router.put("/recipients/{recipient_id}/preferences/{channel}/{kind}")
def put_kind_preference(
    app: AppDep, recipient_id: RecipientId, channel: ChannelName, kind: Kind, body: Preference, who: Writer
) -> dict[str, Any]:
    """Opt the recipient out of (or back into) one kind on a channel; a critical kind
    (PLANNER_CRITICAL_KINDS) cannot be opted out of (422). Scope: write."""
    result = recipients.set_preference(app, recipient_id, channel, kind, body.opted_out, app.clock())
    target = f"recipient:{recipient_id}/{kind}/{channel}"
    audit(app, who, "preference_set", target, {"opted_out": body.opted_out})
    return result
