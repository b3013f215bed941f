"""Provider webhooks under ``/v1/webhooks``: Twilio (status callbacks, inbound SMS), Mailgun, and a
provider-neutral email format.

Twilio's and Mailgun's callbacks carry no bearer token: their signature is the authentication, and
an unsigned or badly signed one is a 403 that changes nothing. Their bodies are read no further than
64 KiB (:mod:`planner.api.limits`) before the signature is checked. A webhook whose secret is not
configured answers 503 naming the setting (the route exists; the service cannot check it). The
neutral format is for senders we control (a relay, another provider's adapter), authenticated like
the rest of the API with a ``write`` bearer token.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint annotations at runtime.

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from planner.api.dependencies import AppDep, Writer, audit
from planner.api.problems import responses
from planner.api.routing import ApiRoute
from planner.api.schemas import EmailEvent, MailgunWebhook, Outcome
from planner.app import App
from planner.commands.feedback import apply_inbound_sms, apply_report
from planner.core import feedback
from planner.core.feedback import DeliveryReport
from planner.errors import InvalidInput, TokenReused

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'

_TWILIO_FIELDS = ("MessageSid", "MessageStatus", "ErrorCode", "From", "To", "Body", "AccountSid")
_TWILIO_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {name: {"type": "string"} for name in _TWILIO_FIELDS}}
        }
    },
}
_SIGNED = responses(403, 413, 422, 503)
_SIGNED[403] = {**_SIGNED[403], "description": "Unsigned, badly signed, stale or replayed: nothing changed."}
_EMPTY_TWIML: dict[int | str, dict[str, Any]] = {
    200: {"description": "Empty TwiML.", "content": {"application/xml": {}}}
}

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)


@router.post("/twilio/status", openapi_extra={"requestBody": _TWILIO_FORM}, responses=_SIGNED)
async def twilio_status(app: AppDep, request: Request) -> Outcome:
    """Twilio's message status callback (the StatusCallback of every SMS sent): delivered,
    undelivered or failed, with the error code, on the delivery; a dead number (30003, 30005,
    30006) marks the recipient's SMS channel invalid. Signed with X-Twilio-Signature."""
    form = await _twilio_form(app, request)
    report = feedback.twilio_status(form)
    if report is None:
        return Outcome(recorded=False, reason="not a final status")
    return await run_in_threadpool(_apply_now, app, report)


@router.post(
    "/twilio/inbound",
    openapi_extra={"requestBody": _TWILIO_FORM},
    responses={**_SIGNED, **_EMPTY_TWIML},
    response_class=Response,
)
async def twilio_inbound(app: AppDep, request: Request) -> Response:
    """An SMS to the service's number: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT opt the
    sender's number out of SMS, START or UNSTOP back in. Signed with X-Twilio-Signature."""
    form = await _twilio_form(app, request)
    sms = feedback.twilio_inbound(form)
    if not sms.event_id:
        raise InvalidInput("MessageSid", form.get("MessageSid"), "Twilio's message id (1-200 characters)")
    await run_in_threadpool(apply_inbound_sms, app, sms, app.clock())
    return Response(TWIML_EMPTY, media_type="application/xml")


@router.post("/mailgun", responses=_SIGNED)
def mailgun(app: AppDep, body: MailgunWebhook) -> Outcome:
    """Mailgun's webhook (delivered, failed, complained, opened, clicked): signed with HMAC-SHA256
    over timestamp and token; a stale timestamp or a reused token is refused. A permanent failure
    marks the address invalid; a complaint opts the recipient out of the message's kind; an open or
    a click is the recipient's engagement."""
    key = _secret(app.settings.mailgun_signing_key, "PLANNER_MAILGUN_SIGNING_KEY")
    sig = body.signature
    now = app.clock()
    if sig is None or not feedback.mailgun_signed(key, str(sig.timestamp), sig.token, sig.signature, now):
        raise HTTPException(403, "missing, wrong or stale Mailgun signature; nothing was changed")
    report = feedback.mailgun_event(body.event_data, sig.token)
    if report is None:
        return Outcome(recorded=False, reason="not a delivery event")
    return _apply_now(app, report)


@router.post("/email", responses=responses(401, 403, 422, 503))
def email(app: AppDep, body: EmailEvent, who: Writer) -> Outcome:
    """The provider-neutral email event (delivered, bounced, deferred, complained; opened and
    clicked are the recipient's engagement), found by the Message-ID. Scope: write."""
    engaged = body.event in feedback.ENGAGEMENT_EVENTS
    report = DeliveryReport(
        provider="email",
        event_id=body.id,
        message_id=body.message_id,
        status=body.event,
        code=body.code,
        detail=body.detail,
        dead_address=body.event == "bounced",
        complaint=body.event == "complained",
        engagement=body.event if engaged else None,
        occurred_at=body.at,
    )
    outcome = _apply_now(app, report)
    if outcome.recorded:
        audit(app, who, "email_event", f"delivery:{outcome.delivery_id}", {"event": body.event})
    return outcome


async def _twilio_form(app: App, request: Request) -> dict[str, str]:
    """The callback's form, once its X-Twilio-Signature has proved it Twilio's (else 403)."""
    token = _secret(app.settings.twilio_auth_token, "PLANNER_TWILIO_AUTH_TOKEN")
    if not app.settings.public_base_url:
        raise HTTPException(503, "PLANNER_PUBLIC_BASE_URL is unset: Twilio's signature covers the public URL")
    body = await request.body()  # at most 64 KiB (planner.api.limits): a callback is a few hundred bytes
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
