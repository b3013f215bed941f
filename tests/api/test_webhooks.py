"""Provider webhooks over real HTTP on loopback, on SQLite and PostgreSQL: signatures, replays, and
what each callback changes (provider status, invalid addresses, opt-outs)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from typer.testing import CliRunner

from planner.app import App
from planner.auth import create_token
from planner.cli import app as cli_app
from planner.commands.notify import notify
from planner.core.engagement_slots import EngagementSlots
from planner.core.feedback import twilio_signature
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS, ENGAGEMENT, PROVIDER_EVENTS, RECIPIENTS
from tests.api import test_api
from tests.commands.test_ops import add_recipient, deliverer

server = test_api.server  # the module's loopback uvicorn

NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
BASE = "https://planner.example.com"
TWILIO_TOKEN = "twilio-auth-token"
MAILGUN_KEY = "key-mailgun-signing"
PHONE = "+12125550100"


@pytest.fixture
def hooks(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    """The API with the webhooks' secrets, a public URL and a fixed clock; no bearer token sent."""
    app.clock = lambda: NOW
    app.settings.api_token = None
    app.settings.public_base_url = BASE
    app.settings.twilio_auth_token = SecretStr(TWILIO_TOKEN)
    app.settings.mailgun_signing_key = SecretStr(MAILGUN_KEY)
    with test_api.serve(server, app) as client:
        yield client


def sent(app: App, channel: str, recipient: str = "u-1", kind: str = "reminder") -> dict[str, Any]:
    """A delivery sent through the capture adapter: its provider message id is ``capture-<id>``."""
    result = notify(app, recipient, kind, channel, now=NOW)
    assert result.outcome == "queued", result.message
    assert deliverer(app)[0].deliver_batch([int(result.delivery["id"])]).sent == 1
    with app.sessions() as session:
        row = session.execute(select(DELIVERIES).where(DELIVERIES.c.id == result.delivery["id"])).one()
    return dict(row._mapping)


def twilio_post(
    client: httpx.Client, path: str, form: dict[str, str], token: str = TWILIO_TOKEN
) -> httpx.Response:
    signature = twilio_signature(token, f"{BASE}{path}", form.items())
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return client.post(path, content=urlencode(form), headers=headers)


def mailgun_body(
    event: dict[str, Any], token: str, at: datetime = NOW, key: str = MAILGUN_KEY
) -> dict[str, Any]:
    timestamp = str(int(at.timestamp()))
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def recipient(app: App, external_id: str = "u-1") -> Any:
    with app.sessions() as session:
        return session.execute(select(RECIPIENTS).where(RECIPIENTS.c.external_id == external_id)).one()


def provider_entries(app: App, delivery_id: int) -> list[Any]:
    with app.sessions() as session:
        return list(
            session.execute(
                select(DELIVERY_EVENTS).where(
                    DELIVERY_EVENTS.c.delivery_id == delivery_id, DELIVERY_EVENTS.c.event.like("provider_%")
                )
            )
        )


def counts(app: App) -> tuple[int, int]:
    with app.sessions() as session:
        events = session.scalar(select(func.count()).select_from(DELIVERY_EVENTS)) or 0
        applied = session.scalar(select(func.count()).select_from(PROVIDER_EVENTS)) or 0
    return events, applied


STATUS = "/v1/webhooks/twilio/status"
INBOUND = "/v1/webhooks/twilio/inbound"


