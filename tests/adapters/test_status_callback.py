"""An SMS sent by the planner through the loopback Twilio-shaped server carries the StatusCallback
built from PLANNER_PUBLIC_BASE_URL, and Twilio's signed callback to it lands on the delivery."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from planner.app import App, build_deliverer
from planner.commands.notify import notify
from planner.core.feedback import twilio_signature
from tests.api import test_api
from tests.commands.test_ops import add_recipient, delivery

if TYPE_CHECKING:
    from tests.adapters.conftest import FakeTwilio

server = test_api.server  # the module's loopback uvicorn
NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
BASE = "https://planner.example.com"


def test_the_sms_carries_the_status_callback_and_the_callback_lands_on_the_delivery(
    twilio_server: FakeTwilio,
    server: tuple[test_api.Switch, str],
    app: App,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for option, value in {
        "ACCOUNT_SID": twilio_server.account_sid,
        "AUTH_TOKEN": twilio_server.auth_token,
        "FROM_NUMBER": "+15005550006",
        "BASE_URL": twilio_server.base_url,
    }.items():
        monkeypatch.setenv(f"PLANNER_TWILIO_{option}", value)
    app.clock = lambda: NOW
    app.settings.sms_adapter = "twilio"
    app.settings.public_base_url = BASE
    app.settings.twilio_auth_token = SecretStr(twilio_server.auth_token)
    app.settings.api_token = SecretStr(test_api.TOKEN)
    # The fake server is shared by the session: a number of this backend's own.
    phone = "+15005550041" if app.settings.is_sqlite else "+15005550042"
    add_recipient(app, phone=phone)
    result = notify(app, "u-1", "reminder", "sms", now=NOW)
    delivery_id = int(result.delivery["id"])
    assert build_deliverer(app).deliver_batch([delivery_id]).sent == 1

    [request] = twilio_server.requests_to(phone)
    callback = request.form["StatusCallback"]
    assert callback == f"{BASE}/v1/webhooks/twilio/status"
    sid = delivery(app, delivery_id)["provider_message_id"]
    form = {"MessageSid": sid, "MessageStatus": "delivered", "AccountSid": twilio_server.account_sid}
    signature = twilio_signature(twilio_server.auth_token, callback, form.items())
    with test_api.serve(server, app) as client:
        answer = client.post(
            "/v1/webhooks/twilio/status",
            content=urlencode(form),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert answer.status_code == 200 and answer.json()["recorded"], answer.text
        shown = client.get(f"/deliveries/{delivery_id}", headers=test_api.AUTH).json()
        metrics = client.get("/metrics", headers=test_api.AUTH).text
    assert shown["provider_status"] == "delivered"
    assert [e["event"] for e in shown["timeline"]][-1] == "provider_delivered"
    assert 'planner_provider_delivered_ratio{channel="sms"} 1.0' in metrics
