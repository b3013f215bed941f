"""``/status``: what ``planner status`` shows."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter, Depends

from planner.api.dependencies import AppDep, require_read
from planner.api.problems import COMMON_RESPONSES
from planner.api.routing import ApiRoute
from planner.readmodels.status import collect_status

router = APIRouter(tags=["operations"], responses=COMMON_RESPONSES, route_class=ApiRoute)


@router.get("/status", dependencies=[Depends(require_read)])
def status(app: AppDep) -> dict[str, Any]:
    """Deliveries by status, queues, workers, and how late the planner is."""
    return collect_status(app, app.clock())
