"""The plumbing the dashboard's pages share: templates, the session check, form bodies, error pages.

A page handler raises; :func:`guarded` turns what it raised into a clear 4xx page (never a
traceback), and a missing session into a redirect to the sign-in form (or a 401 for a post). The
request's session is looked up once, before the handler runs, on a worker thread (:class:`UiBinding`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, ParamSpec, TypeVar
from urllib.parse import parse_qs, quote

import structlog
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from planner.app import App
from planner.core.localtime import UTC, format_offset, to_local
from planner.core.wording import duration
from planner.errors import InvalidInput, NotFound, StateConflict
from planner.readmodels.timeline_words import detail_words
from planner.ui import charts
from planner.ui.learned_chart import learned_chart
from planner.ui.session import COOKIE, Signer, UiSession, csrf_ok, current_session

log = structlog.get_logger("planner.ui")

MAX_FORM_BYTES = 64 * 1024
FORECAST_TTL = timedelta(seconds=60)
P = ParamSpec("P")
T = TypeVar("T")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SignInFirst(Exception):
    """No valid session on a page view: go to the sign-in form, then come back."""


def _local(value: datetime | str | None, zone: str) -> str:
    if value is None:
        return ""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = to_local(instant, zone)
    name = local.tzname() or ""
    suffix = f" {name}" if name and name[0] not in "+-" else ""
    return f"{local:%Y-%m-%d %H:%M} {format_offset(local.utcoffset())}{suffix}"


def _utc(value: datetime | str | None) -> str:
    if value is None:
        return ""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M:%SZ}"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"


def make_templates() -> Environment:
    env = Environment(
        loader=PackageLoader("planner.ui", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = _local
    env.filters["utc"] = _utc
    env.filters["ago"] = _ago
    env.filters["duration"] = duration
    env.globals["bar"] = charts.bar
    env.globals["learned_chart"] = learned_chart
    env.globals["quote"] = quote
    env.globals["detail_words"] = detail_words
    return env


class Ui:
    """What every page needs: the service, the templates, the cookie signer."""

    def __init__(self, app: App, signer: Signer | None = None) -> None:
        self.app = app
        self.templates = make_templates()
        self.signer = signer or Signer.from_settings(app.settings)
        self._cache: dict[str, tuple[datetime, object]] = {}
        self._cache_lock = threading.Lock()
        self._refreshing: set[str] = set()

    def recent(self, name: str, now: datetime, compute: Callable[[], T]) -> tuple[T, datetime]:
        """``compute()``'s latest result and when it was computed: fresh if under :data:`FORECAST_TTL`
        old; otherwise the stale one is returned at once while one background thread recomputes it.

        For the overview's forecasts, which read every subscription (close to a second at 100,000
        recipients) and change only when the planner runs or data is imported: live refresh and a
        team of operators share one computation a minute, and no page waits for it but the first.
        """
        with self._cache_lock:
            cached = self._cache.get(name)
            stale = cached is None or not timedelta(0) <= now - cached[0] < FORECAST_TTL
            if cached is not None and stale and name not in self._refreshing:
                self._refreshing.add(name)
                threading.Thread(
                    target=self._refresh, args=(name, now, compute), name=f"ui-{name}", daemon=True
                ).start()
        if cached is not None:
            return cached[1], cached[0]  # type: ignore[return-value]
        value = compute()
        with self._cache_lock:
            self._cache[name] = (now, value)
        return value, now

    def _refresh(self, name: str, now: datetime, compute: Callable[[], object]) -> None:
        try:
            value = compute()
        except Exception as exc:  # the stale value stays; the next request tries again
            log.warning("dashboard refresh failed", name=name, error=f"{type(exc).__name__}: {exc}")
            value = None
        with self._cache_lock:
            self._refreshing.discard(name)
            if value is not None:
                self._cache[name] = (now, value)

    def render(
        self, request: Request, name: str, code: int = 200, session: UiSession | None = None, **context: Any
    ) -> HTMLResponse:
        html = self.templates.get_template(name).render(
            session=session, path=request.url.path, msg=request.query_params.get("msg"), **context
        )
        return HTMLResponse(html, status_code=code, headers=_SECURITY_HEADERS)

    def lookup(self, request: Request) -> UiSession | None:
        """The request's live session, or None (it reads the database: call it on a worker thread)."""
        return current_session(self.app, self.signer, request.cookies.get(COOKIE), self.app.clock())

    def session(self, request: Request) -> UiSession:
        """The request's session (looked up by :class:`UiBinding`); none is a sign-in or a 401."""
        found = signed_in(request)
        if found is None:
            if request.method == "GET":
                raise SignInFirst
            raise Refused(401, "Not signed in (or the session ended): sign in again.")
        return found

    def acting(self, request: Request, form: dict[str, list[str]]) -> UiSession:
        """The session of a changing request: signed in, the form's CSRF token, admin scope."""
        session = self.session(request)
        if not csrf_ok(session, first(form, "csrf")):
            raise Refused(403, "The form's CSRF token is missing or wrong: reload the page and try again.")
        if not session.can_act:
            raise Refused(
                403, f"{session.principal.name} has read access only: actions need the admin scope."
            )
        return session


