"""Channel fallback across the wire, on SQLite and PostgreSQL: the planner's SMTP and Twilio adapters
against a real aiosmtpd server and the Twilio-shaped Messages API, the providers' signed webhooks
posted to the service's HTTP API over loopback, and every message counted at the server that
received it.

* A daily brief by email bounces (Mailgun's signed ``failed``/``permanent`` event): the SMS goes out
  once, however often the bounce is reported.
* An SMS the provider reports ``undelivered`` (Twilio's signed status callback): the email goes out,
  in the recipient's language (the bytes the SMTP server received); the SMS's late "delivered" is
  recorded and sends nothing more.
* An email refused at RCPT (550 5.1.1): the SMS, planned with the worker's outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from planner.app import App, build_deliverer, build_runner
from planner.commands.importer import import_lines
from planner.core.feedback import twilio_signature
from planner.delivery.deliverer import Deliverer
from planner.store.queries import get_delivery
from tests.api.test_webhooks import mailgun_body
from tests.faults.harness import serving_api
from tests.faults.servers import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    LOOPBACK,
    FaultSms,
    FaultSmtp,
    running_sms,
    running_smtp,
)
from tests.helpers import Clock, jobs_in_redis, recipient_line

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BASE = "https://planner.example.com"
MAILGUN_KEY = "key-fallback-wire"
API_TOKEN = "fallback-wire-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
#: The app, the SMTP server, the Messages API, a client of the app's HTTP API, the app's clock.
Wire = tuple[App, "RawSmtp", FaultSms, httpx.Client, Clock]


class RawSmtp(FaultSmtp):
    """The fault suite's SMTP server, keeping each message's bytes as received (read without the
    email package that wrote them)."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if reply.startswith("250"):
            with self.lock:
                self.raw.append(envelope.original_content)
        return reply


