"""``/v1/pauses/{target}``: pause or resume a channel or a kind (also under the deprecated
``/pauses/{target}``: :mod:`planner.api.deprecation`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any

from fastapi import APIRouter, Path

from planner.api.dependencies import Admin, AppDep, audit
from planner.api.deprecation import legacy_router
from planner.api.problems import COMMON_RESPONSES
from planner.api.routing import ApiRoute
from planner.api.schemas import TARGET
from planner.commands import pauses

router = APIRouter(prefix="/v1", tags=["operations"], responses=COMMON_RESPONSES, route_class=ApiRoute)
legacy = legacy_router("operations")

Target = Annotated[str, Path(pattern=TARGET)]


@router.post("/pauses/{target}")
@legacy.post("/pauses/{target}")
def pause(app: AppDep, target: Target, who: Admin) -> dict[str, Any]:
    """Pause a channel ('email', 'sms') or a kind: its deliveries wait. Scope: admin."""
    result = pauses.pause(app, target, app.clock())
    audit(app, who, "paused", target, {"changed": result["changed"]})
    return result


@router.delete("/pauses/{target}")
@legacy.delete("/pauses/{target}")
def resume(app: AppDep, target: Target, who: Admin) -> dict[str, Any]:
    """Resume a channel or kind: its waiting deliveries are sent now. Scope: admin."""
    result = pauses.resume(app, target, app.clock(), actor=who.name)
    audit(app, who, "resumed", target, {"changed": result["changed"], "requeued": result["requeued"]})
    return result
