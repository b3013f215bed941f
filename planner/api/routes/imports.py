"""``/v1/imports``: recipients and engagement in bulk, as ``planner import`` takes them."""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

import tempfile
from typing import IO, Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from planner.api.dependencies import AppDep, Writer, audit
from planner.api.problems import COMMON_RESPONSES, problem, responses
from planner.api.routing import ApiRoute
from planner.app import App
from planner.commands import recipients
from planner.commands.importer import ImportFailed, ImportReport, import_lines

router = APIRouter(
    prefix="/v1",
    tags=["recipients", "imports"],
    responses={**COMMON_RESPONSES, **responses(404)},
    route_class=ApiRoute,
)

_SPOOL_IN_MEMORY = 1 << 20
_BODY = {
    "required": True,
    "description": "JSON Lines, the `planner import` format; read as a stream.",
    "content": {"text/plain": {"schema": {"type": "string"}}},
}


@router.post("/imports", openapi_extra={"requestBody": _BODY}, responses=responses(413))
async def import_endpoint(
    app: AppDep,
    request: Request,
    who: Writer,
    skip_invalid: Annotated[bool, Query(description="Import the good lines, list the bad ones.")] = False,
) -> JSONResponse:
    """Import recipients and engagement as `planner import` does: atomic unless `skip_invalid`;
    each rejected line is listed with its number, field, value and what was expected. Scope: write."""
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        async for chunk in request.stream():  # at most 256 MiB (planner.api.limits)
            spool.write(chunk)
        spool.seek(0)
        try:
            report = await run_in_threadpool(_import, app, spool, skip_invalid)
        except ImportFailed as exc:
            errors = [e.as_dict() for e in exc.errors]
            detail = f"{len(errors)} invalid line(s); nothing was imported; first: {exc.errors[0]}"
            return problem(422, "Invalid input", detail, errors=errors)
    audit(app, who, "imported", "import", {"lines": report.lines, "skipped": len(report.errors)})
    body = report.as_dict() | {"errors": [e.as_dict() for e in report.errors]}
    return JSONResponse(body)


def _import(app: App, spool: IO[bytes], skip_invalid: bool) -> ImportReport:
    now = app.clock()
    report = import_lines(
        app.sessions, spool, now, skip_invalid=skip_invalid, require_template=app.templates.require
    )
    recipients.plan_changes(app, report.recipient_ids, now)
    return report
