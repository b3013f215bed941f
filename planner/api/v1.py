"""The management API under ``/v1``: recipients and their subscriptions.

Bodies are import lines (``planner import``'s format, without ``type``), parsed by the importer's
own code, so a body the API accepts is a line ``planner import`` accepts and the other way round.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Response

from planner.api import EXTERNAL_ID, KIND, ChannelName, _audit, _responses, _scope_check
from planner.app import App
from planner.auth import Principal
from planner.operations import recipients

_EXAMPLE = {
    "timezone": "Europe/Paris",
    "email": "ann@example.com",
    "quiet_hours": {"email": {"start": "22:00", "end": "07:00"}},
    "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"}],
}

RecipientId = Annotated[str, Path(pattern=EXTERNAL_ID, description="The recipient's external id.")]
Kind = Annotated[str, Path(pattern=KIND, description="Notification kind.")]
Document = Annotated[
    dict[str, Any],
    Body(
        description="An import line without `type`: timezone, email, phone, quiet_hours, opt_out, "
        "subscriptions (the full desired state: subscriptions left out stop).",
        openapi_examples={"recipient": {"value": _EXAMPLE}},
    ),
]
Changes = Annotated[
    dict[str, Any],
    Body(
        description="Some of timezone, email, phone, quiet_hours, opt_out; the rest is kept.",
        openapi_examples={"zone": {"value": {"timezone": "America/New_York"}}},
    ),
]
SubscriptionBody = Annotated[
    dict[str, Any],
    Body(
        description="`at` (HH:MM local), `days` ('daily', 'weekdays', 'mon,thu' or a list), `active`.",
        openapi_examples={"weekly": {"value": {"at": "10:45", "days": "mon,thu"}}},
    ),
]


def v1_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["recipients"], responses=_responses(404))
    read = _scope_check(app, "read")
    write = _scope_check(app, "write")

    @router.get("/recipients/{recipient_id}")
    def get_recipient(recipient_id: RecipientId, who: Principal = Depends(read)) -> dict[str, Any]:
        """The recipient, its subscriptions and preferences, and its next 5 sends (local time, UTC,
        and the DST or quiet-hours rule applied, as `planner simulate` shows them). Scope: read."""
        return recipients.view(app, recipient_id, app.clock())

    @router.put("/recipients/{recipient_id}", responses={201: {"description": "Created."}})
    def put_recipient(
        recipient_id: RecipientId, body: Document, response: Response, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Create or replace the recipient (idempotent). Scope: write."""
        created, result = recipients.put_recipient(app, recipient_id, body, app.clock())
        response.status_code = 201 if created else 200
        _audit(
            app, who, "recipient_created" if created else "recipient_replaced", f"recipient:{recipient_id}"
        )
        return result

    @router.patch("/recipients/{recipient_id}")
    def patch_recipient(
        recipient_id: RecipientId, body: Changes, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Change some fields of the recipient. Scope: write."""
        result = recipients.patch_recipient(app, recipient_id, body, app.clock())
        _audit(app, who, "recipient_patched", f"recipient:{recipient_id}", {"fields": sorted(body)})
        return result

    @router.delete("/recipients/{recipient_id}")
    def delete_recipient(recipient_id: RecipientId, who: Principal = Depends(write)) -> dict[str, Any]:
        """Erase the recipient: personal data removed, history anonymised, pending deliveries
        cancelled with reason `recipient_deleted`. Scope: write."""
        result = recipients.erase(app, recipient_id, app.clock())
        _audit(
            app,
            who,
            "recipient_erased",
            f"recipient:{recipient_id}",
            {"cancelled": result["deliveries_cancelled"]},
        )
        return result

    @router.put("/recipients/{recipient_id}/subscriptions/{kind}/{channel}", tags=["subscriptions"])
    def put_subscription(
        recipient_id: RecipientId,
        kind: Kind,
        channel: ChannelName,
        body: SubscriptionBody,
        who: Principal = Depends(write),
    ) -> dict[str, Any]:
        """Create or change a subscription; pending future deliveries of a changed schedule are
        cancelled and planned again, at once when the last run's window covers them. Scope: write."""
        result = recipients.put_subscription(app, recipient_id, kind, channel, body, app.clock())
        _audit(
            app,
            who,
            "subscription_put",
            f"recipient:{recipient_id}/{kind}/{channel}",
            {"fields": sorted(body)},
        )
        return result

    @router.delete("/recipients/{recipient_id}/subscriptions/{kind}/{channel}", tags=["subscriptions"])
    def delete_subscription(
        recipient_id: RecipientId, kind: Kind, channel: ChannelName, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Stop a subscription; its pending future deliveries are cancelled. Scope: write."""
        result = recipients.delete_subscription(app, recipient_id, kind, channel, app.clock())
        _audit(app, who, "subscription_deleted", f"recipient:{recipient_id}/{kind}/{channel}")
        return result

    return router
