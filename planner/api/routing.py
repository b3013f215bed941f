"""The API's route class: the caller is identified, and held to the route's scope, before the body is
read; a JSON body is read by the one parser, which refuses duplicate keys.

FastAPI reads and parses a route's body before it resolves the route's dependencies, so an
unauthenticated request with bad JSON would get a 422 (and its body parsed) before the 401. Every
API router is made with ``route_class=ApiRoute``: its handler identifies the caller first
(:func:`~planner.api.dependencies.identify`, a 401, 403 or 503 before anything is read), then
parses a JSON body with :func:`parse_json_body`, then hands the request to FastAPI, whose
``Request.json()`` returns that document. How much of a body is read at all is bounded before this
(:mod:`planner.api.limits`).
"""

# No ``from __future__ import annotations``: FastAPI reads the annotations of what it is given.

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from planner.api.dependencies import REQUIRED_SCOPE, app_of, caller, holding, identify, remember_caller
from planner.core.json_objects import unique_keys
from planner.errors import InvalidInput

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _malformed(reason: str, position: int = 0) -> RequestValidationError:
    """FastAPI's own shape for a body that is not JSON (rendered by the problem handler)."""
    error = {"type": "json_invalid", "loc": ("body", position), "msg": "JSON decode error",
             "input": {}, "ctx": {"error": reason}}  # fmt: skip
    return RequestValidationError([error])


def parse_json_body(raw: bytes) -> Any:
    """The JSON document of a request body, each key once per object: a repeated key is an
    InvalidInput naming it; a body that is not JSON is a ``json_invalid`` validation error. (How deep
    a field may nest is its validator's business: template data's is 32 levels.)"""
    try:
        document = json.loads(raw, object_pairs_hook=unique_keys)
    except InvalidInput:  # a repeated key, named
        raise
    except json.JSONDecodeError as exc:
        raise _malformed(exc.msg, exc.pos) from None
    except UnicodeDecodeError:
        raise _malformed("not UTF-8 text") from None
    except RecursionError:
        raise _malformed("nested too deeply") from None
    except ValueError:  # an integer longer than Python converts
        raise _malformed("a number of more than 4300 digits") from None
    return document


class JsonBodyRequest(Request):
    """A request whose JSON body is parsed once, by :func:`parse_json_body`."""

    async def json(self) -> Any:
        if not hasattr(self, "_document"):
            self._document = parse_json_body(await self.body())
        return self._document


def _guard(dependant: Dependant) -> tuple[bool, str | None]:
    """Whether the route needs a bearer token, and the scope it requires (if any)."""
    needs, scope = False, None
    for sub in dependant.dependencies:
        if sub.call is caller:
            needs = True
        if sub.call in REQUIRED_SCOPE:
            needs, scope = True, REQUIRED_SCOPE[sub.call]
        deeper, deeper_scope = _guard(sub)
        needs, scope = needs or deeper, scope or deeper_scope
    return needs, scope


def _declares_json(request: Request) -> bool:
    """Whether FastAPI would parse this body as JSON (its content type is JSON)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json")
    )


class ApiRoute(APIRoute):
    """An API route: caller first, then the body (see the module's docstring)."""

    def get_route_handler(self) -> Handler:
        handle = super().get_route_handler()
        needs_token, scope = _guard(self.dependant)
        takes_json = self.body_field is not None and not isinstance(self.body_field.field_info, params.Form)

        async def route_handler(request: Request) -> Response:
            request = JsonBodyRequest(request.scope, request.receive)
            if needs_token:
                principal = await run_in_threadpool(
                    identify, app_of(request), request.headers.get("authorization", "")
                )
                remember_caller(request, principal)
                if scope is not None:
                    holding(principal, scope)
            if takes_json and _declares_json(request):
                await request.json()
            return await handle(request)

        return route_handler
