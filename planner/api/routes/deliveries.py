"""``/v1/deliveries``: list and show deliveries; retry or cancel one (also under the deprecated
``/deliveries``: :mod:`planner.api.deprecation`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from planner.api.dependencies import Admin, AppDep, audit, require_read
from planner.api.deprecation import legacy_router
from planner.api.paging import next_link
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EXTERNAL_ID, KIND, ChannelName, Instant, RowId
from planner.commands import delivery_actions
from planner.core.paging import MAX_LIMIT, check_limit, cursor_after, decode_cursor
from planner.core.status import DeliveryStatus
from planner.store.queries import DeliveryFilter, get_delivery, list_deliveries

router = APIRouter(prefix="/v1", tags=["deliveries"], responses=COMMON_RESPONSES, route_class=ApiRoute)
legacy = legacy_router("deliveries")

RecipientFilter = Annotated[str | None, Query(pattern=EXTERNAL_ID)]
KindFilter = Annotated[str | None, Query(pattern=KIND)]
Limit = Annotated[int, Query(description=f"1 to {MAX_LIMIT} per page.")]
After = Annotated[
    str | None, Query(max_length=200, description="The cursor of the previous page (its Link header).")
]


@router.get("/deliveries", dependencies=[Depends(require_read)])
def deliveries(
    app: AppDep,
    request: Request,
    response: Response,
    status: DeliveryStatus | None = None,
    recipient_id: RecipientFilter = None,
    kind: KindFilter = None,
    channel: ChannelName | None = None,
    since: Instant | None = None,
    after: After = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """Deliveries in scheduled order (scheduled time, then id), a page at a time, filtered by status,
    recipient_id, kind, channel, since: when there are more, the `Link` header (rel="next") gives the
    next page's URL, with its cursor in `after`."""
    flt = DeliveryFilter(
        status=status.value if status else None,
        recipient=recipient_id,
        kind=kind,
        channel=channel,
        since=since,
        limit=check_limit(limit) + 1,  # one more: whether a next page exists, without counting
        after=decode_cursor(after) if after is not None else None,
    )
    with app.sessions() as session:
        rows = list_deliveries(session, flt)
    if len(rows) > limit:
        rows = rows[:limit]
        response.headers["Link"] = next_link(request, cursor_after(rows[-1]))
    return rows


@legacy.get("/deliveries", dependencies=[Depends(require_read)])
def deliveries_by_recipient(
    app: AppDep,
    request: Request,
    response: Response,
    status: DeliveryStatus | None = None,
    recipient: RecipientFilter = None,
    kind: KindFilter = None,
    channel: ChannelName | None = None,
    since: Instant | None = None,
    after: After = None,
    limit: Limit = 100,
) -> list[dict[str, Any]]:
    """Deprecated: ``GET /v1/deliveries``, whose filter is ``recipient_id``."""
    return deliveries(app, request, response, status, recipient, kind, channel, since, after, limit)


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
