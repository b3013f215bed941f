"""The HTTP API (``planner serve``): the CLI's operations, health checks and Prometheus metrics.

Every route except ``/healthz`` and ``/readyz`` needs ``Authorization: Bearer <token>``: a token made
by ``planner tokens create`` or ``PLANNER_API_TOKEN`` (an admin token named ``api-token``). A
missing or unknown token is a 401, a token without the route's scope (``read``, ``write`` or
``admin``, see :mod:`planner.auth`) a 403; with no token configured at all the routes answer 503
rather than run open. Every change is recorded with the token's name: ``actor`` in the timeline
entry and a row in the audit log.

Every error is an RFC 9457 problem-details body (``application/problem+json``): ``status``, ``title``,
a one-line ``detail`` and, for bad input, ``errors[]`` whose ``loc`` names where the field was
(``path``, ``query`` or ``body``) and ``field``/``value``/``expected`` what was wrong. One handler
(:func:`_install_error_handlers`) writes them all; a database or Redis outage is a 503, never a 500.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

import hashlib
import hmac
import math
import re
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)
from redis import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters import AdapterConfigError
from planner.app import App, translate_error
from planner.auth import Principal, any_token_configured, authenticate
from planner.clock import WINDOW_TEXT, ensure_utc
from planner.commands import ops
from planner.commands.notify import notify
from planner.core import validation
from planner.core.status import DeliveryStatus, EngagementKind
from planner.errors import InvalidInput, NotFound, PlannerError, StateConflict, Unavailable, shown
from planner.readmodels.status import (
    adapter_config_problems,
    collect_status,
    delivery_problems,
    delivery_wait,
    live_workers,
    planner_lateness,
    planner_problems,
)
from planner.store.audit import record_audit
from planner.store.idempotency import IN_PROGRESS, StoredAnswer, release, reserve, store_answer
from planner.store.queries import DeliveryFilter, get_delivery, list_deliveries
from planner.ui import create_ui_router

log = structlog.get_logger("planner.api")

Priority = Literal["high", "default", "bulk"]
ChannelName = Literal["email", "sms"]
PROBLEM_JSON = "application/problem+json"
# The validators' rules, also written into the OpenAPI document (clients and schemathesis read it).
EXTERNAL_ID = r"^[A-Za-z0-9_.:@-]{1,200}$"
KIND = r"^[a-z][a-z0-9_]{0,99}$"
TARGET = r"^(email|sms|[a-z][a-z0-9_]{0,99})$"


def _bounded(value: datetime) -> datetime:
    try:
        return ensure_utc(value, "instant")
    except InvalidInput as exc:
        # Pydantic puts the field in ``loc``; the message says what was wrong with the value.
        raise ValueError(f"{shown(exc.value)} is invalid; expected {exc.expected}") from None


def _iso_text(value: object) -> object:
    # Pydantic would read 1 or "1" as a Unix timestamp: a typo must not become 1970-01-01.
    if not isinstance(value, str | datetime) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError(f"{shown(value)} is invalid; expected an ISO-8601 timestamp with an offset")
    return value


_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")

#: An aware instant inside the service's window (1970..2200), as UTC, written in ISO 8601.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(_bounded),
    Field(description=f"ISO-8601 with offset; {WINDOW_TEXT}"),
]
RowId = Annotated[int, Path(ge=1, le=validation.ID_MAX, description="The delivery id.")]
LocalDate = Annotated[
    date | None,
    AfterValidator(lambda v: None if v is None else validation.local_date(v)),
    Query(alias="date", description="Local date (default: today); 1970-01-02 to 2199-12-31"),
]


class NotifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(pattern=EXTERNAL_ID, description="The recipient's external id.")
    kind: str = Field(pattern=KIND, description="Notification kind, e.g. 'password_reset'.")
    channel: ChannelName
    dedup_key: str | None = Field(None, min_length=1, max_length=255, description="Repeat-safe key.")
    data: dict[str, Any] | None = Field(None, description="Template data.")
    priority: Priority | None = Field(None, description="Queue; default: the kind's queue.")
    at: Instant | None = Field(None, description="Send at (default: now).")

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

    recipient_id: str = Field(pattern=EXTERNAL_ID)
    event: EngagementKind
    at: Instant
    kind: str | None = Field(None, pattern=KIND)

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        return None if value is None else validation.kind(value, "kind")


def _no_unknown_query(request: Request) -> None:
    """A misspelt query parameter (``?statsu=dead``) is a 422, not silently all deliveries."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {param.alias for param in dependant.query_params}
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        errors = [
            {
                "type": "extra_forbidden",
                "loc": ("query", name),
                "msg": f"unknown query parameter; expected some of {sorted(known) or 'none'}",
                "input": request.query_params[name],
            }
            for name in unknown
        ]
        raise RequestValidationError(errors)
    # ``?recipient=a&recipient=b`` on a one-value parameter: which one was meant? Say so, never pick.
    repeated = sorted({name for name, _ in request.query_params.multi_items()
                       if len(request.query_params.getlist(name)) > 1})  # fmt: skip
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "too_long",
                    "loc": ("query", name),
                    "msg": "given more than once; expected one value",
                    "input": request.query_params.getlist(name),
                }
                for name in repeated
            ]
        )


