"""``/healthz`` and ``/readyz``: for load balancers and orchestrators, no token needed."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from planner.api.dependencies import AppDep, has_read_token
from planner.api.routing import ApiRoute
from planner.app import App
from planner.readmodels.status import (
    adapter_config_problems,
    delivery_problems,
    delivery_wait,
    live_workers,
    planner_lateness,
    planner_problems,
)
from planner.readmodels.webhooks import notices, webhook_state
from planner.store.health import ping

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready: see `failing`."}})
def readyz(request: Request, app: AppDep) -> JSONResponse:
    """Ready when the database and Redis answer, a worker is alive and the planner is on time.

    Without the bearer token only the check names and ``ok`` flags are shown: the details
    (exception text, addresses) are for operators.
    """
    ok, checks = readiness(app)
    if not has_read_token(app, request.headers.get("authorization", "")):
        checks = {name: {k: v for k, v in c.items() if k != "detail"} for name, c in checks.items()}
    failing = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ready" if ok else "unavailable", "failing": failing, "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


def readiness(app: App) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Database, Redis, a live worker and an on-time planner; each check says what failed."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        ping(app.engine)
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
    checks["planner"] = _check(
        lambda: planner_problems(planner_lateness(app, app.clock()), app.settings.max_lateness)
    )
    checks["deliveries"] = _check(
        lambda: delivery_problems(delivery_wait(app, app.clock()), app.settings.max_delivery_wait)
    )
    # A channel a worker paused because the provider refused its settings sends nothing.
    checks["adapters"] = _check(lambda: adapter_config_problems(app))
    checks["webhooks"] = _webhook_notice(app)
    return all(c["ok"] for c in checks.values()), checks


def _webhook_notice(app: App) -> dict[str, Any]:
    """Webhook endpoints the service disabled, as a notice that never fails readiness: a receiver
    that is down is the receiver's fault, its events wait in the outbox (nothing is lost), and
    taking this instance out of service would neither bring the receiver back nor help anyone."""
    try:
        found = notices(webhook_state(app))
    except Exception as exc:
        return {"ok": True, "detail": f"unknown: {type(exc).__name__}: {exc}"}
    return {"ok": True} | ({"detail": "; ".join(found)} if found else {})


def _check(problems: Callable[[], list[str]]) -> dict[str, Any]:
    """A check that lists what is wrong: ok when nothing is; a failure to look is not ok either."""
    try:
        found = problems()
    except Exception as exc:
        return {"ok": False, "detail": f"unknown: {type(exc).__name__}: {exc}"}
    return {"ok": not found} | ({"detail": "; ".join(found)} if found else {})
