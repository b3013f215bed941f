"""The HTTP API (``planner serve``): the CLI's operations, health checks and Prometheus metrics.

Every route except ``/healthz`` and ``/readyz`` needs ``Authorization: Bearer <PLANNER_API_TOKEN>``;
without a configured token those routes answer 503 rather than run open. Bad input is a 422 whose
``detail[].loc`` names the field, as FastAPI reports its own validation errors.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

import hmac
from datetime import date
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import text

from planner.app import App
from planner.core import validation
from planner.core.status import DeliveryStatus, EngagementKind
from planner.errors import InvalidInput, NotFound
from planner.operations import ops
from planner.operations.notify import notify
from planner.operations.status import collect_status, live_workers, planner_lateness, planner_problems
from planner.store.queries import DeliveryFilter, get_delivery, list_deliveries
from planner.ui import create_ui_router

log = structlog.get_logger("planner.api")

Priority = Literal["high", "default", "bulk"]
ChannelName = Literal["email", "sms"]


class NotifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(description="The recipient's external id.")
    kind: str = Field(description="Notification kind, e.g. 'password_reset'.")
    channel: ChannelName
    dedup_key: str | None = Field(None, min_length=1, max_length=255, description="Repeat-safe key.")
    data: dict[str, Any] | None = Field(None, description="Template data.")
    priority: Priority | None = Field(None, description="Queue; default: the kind's queue.")
    at: AwareDatetime | None = Field(None, description="Send at (default: now).")

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        return validation.kind(value, "kind")


class EngagementRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str
    event: EngagementKind
    at: AwareDatetime
    kind: str | None = None

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        return None if value is None else validation.kind(value, "kind")


def _bearer_check(app: App) -> Any:
    bearer = HTTPBearer(auto_error=False, description="PLANNER_API_TOKEN")

    def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        token = app.settings.api_token
        expected = token.get_secret_value() if token is not None else ""
        if not expected:
            raise HTTPException(503, "API token not configured (set PLANNER_API_TOKEN)")
        given = credentials.credentials if credentials is not None else ""
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return require_token


def readiness(app: App) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Database, Redis, a live worker and an on-time planner; each check says what failed."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        with app.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    try:
        app.redis.ping()
        workers = live_workers(app.redis)
        checks["redis"] = {"ok": True}
        checks["workers"] = {"ok": bool(workers), "count": len(workers)}
        if not workers:
            checks["workers"]["detail"] = "no live RQ worker"
    except Exception as exc:
        checks["redis"] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        checks["workers"] = {"ok": False, "detail": "unknown: Redis unavailable"}
    try:
        problems = planner_problems(planner_lateness(app, app.clock()), app.settings.max_lateness)
        checks["planner"] = {"ok": not problems} | ({"detail": "; ".join(problems)} if problems else {})
    except Exception as exc:
        checks["planner"] = {"ok": False, "detail": f"unknown: {type(exc).__name__}: {exc}"}
    return all(c["ok"] for c in checks.values()), checks


def _loc(request: Request, field: str) -> list[str]:
    return ["body" if request.method in ("POST", "PUT", "PATCH") else "query", field]


def _install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @api.exception_handler(ops.StateConflict)
    def _conflict(request: Request, exc: ops.StateConflict) -> JSONResponse:
        return JSONResponse(
            {"detail": f"{exc.field} is {exc.value!r}: expected {exc.expected}"}, status_code=409
        )

    @api.exception_handler(InvalidInput)
    def _invalid(request: Request, exc: InvalidInput) -> JSONResponse:
        detail: dict[str, Any] = {"loc": _loc(request, exc.field), "msg": str(exc), "type": "value_error"}
        value = exc.value
        detail["input"] = value if isinstance(value, str | int | float | bool | None) else str(value)
        return JSONResponse({"detail": [detail]}, status_code=422)


def create_api(app: App) -> FastAPI:
    """The API around one :class:`~planner.app.App` (its settings, database, Redis and clock)."""
    api = FastAPI(
        title="Notification planner",
        version="1",
        description="Plans scheduled notifications in each recipient's local time. "
        "Authenticate with `Authorization: Bearer <PLANNER_API_TOKEN>`.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.planner = app
    _install_error_handlers(api)

    @api.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive (no dependency is checked)."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Ready when the database and Redis answer, a worker is alive and the planner is on time."""
        ok, checks = readiness(app)
        failing = [name for name, check in checks.items() if not check["ok"]]
        body = {"status": "ready" if ok else "unavailable", "failing": failing, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    api.include_router(_protected(api, app))
    api.include_router(create_ui_router(app))  # the operator dashboard, /ui (its own sign-in)
    return api


def _protected(api: FastAPI, app: App) -> APIRouter:
    router = APIRouter(dependencies=[Depends(_bearer_check(app))])

    @router.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return api.openapi()

    @router.get("/metrics", tags=["observability"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST

        from planner.operations.metrics import render_metrics

        return Response(render_metrics(app, app.clock()), media_type=CONTENT_TYPE_LATEST)

    @router.get("/status", tags=["operations"])
    def status() -> dict[str, Any]:
        """Deliveries by status, queues, workers, and how late the planner is."""
        return collect_status(app, app.clock())

    @router.get("/deliveries", tags=["deliveries"])
    def deliveries(
        status: DeliveryStatus | None = None,
        recipient: Annotated[str | None, Query(max_length=200)] = None,
        kind: Annotated[str | None, Query(max_length=100)] = None,
        channel: ChannelName | None = None,
        since: AwareDatetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Deliveries in scheduled order."""
        flt = DeliveryFilter(
            status=status.value if status else None,
            recipient=recipient,
            kind=kind,
            channel=channel,
            since=since,
            limit=limit,
        )
        with app.sessions() as session:
            return list_deliveries(session, flt)

    @router.get("/deliveries/{delivery_id}", tags=["deliveries"])
    def delivery(delivery_id: int) -> dict[str, Any]:
        """One delivery with its data and full timeline."""
        with app.sessions() as session:
            return get_delivery(session, delivery_id)

    @router.post("/deliveries/{delivery_id}/retry", tags=["deliveries"])
    def retry(delivery_id: int) -> dict[str, Any]:
        """Redrive a dead delivery (fresh attempts), or send a retrying one now."""
        return ops.retry(app, delivery_id, app.clock()).as_dict()

    @router.post("/deliveries/{delivery_id}/cancel", tags=["deliveries"])
    def cancel(delivery_id: int) -> dict[str, Any]:
        """Cancel a pending delivery (409 once it is sending or final)."""
        return ops.cancel(app, delivery_id, app.clock())

    @router.post("/pauses/{target}", tags=["operations"])
    def pause(target: str) -> dict[str, Any]:
        """Pause a channel ('email', 'sms') or a kind: its deliveries wait."""
        return ops.pause(app, target, app.clock())

    @router.delete("/pauses/{target}", tags=["operations"])
    def resume(target: str) -> dict[str, Any]:
        """Resume a channel or kind: its waiting deliveries are sent now."""
        return ops.resume(app, target, app.clock())

    @router.get("/explain/{recipient_id}", tags=["operations"])
    def explain(
        recipient_id: str,
        kind: str | None = None,
        local_date: Annotated[
            date | None, Query(alias="date", description="Local date (default: today)")
        ] = None,
    ) -> dict[str, Any]:
        """Each rule's verdict for the recipient's subscriptions on a local date."""
        from planner.operations.explain import explain as explain_recipient

        return explain_recipient(app, recipient_id, now=app.clock(), kind=kind, local_date=local_date)

    @router.post("/notify", tags=["notifications"], status_code=201)
    def notify_endpoint(body: NotifyRequest, response: Response) -> dict[str, Any]:
        """An ad-hoc notification through the same rules; a repeated dedup key returns the first (200)."""
        result = notify(
            app,
            body.recipient_id,
            body.kind,
            body.channel,
            now=app.clock(),
            dedup_key=body.dedup_key,
            data=body.data,
            priority=body.priority,
            at=body.at,
        )
        if not result.created:
            response.status_code = 200
        return result.as_dict()

    @router.post("/engagement", tags=["notifications"], status_code=201)
    def engagement(body: EngagementRequest) -> dict[str, Any]:
        """Record an open, click or reply (provider webhooks)."""
        return ops.record_engagement(
            app, body.recipient_id, body.event.value, body.at, app.clock(), kind=body.kind
        )

    return router
