"""The management API under ``/v1``: recipients and their subscriptions.

Bodies are import lines (``planner import``'s format, without ``type``), parsed by the importer's
own code, so a body the API accepts is a line ``planner import`` accepts and the other way round.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

import html
import tempfile
from typing import IO, Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from planner.api import EXTERNAL_ID, KIND, ChannelName, Instant, _audit, _responses, _scope_check, problem
from planner.app import App
from planner.auth import Principal
from planner.commands import events, recipients
from planner.commands.importer import ImportFailed, ImportReport, import_lines
from planner.core import validation
from planner.core.unsubscribe import MAX_TOKEN, UnsubscribeTarget, verify
from planner.errors import NotFound

_EXAMPLE = {
    "timezone": "Europe/Paris",
    "email": "ann@example.com",
    "quiet_hours": {"email": {"start": "22:00", "end": "07:00"}},
    "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"}],
}

RecipientId = Annotated[str, Path(pattern=EXTERNAL_ID, description="The recipient's external id.")]
Kind = Annotated[str, Path(pattern=KIND, description="Notification kind.")]
Document = Annotated[
    dict[str, Any],
    Body(
        description="An import line without `type`: timezone, email, phone, quiet_hours, opt_out, "
        "locale, attributes, subscriptions (the full desired state: subscriptions left out stop).",
        openapi_examples={"recipient": {"value": _EXAMPLE}},
    ),
]
Changes = Annotated[
    dict[str, Any],
    Body(
        description="Some of timezone, email, phone, quiet_hours, opt_out, locale (BCP 47) and "
        "attributes (a JSON object templates get as recipient.attributes, up to 4096 bytes; replaced "
        "whole); the rest is kept.",
        openapi_examples={
            "zone": {"value": {"timezone": "America/New_York"}},
            "template data": {"value": {"locale": "pt-BR", "attributes": {"plan": "pro"}}},
        },
    ),
]
SubscriptionBody = Annotated[
    dict[str, Any],
    Body(
        description="`at` (HH:MM local, or a list), `days` ('daily', 'weekdays', 'mon,thu' or a list) "
        "or `rrule`, `start_date`, `end_date`, `snooze_until`, `digest`, `active`.",
        openapi_examples={"weekly": {"value": {"at": "10:45", "days": "mon,thu"}}},
    ),
]
SubscriptionChanges = Annotated[
    dict[str, Any],
    Body(
        description="Some fields of the subscription (as PUT takes them); the rest is kept. "
        "`snooze_until` null ends a snooze.",
        openapi_examples={"snooze": {"value": {"snooze_until": "2026-12-24"}}},
    ),
]


class EventRequest(BaseModel):
    """Something that happened for a recipient, for the next digest of ``kind``."""

    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(pattern=EXTERNAL_ID, description="The recipient's external id.")
    kind: str = Field(pattern=KIND, description="The digest's kind, e.g. 'comments_digest'.")
    data: dict[str, Any] | None = Field(None, description="What the digest's template lists.")
    occurred_at: Instant | None = Field(None, description="When it happened (default: now).")
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=255, description="Repeat-safe: the same key records one event."
    )

    @field_validator("recipient_id")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return validation.external_id(value, "recipient_id")


class Preference(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opted_out: bool


def v1_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["recipients"], responses=_responses(404))
    read = _scope_check(app, "read")
    write = _scope_check(app, "write")

    @router.get("/recipients/{recipient_id}")
    def get_recipient(recipient_id: RecipientId, who: Principal = Depends(read)) -> dict[str, Any]:
        """The recipient, its subscriptions and preferences, and its next 5 sends (local time, UTC,
        and the DST or quiet-hours rule applied, as `planner simulate` shows them). Scope: read."""
        return recipients.view(app, recipient_id, app.clock())

    @router.put("/recipients/{recipient_id}", responses={201: {"description": "Created."}})
    def put_recipient(
        recipient_id: RecipientId, body: Document, response: Response, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Create or replace the recipient (idempotent). Scope: write."""
        created, result = recipients.put_recipient(app, recipient_id, body, app.clock())
        response.status_code = 201 if created else 200
        _audit(
            app, who, "recipient_created" if created else "recipient_replaced", f"recipient:{recipient_id}"
        )
        return result

    @router.patch("/recipients/{recipient_id}")
    def patch_recipient(
        recipient_id: RecipientId, body: Changes, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Change some fields of the recipient. Scope: write."""
        result = recipients.patch_recipient(app, recipient_id, body, app.clock())
        _audit(app, who, "recipient_patched", f"recipient:{recipient_id}", {"fields": sorted(body)})
        return result

    @router.delete("/recipients/{recipient_id}")
    def delete_recipient(recipient_id: RecipientId, who: Principal = Depends(write)) -> dict[str, Any]:
        """Erase the recipient: personal data removed, history anonymised, pending deliveries
        cancelled with reason `recipient_deleted`. Scope: write."""
        result = recipients.erase(app, recipient_id, app.clock())
        _audit(
            app,
            who,
            "recipient_erased",
            f"recipient:{recipient_id}",
            {"cancelled": result["deliveries_cancelled"]},
        )
        return result

    @router.put("/recipients/{recipient_id}/subscriptions/{kind}/{channel}", tags=["subscriptions"])
    def put_subscription(
        recipient_id: RecipientId,
        kind: Kind,
        channel: ChannelName,
        body: SubscriptionBody,
        who: Principal = Depends(write),
    ) -> dict[str, Any]:
        """Create or change a subscription; pending future deliveries of a changed schedule are
        cancelled and planned again, at once when the last run's window covers them. Scope: write."""
        result = recipients.put_subscription(app, recipient_id, kind, channel, body, app.clock())
        _audit(
            app,
            who,
            "subscription_put",
            f"recipient:{recipient_id}/{kind}/{channel}",
            {"fields": sorted(body)},
        )
        return result

    @router.patch("/recipients/{recipient_id}/subscriptions/{kind}/{channel}", tags=["subscriptions"])
    def patch_subscription(
        recipient_id: RecipientId,
        kind: Kind,
        channel: ChannelName,
        body: SubscriptionChanges,
        who: Principal = Depends(write),
    ) -> dict[str, Any]:
        """Change some fields of an existing subscription, e.g. `{"snooze_until": "2026-12-24"}`
        (or null to end the snooze); the schedule-change rule of PUT applies. Scope: write."""
        result = recipients.patch_subscription(app, recipient_id, kind, channel, body, app.clock())
        _audit(
            app,
            who,
            "subscription_patched",
            f"recipient:{recipient_id}/{kind}/{channel}",
            {"fields": sorted(body)},
        )
        return result

    @router.post("/events", tags=["digests"], status_code=201, responses={200: {"description": "Repeated."}})
    def post_event(body: EventRequest, response: Response, who: Principal = Depends(write)) -> dict[str, Any]:
        """Record an event for the recipient's next digest of `kind`; a repeated `idempotency_key`
        answers 200 with the first event and records nothing. Scope: write."""
        created, result = events.record_event(
            app,
            body.recipient_id,
            body.kind,
            body.data,
            app.clock(),
            occurred_at=body.occurred_at,
            idempotency_key=body.idempotency_key,
        )
        if not created:
            response.status_code = 200
        else:
            _audit(app, who, "event_recorded", f"recipient:{body.recipient_id}/{body.kind}")
        return result

    @router.delete("/recipients/{recipient_id}/subscriptions/{kind}/{channel}", tags=["subscriptions"])
    def delete_subscription(
        recipient_id: RecipientId, kind: Kind, channel: ChannelName, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Stop a subscription; its pending future deliveries are cancelled. Scope: write."""
        result = recipients.delete_subscription(app, recipient_id, kind, channel, app.clock())
        _audit(app, who, "subscription_deleted", f"recipient:{recipient_id}/{kind}/{channel}")
        return result

    @router.post(
        "/imports",
        tags=["imports"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "JSON Lines, the `planner import` format; read as a stream.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
        responses=_responses(413),
    )
    async def import_endpoint(
        request: Request,
        skip_invalid: Annotated[bool, Query(description="Import the good lines, list the bad ones.")] = False,
        who: Principal = Depends(write),
    ) -> JSONResponse:
        """Import recipients and engagement as `planner import` does: atomic unless `skip_invalid`;
        each rejected line is listed with its number, field, value and what was expected. Scope: write."""
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > _MAX_IMPORT_BYTES:
                    raise HTTPException(413, f"body over {_MAX_IMPORT_BYTES} bytes; split the import")
                spool.write(chunk)
            spool.seek(0)
            try:
                report = await run_in_threadpool(_import, app, spool, skip_invalid)
            except ImportFailed as exc:
                errors = [e.as_dict() for e in exc.errors]
                detail = f"{len(errors)} invalid line(s); nothing was imported; first: {exc.errors[0]}"
                return problem(422, "Invalid input", detail, errors=errors)
        _audit(app, who, "imported", "import", {"lines": report.lines, "skipped": len(report.errors)})
        body = report.as_dict() | {"errors": [e.as_dict() for e in report.errors]}
        return JSONResponse(body)

    @router.put("/recipients/{recipient_id}/preferences/{channel}", tags=["preferences"])
    def put_channel_preference(
        recipient_id: RecipientId, channel: ChannelName, body: Preference, who: Principal = Depends(write)
    ) -> dict[str, Any]:
        """Opt the recipient out of (or back into) a whole channel. Scope: write."""
        result = recipients.set_preference(app, recipient_id, channel, None, body.opted_out, app.clock())
        _audit(
            app, who, "preference_set", f"recipient:{recipient_id}/{channel}", {"opted_out": body.opted_out}
        )
        return result

    @router.put("/recipients/{recipient_id}/preferences/{channel}/{kind}", tags=["preferences"])
    def put_kind_preference(
        recipient_id: RecipientId,
        channel: ChannelName,
        kind: Kind,
        body: Preference,
        who: Principal = Depends(write),
    ) -> dict[str, Any]:
        """Opt the recipient out of (or back into) one kind on a channel; a critical kind
        (PLANNER_CRITICAL_KINDS) cannot be opted out of (422). Scope: write."""
        result = recipients.set_preference(app, recipient_id, channel, kind, body.opted_out, app.clock())
        target = f"recipient:{recipient_id}/{kind}/{channel}"
        _audit(app, who, "preference_set", target, {"opted_out": body.opted_out})
        return result

    return router


_SPOOL_IN_MEMORY = 1 << 20
_MAX_IMPORT_BYTES = 256 << 20


def _import(app: App, spool: IO[bytes], skip_invalid: bool) -> ImportReport:
    now = app.clock()
    report = import_lines(
        app.sessions, spool, now, skip_invalid=skip_invalid, has_template=app.templates.has_template
    )
    recipients.plan_changes(app, report.recipient_ids, now)
    return report


Token = Annotated[str, Path(max_length=MAX_TOKEN, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body><h1>Unsubscribe</h1><p>Stop receiving {kind} messages by {channel}?</p>
<form method="post" action="/u/{token}"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form></body></html>
"""


def unsubscribe_router(app: App) -> APIRouter:
    """``/u/{token}``: the link in List-Unsubscribe. The signature is the authentication."""
    router = APIRouter(tags=["unsubscribe"], responses=_responses(404, 422))

    def target_of(token: str) -> UnsubscribeTarget:
        secret = app.settings.signing_secret.get_secret_value() if app.settings.signing_secret else ""
        target = verify(secret.encode(), token)
        if target is None:
            raise NotFound("unsubscribe link", token)
        return target

    @router.get("/u/{token}", response_class=HTMLResponse)
    def confirm_page(token: Token) -> HTMLResponse:
        """A page with a confirm button; opening the link (as mail scanners do) changes nothing."""
        target = target_of(token)
        return HTMLResponse(_PAGE.format(kind=html.escape(target.kind), channel=target.channel, token=token))

    @router.post("/u/{token}")
    def one_click(token: Token) -> dict[str, Any]:
        """RFC 8058 one-click unsubscribe (the mail client's POST, or the page's button)."""
        target = target_of(token)
        recipients.unsubscribe(app, target, app.clock())
        return {"unsubscribed": True, "kind": target.kind, "channel": target.channel}

    return router
