"""The application factory: one FastAPI around one :class:`~planner.app.App`, its routers included."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from fastapi import APIRouter, Depends, FastAPI

from planner.api.limits import BoundedRequests
from planner.api.middleware import AllowedMethods, PageHeaders, idempotency, no_unknown_query
from planner.api.problems import JSONAnswer, install_problem_handlers
from planner.api.routes import (
    deliveries,
    events,
    explain,
    health,
    imports,
    metrics,
    notify,
    openapi,
    pauses,
    preferences,
    recipients,
    status,
    subscriptions,
    unsubscribe,
    webhooks,
)
from planner.app import App
from planner.ui import create_ui_router

#: The API's routers, in the order of the OpenAPI document. Health needs no token; the operator routes
#: and ``/v1`` do; the unsubscribe links and the provider webhooks carry their own signatures.
API_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    openapi.router,
    metrics.router,
    status.router,
    deliveries.router,
    pauses.router,
    explain.router,
    notify.router,
    recipients.router,
    subscriptions.router,
    events.router,
    imports.router,
    preferences.router,
    unsubscribe.router,
    webhooks.router,
)
DESCRIPTION = (
    "Plans scheduled notifications in each recipient's local time. "
    "Authenticate with `Authorization: Bearer <token>` (`planner tokens create NAME --scope read` "
    "or PLANNER_API_TOKEN); each route names the scope it needs: read, write or admin."
)


def create_api(app: App) -> FastAPI:
    """The API around one :class:`~planner.app.App` (its settings, database, Redis and clock)."""
    api = FastAPI(
        title="Notification planner",
        version="1",
        description=DESCRIPTION,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        default_response_class=JSONAnswer,
    )
    api.state.planner = app
    install_problem_handlers(api)
    # The API's own routes refuse unknown query parameters; the dashboard (/ui) reads its forms itself.
    strict = [Depends(no_unknown_query)]
    for router in API_ROUTERS:
        api.include_router(router, dependencies=strict)
    api.include_router(create_ui_router(app))  # the operator dashboard, /ui (its own sign-in)
    api.middleware("http")(idempotency)
    api.add_middleware(AllowedMethods, routes=[r for router in API_ROUTERS for r in router.routes])
    api.add_middleware(PageHeaders)
    # Outermost: every request, whoever reads its body (the idempotency keys, a route, a form), is bounded.
    api.add_middleware(BoundedRequests)
    return api
