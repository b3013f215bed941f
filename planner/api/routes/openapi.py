"""``/openapi.json``: the API's own description, behind the read scope (it lists every route)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any

from fastapi import APIRouter, Depends, Request

from planner.api.dependencies import require_read
from planner.api.problems import COMMON_RESPONSES
from planner.api.routing import ApiRoute

router = APIRouter(responses=COMMON_RESPONSES, route_class=ApiRoute)


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_read)])
def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]
