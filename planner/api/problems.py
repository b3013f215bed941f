"""RFC 9457 problem details: every error the API answers, in one shape (``application/problem+json``).

``status``, ``title``, a one-line ``detail`` and, for bad input, ``errors[]`` whose ``loc`` names where
the field was (``path``, ``query``, ``body`` or ``header``) and ``field``/``value``/``expected`` what
was wrong. :func:`install_problem_handlers` turns every exception into one; a database or Redis outage
is a 503, never a 500.
"""

# No ``from __future__ import annotations``: FastAPI reads the handler annotations at runtime.

import json
import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from planner.app import OUTAGES, translate_error
from planner.core.validation import TEXT_EXPECTED
from planner.errors import (
    ConcurrentChange,
    InvalidInput,
    NotFound,
    PlannerError,
    StateConflict,
    Unavailable,
    shown,
)

log = structlog.get_logger("planner.api")

PROBLEM_JSON = "application/problem+json"

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

_DESCRIBED = {
    401: "Missing or wrong bearer token.",
    403: "The token lacks the route's scope.",
    404: "No such delivery or recipient.",
    409: "The delivery's status does not allow this.",
    413: "The body is too large.",
    422: "Invalid input: `errors[].loc` names the field.",
    503: "The database or Redis is unavailable, or no API token is configured.",
}


class Problem(BaseModel):
    """An RFC 9457 problem-details body."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class JSONAnswer(JSONResponse):
    """Every JSON answer of the API. Text that has no UTF-8 form (a lone surrogate a row kept from
    before the text rule refused it) is written as JSON's ``\\u`` escape, the same text, rather
    than failing after the request's work is done: no stored row can make a read answer 500."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    headers = extra.pop("headers", None)
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONAnswer(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of these error answers (each a :class:`Problem`)."""
    return {
        code: {"description": _DESCRIBED[code], "model": Problem, "content": {PROBLEM_JSON: {}}}
        for code in codes
    }


#: What any route behind a bearer token may answer.
COMMON_RESPONSES = responses(401, 403, 422, 503)


def echoed(value: Any) -> Any:
    """An echoed input: JSON-safe (no NaN or infinity, no 5,000-digit int) and cut short."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, int) and abs(value) <= 2**53:
        return value
    return shown(value)


def _loc(request: Request, field: str) -> list[str]:
    """Where ``field`` came from: a path parameter, a query parameter or the body."""
    root = field.split(".", 1)[0].split("[", 1)[0]
    if root in request.path_params:
        return ["path", field]
    if root in request.query_params or request.method not in ("POST", "PUT", "PATCH"):
        return ["query", field]
    return ["body", field]


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
        if error.get("type") == "string_unicode":  # pydantic's refusal of a lone surrogate
            item["msg"] = f"{shown(error.get('input'))} is invalid; expected {TEXT_EXPECTED}"
        if "input" in error and error.get("type") != "json_invalid":
            item["input"] = echoed(error["input"])
        errors.append(item)
    return errors


def _invalid_response(request: Request, exc: InvalidInput, status: int = 422) -> JSONResponse:
    error = {
        "loc": _loc(request, exc.field),
        "msg": str(exc),
        "type": "value_error",
        "field": exc.field,
        "input": echoed(exc.value),
        "expected": exc.expected,
    }
    return problem(status, "Invalid input", str(exc), errors=[error])


def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A path, query or body value FastAPI refused: every error, the first in ``detail``."""
    errors = _validation_errors(exc)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'])}: {first['msg']}"
    return problem(422, "Invalid input", detail, errors=errors)


def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI could not decode the body (bad UTF-8, nesting beyond the recursion limit).
        cause = exc.__cause__
        detail = f"body: malformed JSON ({type(cause).__name__})"
        error = {"loc": ["body"], "msg": detail, "type": "json_invalid"}
        return problem(422, "Invalid input", detail, errors=[error])
    title = _TITLES.get(exc.status_code, "Error")
    return problem(exc.status_code, title, str(exc.detail), headers=exc.headers)


def planner_error(request: Request, exc: PlannerError) -> JSONResponse:
    if isinstance(exc, ConcurrentChange):
        detail = f"{exc.value}; send the request again"
        return problem(409, "Conflict", detail, headers={"Retry-After": "1"})
    if isinstance(exc, StateConflict):
        detail = f"{exc.field} is {shown(exc.value)}: expected {exc.expected}"
        return problem(409, "Conflict", detail, errors=[{"field": exc.field, "input": echoed(exc.value)}])
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


def internal_error() -> JSONResponse:
    """The answer to a defect: nothing of it is shown."""
    return problem(500, "Internal error", "an unexpected error; the server log has the details")


def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """An outage (503, through :func:`~planner.app.translate_error`) or a defect (500, logged)."""
    error = translate_error(exc)
    if error is None:
        log.error("unhandled error", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
        return internal_error()
    return planner_error(request, error)


def install_problem_handlers(api: FastAPI) -> None:
    """The one error path: every exception becomes a problem-details body."""
    api.exception_handler(RequestValidationError)(request_invalid)
    api.exception_handler(StarletteHTTPException)(http_error)
    # Named classes, not ``Exception``: Starlette re-raises after an ``Exception`` handler (to log
    # a 500), which is right for a defect and wrong for a database or Redis outage.
    for outage in OUTAGES:
        api.add_exception_handler(outage, unexpected)
    api.add_exception_handler(Exception, unexpected)
    api.exception_handler(PlannerError)(planner_error)
