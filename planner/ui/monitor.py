"""The operator's views of the machinery: workers, queues, the send history, and the search box.

What an operator paged at night opens first (rq-dashboard, Flower and Sidekiq's web UI have the
same): is any worker alive and what is it doing, how deep and how old are the queues, what went out
in the last hour and how late. Everything is read at the request; nothing here changes anything.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from planner.core.recipient_search import RecipientSearch
from planner.core.validation import ID_MAX
from planner.readmodels import history as send_history
from planner.readmodels.recipients import list_recipients
from planner.readmodels.workers import queue_views, worker_views
from planner.store.operator import status_of
from planner.ui import charts
from planner.ui.forms import whole_number
from planner.ui.web import UiDep, guarded, redirect

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/workers")
@guarded
def workers(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    found, read_at = worker_views(ui.app.redis)
    return ui.render(request, "workers.html", session=session, workers=found, read_at=read_at)


@router.get("/queues")
@guarded
def queues(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    now = ui.app.clock()
    return ui.render(request, "queues.html", session=session, queues=queue_views(ui.app, now), now=now)


@router.get("/history")
@guarded
def history(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    hours = whole_number(request.query_params.get("hours") or "1", "hours", 1, 24)
    now = ui.app.clock()
    with ui.app.sessions() as db:
        found = send_history.send_history(db, now, hours)
    return ui.render(
        request, "history.html", session=session, history=found, now=now, windows=list(send_history.WINDOWS),
        throughput=charts.throughput_chart(found.buckets, found.bucket_seconds),
        latency=charts.latency_chart(found.buckets),
    )  # fmt: skip


@router.get("/search")
@guarded
def search(request: Request, ui: UiDep) -> Response:
    """The header's box: a delivery id opens the delivery; an exact recipient id, email or phone
    number with one match opens the recipient; anything else lists the recipients it finds."""
    ui.session(request)
    text = (request.query_params.get("q") or "").strip()
    if not text:
        return redirect("/ui/recipients")
    if text.isdigit() and len(text) <= len(str(ID_MAX)):
        number = whole_number(text, "delivery id")
        with ui.app.sessions() as db:
            if status_of(db, number) is not None:
                return redirect(f"/ui/deliveries/{number}")
    wanted = RecipientSearch.parse(q=text)
    with ui.app.sessions() as db:
        found = list_recipients(db, wanted, limit=2)
    if len(found.rows) == 1 and (wanted.id_prefix is None or found.rows[0]["id"] == wanted.id_prefix):
        return redirect(f"/ui/recipients/{quote(found.rows[0]['id'])}")
    return redirect("/ui/recipients?" + urlencode({"q": text}))
