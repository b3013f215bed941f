"""Webhook signatures and what each provider callback means, against the providers' documents."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from planner.core import feedback

# The example of Twilio's request validation documentation (the twilio-php helper library's
# "Validate Incoming Requests" page): auth token 12345, this URL and these POST parameters.
TWILIO_DOC_TOKEN = "12345"
TWILIO_DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TWILIO_DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilio_signature_matches_the_documented_example() -> None:
    params = list(TWILIO_DOC_PARAMS.items())
    assert feedback.twilio_signature(TWILIO_DOC_TOKEN, TWILIO_DOC_URL, params) == TWILIO_DOC_SIGNATURE
    # The parameters are sorted by name: the order they arrive in does not matter.
    assert feedback.twilio_signed(TWILIO_DOC_TOKEN, TWILIO_DOC_URL, params[::-1], TWILIO_DOC_SIGNATURE)


@pytest.mark.parametrize(
    ("token", "url", "change"),
    [
        ("12346", TWILIO_DOC_URL, {}),
        (TWILIO_DOC_TOKEN, "http://mycompany.com/myapp.php?foo=1&bar=2", {}),
        (TWILIO_DOC_TOKEN, TWILIO_DOC_URL, {"Digits": "1235"}),
        (TWILIO_DOC_TOKEN, TWILIO_DOC_URL, {"Extra": ""}),
    ],
    ids=["token", "url", "value", "added-param"],
)
def test_twilio_signature_covers_token_url_and_every_param(
    token: str, url: str, change: dict[str, str]
) -> None:
    params = list({**TWILIO_DOC_PARAMS, **change}.items())
    assert not feedback.twilio_signed(token, url, params, TWILIO_DOC_SIGNATURE)
    assert not feedback.twilio_signed(TWILIO_DOC_TOKEN, TWILIO_DOC_URL, TWILIO_DOC_PARAMS.items(), "")


NOW = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)


def test_mailgun_signature_is_hex_hmac_sha256_of_timestamp_and_token() -> None:
    # Mailgun's documentation shows no key with its example, so the expected value is computed
    # here independently, as its "Securing Webhooks" page describes.
    key, timestamp, token = (
        "key-abc123",
        str(int(NOW.timestamp())),
        "e0b5477167110d68991efc6b9f89f0a11066af278346",
    )
    expected = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    assert feedback.mailgun_signature(key, timestamp, token) == expected
    assert feedback.mailgun_signed(key, timestamp, token, expected, NOW)
    assert feedback.mailgun_signed(key, timestamp, token, expected, NOW + timedelta(minutes=5))
    assert not feedback.mailgun_signed(key, timestamp, token, expected, NOW + timedelta(minutes=5, seconds=1))
    assert not feedback.mailgun_signed("key-other", timestamp, token, expected, NOW)
    assert not feedback.mailgun_signed(key, "not-a-number", token, expected, NOW)
    assert not feedback.mailgun_signed(key, timestamp, token + "x", expected, NOW)


@pytest.mark.parametrize(
    ("body", "opt_out"),
    [
        ("STOP", True),
        (" stop ", True),
        ("StopAll", True),
        ("unsubscribe", True),
        ("CANCEL", True),
        ("end", True),
        ("Quit", True),
        ("START", False),
        ("unstop", False),
        ("stop please", None),
        ("hello", None),
        ("", None),
    ],
)
def test_inbound_keywords(body: str, opt_out: bool | None) -> None:
    sms = feedback.twilio_inbound({"MessageSid": "SM1", "From": "+12125550100", "Body": body})
    assert (sms.event_id, sms.sender, sms.opt_out) == ("SM1", "+12125550100", opt_out)


def test_twilio_status_final_statuses_and_dead_numbers() -> None:
    def report(status: str, code: str | None = None) -> feedback.DeliveryReport | None:
        form = {"MessageSid": "SM9", "MessageStatus": status} | ({"ErrorCode": code} if code else {})
        return feedback.twilio_status(form)

    assert report("sent") is None and report("queued") is None
    delivered = report("delivered")
    assert delivered is not None and (delivered.status, delivered.event_id) == ("delivered", "SM9:delivered")
    for code in ("30003", "30005", "30006"):
        dead = report("undelivered", code)
        assert dead is not None and dead.dead_address and dead.code == code
    carrier_filtered = report("failed", "30007")
    assert carrier_filtered is not None and not carrier_filtered.dead_address


def test_mailgun_events() -> None:
    def event(kind: str, **extra: object) -> feedback.DeliveryReport | None:
        data = {"id": "ev-1", "event": kind, "message": {"headers": {"message-id": "abc@mg.example"}}}
        return feedback.mailgun_event(data | extra, "tok")

    hard = event("failed", severity="permanent", **{"delivery-status": {"code": 550, "message": "no user"}})
    assert hard is not None and (hard.status, hard.dead_address, hard.code) == ("bounced", True, "550")
    soft = event("failed", severity="temporary")
    assert soft is not None and (soft.status, soft.dead_address) == ("deferred", False)
    complaint = event("complained")
    assert complaint is not None and complaint.complaint and complaint.token == "tok"
    opened = event("opened", timestamp=1772481600.25)
    assert opened is not None and (opened.engagement, opened.token) == ("opened", "tok")
    assert opened.occurred_at == datetime(2026, 3, 2, 20, 0, 0, 250000, tzinfo=UTC)
    clicked = event("clicked", timestamp="yesterday")
    assert clicked is not None and clicked.engagement == "clicked" and clicked.occurred_at is None
    assert event("accepted") is None and event("unsubscribed") is None
    assert feedback.message_id_forms("<a@b>") == ["a@b", "<a@b>"] == feedback.message_id_forms("a@b")
