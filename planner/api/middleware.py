"""What wraps every API request: the unknown-query guard, idempotency keys, OPTIONS/Allow, and the
unsubscribe page's security headers."""

# No ``from __future__ import annotations``: FastAPI reads the dependency annotations at runtime.

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from planner.api.dependencies import app_of
from planner.api.problems import echoed, internal_error, problem
from planner.app import App
from planner.auth import authenticate
from planner.errors import shown
from planner.store.idempotency import (
    CARRIED_OUT,
    IN_PROGRESS,
    StoredAnswer,
    marking_carried_out,
    release,
    reserve,
    store_answer,
)

CallNext = Callable[[Request], Awaitable[Response]]


def no_unknown_query(request: Request) -> None:
    """A dependency: a misspelt query parameter (``?statsu=dead``) is a 422, not silently all
    deliveries, and so is a one-value parameter given twice."""
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


class AllowedMethods(BaseHTTPMiddleware):
    """OPTIONS lists every method of the path, and so does a 405's Allow header.

    Starlette answers for the first route matching the path only, so ``/pauses/{target}`` (a POST
    route and a DELETE route) would list one of them. ``routes`` are the API's own (the dashboard
    under ``/ui`` is left to answer for itself).
    """

    def __init__(self, app: ASGIApp, routes: Iterable[BaseRoute]) -> None:
        super().__init__(app)
        self.routes = [r for r in routes if getattr(r, "methods", None)]

    async def dispatch(self, request: Request, call_next: CallNext) -> Response:
        path = request.scope["path"]
        methods = {m for r in self.routes if r.path_regex.match(path) for m in r.methods}  # type: ignore[attr-defined]
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        if request.method == "OPTIONS":
            if not methods:
                return problem(404, "Not found", f"no route {shown(path)}")
            return Response(status_code=204, headers={"Allow": allow})
        response = await call_next(request)
        if response.status_code == 405 and methods:
            response.headers["Allow"] = allow
        return response


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


async def idempotency(request: Request, call_next: CallNext) -> Response:
    """A POST with ``Idempotency-Key`` answers a repeat (same token, same request, within 24 h) with
    the first answer; the same key on another request is a 422 naming the key.

    Keys are per token and stored in the database. The key is reserved before the request runs
    (:func:`~planner.store.idempotency.reserve`), so two requests racing with one key run once: the
    second gets a 409 with Retry-After while the first runs, and its answer afterwards. A 5xx gives
    the key back only when none of the request's work committed; after a commit the 5xx is the
    answer kept (:func:`~planner.store.idempotency.marking_carried_out`).
    """
    key = request.headers.get("idempotency-key")
    if request.method != "POST" or key is None:
        return await call_next(request)
    if not _IDEMPOTENCY_KEY.match(key):
        error = {"loc": ["header", "Idempotency-Key"], "msg": "1-255 printable ASCII characters"}
        detail = f"Idempotency-Key: {shown(key)} is invalid; expected 1-255 printable ASCII characters"
        return problem(422, "Invalid input", detail, errors=[error])
    app = app_of(request)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    who = await run_in_threadpool(authenticate, app, given.strip()) if scheme.lower() == "bearer" else None
    if who is None:
        return await call_next(request)  # the route answers 401 (or it needs no token)
    body = await request.body()
    digest = hashlib.sha256(f"{request.url.path}?{request.url.query}\n".encode() + body).hexdigest()
    now = app.clock()
    stored = await _in_transaction(app, lambda s: reserve(s, who.name, key, digest, now))
    if stored is not None:
        return _answer_again(key, digest, stored)
    try:
        with marking_carried_out(who.name, key):
            response = await call_next(request)
    except BaseException:
        failed = internal_error()  # what the server answers for the exception
        answer = StoredAnswer(digest, failed.status_code, failed.media_type, bytes(failed.body).decode())
        await _in_transaction(app, lambda s: release(s, who.name, key, answer))
        raise
    chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    answer = StoredAnswer(
        digest, response.status_code, response.headers.get("content-type"), content.decode()
    )
    if response.status_code >= 500 or response.status_code in (401, 403, 503):
        # Not an answer to keep (the request may be sent again), unless its work committed.
        await _in_transaction(app, lambda s: release(s, who.name, key, answer))
    else:
        await _in_transaction(app, lambda s: store_answer(s, who.name, key, answer))
    return Response(content, response.status_code, headers=dict(response.headers))


async def _in_transaction(app: App, work: Callable[[Any], Any]) -> Any:
    """``work(session)`` in a transaction of its own, on a worker thread (the database blocks)."""

    def transaction() -> Any:
        with app.sessions() as session, session.begin():
            return work(session)

    return await run_in_threadpool(transaction)


def _answer_again(key: str, digest: str, stored: StoredAnswer) -> Response:
    """A request whose key is taken: the first answer, a 409 while the first request runs, or a 422
    when the key was used for another request."""
    if not hmac.compare_digest(stored.request_hash, digest):
        detail = f"Idempotency-Key {shown(key)} was used for another request; expected a new key"
        error = {"loc": ["header", "Idempotency-Key"], "msg": detail, "input": echoed(key)}
        return problem(422, "Invalid input", detail, errors=[error])
    if stored.status in (IN_PROGRESS, CARRIED_OUT):
        detail = f"a request with Idempotency-Key {shown(key)} is still running; send it again later"
        return problem(409, "Conflict", detail, headers={"Retry-After": "1"})
    headers = {"Idempotency-Replayed": "true"}
    return Response(stored.body, stored.status, headers=headers, media_type=stored.content_type)


#: The unsubscribe page is one button that acts on its recipient's behalf: no other site may frame
#: it (clickjacking), and its URL, which is its authentication, goes to no other site as a referrer.
UNSUBSCRIBE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PageHeaders:
    """ASGI middleware: :data:`UNSUBSCRIBE_HEADERS` on every answer under ``/u/`` (pages, the one-click
    answer and errors alike), whatever its handler builds."""

    def __init__(self, app: ASGIApp, prefix: str = "/u/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in UNSUBSCRIBE_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
