"""``/v1/explain/{recipient_id}``: why each subscription sends, or does not, on a local date (also
under the deprecated ``/explain/{recipient_id}``: :mod:`planner.api.deprecation`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from planner.api.dependencies import AppDep, require_read
from planner.api.deprecation import legacy_router
from planner.api.problems import COMMON_RESPONSES, responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EXTERNAL_ID, KIND, LocalDate

router = APIRouter(prefix="/v1", tags=["operations"], responses=COMMON_RESPONSES, route_class=ApiRoute)
legacy = legacy_router("operations")


@router.get("/explain/{recipient_id}", responses=responses(404), dependencies=[Depends(require_read)])
@legacy.get("/explain/{recipient_id}", responses=responses(404), dependencies=[Depends(require_read)])
def explain(
    app: AppDep,
    recipient_id: Annotated[str, Path(pattern=EXTERNAL_ID)],
    kind: Annotated[str | None, Query(pattern=KIND)] = None,
    local_date: LocalDate = None,
) -> dict[str, Any]:
    """Each rule's verdict for the recipient's subscriptions on a local date."""
    from planner.readmodels.explain import explain as explain_recipient

    return explain_recipient(app, recipient_id, now=app.clock(), kind=kind, local_date=local_date)
