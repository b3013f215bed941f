"""The dashboard's actions: retry or cancel deliveries, pause or resume a channel or kind.

Each calls the commands (:mod:`planner.commands.delivery_actions`, :mod:`planner.commands.pauses`)
with the signed-in token's name, which lands on each touched delivery's timeline; a form that
changes something needs the session's CSRF token and the admin scope.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from planner.app import App
from planner.commands import delivery_actions, pauses
from planner.errors import InvalidInput, StateConflict
from planner.ui.forms import FILTER_FIELDS, choice, delivery_filter, whole_number
from planner.ui.web import Refused, UiDep, first, guarded, guarded_async, read_form, redirect

MAX_SELECTION = 200

router = APIRouter(prefix="/ui", include_in_schema=False)


@router.post("/deliveries/{delivery_id}/{action}")
@guarded_async
async def one(request: Request, ui: UiDep, delivery_id: str, action: str) -> Response:
    form = await read_form(request)
    session = ui.acting(request, form)
    number = whole_number(delivery_id, "delivery id")
    if action not in ("retry", "cancel"):
        raise Refused(404, f"No action {action!r}: retry or cancel.")
    done, refused = await run_in_threadpool(_apply, ui.app, action, [number], session.principal.name)
    if refused:
        verb = "retried" if action == "retry" else "cancelled"
        raise Refused(409, f"Delivery {number} cannot be {verb}: it is {refused[0][1]}.")
    return redirect(f"/ui/deliveries/{number}", f"delivery {number}: {_summary(action, done, refused)}")


@router.post("/dead/{action}")
@guarded_async
async def selection(request: Request, ui: UiDep, action: str) -> Response:
    form = await read_form(request)
    session = ui.acting(request, form)
    if action not in ("retry", "cancel"):
        raise Refused(404, f"No action {action!r}: retry or cancel.")
    ids = _ids(form)
    done, refused = await run_in_threadpool(_apply, ui.app, action, ids, session.principal.name)
    return redirect("/ui/dead", _summary(action, done, refused))


@router.get("/requeue")
@guarded
def requeue_confirm(request: Request, ui: UiDep) -> Response:
    """How many dead and retrying deliveries the deliveries page's filter holds, and a button to
    requeue them (admin)."""
    session = ui.session(request)
    if not session.can_act:
        who = session.principal.name
        raise Refused(403, f"{who} has read access only: requeueing needs the admin scope.")
    flt = delivery_filter(request.query_params)
    count = delivery_actions.count_retryable(ui.app, flt)
    keep = {k: v for k, v in request.query_params.items() if k in FILTER_FIELDS and v}
    return ui.render(
        request, "requeue.html", session=session, flt=flt, count=count, query=keep,
        limit=delivery_actions.MAX_REQUEUE, back="/ui/deliveries?" + urlencode(keep),
    )  # fmt: skip


@router.post("/requeue")
@guarded_async
async def requeue_all(request: Request, ui: UiDep) -> Response:
    """Requeue the filter's dead and retrying deliveries, through the same command as the CLI's."""
    form = await read_form(request)
    session = ui.acting(request, form)
    fields = {name: first(form, name) for name in FILTER_FIELDS}
    flt = delivery_filter(fields)
    app = ui.app
    result = await run_in_threadpool(
        delivery_actions.retry_matching, app, flt, app.clock(), session.principal.name
    )
    keep = {k: v for k, v in fields.items() if v}
    return redirect("/ui/deliveries?" + urlencode(keep), f"{len(result.requeued)} queued again")


@router.post("/pauses")
@guarded_async
async def pause_or_resume(request: Request, ui: UiDep) -> Response:
    form = await read_form(request)
    session = ui.acting(request, form)
    target = (first(form, "target") or "").strip()
    action = choice(first(form, "action"), "action", ["pause", "resume"])
    if action is None:
        raise InvalidInput("action", None, "pause or resume")
    operation = pauses.pause if action == "pause" else pauses.resume
    app = ui.app
    result = await run_in_threadpool(operation, app, target, app.clock(), actor=session.principal.name)
    word = {"pause": ("paused", "was already paused"), "resume": ("resumed", "was not paused")}[action]
    text = f"{result['scope']} {result['value']} " + (word[0] if result["changed"] else word[1])
    if action == "resume" and result["changed"]:
        text += f"; {result['requeued']} waiting deliveries queued"
    return redirect("/ui/pauses", text)


def _ids(form: dict[str, list[str]]) -> list[int]:
    ids = sorted({whole_number(v, "delivery id") for v in form.get("id", [])})
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
                delivery_actions.retry(app, delivery_id, app.clock(), actor=actor)
            else:
                delivery_actions.cancel(app, delivery_id, app.clock(), actor=actor)
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
