"""``/u/{token}``: the link in List-Unsubscribe. The signature is the authentication.

A person opening the link gets a page (:func:`planner.ui.person.unsubscribe_page`) that says in
words what they receive and lets them unsubscribe, or subscribe again once unsubscribed; its buttons
post ``action=unsubscribe|resubscribe`` and come back to the page. Any other POST is a mail
client's RFC 8058 one-click unsubscribe, answered for machines.

Every answer under ``/u/`` forbids framing and referrers (:class:`planner.api.middleware.PageHeaders`).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from planner.api.dependencies import AppDep
from planner.api.problems import responses
from planner.api.routing import ApiRoute
from planner.app import App
from planner.commands import recipients
from planner.core.unsubscribe import MAX_TOKEN, UnsubscribeTarget, verify
from planner.errors import NotFound
from planner.readmodels.recipients import link_state
from planner.ui.person import unsubscribe_page

router = APIRouter(tags=["unsubscribe"], responses=responses(404, 422), route_class=ApiRoute)

Token = Annotated[str, Path(max_length=MAX_TOKEN, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
#: The page's own buttons; a post without one of these is a one-click unsubscribe.
PAGE_ACTIONS = ("unsubscribe", "resubscribe")


_NOT_VALID = {"description": "The link does not verify: a page saying so.", "content": {"text/html": {}}}


@router.get("/u/{token}", response_class=HTMLResponse, responses={404: _NOT_VALID})
def confirm_page(app: AppDep, token: Annotated[str, Path(max_length=MAX_TOKEN)]) -> HTMLResponse:
    """The person's page; opening the link (as mail scanners do) changes nothing."""
    target = _verified(app, token)
    return unsubscribe_page(token, link_state(app, target) if target is not None else None)


@router.post("/u/{token}", response_model=None)
async def one_click(app: AppDep, token: Token, request: Request) -> dict[str, Any] | Response:
    """RFC 8058 one-click unsubscribe (the mail client's POST), or the page's buttons."""
    target = _target_of(app, token)
    action = _page_action(await request.body())
    change = recipients.resubscribe if action == "resubscribe" else recipients.unsubscribe
    await run_in_threadpool(change, app, target, app.clock())
    if action is not None:  # back to the page, which says what is now true
        return RedirectResponse(f"/u/{token}", status_code=303)
    return {"unsubscribed": True, "kind": target.kind, "channel": target.channel}


def _page_action(body: bytes) -> str | None:
    try:
        form = parse_qs(body[:1024].decode(), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    action = (form.get("action") or [""])[0]
    return action if action in PAGE_ACTIONS else None


def _verified(app: App, token: str) -> UnsubscribeTarget | None:
    """The token's target when it is signed under PLANNER_SIGNING_SECRET or a previous secret (links
    in mail sent before a rotation keep working)."""
    settings = app.settings
    for key in [settings.signing_secret, *settings.previous_signing_secrets]:
        secret = key.get_secret_value().encode() if key is not None else b""
        target = verify(secret, token) if secret else None
        if target is not None:
            return target
    return None


def _target_of(app: App, token: str) -> UnsubscribeTarget:
    target = _verified(app, token)
    if target is None:
        raise NotFound("unsubscribe link", token)
    return target