# No framing (clickjacking), no sniffing, nothing from other origins: the pages need none.
_SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}


def first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (no multipart parser needed: the forms post only short fields), read
    no further than :data:`MAX_FORM_BYTES`."""
    too_large = Refused(413, f"The form is too large (over {MAX_FORM_BYTES} bytes).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_FORM_BYTES:
                raise too_large
            chunks.append(chunk)
    except HTTPException as exc:  # the server's own bound on bodies (planner.api.limits)
        raise Refused(exc.status_code, str(exc.detail)) from None
    body = b"".join(chunks)
    try:
        return parse_qs(body.decode(), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "The form could not be read.") from None


def _error(ui: Ui, request: Request, status: int, message: str) -> Response:
    try:
        session = signed_in(request)
    except Exception:
        session = None
    return ui.render(request, "error.html", code=status, session=session, status_code=status, message=message)


def _handle(ui: Ui, request: Request, exc: Exception) -> Response:
    if isinstance(exc, SignInFirst):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
    if isinstance(exc, Refused):
        return _error(ui, request, exc.status, str(exc))
    if isinstance(exc, StateConflict):
        return _error(
            ui, request, 409, f"Not possible now: {exc.field} is {exc.value!r}; expected {exc.expected}."
        )
    if isinstance(exc, NotFound):
        return _error(ui, request, 404, str(exc))
    if isinstance(exc, InvalidInput):
        return _error(ui, request, 400, str(exc))
    # A bug or an outage: logged with its traceback, shown as a plain page without one.
    log.exception("ui page failed", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
    return _error(ui, request, 500, "Something went wrong on the server; its log has the details.")


class UiBinding:
    """A dependency of every dashboard route: this dashboard's :class:`Ui` becomes the request's, and
    the request's session is looked up, once, on a worker thread (not for static files).

    The dashboard's routes are module-level functions; what they share (the service, the templates,
    the cookie signer) reaches them per request through this, then :func:`current_ui`, and the
    session through :meth:`Ui.session` (or :func:`signed_in`).
    """

    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def __call__(self, request: Request) -> None:
        request.state.ui = self.ui
        wanted = request.cookies.get(COOKIE) and not request.url.path.startswith("/ui/static/")
        try:
            found = await run_in_threadpool(self.ui.lookup, request) if wanted else None
        except Exception as exc:  # an outage: the handler raises it, and its page says so
            request.state.ui_session = exc
        else:
            request.state.ui_session = found


def signed_in(request: Request) -> UiSession | None:
    """The session :class:`UiBinding` found for the request (re-raising what the look-up raised)."""
    found = getattr(request.state, "ui_session", None)
    if isinstance(found, Exception):
        raise found
    return found


def ui_of(request: Request) -> Ui:
    ui = getattr(request.state, "ui", None)
    assert isinstance(ui, Ui), "dashboard routes are included by create_ui_router(), which binds a Ui"
    return ui


async def current_ui(request: Request) -> Ui:
    return ui_of(request)


#: The dashboard a page handler serves (see :class:`UiBinding`).
UiDep = Annotated[Ui, Depends(current_ui)]


def _request_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request:
    request = args[0] if args else kwargs["request"]
    assert isinstance(request, Request)
    return request


def guarded(fn: Callable[P, Response]) -> Callable[P, Response]:
    """For a sync page handler that takes the request: what it raises becomes a page."""

    @functools.wraps(fn)
    def page(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = _request_of(args, kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            return _handle(ui_of(request), request, exc)

    return page


def guarded_async(fn: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """For an async handler that takes the request: what it raises becomes a page."""

    @functools.wraps(fn)
    async def action(*args: P.args, **kwargs: P.kwargs) -> Response:
        request = _request_of(args, kwargs)
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            return _handle(ui_of(request), request, exc)

    return action


def redirect(path: str, msg: str | None = None) -> RedirectResponse:
    sep = "&" if "?" in path else "?"
    return RedirectResponse(path + (f"{sep}msg={quote(msg)}" if msg else ""), status_code=303)
