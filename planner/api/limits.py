"""Every request is bounded before it is read: its headers, and its body by route, in one place for
every reader.

:class:`BoundedRequests` wraps the whole application (the API, its middleware and the dashboard):
headers over :data:`MAX_HEADER_BYTES` are answered 431; a ``Content-Length`` over the route's bound
is answered 413 at once, nothing read and nothing authenticated; a body sent without one (chunked)
is read no further than the bound, then answered 413 whatever the route was doing with it. Either
way the connection is closed after the answer (``planner serve`` drops the rest of the body unread,
:mod:`planner.api.server`). The bounds (:data:`BODY_LIMITS`, else :data:`DEFAULT_BODY_BYTES`):

- ``/v1/imports``: 256 MiB of JSON Lines, streamed to a temporary file (1 MiB in memory);
- ``/v1/webhooks/...``: 64 KiB; providers' callbacks are a few KiB;
- ``/u/{token}``: 4 KiB; the one-click POST is ``List-Unsubscribe=One-Click``;
- ``/ui/...``: 64 KiB; the dashboard's forms post a few short fields;
- anything else: 256 KiB; a recipient document, or ``/notify`` with 64 KiB of template data.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from planner.api.problems import problem

KIB = 1024
MIB = 1024 * KIB
#: The request line and headers together (h11's default for an incomplete head, applied to all).
MAX_HEADER_BYTES = 16 * KIB
DEFAULT_BODY_BYTES = 256 * KIB
#: (path prefix, bound in bytes): the first matching prefix applies.
BODY_LIMITS: tuple[tuple[str, int], ...] = (
    ("/v1/imports", 256 * MIB),
    ("/v1/webhooks/", 64 * KIB),
    ("/u/", 4 * KIB),
    ("/ui", 64 * KIB),
)


def body_limit(path: str) -> int:
    """The most bytes of body a request to ``path`` may send."""
    return next((limit for prefix, limit in BODY_LIMITS if path.startswith(prefix)), DEFAULT_BODY_BYTES)


class BodyTooLarge(HTTPException):
    """Raised to whatever is reading a body that has grown past its bound."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"body over {limit} bytes, the most this route takes")


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int, *, declared: bool) -> None:
    said = "its Content-Length is" if declared else "it is"
    detail = f"body too large: {said} over {limit} bytes, the most {scope['path'][:100]} takes"
    response = problem(413, "Payload too large", detail, headers={"Connection": "close"})
    await response(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    return (_declared_length(scope) or 0) > 0 or "transfer-encoding" in headers


class BoundedRequests:
    """ASGI middleware: refuse headers over :data:`MAX_HEADER_BYTES` (431), and any body over its
    route's bound (413), before or while it is read. An answer given before the request's body was
    read to its end (a caller refused before it, a route that reads none) says ``Connection: close``:
    the server closes such a connection after the answer (:mod:`planner.api.server`), and a client
    told so opens a new one for its next request instead of sending it into the closing one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path", b"")) + sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head > MAX_HEADER_BYTES:
            detail = f"request headers over {MAX_HEADER_BYTES} bytes; nothing was read"
            response = problem(431, "Request headers too large", detail, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        limit = body_limit(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit, declared=True)
            return
        read = 0
        over = started = False
        unread = _has_body(scope)

        async def bounded_receive() -> Message:
            nonlocal read, over, unread
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                unread = unread and bool(message.get("more_body", False))
                if read > limit:
                    over = True
                    raise BodyTooLarge(limit)
            return message

        async def send_unless_over(message: Message) -> None:
            nonlocal started
            if over:  # the app's answer to BodyTooLarge: the 413 below replaces it
                return
            if message["type"] == "http.response.start":
                started = True
                if unread:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, send_unless_over)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refuse(scope, receive, send, limit, declared=False)