def _has_token(app: App, header: str) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    principal = authenticate(app, given.strip())
    return principal is not None and "read" in principal.scopes


_BEARER = HTTPBearer(auto_error=False, description="`planner tokens create` or PLANNER_API_TOKEN")


def _scope_check(app: App, scope: str) -> Callable[..., Principal]:
    """A dependency: the caller's :class:`Principal`, which must hold ``scope``."""

    def require_scope(credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER)) -> Principal:
        given = credentials.credentials if credentials is not None else ""
        principal = authenticate(app, given) if given else None
        if principal is None:
            if not any_token_configured(app):
                raise HTTPException(
                    503, "API token not configured (set PLANNER_API_TOKEN or run `planner tokens create`)"
                )
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
        if scope not in principal.scopes:
            raise HTTPException(
                403,
                f"token {principal.name!r} lacks the {scope!r} scope "
                f"(it has {', '.join(sorted(principal.scopes))})",
            )
        return principal

    return require_scope


def _audit(
    app: App, principal: Principal, action: str, target: str, detail: dict[str, Any] | None = None
) -> None:
    """The audit log's entry for a change the caller made (after it committed)."""
    with app.sessions() as session, session.begin():
        record_audit(session, app.clock(), principal.name, action, target, detail)


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
    try:
        stuck = delivery_problems(delivery_wait(app, app.clock()), app.settings.max_delivery_wait)
        checks["deliveries"] = {"ok": not stuck} | ({"detail": "; ".join(stuck)} if stuck else {})
    except Exception as exc:
        checks["deliveries"] = {"ok": False, "detail": f"unknown: {type(exc).__name__}: {exc}"}
    try:
        # A channel a worker paused because the provider refused its settings sends nothing.
        broken = adapter_config_problems(app)
        checks["adapters"] = {"ok": not broken} | ({"detail": "; ".join(broken)} if broken else {})
    except Exception as exc:
        checks["adapters"] = {"ok": False, "detail": f"unknown: {type(exc).__name__}: {exc}"}
    return all(c["ok"] for c in checks.values()), checks