def test_twilio_status_records_the_provider_status_and_a_dead_number_marks_the_phone_invalid(
    hooks: httpx.Client, app: App, cli: CliRunner
) -> None:
    add_recipient(app)
    d = sent(app, "sms")
    sid = d["provider_message_id"]
    form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30005", "To": PHONE}

    # Unsigned, signed with another token, or signed over another body: 403 and nothing changes.
    before = counts(app)
    assert hooks.post(STATUS, data=form).status_code == 403
    assert twilio_post(hooks, STATUS, form, token="wrong").status_code == 403
    forged = hooks.post(
        STATUS,
        data={**form, "ErrorCode": "30003"},
        headers={"X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, f"{BASE}{STATUS}", form.items())},
    )
    assert forged.status_code == 403 and forged.json()["status"] == 403
    huge = hooks.post(STATUS, content=b"Body=" + b"x" * 70_000, headers={"X-Twilio-Signature": "x"})
    assert huge.status_code == 413
    assert counts(app) == before and recipient(app).sms_invalid is None

    answer = twilio_post(hooks, STATUS, form)
    assert answer.status_code == 200, answer.text
    assert answer.json()["effects"] == ["sms_invalid"]
    again = twilio_post(hooks, STATUS, form)  # Twilio retries a callback it got no answer to
    assert again.status_code == 200 and again.json()["recorded"] is False

    [entry] = provider_entries(app, d["id"])
    assert entry.event == "provider_undelivered" and entry.detail["code"] == "30005"
    assert "30005" in recipient(app).sms_invalid
    shown = cli.invoke(cli_app, ["deliveries", "show", str(d["id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    assert '"provider_status": "undelivered"' in shown.output

    # A progress status (sent) is acknowledged and recorded nowhere.
    progress = twilio_post(hooks, STATUS, {"MessageSid": sid, "MessageStatus": "sent"})
    assert progress.status_code == 200 and progress.json()["recorded"] is False
    assert len(provider_entries(app, d["id"])) == 1


def test_inbound_stop_opts_every_recipient_with_the_number_out_and_start_lifts_it(
    hooks: httpx.Client, app: App
) -> None:
    add_recipient(app, "u-1")
    add_recipient(app, "u-2")  # the same phone number
    add_recipient(app, "u-3", phone="+12125550199")

    def opted_out() -> list[bool]:
        return [bool(recipient(app, r).sms_opt_out) for r in ("u-1", "u-2", "u-3")]

    assert hooks.post(INBOUND, data={"MessageSid": "SMa", "From": PHONE, "Body": "STOP"}).status_code == 403
    assert opted_out() == [False, False, False]

    stop = twilio_post(hooks, INBOUND, {"MessageSid": "SMa", "From": PHONE, "Body": "Stop "})
    assert stop.status_code == 200 and stop.headers["content-type"].startswith("application/xml")
    assert opted_out() == [True, True, False]

    start = {"MessageSid": "SMb", "From": PHONE, "Body": "unstop"}
    assert twilio_post(hooks, INBOUND, start).status_code == 200
    assert opted_out() == [False, False, False]
    # A late copy of the STOP is the same event: it does not opt them out again.
    assert (
        twilio_post(hooks, INBOUND, {"MessageSid": "SMa", "From": PHONE, "Body": "Stop "}).status_code == 200
    )
    assert opted_out() == [False, False, False]
    nameless = twilio_post(hooks, INBOUND, {"From": PHONE, "Body": "STOP"})
    assert nameless.status_code == 422 and nameless.json()["errors"][0]["field"] == "MessageSid"
    chat = twilio_post(hooks, INBOUND, {"MessageSid": "SMc", "From": PHONE, "Body": "stop it please"})
    assert chat.status_code == 200 and opted_out() == [False, False, False]


def test_mailgun_hard_bounce_complaint_stale_and_replayed_signatures(hooks: httpx.Client, app: App) -> None:
    add_recipient(app)
    bounced, complained = sent(app, "email"), sent(app, "email", kind="daily_brief")

    def event(event_id: str, kind: str, delivery: dict[str, Any], **extra: Any) -> dict[str, Any]:
        message = {"headers": {"message-id": delivery["provider_message_id"]}}
        return {"id": event_id, "event": kind, "message": message, **extra}

    failed = event("ev-1", "failed", bounced, severity="permanent", **{"delivery-status": {"code": 550}})
    before = counts(app)
    assert hooks.post("/v1/webhooks/mailgun", json={"event-data": failed}).status_code == 403
    stale = mailgun_body(failed, "tok-1", at=NOW - timedelta(minutes=6))
    assert hooks.post("/v1/webhooks/mailgun", json=stale).status_code == 403
    wrong_key = mailgun_body(failed, "tok-1", key="key-other")
    assert hooks.post("/v1/webhooks/mailgun", json=wrong_key).status_code == 403
    assert counts(app) == before

    first = hooks.post("/v1/webhooks/mailgun", json=mailgun_body(failed, "tok-1"))
    assert first.status_code == 200 and first.json()["effects"] == ["email_invalid"], first.text
    assert "550" in recipient(app).email_invalid
    # The same event again (Mailgun retries): nothing more. Its signature on another event: 403.
    assert hooks.post("/v1/webhooks/mailgun", json=mailgun_body(failed, "tok-1")).json()["recorded"] is False
    complaint = event("ev-2", "complained", complained)
    replayed = hooks.post("/v1/webhooks/mailgun", json=mailgun_body(complaint, "tok-1"))
    assert replayed.status_code == 403 and recipient(app).opt_outs is None
    # A token spent on a message the service does not know is spent all the same.
    unknown = event("ev-0", "delivered", {"provider_message_id": "elsewhere@mg.example"})
    assert hooks.post("/v1/webhooks/mailgun", json=mailgun_body(unknown, "tok-0")).json()["recorded"] is False
    assert hooks.post("/v1/webhooks/mailgun", json=mailgun_body(complaint, "tok-0")).status_code == 403

    accepted = hooks.post("/v1/webhooks/mailgun", json=mailgun_body(complaint, "tok-2"))
    assert accepted.json()["effects"] == ["opted_out:daily_brief/email"], accepted.text
    assert recipient(app).opt_outs == ["daily_brief/email"] and not recipient(app).email_opt_out
    assert [e.event for e in provider_entries(app, bounced["id"])] == ["provider_bounced"]


def test_neutral_email_webhook_takes_a_write_token(hooks: httpx.Client, app: App) -> None:
    add_recipient(app)
    d = sent(app, "email")
    body = {"id": "relay-1", "event": "delivered", "message_id": f"<{d['provider_message_id']}>"}
    reader = create_token(app, "reader", ["read"], NOW)
    assert hooks.post("/v1/webhooks/email", json=body).status_code == 401
    refused = hooks.post("/v1/webhooks/email", json=body, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    relay = {"Authorization": f"Bearer {create_token(app, 'relay', ['read', 'write'], NOW)}"}
    bad = hooks.post("/v1/webhooks/email", json={**body, "event": "exploded"}, headers=relay)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "event"]

    assert hooks.post("/v1/webhooks/email", json=body, headers=relay).json()["recorded"] is True
    assert hooks.get(f"/deliveries/{d['id']}", headers=relay).json()["provider_status"] == "delivered"
    metrics = hooks.get("/metrics", headers=relay).text
    assert 'planner_provider_status{channel="email",status="delivered"} 1.0' in metrics
    assert 'planner_provider_delivered_ratio{channel="email"} 1.0' in metrics
    unknown = hooks.post(
        "/v1/webhooks/email", json={**body, "id": "relay-2", "message_id": "nope"}, headers=relay
    )
    assert unknown.status_code == 200 and unknown.json()["recorded"] is False


def test_a_webhook_without_its_secret_is_a_503_naming_the_setting(
    server: tuple[test_api.Switch, str], app: App
) -> None:
    with test_api.serve(server, app) as client:
        twilio = client.post(STATUS, data={"MessageSid": "SM1", "MessageStatus": "delivered"})
        mailgun = client.post("/v1/webhooks/mailgun", json={"event-data": {}})
    assert twilio.status_code == 503 and "PLANNER_TWILIO_AUTH_TOKEN" in twilio.json()["detail"]
    assert mailgun.status_code == 503 and "PLANNER_MAILGUN_SIGNING_KEY" in mailgun.json()["detail"]


def test_opens_and_clicks_from_mailgun_and_the_neutral_webhook_are_engagement_once(
    hooks: httpx.Client, app: App
) -> None:
    add_recipient(app)
    d = sent(app, "email", kind="daily_brief")
    message = {"headers": {"message-id": d["provider_message_id"]}}
    opened = {"id": "ev-o", "event": "opened", "message": message, "timestamp": 1772827200.5}
    first = hooks.post("/v1/webhooks/mailgun", json=mailgun_body(opened, "tok-o"))
    assert first.status_code == 200 and first.json()["effects"] == ["engagement:opened"], first.text
    # Mailgun retries the same event: recorded once, counted once in the statistic.
    assert hooks.post("/v1/webhooks/mailgun", json=mailgun_body(opened, "tok-o")).json()["recorded"] is False
    relay = {"Authorization": f"Bearer {create_token(app, 'relay', ['read', 'write'], NOW)}"}
    clicked = {
        "id": "relay-c", "event": "clicked", "message_id": f"<{d['provider_message_id']}>",
        "at": "2026-03-06T20:05:00+01:00",
    }  # fmt: skip
    assert hooks.post("/v1/webhooks/email", json=clicked, headers=relay).json()["effects"] == [
        "engagement:clicked"
    ]
    assert hooks.post("/v1/webhooks/email", json=clicked, headers=relay).json()["recorded"] is False
    with app.sessions() as session:
        rows = session.execute(
            select(ENGAGEMENT.c.event, ENGAGEMENT.c.kind, ENGAGEMENT.c.occurred_at).order_by(ENGAGEMENT.c.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("opened", "daily_brief", datetime(2026, 3, 6, 20, 0, 0, 500000, tzinfo=UTC)),
        ("clicked", "daily_brief", datetime(2026, 3, 6, 19, 5, tzinfo=UTC)),
    ]
    slots = EngagementSlots.from_json(recipient(app).engagement_slots)
    assert slots.events == 2 and recipient(app).opt_outs is None
    with app.sessions() as session:
        assert session.scalar(select(DELIVERIES.c.provider_status).where(DELIVERIES.c.id == d["id"])) is None
