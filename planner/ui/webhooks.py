"""The dashboard's webhooks page: the endpoints, the notice of one the service disabled, each
endpoint's latest events and attempts (status, latency, response code, body excerpt), and a
redeliver button per event (admin scope, the session's CSRF token)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from planner.commands import webhooks
from planner.readmodels.webhooks import notices, webhook_state
from planner.ui.forms import whole_number
from planner.ui.web import UiDep, guarded, guarded_async, read_form, redirect

LATEST = 50

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.get("/webhooks")
@guarded
def endpoints_page(request: Request, ui: UiDep) -> Response:
    session = ui.session(request)
    state = webhook_state(ui.app)
    rows = webhooks.list_endpoints(ui.app)
    return ui.render(
        request, "webhooks.html", session=session, rows=rows, notices=notices(state), endpoint=None
    )


@router.get("/webhooks/{endpoint_id}")
@guarded
def endpoint_page(request: Request, ui: UiDep, endpoint_id: str) -> Response:
    session = ui.session(request)
    number = whole_number(endpoint_id, "endpoint id")
    shown = webhooks.show(ui.app, number, limit=LATEST)
    tried = webhooks.attempts(ui.app, number, limit=LATEST)
    return ui.render(
        request, "webhooks.html", session=session, endpoint=shown, attempts=tried, notices=[], rows=[]
    )


@router.post("/webhooks/{endpoint_id}/messages/{message_id}/redeliver")
@guarded_async
async def redeliver(request: Request, ui: UiDep, endpoint_id: str, message_id: str) -> Response:
    form = await read_form(request)
    session = ui.acting(request, form)
    endpoint = whole_number(endpoint_id, "endpoint id")
    message = whole_number(message_id, "event id")
    app = ui.app
    done = await run_in_threadpool(
        lambda: webhooks.redeliver(
            app, message, now=app.clock(), actor=session.principal.name, endpoint=endpoint
        )
    )
    return redirect(f"/ui/webhooks/{endpoint}", f"event {message} ({done['msg_id']}) will be sent again now")
