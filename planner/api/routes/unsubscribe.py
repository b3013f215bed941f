"""``/u/{token}``: the link in List-Unsubscribe. The signature is the authentication.

Every answer under ``/u/`` forbids framing and referrers (:class:`planner.api.middleware.PageHeaders`).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

import html
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from planner.api.dependencies import AppDep
from planner.api.problems import responses
from planner.api.routing import ApiRoute
from planner.app import App
from planner.commands import recipients
from planner.core.unsubscribe import MAX_TOKEN, UnsubscribeTarget, verify
from planner.errors import NotFound

router = APIRouter(tags=["unsubscribe"], responses=responses(404, 422), route_class=ApiRoute)

Token = Annotated[str, Path(max_length=MAX_TOKEN, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body><h1>Unsubscribe</h1><p>Stop receiving {kind} messages by {channel}?</p>
<form method="post" action="/u/{token}"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form></body></html>
"""


@router.get("/u/{token}", response_class=HTMLResponse)
def confirm_page(app: AppDep, token: Token) -> HTMLResponse:
    """A page with a confirm button; opening the link (as mail scanners do) changes nothing."""
    target = _target_of(app, token)
    return HTMLResponse(_PAGE.format(kind=html.escape(target.kind), channel=target.channel, token=token))


@router.post("/u/{token}")
def one_click(app: AppDep, token: Token) -> dict[str, Any]:
    """RFC 8058 one-click unsubscribe (the mail client's POST, or the page's button)."""
    target = _target_of(app, token)
    recipients.unsubscribe(app, target, app.clock())
    return {"unsubscribed": True, "kind": target.kind, "channel": target.channel}


def _target_of(app: App, token: str) -> UnsubscribeTarget:
    """The token's target when it is signed under PLANNER_SIGNING_SECRET or a previous secret (links
    in mail sent before a rotation keep working)."""
    settings = app.settings
    keys = [settings.signing_secret, *settings.previous_signing_secrets]
    for key in keys:
        secret = key.get_secret_value().encode() if key is not None else b""
        target = verify(secret, token) if secret else None
        if target is not None:
            return target
    raise NotFound("unsubscribe link", token)
