"""``/v1/recipients/{recipient_id}``: a recipient, read, created, changed or erased.

Bodies are import lines (``planner import``'s format, without ``type``), parsed by the importer's
own code, so a body the API accepts is a line ``planner import`` accepts and the other way round.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter, Response

from planner.api.dependencies import AppDep, Reader, Writer, audit
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import Changes, Document, RecipientId
from planner.commands import recipients

router = APIRouter(
    prefix="/v1",
    tags=["recipients"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)


@router.get("/recipients/{recipient_id}")
def get_recipient(app: AppDep, recipient_id: RecipientId, who: Reader) -> dict[str, Any]:
    """The recipient, its subscriptions and preferences, and its next 5 sends (local time, UTC,
    and the DST or quiet-hours rule applied, as `planner simulate` shows them). Scope: read."""
    return recipients.view(app, recipient_id, app.clock())


@router.put("/recipients/{recipient_id}", responses={201: {"description": "Created."}})
def put_recipient(
    app: AppDep, recipient_id: RecipientId, body: Document, response: Response, who: Writer
) -> dict[str, Any]:
    """Create or replace the recipient (idempotent). Scope: write."""
    created, result = recipients.put_recipient(app, recipient_id, body, app.clock())
    response.status_code = 201 if created else 200
    audit(app, who, "recipient_created" if created else "recipient_replaced", f"recipient:{recipient_id}")
    return result


@router.patch("/recipients/{recipient_id}")
def patch_recipient(app: AppDep, recipient_id: RecipientId, body: Changes, who: Writer) -> dict[str, Any]:
    """Change some fields of the recipient. Scope: write."""
    result = recipients.patch_recipient(app, recipient_id, body, app.clock())
    audit(app, who, "recipient_patched", f"recipient:{recipient_id}", {"fields": sorted(body)})
    return result


@router.delete("/recipients/{recipient_id}")
def delete_recipient(app: AppDep, recipient_id: RecipientId, who: Writer) -> dict[str, Any]:
    """Erase the recipient: personal data removed, history anonymised, pending deliveries
    cancelled with reason `recipient_deleted`. Scope: write."""
    result = recipients.erase(app, recipient_id, app.clock())
    cancelled = {"cancelled": result["deliveries_cancelled"]}
    audit(app, who, "recipient_erased", f"recipient:{recipient_id}", cancelled)
    return result
