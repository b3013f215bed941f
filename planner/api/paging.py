"""The API's side of keyset paging (:mod:`planner.core.paging`): the next page's link."""

from __future__ import annotations

from starlette.requests import Request


def next_link(request: Request, cursor: str, name: str = "after") -> str:
    """A ``Link`` header value (RFC 8288) naming the next page: this request's URL with the cursor."""
    url = request.url.include_query_params(**{name: cursor})
    return f'<{url.path}?{url.query}>; rel="next"'
