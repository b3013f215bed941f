"""The operator routes outside ``/v1`` (``/deliveries``, ``/notify``, ``/engagement``, ``/pauses``,
``/explain``, ``/status``): served for one more release under their old paths, each the same handler
as its ``/v1`` successor, marked deprecated in the OpenAPI document and answered with the headers
that say so and name the successor (every answer, errors included):

- ``Deprecation: @<epoch seconds>`` (RFC 9745): since when the route is deprecated;
- ``Sunset: <HTTP-date>`` (RFC 8594): when it stops answering;
- ``Link: </v1/...>; rel="successor-version"``: the same route under ``/v1``.

The old ``GET /deliveries`` names its recipient filter ``recipient``; ``/v1`` names it
``recipient_id``, as every body and answer does.
"""

# No ``from __future__ import annotations``: FastAPI reads the annotations of what it is given.

from datetime import UTC, datetime
from email.utils import format_datetime

from fastapi import APIRouter
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from planner.api.problems import COMMON_RESPONSES
from planner.api.routing import ApiRoute

DEPRECATED_SINCE = datetime(2026, 12, 7, tzinfo=UTC)
SUNSET = datetime(2027, 6, 30, tzinfo=UTC)
#: The old paths: each is itself or a prefix followed by "/" (``/deliveries/12/retry``).
OLD_PATHS = ("/deliveries", "/notify", "/engagement", "/pauses", "/explain", "/status")


def legacy_router(tag: str) -> APIRouter:
    """A router of old paths: its routes are deprecated in the OpenAPI document."""
    return APIRouter(tags=[tag], responses=COMMON_RESPONSES, route_class=ApiRoute, deprecated=True)


def is_old_path(path: str) -> bool:
    return any(path == old or path.startswith(f"{old}/") for old in OLD_PATHS)


def deprecation_headers(path: str) -> dict[str, str]:
    """The headers of an answer on the old ``path``."""
    return {
        "Deprecation": f"@{int(DEPRECATED_SINCE.timestamp())}",
        "Sunset": format_datetime(SUNSET, usegmt=True),
        "Link": f'</v1{path}>; rel="successor-version"',
    }


class DeprecationHeaders:
    """ASGI middleware: :func:`deprecation_headers` on every answer on an old path, whatever its
    handler builds (a 404, a 422 or a 401 included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_old_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        # The path as it came, still percent-encoded: a header holds latin-1 only.
        raw = scope.get("raw_path")
        added = deprecation_headers(raw.decode("latin-1") if raw else scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    # A page's own Link (rel="next") stays: link values are a comma-separated list.
                    earlier = headers.get(name) if name == "Link" else None
                    headers[name] = f"{earlier}, {value}" if earlier else value
            await send(message)

        await self.app(scope, receive, send_with_headers)
