"""``/metrics``: Prometheus's text format."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from fastapi import APIRouter, Depends, Response

from planner.api.dependencies import AppDep, require_read
from planner.api.problems import COMMON_RESPONSES
from planner.api.routing import ApiRoute

router = APIRouter(tags=["observability"], responses=COMMON_RESPONSES, route_class=ApiRoute)


@router.get("/metrics", response_class=Response, dependencies=[Depends(require_read)])
def metrics(app: AppDep) -> Response:
    """Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from planner.readmodels.metrics import render_metrics

    return Response(render_metrics(app, app.clock()), media_type=CONTENT_TYPE_LATEST)