@pytest.fixture
def wire(any_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    """The app sending through smtp and twilio to loopback servers, its API serving the webhooks."""
    smtp = RawSmtp()
    with running_smtp(smtp) as smtp_port, running_sms() as sms:
        env = {
            "PLANNER_SMTP_HOST": LOOPBACK,
            "PLANNER_SMTP_PORT": str(smtp_port),
            "PLANNER_SMTP_SECURITY": "none",
            "PLANNER_SMTP_FROM_ADDRESS": "planner@example.com",
            "PLANNER_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "PLANNER_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PLANNER_TWILIO_FROM_NUMBER": "+15005550006",
            "PLANNER_TWILIO_BASE_URL": sms.base_url,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        french = tmp_path / "templates" / "reminder" / "fr"
        french.mkdir(parents=True)
        (french / "email_subject.txt").write_text("Votre rappel du {{ scheduled_at | localdate('full') }}")
        (french / "email.txt").write_text("Bonjour, il est {{ scheduled_at | localtime }} à Paris.")
        clock = Clock(NOW)
        any_app.clock = clock
        settings = any_app.settings
        settings.email_adapter, settings.sms_adapter = "smtp", "twilio"
        settings.templates_dir = tmp_path / "templates"
        settings.public_base_url = BASE
        settings.signing_secret = SecretStr("fallback-wire-signing-secret")
        settings.twilio_auth_token = SecretStr(AUTH_TOKEN)
        settings.mailgun_signing_key = SecretStr(MAILGUN_KEY)
        settings.api_token = SecretStr(API_TOKEN)
        settings.rate_limit_email = settings.rate_limit_sms = "1000/second"
        with serving_api(any_app) as api:
            yield any_app, smtp, sms, api, clock


def send_jobs(app: App, deliverer: Deliverer) -> list[int]:
    """Run every delivery job waiting in Redis (as a worker would); the ids they carried."""
    ran = []
    for job_id, ids in jobs_in_redis(app.redis).items():
        deliverer.deliver_batch(ids, job_id)
        app.redis.delete(f"rq:job:{job_id}")
        for name in ("default", "high", "bulk"):
            app.redis.lrem(f"rq:queue:{name}", 0, job_id)
            app.redis.zrem(f"rq:scheduled:{name}", job_id)
        ran += ids
    return ran


def shown(app: App, delivery_id: int) -> dict[str, Any]:
    with app.sessions() as session:
        return get_delivery(session, delivery_id)


def twilio_callback(api: httpx.Client, sid: str, status: str, code: str | None = None) -> httpx.Response:
    path = "/v1/webhooks/twilio/status"
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT_SID}
    if code is not None:
        form["ErrorCode"] = code
    signature = twilio_signature(AUTH_TOKEN, f"{BASE}{path}", form.items())
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return api.post(path, data=form, headers=headers)


def mailgun_bounce(api: httpx.Client, message_id: str, event_id: str, at: datetime) -> httpx.Response:
    event = {
        "event": "failed",
        "severity": "permanent",
        "id": event_id,
        "message": {"headers": {"message-id": message_id.strip("<>")}},
        "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
    }
    return api.post("/v1/webhooks/mailgun", json=mailgun_body(event, f"token-{event_id}", at, MAILGUN_KEY))


def test_a_bounced_email_sends_the_sms_once(wire: Wire) -> None:
    app, smtp, sms, api, clock = wire
    phone = "+15005550201"  # in UTC: 12:30 is outside the default SMS quiet hours
    subscription = {"kind": "daily_brief", "channel": "email", "at": "12:30",
                    "fallback": {"channel": "sms", "on": ["bounced"], "within": "2h"}}  # fmt: skip
    person = {"timezone": "UTC", "email": "ann@example.com", "phone": phone, "subscriptions": [subscription]}
    assert api.put("/v1/recipients/ann", json=person, headers=AUTH).status_code == 201
    build_runner(app).run(NOW, timedelta(hours=2))
    deliverer = build_deliverer(app)
    clock.now = NOW + timedelta(minutes=30)
    [first] = send_jobs(app, deliverer)
    assert smtp.to("ann@example.com") == 1 and sms.to(phone) == 0
    message_id = shown(app, first)["provider_message_id"]

    clock.now += timedelta(minutes=20)
    answer = mailgun_bounce(api, message_id, "ev-bounce-1", clock.now)
    assert answer.status_code == 200, answer.text
    [planned] = [e for e in answer.json()["effects"] if e.startswith("fallback_planned:")]
    fallback = int(planned.split(":")[1])
    # The same bounce reported again, under another event id: nothing more is planned.
    again = mailgun_bounce(api, message_id, "ev-bounce-2", clock.now)
    assert again.status_code == 200 and not [e for e in again.json()["effects"] if "fallback" in e]
    assert send_jobs(app, deliverer) == [fallback]
    assert sms.to(phone) == 1 and smtp.to("ann@example.com") == 1
    [body] = [m["body"] for m in sms.messages if m["to"] == phone]
    assert "brief" in body.lower()

    first_shown = api.get(f"/deliveries/{first}", headers=AUTH).json()
    link = {"delivery_id": fallback, "channel": "sms", "because": "bounced"}
    assert first_shown["fallback_delivery"] == link
    fallback_shown = api.get(f"/deliveries/{fallback}", headers=AUTH).json()
    assert fallback_shown["fallback_for"] == {"delivery_id": first, "because": "bounced"}
    assert fallback_shown["status"] == "sent"
    explained = api.get("/explain/ann", params={"date": "2026-03-02"}, headers=AUTH)
    assert explained.status_code == 200, explained.text
    [line] = [v for v in explained.json()["subscriptions"][0]["verdicts"] if v["rule"] == "fallback"]
    assert line["detail"].startswith(f"fell back to sms: delivery {fallback}, because bounced")
    [adhoc] = explained.json()["adhoc"]
    assert adhoc["fallback_note"] == f"fallback for delivery {first}, because bounced"


def test_an_undelivered_sms_sends_the_email_in_the_recipients_language_and_a_late_delivered_changes_nothing(
    wire: Wire,
) -> None:
    app, smtp, sms, api, clock = wire
    phone, address = "+15005550202", "bea@example.com"
    line = recipient_line("bea", "Europe/Paris", [], email=address, phone=phone, locale="fr")
    import_lines(app.sessions, [line], NOW)
    rule = {"channel": "email", "on": ["undelivered", "failed"], "within": "2h"}
    body = {"recipient_id": "bea", "kind": "reminder", "channel": "sms", "fallback": rule}
    created = api.post("/notify", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    first = created.json()["delivery"]["id"]
    deliverer = build_deliverer(app)
    assert send_jobs(app, deliverer) == [first]
    [request] = [m for m in sms.messages if m["to"] == phone]
    sid = request["sid"]

    clock.now += timedelta(minutes=10)
    answer = twilio_callback(api, sid, "undelivered", code="30008")
    assert answer.status_code == 200, answer.text
    [planned] = [e for e in answer.json()["effects"] if e.startswith("fallback_planned:")]
    fallback = int(planned.split(":")[1])
    assert send_jobs(app, deliverer) == [fallback]
    assert smtp.to(address) == 1
    [raw] = smtp.raw
    head, _, text = raw.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n")
    assert b"Content-Language: fr" in fields
    # The full French date of 2026-03-02, and 12:10 UTC as Paris reads it: Babel's, not ours.
    assert b"Subject: Votre rappel du lundi 2 mars 2026" in fields
    assert text.decode("utf-8").strip() == "Bonjour, il est 13:10 à Paris."
    assert shown(app, fallback)["template_locale"] == "fr"

    late = twilio_callback(api, sid, "delivered")
    assert late.status_code == 200 and late.json()["effects"] == ["delivered_after_fallback"]
    assert send_jobs(app, deliverer) == [] and smtp.to(address) == 1
    timeline = [e["event"] for e in shown(app, first)["timeline"]]
    assert timeline[-4:] == [
        "provider_undelivered",
        "fallback_planned",
        "provider_delivered",
        "delivered_after_fallback",
    ]
    assert shown(app, fallback)["status"] == "sent"


def test_an_email_refused_at_rcpt_sends_the_sms(wire: Wire) -> None:
    app, smtp, sms, api, _ = wire
    phone = "+15005550203"
    line = recipient_line("cy", "UTC", [], email="nouser@example.com", phone=phone)
    import_lines(app.sessions, [line], NOW)
    body = {"recipient_id": "cy", "kind": "reminder", "channel": "email", "fallback": {"channel": "sms"}}
    first = api.post("/notify", json=body, headers=AUTH).json()["delivery"]["id"]
    deliverer = build_deliverer(app)
    assert send_jobs(app, deliverer) == [first]
    assert smtp.rcpts["nouser@example.com"] == 1 and smtp.to("nouser@example.com") == 0
    assert shown(app, first)["status"] == "dead"
    fallback = shown(app, first)["fallback_delivery"]
    assert fallback["because"] == "invalid_address"
    assert send_jobs(app, deliverer) == [fallback["delivery_id"]]
    assert sms.to(phone) == 1
