"""``/v1/deliveries``: list and show deliveries; retry or cancel one (also under the deprecated
``/deliveries``: :mod:`planner.api.deprecation`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from planner.api.dependencies import Admin, AppDep, audit, require_read
from planner.api.deprecation import legacy_router
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EXTERNAL_ID, KIND, ChannelName, Instant, RowId
from planner.commands import delivery_actions
from planner.core.status import DeliveryStatus
from planner.store.queries import DeliveryFilter, get_delivery, list_deliveries

router = APIRouter(prefix="/v1", tags=["deliveries"], responses=COMMON_RESPONSES, route_class=ApiRoute)
legacy = legacy_router("deliveries")

RecipientFilter = Annotated[str | None, Query(pattern=EXTERNAL_ID)]
KindFilter = Annotated[str | None, Query(pattern=KIND)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/deliveries", dependencies=[Depends(require_read)])
def deliveries(
    app: AppDep,
    status: DeliveryStatus | None = None,
    recipient_id: RecipientFilter = None,
    kind: KindFilter = None,
    channel: ChannelName | None = None,
    since: Instant | None = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """Deliveries in scheduled order, filtered by status, recipient_id, kind, channel, since."""
    flt = DeliveryFilter(
        status=status.value if status else None,
        recipient=recipient_id,
        kind=kind,
        channel=channel,
        since=since,
        limit=limit,
    )
    with app.sessions() as session:
        return list_deliveries(session, flt)


@legacy.get("/deliveries", dependencies=[Depends(require_read)])
def deliveries_by_recipient(
    app: AppDep,
    status: DeliveryStatus | None = None,
    recipient: RecipientFilter = None,
    kind: KindFilter = None,
    channel: ChannelName | None = None,
    since: Instant | None = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """Deprecated: ``GET /v1/deliveries``, whose filter is ``recipient_id``."""
    return deliveries(app, status, recipient, kind, channel, since, limit)


@router.get("/deliveries/{delivery_id}", responses=responses(404), dependencies=[Depends(require_read)])
@legacy.get("/deliveries/{delivery_id}", responses=responses(404), dependencies=[Depends(require_read)])
def delivery(app: AppDep, delivery_id: RowId) -> dict[str, Any]:
    """One delivery with its data, its full timeline and what was sent: ``message``, the kept copy
    (subject, bodies, headers, a digest's events), null before a final outcome or past its retention."""
    with app.sessions() as session:
        return get_delivery(session, delivery_id)


@router.post("/deliveries/{delivery_id}/retry", responses=responses(404, 409))
@legacy.post("/deliveries/{delivery_id}/retry", responses=responses(404, 409))
def retry(app: AppDep, delivery_id: RowId, who: Admin) -> dict[str, Any]:
    """Redrive a dead delivery (fresh attempts), or send a retrying one now. Scope: admin."""
    result = delivery_actions.retry(app, delivery_id, app.clock(), actor=who.name).as_dict()
    audit(app, who, "delivery_retried", f"delivery:{delivery_id}", {"requeued": result["requeued"]})
    return result


@router.post("/deliveries/{delivery_id}/cancel", responses=responses(404, 409))
@legacy.post("/deliveries/{delivery_id}/cancel", responses=responses(404, 409))
def cancel(app: AppDep, delivery_id: RowId, who: Admin) -> dict[str, Any]:
    """Cancel a pending delivery (409 once it is sending or final). Scope: admin."""
    result = delivery_actions.cancel(app, delivery_id, app.clock(), actor=who.name)
    audit(app, who, "delivery_cancelled", f"delivery:{delivery_id}")
    return result
