"""Provider webhooks under ``/v1/webhooks``: Twilio (status callbacks, inbound SMS), Mailgun, and a
provider-neutral email format.

Twilio's and Mailgun's callbacks carry no bearer token: their signature is the authentication, and
an unsigned or badly signed one is a 403 that changes nothing. A webhook whose secret is not
configured answers 503 naming the setting (the route exists; the service cannot check it). The
neutral format is for senders we control (a relay, another provider's adapter), authenticated like
the rest of the API with a ``write`` bearer token.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from planner.api import _audit, _responses, _scope_check
from planner.app import App
from planner.auth import Principal
from planner.commands.feedback import apply_inbound_sms, apply_report
from planner.core import feedback
from planner.core.feedback import DeliveryReport
from planner.errors import InvalidInput, TokenReused

#: Twilio's callbacks are a few hundred bytes; anything far larger is not one.
MAX_FORM_BYTES = 64 * 1024
TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_TWILIO_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    name: {"type": "string"}
                    for name in (
                        "MessageSid",
                        "MessageStatus",
                        "ErrorCode",
                        "From",
                        "To",
                        "Body",
                        "AccountSid",
                    )
                },
            }
        }
    },
}
_SIGNED = _responses(403, 413, 422, 503)
_SIGNED[403] = {**_SIGNED[403], "description": "Unsigned, badly signed, stale or replayed: nothing changed."}


class Outcome(BaseModel):
    recorded: bool
    reason: str | None = None
    delivery_id: int | None = None
    provider_status: str | None = None
    effects: list[str] = []


class MailgunSignature(BaseModel):
    timestamp: str | int
    token: str = Field(max_length=255)
    signature: str = Field(max_length=128)


class MailgunWebhook(BaseModel):
    """Mailgun's webhook body: the signature and the event."""

    model_config = ConfigDict(populate_by_name=True)

    signature: MailgunSignature | None = None
    event_data: dict[str, Any] = Field(default_factory=dict, alias="event-data")


class EmailEvent(BaseModel):
    """The provider-neutral email event (README, "Provider webhooks")."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=255, description="Unique per event: a repeat is ignored.")
    event: Literal["delivered", "bounced", "deferred", "complained"] = Field(
        description="bounced: a permanent failure (the address is marked invalid); deferred: a "
        "temporary one; complained: the recipient reported spam (opted out of the kind)."
    )
    message_id: str = Field(min_length=1, max_length=255, description="The Message-ID the service sent.")
    code: str | None = Field(None, max_length=20, description="The provider's code, e.g. '550'.")
    detail: str | None = Field(None, max_length=500)


def webhooks_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
    write = _scope_check(app, "write")

    async def twilio_form(request: Request) -> dict[str, str]:
        """The callback's form, once its X-Twilio-Signature has proved it Twilio's (else 403)."""
        token = _secret(app.settings.twilio_auth_token, "PLANNER_TWILIO_AUTH_TOKEN")
        if not app.settings.public_base_url:
            raise HTTPException(
                503, "PLANNER_PUBLIC_BASE_URL is unset: Twilio's signature covers the public URL"
            )
        body = await _read_at_most(request, MAX_FORM_BYTES)
        try:
            params = parse_qsl(body.decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            params = []
        query = f"?{request.url.query}" if request.url.query else ""
        url = f"{app.settings.public_base_url}{request.url.path}{query}"
        signature = request.headers.get("x-twilio-signature", "")
        if not params or not feedback.twilio_signed(token, url, params, signature):
            raise HTTPException(403, "missing or wrong X-Twilio-Signature; nothing was changed")
        return dict(params)

    @router.post("/twilio/status", openapi_extra={"requestBody": _TWILIO_FORM}, responses=_SIGNED)
    async def twilio_status(request: Request) -> Outcome:
        """Twilio's message status callback (the StatusCallback of every SMS sent): delivered,
        undelivered or failed, with the error code, on the delivery; a dead number (30003, 30005,
        30006) marks the recipient's SMS channel invalid. Signed with X-Twilio-Signature."""
        form = await twilio_form(request)
        report = feedback.twilio_status(form)
        if report is None:
            return Outcome(recorded=False, reason="not a final status")
        return await _apply(app, report)

    @router.post(
        "/twilio/inbound",
        openapi_extra={"requestBody": _TWILIO_FORM},
        responses={**_SIGNED, 200: {"description": "Empty TwiML.", "content": {"application/xml": {}}}},
        response_class=Response,
    )
    async def twilio_inbound(request: Request) -> Response:
        """An SMS to the service's number: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT opt the
        sender's number out of SMS, START or UNSTOP back in. Signed with X-Twilio-Signature."""
        form = await twilio_form(request)
        sms = feedback.twilio_inbound(form)
        if not sms.event_id:
            raise InvalidInput("MessageSid", form.get("MessageSid"), "Twilio's message id (1-200 characters)")
        await run_in_threadpool(apply_inbound_sms, app, sms, app.clock())
        return Response(TWIML_EMPTY, media_type="application/xml")

    @router.post("/mailgun", responses=_SIGNED)
    def mailgun(body: MailgunWebhook) -> Outcome:
        """Mailgun's webhook (delivered, failed, complained): signed with HMAC-SHA256 over timestamp
        and token; a stale timestamp or a reused token is refused. A permanent failure marks the
        address invalid; a complaint opts the recipient out of the message's kind."""
        key = _secret(app.settings.mailgun_signing_key, "PLANNER_MAILGUN_SIGNING_KEY")
        sig = body.signature
        now = app.clock()
        if sig is None or not feedback.mailgun_signed(key, str(sig.timestamp), sig.token, sig.signature, now):
            raise HTTPException(403, "missing, wrong or stale Mailgun signature; nothing was changed")
        report = feedback.mailgun_event(body.event_data, sig.token)
        if report is None:
            return Outcome(recorded=False, reason="not a delivery event")
        return _apply_now(app, report)

    @router.post("/email", responses=_responses(401, 403, 422, 503))
    def email(body: EmailEvent, who: Principal = Depends(write)) -> Outcome:
        """The provider-neutral email event (delivered, bounced, deferred, complained), found by
        the Message-ID. Scope: write."""
        report = DeliveryReport(
            provider="email",
            event_id=body.id,
            message_id=body.message_id,
            status=body.event,
            code=body.code,
            detail=body.detail,
            dead_address=body.event == "bounced",
            complaint=body.event == "complained",
        )
        outcome = _apply_now(app, report)
        if outcome.recorded:
            _audit(app, who, "email_event", f"delivery:{outcome.delivery_id}", {"event": body.event})
        return outcome

    return router


async def _read_at_most(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it grows past ``limit``: never read whole into memory."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body over {limit} bytes; not a Twilio callback")
        chunks.append(chunk)
    return b"".join(chunks)


def _secret(value: Any, setting: str) -> str:
    secret = value.get_secret_value() if value is not None else ""
    if not secret:
        raise HTTPException(503, f"{setting} is unset: this webhook cannot check signatures")
    return str(secret)


def _apply_now(app: App, report: DeliveryReport) -> Outcome:
    try:
        return Outcome(**apply_report(app, report, app.clock()))
    except TokenReused:
        raise HTTPException(403, "this signature's token already signed another event") from None


async def _apply(app: App, report: DeliveryReport) -> Outcome:
    return await run_in_threadpool(_apply_now, app, report)
