"""TwilioAdapter against a loopback server speaking the Messages API shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from adapters import AdapterConfigError, Message, PermanentError, TransientError
from adapters.twilio import TwilioAdapter, parse_retry_after

if TYPE_CHECKING:
    from tests.adapters.conftest import FakeTwilio

SERVICE_SID = "MG" + "0" * 32


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> Iterator[Callable[..., TwilioAdapter]]:
    made: list[TwilioAdapter] = []

    def make(**kwargs: Any) -> TwilioAdapter:
        options: dict[str, Any] = {
            "account_sid": twilio_server.account_sid,
            "auth_token": twilio_server.auth_token,
            "from_number": "+15005550006",
            "base_url": twilio_server.base_url,
            "timeout": 5.0,
        }
        made.append(TwilioAdapter(**{**options, **kwargs}))
        return made[-1]

    yield make
    for adapter in made:
        adapter.close()


def test_posts_the_messages_api_form(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    message = make_message("sms", text="Your code is 1234 — café")
    result = twilio().send(message)

    assert result.provider_message_id.startswith("SM")
    assert result.detail == "queued"
    [request] = twilio_server.requests_to(message.to)
    assert request.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    assert request.auth == (twilio_server.account_sid, twilio_server.auth_token)
    assert request.form == {"To": message.to, "From": "+15005550006", "Body": message.text}


def test_messaging_service_instead_of_a_number(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    message = make_message("sms")
    twilio(from_number=None, messaging_service_sid=SERVICE_SID).send(message)
    [request] = twilio_server.requests_to(message.to)
    assert request.form["MessagingServiceSid"] == SERVICE_SID
    assert "From" not in request.form


def test_rate_limit_is_transient_with_retry_after(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(TransientError) as excinfo:
        twilio().send(make_message("sms", to=twilio_server.RATE_LIMITED))
    assert excinfo.value.retry_after == 7.0
    assert excinfo.value.code == "20429"


def test_server_error_is_transient(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(TransientError) as excinfo:
        twilio().send(make_message("sms", to=twilio_server.SERVER_ERROR))
    assert excinfo.value.retry_after is None


def test_invalid_to_number_is_permanent_and_blames_the_address(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(PermanentError) as excinfo:
        twilio().send(make_message("sms", to=twilio_server.INVALID_TO))
    assert excinfo.value.invalid_address
    assert "21211" in excinfo.value.reason
    assert "not a valid phone number" in excinfo.value.reason


def test_other_client_errors_are_permanent_but_keep_the_address(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(PermanentError) as excinfo:
        twilio().send(make_message("sms", to=twilio_server.BODY_ERROR))
    assert not excinfo.value.invalid_address
    assert excinfo.value.code == "21602"


def test_rejected_credentials_are_a_configuration_error(
    twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(AdapterConfigError, match="20003") as excinfo:
        twilio(auth_token="wrong-token").send(make_message("sms"))
    assert "wrong-token" not in str(excinfo.value)


def test_connection_refused_is_transient(
    twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message], closed_port: int
) -> None:

    with pytest.raises(TransientError, match="unreachable"):
        twilio(base_url=f"http://127.0.0.1:{closed_port}").send(make_message("sms"))


@pytest.mark.parametrize("to", ["5551234", "+1 555 123 4567", "", "+0123"])
def test_non_e164_number_is_invalid_without_a_request(
    twilio_server: FakeTwilio,
    twilio: Callable[..., TwilioAdapter],
    make_message: Callable[..., Message],
    to: str,
) -> None:
    with pytest.raises(PermanentError) as excinfo:
        twilio().send(make_message("sms", to=to))
    assert excinfo.value.invalid_address
    assert twilio_server.requests_to(to) == []


def test_success_without_a_sid_is_not_retried(make_message: Callable[..., Message]) -> None:
    # Probably sent: a TransientError would risk a duplicate SMS.
    transport = httpx.MockTransport(lambda request: httpx.Response(201, json={"status": "queued"}))
    adapter = TwilioAdapter(
        account_sid="AC" + "0" * 32, auth_token="t", from_number="+15005550006", transport=transport
    )
    with closing(adapter), pytest.raises(PermanentError, match="without a sid"):
        adapter.send(make_message("sms"))


NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # already past
        (None, None),
        ("", None),
        ("-3", None),
        ("soon", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_a_status_callback_url_is_sent_with_each_message(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    message = make_message("sms")
    twilio(status_callback="https://planner.example.com/v1/webhooks/twilio/status").send(message)
    [request] = twilio_server.requests_to(message.to)
    assert request.form["StatusCallback"] == "https://planner.example.com/v1/webhooks/twilio/status"
    with pytest.raises(AdapterConfigError, match="PLANNER_TWILIO_STATUS_CALLBACK"):
        twilio(status_callback="planner.example.com/status")