class Problem(BaseModel):
    """An RFC 9457 problem-details body."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _loc(request: Request, field: str) -> list[str]:
    """Where ``field`` came from: a path parameter, a query parameter or the body."""
    root = field.split(".", 1)[0].split("[", 1)[0]
    if root in request.path_params:
        return ["path", field]
    if root in request.query_params or request.method not in ("POST", "PUT", "PATCH"):
        return ["query", field]
    return ["body", field]


def _plain(value: Any) -> Any:
    """An echoed input: JSON-safe (no NaN or infinity, no 5,000-digit int) and cut short."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, int) and abs(value) <= 2**53:
        return value
    return shown(value)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        item: dict[str, Any] = {"loc": loc, "msg": error.get("msg", ""), "type": error.get("type", "")}
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error", "cannot be parsed")
            item["msg"] = f"malformed JSON at character {loc[1] if len(loc) > 1 else 0}: {reason}"
            item["loc"] = ["body"]
        item["msg"] = item["msg"].removeprefix("Value error, ")
        if "input" in error and error.get("type") != "json_invalid":
            item["input"] = _plain(error["input"])
        errors.append(item)
    return errors


def _invalid_response(request: Request, exc: InvalidInput, status: int = 422) -> JSONResponse:
    error = {
        "loc": _loc(request, exc.field),
        "msg": str(exc),
        "type": "value_error",
        "field": exc.field,
        "input": _plain(exc.value),
        "expected": exc.expected,
    }
    return problem(status, "Invalid input", str(exc), errors=[error])


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    503: "Service unavailable",
}


