"""``/v1/status``: what ``planner status`` shows (also under the deprecated ``/status``:
:mod:`planner.api.deprecation`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter, Depends

from planner.api.dependencies import AppDep, require_read
from planner.api.deprecation import legacy_router
from planner.api.problems import COMMON_RESPONSES
from planner.api.routing import ApiRoute
from planner.readmodels.status import collect_status

router = APIRouter(prefix="/v1", tags=["operations"], responses=COMMON_RESPONSES, route_class=ApiRoute)
legacy = legacy_router("operations")


@router.get("/status", dependencies=[Depends(require_read)])
@legacy.get("/status", dependencies=[Depends(require_read)])
def status(app: AppDep) -> dict[str, Any]:
    """Deliveries by status, queues, workers, and how late the planner is."""
    return collect_status(app, app.clock())
