"""The operator dashboard's pages at ``/ui``: overview, deliveries, dead letters, recipients, pauses.

Pages read through the same operations code as ``planner status``, ``deliveries list|show``,
``explain`` and ``simulate``; actions call :mod:`planner.commands.ops` with the signed-in token's
name, which lands on each touched delivery's timeline. Query strings are parsed here, not by
FastAPI, so that a bad value gets this dashboard's 400 page rather than the API's JSON.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from planner.app import App
from planner.auth import authenticate
from planner.clock import parse_instant
from planner.commands import ops
from planner.core import validation
from planner.core.status import Channel, DeliveryStatus
from planner.errors import InvalidInput, StateConflict
from planner.readmodels import dashboard
from planner.readmodels.explain import explain
from planner.readmodels.simulate import simulate_recipient
from planner.store.models import Subscription
from planner.store.queries import DeliveryFilter, get_delivery, pause_list, recipient_by_external_id
from planner.store.tables import SUBSCRIPTIONS
from planner.ui import charts
from planner.ui.session import COOKIE, LIFETIME, LOGIN_COOKIE, LOGIN_LIFETIME, Signer, csrf_ok
from planner.ui.web import Refused, Ui, first, guarded, guarded_async, read_form, redirect, static_file

MAX_ID = 2**31 - 1  # the id columns are 32-bit INTEGER on PostgreSQL
MAX_SELECTION = 200
PER_PAGE = 50


def create_ui_router(app: App, signer: Signer | None = None) -> APIRouter:
    """The dashboard's routes; ``signer`` (default: a new key) signs the session cookies."""
    ui = Ui(app, signer)
    router = APIRouter(prefix="/ui", include_in_schema=False)
    _auth_routes(router, ui)
    _read_routes(router, ui)
    _action_routes(router, ui)
    router.add_api_route("/static/{name}", static_file, methods=["GET"])
    return router


# ----------------------------------------------------------------------------- parsing


def _int(value: str | None, field: str, low: int = 1, high: int = MAX_ID) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise InvalidInput(field, value, f"a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise InvalidInput(field, value, f"a whole number from {low} to {high}")
    return number


def _date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, value, "a date YYYY-MM-DD") from None


