"""The dashboard's sign-in: a form that takes an API token, and signing out."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from planner.ui.forms import safe_next
from planner.ui.session import COOKIE, LOGIN_COOKIE, LOGIN_LIFETIME, csrf_ok, sign_in, sign_out
from planner.ui.web import Refused, Ui, UiDep, first, guarded, guarded_async, read_form

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/login")
@guarded
def login_form(request: Request, ui: UiDep) -> Response:
    return _login_page(ui, request, request.query_params.get("next"), None, 200)


@router.post("/login")
@guarded_async
async def login(request: Request, ui: UiDep) -> Response:
    form = await read_form(request)
    now = ui.app.clock()
    target = safe_next(first(form, "next"))
    if not ui.signer.check_login_nonce(request.cookies.get(LOGIN_COOKIE), first(form, "nonce") or "", now):
        return _login_page(ui, request, target, "The form expired: please sign in again.", 403)
    token = (first(form, "token") or "").strip()
    opened = await run_in_threadpool(sign_in, ui.app, ui.signer, token, now, request.cookies.get(COOKIE))
    if opened is None:
        return _login_page(ui, request, target, "That token is not valid.", 401)
    value, _ = opened
    response = RedirectResponse(target, status_code=303)
    lifetime = int(ui.app.settings.ui_session_lifetime.total_seconds())
    response.set_cookie(
        COOKIE, value, max_age=lifetime, path="/ui",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@router.post("/logout")
@guarded_async
async def logout(request: Request, ui: UiDep) -> Response:
    """End the session (its row, so a copy of the cookie stops working too) and drop the cookie."""
    form = await read_form(request)
    session = ui.session(request)
    if not csrf_ok(session, first(form, "csrf")):
        raise Refused(403, "The form's CSRF token is missing or wrong.")
    await run_in_threadpool(sign_out, ui.app, session, ui.app.clock())
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def _login_page(ui: Ui, request: Request, target: str | None, error: str | None, status: int) -> Response:
    nonce, cookie = ui.signer.login_nonce(ui.app.clock())
    settings = ui.app.settings
    response = ui.render(
        request, "login.html", code=status, nonce=nonce, next=safe_next(target), error=error,
        idle=settings.ui_idle_timeout, lifetime=settings.ui_session_lifetime,
    )  # fmt: skip
    response.set_cookie(
        LOGIN_COOKIE, cookie, max_age=int(LOGIN_LIFETIME.total_seconds()), path="/ui",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response