def _install_error_handlers(api: FastAPI) -> None:
    """The one error path: every exception becomes a problem-details body."""

    @api.exception_handler(RequestValidationError)
    def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}"
        return problem(422, "Invalid input", detail, errors=errors)

    @api.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI could not decode the body (bad UTF-8, nesting beyond the recursion limit).
            cause = exc.__cause__
            detail = f"body: malformed JSON ({type(cause).__name__})"
            error = {"loc": ["body"], "msg": detail, "type": "json_invalid"}
            return problem(422, "Invalid input", detail, errors=[error])
        title = _TITLES.get(exc.status_code, "Error")
        return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)

    def _dependency(request: Request, exc: Exception) -> JSONResponse:
        error = translate_error(exc)
        if error is None:
            log.error("unhandled error", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
            return problem(500, "Internal error", "an unexpected error; the server log has the details")
        return _planner_error(request, error)

    # Named classes, not ``Exception``: Starlette re-raises after an ``Exception`` handler (to log
    # a 500), which is right for a defect and wrong for a database or Redis outage.
    for outage in (RedisError, SQLAlchemyError, AdapterConfigError):
        api.add_exception_handler(outage, _dependency)
    api.add_exception_handler(Exception, _dependency)

    api.add_exception_handler(PlannerError, lambda request, exc: _planner_error(request, exc))


def _planner_error(request: Request, exc: PlannerError) -> JSONResponse:
    if isinstance(exc, StateConflict):
        detail = f"{exc.field} is {shown(exc.value)}: expected {exc.expected}"
        return problem(409, "Conflict", detail, errors=[{"field": exc.field, "input": _plain(exc.value)}])
    if isinstance(exc, InvalidInput):
        return _invalid_response(request, exc)
    if isinstance(exc, NotFound):
        return problem(404, "Not found", str(exc))
    if isinstance(exc, Unavailable):
        log.warning("dependency unavailable", what=exc.what, error=exc.detail)
        return problem(
            503,
            f"{exc.what} unavailable",
            f"{exc.what} unavailable: the request was not carried out; try again later",
            headers={"Retry-After": "30"},
        )
    return problem(400, "Bad request", str(exc))


def _options_and_allow(routers: list[APIRouter]) -> Callable[..., Awaitable[Response]]:
    """Middleware: OPTIONS lists every method of the path, and so does a 405's Allow header.

    Starlette answers for the first route matching the path only, so ``/pauses/{target}`` (a POST
    route and a DELETE route) would list one of them.
    """
    routes = [r for router in routers for r in router.routes if getattr(r, "methods", None)]

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.scope["path"]
        methods = {m for r in routes if r.path_regex.match(path) for m in r.methods}  # type: ignore[attr-defined]
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        if request.method == "OPTIONS":
            if not methods:
                return problem(404, "Not found", f"no route {shown(path)}")
            return Response(status_code=204, headers={"Allow": allow})
        response = await call_next(request)
        if response.status_code == 405 and methods:
            response.headers["Allow"] = allow
        return response

    return middleware


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _idempotency(app: App) -> Callable[..., Awaitable[Response]]:
    """Middleware: a POST with ``Idempotency-Key`` answers a repeat (same token, same request,
    within 24 h) with the first answer; the same key on another request is a 422 naming the key.

    Keys are per token and stored in the database. The key is reserved before the request runs
    (:func:`~planner.store.idempotency.reserve`), so two requests racing with one key run once: the
    second gets a 409 with Retry-After while the first runs, and its answer afterwards.
    """

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        key = request.headers.get("idempotency-key")
        if request.method != "POST" or key is None:
            return await call_next(request)
        if not _IDEMPOTENCY_KEY.match(key):
            error = {"loc": ["header", "Idempotency-Key"], "msg": "1-255 printable ASCII characters"}
            detail = f"Idempotency-Key: {shown(key)} is invalid; expected 1-255 printable ASCII characters"
            return problem(422, "Invalid input", detail, errors=[error])
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        who = (
            await run_in_threadpool(authenticate, app, given.strip()) if scheme.lower() == "bearer" else None
        )
        if who is None:
            return await call_next(request)  # the route answers 401 (or it needs no token)
        body = await request.body()
        digest = hashlib.sha256(f"{request.url.path}?{request.url.query}\n".encode() + body).hexdigest()
        now = app.clock()

        def transaction(work: Callable[[Any], Any]) -> Any:
            with app.sessions() as session, session.begin():
                return work(session)

        stored = await run_in_threadpool(transaction, lambda s: reserve(s, who.name, key, digest, now))
        if stored is not None:
            return _answer_again(key, digest, stored)
        try:
            response = await call_next(request)
        except BaseException:
            await run_in_threadpool(transaction, lambda s: release(s, who.name, key))
            raise
        if response.status_code >= 500 or response.status_code in (401, 403, 503):
            # Not an answer to keep: the request may be sent again.
            await run_in_threadpool(transaction, lambda s: release(s, who.name, key))
            return response
        chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
        content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
        answer = StoredAnswer(
            digest, response.status_code, response.headers.get("content-type"), content.decode()
        )
        await run_in_threadpool(transaction, lambda s: store_answer(s, who.name, key, answer))
        return Response(content, response.status_code, headers=dict(response.headers))

    return middleware


def _answer_again(key: str, digest: str, stored: StoredAnswer) -> Response:
    """A request whose key is taken: the first answer, a 409 while the first request runs, or a 422
    when the key was used for another request."""
    if not hmac.compare_digest(stored.request_hash, digest):
        detail = f"Idempotency-Key {shown(key)} was used for another request; expected a new key"
        error = {"loc": ["header", "Idempotency-Key"], "msg": detail, "input": _plain(key)}
        return problem(422, "Invalid input", detail, errors=[error])
    if stored.status == IN_PROGRESS:
        detail = f"a request with Idempotency-Key {shown(key)} is still running; send it again later"
        return problem(409, "Conflict", detail, headers={"Retry-After": "1"})
    headers = {"Idempotency-Replayed": "true"}
    return Response(stored.body, stored.status, headers=headers, media_type=stored.content_type)


def create_api(app: App) -> FastAPI:
    """The API around one :class:`~planner.app.App` (its settings, database, Redis and clock)."""
    api = FastAPI(
        title="Notification planner",
        version="1",
        description="Plans scheduled notifications in each recipient's local time. "
        "Authenticate with `Authorization: Bearer <token>` (`planner tokens create NAME --scope read` "
        "or PLANNER_API_TOKEN); each route names the scope it needs: read, write or admin.",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    api.state.planner = app
    _install_error_handlers(api)

    # The API's own routes refuse unknown query parameters; the dashboard (/ui) reads its forms itself.
    strict = [Depends(_no_unknown_query)]

    @api.get("/healthz", tags=["health"], dependencies=strict)
    def healthz() -> dict[str, str]:
        """The process is alive (no dependency is checked)."""
        return {"status": "ok"}

    @api.get(
        "/readyz",
        tags=["health"],
        dependencies=strict,
        responses={503: {"description": "Not ready: see `failing`."}},
    )
    def readyz(request: Request) -> JSONResponse:
        """Ready when the database and Redis answer, a worker is alive and the planner is on time.

        Without the bearer token only the check names and ``ok`` flags are shown: the details
        (exception text, addresses) are for operators.
        """
        ok, checks = readiness(app)
        if not _has_token(app, request.headers.get("authorization", "")):
            checks = {name: {k: v for k, v in c.items() if k != "detail"} for name, c in checks.items()}
        failing = [name for name, check in checks.items() if not check["ok"]]
        body = {"status": "ready" if ok else "unavailable", "failing": failing, "checks": checks}
        return JSONResponse(body, status_code=200 if ok else 503)

    from planner.api.v1 import unsubscribe_router, v1_router

    protected = _protected(api, app)
    api.include_router(protected)
    api.include_router(create_ui_router(app))  # the operator dashboard, /ui (its own sign-in)
    v1 = v1_router(app)
    api.include_router(v1, responses=_COMMON_RESPONSES, dependencies=strict)
    links = unsubscribe_router(app)
    api.include_router(links, dependencies=strict)
    from planner.api.webhooks import webhooks_router

    hooks = webhooks_router(app)
    api.include_router(hooks, dependencies=strict)
    api.middleware("http")(_idempotency(app))
    api.middleware("http")(_options_and_allow([api.router, protected, v1, links, hooks]))
    return api


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "Missing or wrong bearer token.",
        403: "The token lacks the route's scope.",
        404: "No such delivery or recipient.",
        409: "The delivery's status does not allow this.",
        413: "The body is too large.",
        422: "Invalid input: `errors[].loc` names the field.",
        503: "The database or Redis is unavailable, or no API token is configured.",
    }
    return {
        code: {"description": described[code], "model": Problem, "content": {PROBLEM_JSON: {}}}
        for code in codes
    }


_COMMON_RESPONSES = _responses(401, 403, 422, 503)


def _protected(api: FastAPI, app: App) -> APIRouter:
    router = APIRouter(dependencies=[Depends(_no_unknown_query)], responses=_COMMON_RESPONSES)
    read = Depends(_scope_check(app, "read"))
    write = Depends(_scope_check(app, "write"))
    admin = Depends(_scope_check(app, "admin"))

    @router.get("/openapi.json", include_in_schema=False, dependencies=[read])
    def openapi() -> dict[str, Any]:
        return api.openapi()

    @router.get("/metrics", tags=["observability"], response_class=Response, dependencies=[read])
    def metrics() -> Response:
        """Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST

        from planner.readmodels.metrics import render_metrics

        return Response(render_metrics(app, app.clock()), media_type=CONTENT_TYPE_LATEST)

    @router.get("/status", tags=["operations"], dependencies=[read])
    def status() -> dict[str, Any]:
        """Deliveries by status, queues, workers, and how late the planner is."""
        return collect_status(app, app.clock())

    @router.get("/deliveries", tags=["deliveries"], dependencies=[read])
    def deliveries(
        status: DeliveryStatus | None = None,
        recipient: Annotated[str | None, Query(pattern=EXTERNAL_ID)] = None,
        kind: Annotated[str | None, Query(pattern=KIND)] = None,
        channel: ChannelName | None = None,
        since: Instant | None = None,
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

    @router.get(
        "/deliveries/{delivery_id}", tags=["deliveries"], responses=_responses(404), dependencies=[read]
    )
    def delivery(delivery_id: RowId) -> dict[str, Any]:
        """One delivery with its data and full timeline."""
        with app.sessions() as session:
            return get_delivery(session, delivery_id)

    @router.post("/deliveries/{delivery_id}/retry", tags=["deliveries"], responses=_responses(404, 409))
    def retry(delivery_id: RowId, who: Principal = admin) -> dict[str, Any]:
        """Redrive a dead delivery (fresh attempts), or send a retrying one now. Scope: admin."""
        result = ops.retry(app, delivery_id, app.clock(), actor=who.name).as_dict()
        _audit(app, who, "delivery_retried", f"delivery:{delivery_id}", {"requeued": result["requeued"]})
        return result

    @router.post("/deliveries/{delivery_id}/cancel", tags=["deliveries"], responses=_responses(404, 409))
    def cancel(delivery_id: RowId, who: Principal = admin) -> dict[str, Any]:
        """Cancel a pending delivery (409 once it is sending or final). Scope: admin."""
        result = ops.cancel(app, delivery_id, app.clock(), actor=who.name)
        _audit(app, who, "delivery_cancelled", f"delivery:{delivery_id}")
        return result

    @router.post("/pauses/{target}", tags=["operations"])
    def pause(target: Annotated[str, Path(pattern=TARGET)], who: Principal = admin) -> dict[str, Any]:
        """Pause a channel ('email', 'sms') or a kind: its deliveries wait. Scope: admin."""
        result = ops.pause(app, target, app.clock())
        _audit(app, who, "paused", target, {"changed": result["changed"]})
        return result

    @router.delete("/pauses/{target}", tags=["operations"])
    def resume(target: Annotated[str, Path(pattern=TARGET)], who: Principal = admin) -> dict[str, Any]:
        """Resume a channel or kind: its waiting deliveries are sent now. Scope: admin."""
        result = ops.resume(app, target, app.clock(), actor=who.name)
        _audit(app, who, "resumed", target, {"changed": result["changed"], "requeued": result["requeued"]})
        return result

    @router.get(
        "/explain/{recipient_id}", tags=["operations"], responses=_responses(404), dependencies=[read]
    )
    def explain(
        recipient_id: Annotated[str, Path(pattern=EXTERNAL_ID)],
        kind: Annotated[str | None, Query(pattern=KIND)] = None,
        local_date: LocalDate = None,
    ) -> dict[str, Any]:
        """Each rule's verdict for the recipient's subscriptions on a local date."""
        from planner.readmodels.explain import explain as explain_recipient

        return explain_recipient(app, recipient_id, now=app.clock(), kind=kind, local_date=local_date)

    @router.post(
        "/notify",
        tags=["notifications"],
        status_code=201,
        responses={
            200: {"description": "A repeated dedup key: the first delivery, not sent again."},
            202: {"description": "Saved but Redis is unavailable: the reconcile enqueues it."},
            **_responses(404, 409),
        },
    )
    def notify_endpoint(body: NotifyRequest, response: Response, who: Principal = write) -> dict[str, Any]:
        """An ad-hoc notification through the same rules; a repeated dedup key returns the first (200).

        Scope: write."""
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
            actor=who.name,
        )
        if result.created:
            _audit(app, who, "notified", f"delivery:{result.delivery.get('id')}")
        if not result.created:
            response.status_code = 200
        elif result.outcome == "saved":
            response.status_code = 202
        return result.as_dict()

    @router.post("/engagement", tags=["notifications"], status_code=201, responses=_responses(404))
    def engagement(body: EngagementRequest, who: Principal = write) -> dict[str, Any]:
        """Record an open, click or reply (provider webhooks). Scope: write."""
        result = ops.record_engagement(
            app, body.recipient_id, body.event.value, body.at, app.clock(), kind=body.kind
        )
        _audit(app, who, "engagement_recorded", f"recipient:{body.recipient_id}", {"event": body.event.value})
        return result

    return router