def _choice(value: str | None, field: str, allowed: list[str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise InvalidInput(field, value, f"one of {', '.join(allowed)}")
    return value


def _filter(params: Any) -> DeliveryFilter:
    recipient, kind, since = params.get("recipient"), params.get("kind"), params.get("since")
    return DeliveryFilter(
        status=_choice(params.get("status"), "status", list(DeliveryStatus)),
        recipient=validation.external_id(recipient, "recipient") if recipient else None,
        kind=validation.kind(kind, "kind") if kind else None,
        channel=_choice(params.get("channel"), "channel", list(Channel)),
        since=parse_instant(since, "since") if since else None,
    )


def _safe_next(target: str | None) -> str:
    """Only a path inside the dashboard (no open redirect to another site)."""
    if target and target.startswith("/ui") and not target.startswith("//"):
        return target
    return "/ui"


# ----------------------------------------------------------------------------- sign-in


def _auth_routes(router: APIRouter, ui: Ui) -> None:
    @router.get("/login")
    @guarded(ui)
    def login_form(request: Request) -> Response:
        return _login_page(ui, request, request.query_params.get("next"), None, 200)

    @router.post("/login")
    @guarded_async(ui)
    async def login(request: Request) -> Response:
        form = await read_form(request)
        now = ui.app.clock()
        target = _safe_next(first(form, "next"))
        if not ui.signer.check_login_nonce(
            request.cookies.get(LOGIN_COOKIE), first(form, "nonce") or "", now
        ):
            return _login_page(ui, request, target, "The form expired: please sign in again.", 403)
        principal = authenticate(ui.app, (first(form, "token") or "").strip())
        if principal is None:
            return _login_page(ui, request, target, "That token is not valid.", 401)
        value, _ = ui.signer.new_session(principal, now)
        response = RedirectResponse(target, status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE, value, max_age=int(LIFETIME.total_seconds()), path="/ui",
            httponly=True, samesite="strict", secure=secure,
        )  # fmt: skip
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response

    @router.post("/logout")
    @guarded_async(ui)
    async def logout(request: Request) -> Response:
        form = await read_form(request)
        session = ui.session(request)
        if not csrf_ok(session, first(form, "csrf")):
            raise Refused(403, "The form's CSRF token is missing or wrong.")
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ui")
        return response


def _login_page(ui: Ui, request: Request, target: str | None, error: str | None, status: int) -> Response:
    nonce, cookie = ui.signer.login_nonce(ui.app.clock())
    response = ui.render(
        request, "login.html", code=status, nonce=nonce, next=_safe_next(target), error=error
    )
    response.set_cookie(
        LOGIN_COOKIE, cookie, max_age=int(LOGIN_LIFETIME.total_seconds()), path="/ui",
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


# ----------------------------------------------------------------------------- pages


def _read_routes(router: APIRouter, ui: Ui) -> None:
    app = ui.app

    @router.get("")
    @guarded(ui)
    def overview(request: Request) -> Response:
        session = ui.session(request)
        now = app.clock()
        # Three independent reads, each its own connection: the page waits for the slowest only.
        with ThreadPoolExecutor(3, thread_name_prefix="ui-overview") as pool:
            status = pool.submit(dashboard.overview_status, app, now)
            forecast = pool.submit(ui.recent, "forecast", now, lambda: dashboard.sends_next_hours(app, now))
            transitions = pool.submit(ui.recent, "dst", now, lambda: dashboard.dst_transitions(app, now))
        counts = status.result()
        (sends, computed), (changes, _) = forecast.result(), transitions.result()
        return ui.render(
            request, "overview.html", session=session, now=now, status=counts, forecast=sends,
            computed=computed, chart=charts.sends_chart(sends.buckets), transitions=changes,
            total=sum(counts["deliveries"].values()), statuses=list(DeliveryStatus),
            open_statuses=dashboard.OPEN_STATUSES,
        )  # fmt: skip

    @router.get("/deliveries")
    @guarded(ui)
    def deliveries(request: Request) -> Response:
        session = ui.session(request)
        params = request.query_params
        flt = _filter(params)
        page = _int(params.get("page") or "1", "page", 1, dashboard.MAX_PAGE)
        with app.sessions() as db:
            result = dashboard.deliveries_page(db, flt, page, PER_PAGE)
        keep = {k: v for k, v in params.items() if k != "page" and v}

        def link(number: int) -> str:
            return "?" + urlencode({**keep, "page": number})

        return ui.render(
            request, "deliveries.html", session=session, result=result, flt=flt, query=keep,
            statuses=list(DeliveryStatus), channels=list(Channel), link=link,
        )  # fmt: skip

    @router.get("/deliveries/{delivery_id}")
    @guarded(ui)
    def delivery(request: Request, delivery_id: str) -> Response:
        session = ui.session(request)
        number = _int(delivery_id, "delivery id")
        with app.sessions() as db:
            data = get_delivery(db, number)
            zone = recipient_by_external_id(db, data["recipient_id"]).timezone
        return ui.render(request, "delivery.html", session=session, d=data, zone=zone)

    @router.get("/dead")
    @guarded(ui)
    def dead(request: Request) -> Response:
        session = ui.session(request)
        with app.sessions() as db:
            groups = dashboard.dead_letter_groups(db)
        return ui.render(request, "dead.html", session=session, groups=groups)

    @router.get("/recipients")
    @guarded(ui)
    def find_recipient(request: Request) -> Response:
        session = ui.session(request)
        wanted = request.query_params.get("id")
        if wanted:
            return redirect(f"/ui/recipients/{quote(validation.external_id(wanted, 'recipient'))}")
        return ui.render(request, "recipient_search.html", session=session)

    @router.get("/recipients/{external_id}")
    @guarded(ui)
    def recipient(request: Request, external_id: str) -> Response:
        session = ui.session(request)
        validation.external_id(external_id, "recipient")
        day = _date(request.query_params.get("date"), "date")
        return ui.render(request, "recipient.html", session=session, **_recipient_view(app, external_id, day))

    @router.get("/pauses")
    @guarded(ui)
    def pauses_page(request: Request) -> Response:
        session = ui.session(request)
        with app.sessions() as db:
            paused = pause_list(db)
        return ui.render(request, "pauses.html", session=session, paused=paused, channels=list(Channel))


def _recipient_view(app: App, external_id: str, day: date | None) -> dict[str, Any]:
    now = app.clock()
    with app.sessions() as db:
        person = recipient_by_external_id(db, external_id)
        subs = list(
            db.scalars(
                select(Subscription)
                .where(SUBSCRIPTIONS.c.recipient_id == person.id)
                .order_by(SUBSCRIPTIONS.c.kind, SUBSCRIPTIONS.c.channel)
            )
        )
        quiet = {c: app.policy.quiet_defaults.get(c) for c in Channel}
        own = {c: person.own_quiet_hours(c) for c in Channel}
    sends, _ = simulate_recipient(app, external_id, None, 14)
    verdicts = explain(app, external_id, now=now, local_date=day)
    return {
        "person": person, "subs": subs, "quiet": quiet, "own": own, "sends": sends,
        "explained": verdicts, "day": verdicts["local_date"], "now": now,
    }  # fmt: skip


# ----------------------------------------------------------------------------- actions


def _ids(form: dict[str, list[str]]) -> list[int]:
    ids = sorted({_int(v, "delivery id") for v in form.get("id", [])})
    if not ids:
        raise InvalidInput("id", None, "at least one delivery (tick its box)")
    if len(ids) > MAX_SELECTION:
        raise InvalidInput("id", len(ids), f"at most {MAX_SELECTION} deliveries at once")
    return ids


def _apply(app: App, action: str, ids: list[int], actor: str) -> tuple[list[int], list[tuple[int, str]]]:
    """Retry or cancel each delivery through ops; one refusal does not stop the others."""
    done: list[int] = []
    refused: list[tuple[int, str]] = []
    for delivery_id in ids:
        try:
            if action == "retry":
                ops.retry(app, delivery_id, app.clock(), actor=actor)
            else:
                ops.cancel(app, delivery_id, app.clock(), actor=actor)
            done.append(delivery_id)
        except StateConflict as exc:
            refused.append((delivery_id, str(exc.value)))
    return done, refused


def _summary(action: str, done: list[int], refused: list[tuple[int, str]]) -> str:
    verb = "queued again" if action == "retry" else "cancelled"
    text = f"{len(done)} {verb}" + (f": {', '.join(map(str, done[:20]))}" if done else "")
    if refused:
        text += f"; refused {len(refused)}: " + ", ".join(f"{i} ({status})" for i, status in refused[:20])
    return text


def _action_routes(router: APIRouter, ui: Ui) -> None:
    app = ui.app

    @router.post("/deliveries/{delivery_id}/{action}")
    @guarded_async(ui)
    async def one(request: Request, delivery_id: str, action: str) -> Response:
        form = await read_form(request)
        session = ui.acting(request, form)
        number = _int(delivery_id, "delivery id")
        if action not in ("retry", "cancel"):
            raise Refused(404, f"No action {action!r}: retry or cancel.")
        done, refused = await run_in_threadpool(_apply, app, action, [number], session.principal.name)
        if refused:
            verb = "retried" if action == "retry" else "cancelled"
            raise Refused(409, f"Delivery {number} cannot be {verb}: it is {refused[0][1]}.")
        return redirect(f"/ui/deliveries/{number}", f"delivery {number}: {_summary(action, done, refused)}")

    @router.post("/dead/{action}")
    @guarded_async(ui)
    async def selection(request: Request, action: str) -> Response:
        form = await read_form(request)
        session = ui.acting(request, form)
        if action not in ("retry", "cancel"):
            raise Refused(404, f"No action {action!r}: retry or cancel.")
        ids = _ids(form)
        done, refused = await run_in_threadpool(_apply, app, action, ids, session.principal.name)
        return redirect("/ui/dead", _summary(action, done, refused))

    @router.post("/pauses")
    @guarded_async(ui)
    async def pause_or_resume(request: Request) -> Response:
        form = await read_form(request)
        session = ui.acting(request, form)
        target = (first(form, "target") or "").strip()
        action = _choice(first(form, "action"), "action", ["pause", "resume"])
        if action is None:
            raise InvalidInput("action", None, "pause or resume")
        operation = ops.pause if action == "pause" else ops.resume
        result = await run_in_threadpool(operation, app, target, app.clock(), actor=session.principal.name)
        word = {"pause": ("paused", "was already paused"), "resume": ("resumed", "was not paused")}[action]
        text = f"{result['scope']} {result['value']} " + (word[0] if result["changed"] else word[1])
        if action == "resume" and result["changed"]:
            text += f"; {result['requeued']} waiting deliveries queued"
        return redirect("/ui/pauses", text)
