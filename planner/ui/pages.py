"""The dashboard's pages: overview, deliveries, dead letters, recipients, pauses (and its static files).

Pages read through the same code as ``planner status``, ``deliveries list|show``, ``explain`` and
``simulate``. Query strings are parsed here (:mod:`planner.ui.forms`), not by FastAPI, so that a bad
value gets this dashboard's 400 page rather than the API's JSON.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from planner.app import App
from planner.core import validation
from planner.core.paging import decode_cursor
from planner.core.status import Channel, DeliveryStatus
from planner.readmodels import dashboard
from planner.readmodels.explain import explain
from planner.readmodels.recipients import list_recipients, preferences_of, subscription_views
from planner.readmodels.simulate import simulate_recipient
from planner.readmodels.status import DEAD_WINDOW, IN_FLIGHT, SETTLED_STATUSES, SETTLED_WINDOW
from planner.store.queries import get_delivery, pause_list, recipient_by_external_id
from planner.store.subscriptions import recipient_subscriptions
from planner.ui import charts
from planner.ui.forms import (
    FILTER_FIELDS,
    SEARCH_FIELDS,
    delivery_filter,
    optional_date,
    recipient_search,
    whole_number,
)
from planner.ui.web import UiDep, guarded, redirect

PER_PAGE = 50

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("")
@guarded
def overview(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    app, now = ui.app, ui.app.clock()
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
        in_flight=IN_FLIGHT, settled=SETTLED_STATUSES,
        windows={"dead": DEAD_WINDOW, "settled": SETTLED_WINDOW},
    )  # fmt: skip


@router.get("/deliveries")
@guarded
def deliveries(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    params = request.query_params
    flt = delivery_filter(params)
    after = params.get("after") or None
    if after is not None:
        flt = replace(flt, after=decode_cursor(after))
    with ui.app.sessions() as db:
        result = dashboard.deliveries_page(db, flt, PER_PAGE)
    keep = {k: v for k, v in params.items() if k in FILTER_FIELDS and v}
    next_link = "?" + urlencode({**keep, "after": result.next_after}) if result.next_after else None
    first_link = "?" + urlencode(keep) if after else None
    return ui.render(
        request, "deliveries.html", session=session, result=result, flt=flt, query=keep,
        statuses=list(DeliveryStatus), channels=list(Channel), next_link=next_link, first_link=first_link,
    )  # fmt: skip


@router.get("/deliveries/{delivery_id}")
@guarded
def delivery(request: Request, ui: UiDep, delivery_id: str) -> Response:
    session = ui.session(request)
    number = whole_number(delivery_id, "delivery id")
    with ui.app.sessions() as db:
        data = get_delivery(db, number)
        zone = recipient_by_external_id(db, data["recipient_id"]).timezone
    return ui.render(request, "delivery.html", session=session, d=data, zone=zone)


@router.get("/dead")
@guarded
def dead(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    within, since = dashboard.dead_window(request.query_params.get("within"), ui.app.clock())
    with ui.app.sessions() as db:
        groups = dashboard.dead_letter_groups(db, since)
    return ui.render(
        request, "dead.html", session=session, groups=groups, within=within,
        windows=dashboard.DEAD_WINDOW_NAMES, since=since,
    )  # fmt: skip


@router.get("/recipients")
@guarded
def find_recipient(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    params = request.query_params
    wanted = params.get("id")
    if wanted:
        return redirect(f"/ui/recipients/{quote(validation.external_id(wanted, 'recipient'))}")
    search = recipient_search(params)
    after = params.get("after") or None
    with ui.app.sessions() as db:
        found = list_recipients(db, search, after, PER_PAGE)
    keep = {k: v for k, v in params.items() if k in SEARCH_FIELDS and v}
    next_link = "?" + urlencode({**keep, "after": found.next_after}) if found.next_after else None
    first_link = "?" + urlencode(keep) if after else None
    return ui.render(
        request, "recipient_search.html", session=session, found=found, query=keep,
        next_link=next_link, first_link=first_link,
    )  # fmt: skip


@router.get("/recipients/{external_id}")
@guarded
def recipient(request: Request, ui: UiDep, external_id: str) -> Response:
    session = ui.session(request)
    validation.external_id(external_id, "recipient")
    day = optional_date(request.query_params.get("date"), "date")
    return ui.render(request, "recipient.html", session=session, **_recipient_view(ui.app, external_id, day))


@router.get("/pauses")
@guarded
def pauses_page(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    with ui.app.sessions() as db:
        paused = pause_list(db)
    return ui.render(request, "pauses.html", session=session, paused=paused, channels=list(Channel))


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    kinds = {"ui.css": "text/css", "person.css": "text/css", "refresh.js": "text/javascript"}
    if name not in kinds:
        return Response("not found", status_code=404, media_type="text/plain")
    body = resources.files("planner.ui").joinpath("static", name).read_bytes()
    return Response(body, media_type=kinds[name], headers={"Cache-Control": "max-age=3600"})


def _recipient_view(app: App, external_id: str, day: date | None) -> dict[str, Any]:
    now = app.clock()
    with app.sessions() as db:
        person = recipient_by_external_id(db, external_id)
        assert person.id is not None
        subs = subscription_views(person, recipient_subscriptions(db, person.id))
        quiet = {c: app.policy.quiet_defaults.get(c) for c in Channel}
        own = {c: person.own_quiet_hours(c) for c in Channel}
    sends, _ = simulate_recipient(app, external_id, None, 14)
    verdicts = explain(app, external_id, now=now, local_date=day)
    return {
        "person": person, "subs": subs, "quiet": quiet, "own": own, "sends": sends,
        "preferences": preferences_of(person), "explained": verdicts, "day": verdicts["local_date"],
        "now": now,
    }  # fmt: skip
