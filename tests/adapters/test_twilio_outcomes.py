"""The Twilio adapter's deadline on the whole call, OutcomeUnknown once the request was sent, and
the lookup that tells whether Twilio accepted a message, against the loopback Messages API.
Requests are counted as the server received them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from adapters import AdapterConfigError, Message, OutcomeUnknown, can_lookup
from adapters.twilio import TwilioAdapter

if TYPE_CHECKING:
    from tests.adapters.conftest import FakeTwilio, RawTcpServer

DEADLINE = 1.0
#: Loose on purpose: the bound is "about the deadline", far below the server's 5 s or 6 s.
MARGIN = 2.0
SERVICE_SID = "MG" + "1" * 32


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> Iterator[Callable[..., TwilioAdapter]]:
    made: list[TwilioAdapter] = []

    def make(**kwargs: Any) -> TwilioAdapter:
        options: dict[str, Any] = {
            "account_sid": twilio_server.account_sid,
            "auth_token": twilio_server.auth_token,
            "from_number": "+15005550006",
            "base_url": twilio_server.base_url,
            "timeout": DEADLINE,
        }
        made.append(TwilioAdapter(**{**options, **kwargs}))
        return made[-1]

    yield make
    for adapter in made:
        adapter.close()


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    start = time.monotonic()
    with pytest.raises(Exception) as excinfo:
        call()
    return excinfo.value, time.monotonic() - start


def test_a_server_accepting_after_the_deadline_leaves_the_outcome_unknown_and_lookup_finds_it(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    adapter, message = twilio(), make_message("sms", to=twilio_server.SLOW)
    since = datetime.now(UTC)
    twilio_server.release.clear()
    try:
        error, took = timed(lambda: adapter.send(message))
    finally:
        twilio_server.release.set()  # the server accepts it now, after the client gave up

    assert isinstance(error, OutcomeUnknown), error
    assert error.stage == "response"
    assert took < DEADLINE + MARGIN
    assert [r.form["Body"] for r in twilio_server.requests_to(message.to)].count(message.text) == 1
    accepted = twilio_server.wait_accepted(message.text)
    found = adapter.lookup(message, since)
    assert found is not None
    assert found.provider_message_id == accepted["sid"]


def test_a_connection_dropped_after_the_request_leaves_the_outcome_unknown(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    adapter, message = twilio(), make_message("sms", to=twilio_server.HANGUP)
    since = datetime.now(UTC)
    with pytest.raises(OutcomeUnknown, match="RemoteProtocolError"):
        adapter.send(message)
    assert len([r for r in twilio_server.requests_to(message.to) if r.form["Body"] == message.text]) == 1
    found = adapter.lookup(message, since)
    assert found is not None and found.provider_message_id == twilio_server.wait_accepted(message.text)["sid"]


@pytest.mark.parametrize("part", ["headers", "body"])
def test_a_response_trickled_past_the_deadline_is_cut_off_there(
    twilio_server: FakeTwilio,
    twilio: Callable[..., TwilioAdapter],
    make_message: Callable[..., Message],
    part: str,
) -> None:
    # A few bytes every 0.5 s for 6 s: each read is quick, the response is not.
    number = twilio_server.TRICKLE_HEADERS if part == "headers" else twilio_server.TRICKLE_BODY
    message = make_message("sms", to=number)
    error, took = timed(lambda: twilio().send(message))

    assert isinstance(error, OutcomeUnknown), error
    assert "ReadTimeout" in error.reason
    assert took < DEADLINE + MARGIN
    assert len([r for r in twilio_server.requests_to(number) if r.form["Body"] == message.text]) == 1


def test_lookup_asks_with_twilios_filters_and_finds_nothing_never_sent(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    adapter, message = twilio(), make_message("sms")
    since = datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert can_lookup(adapter)
    assert adapter.lookup(message, since) is None
    [asked] = twilio_server.requests_to(message.to, method="GET")
    assert asked.path == f"/2010-04-01/Accounts/{twilio_server.account_sid}/Messages.json"
    day = "2026-03-01"  # the UTC day of `since`, as Twilio's filter takes it
    assert asked.form == {"To": message.to, "From": "+15005550006", "DateSent>": day, "PageSize": "100"}


def test_lookup_matches_the_body_and_the_creation_time(
    twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    adapter, message = twilio(), make_message("sms")
    since = datetime.now(UTC)
    sent = adapter.send(message)

    assert adapter.lookup(message, since) == sent.__class__(sent.provider_message_id, "queued")
    other_text = make_message("sms", to=message.to, text="another reminder")
    assert adapter.lookup(other_text, since) is None
    assert adapter.lookup(message, since + timedelta(minutes=5)) is None  # accepted before `since`


def test_lookup_reads_every_page(
    twilio_server: FakeTwilio, twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    adapter = twilio()
    adapter.lookup_page_size = 1
    first = make_message("sms")
    later = make_message("sms", to=first.to)
    since = datetime.now(UTC)
    expected = adapter.send(first).provider_message_id
    adapter.send(later)

    found = adapter.lookup(first, since)  # newest first: the first message is on the second page
    assert found is not None and found.provider_message_id == expected
    assert len(twilio_server.requests_to(first.to, method="GET")) == 2


def test_lookup_through_a_messaging_service(
    twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    adapter, message = twilio(from_number=None, messaging_service_sid=SERVICE_SID), make_message("sms")
    since = datetime.now(UTC)
    sent = adapter.send(message)
    found = adapter.lookup(message, since)
    assert found is not None and found.provider_message_id == sent.provider_message_id


def test_lookup_that_cannot_reach_twilio_leaves_the_question_open(
    twilio: Callable[..., TwilioAdapter],
    make_message: Callable[..., Message],
    raw_tcp: Callable[[str], RawTcpServer],
    closed_port: int,
) -> None:
    message, since = make_message("sms"), datetime.now(UTC)
    with pytest.raises(OutcomeUnknown, match="ConnectError") as refused:
        twilio(base_url=f"http://127.0.0.1:{closed_port}").lookup(message, since)
    assert refused.value.stage == "lookup"

    silent = twilio(base_url=f"http://127.0.0.1:{raw_tcp('listen_only').port}")
    error, took = timed(lambda: silent.lookup(message, since))
    assert isinstance(error, OutcomeUnknown) and error.stage == "lookup"
    assert "ReadTimeout" in error.reason
    assert took < DEADLINE + MARGIN


def test_lookup_with_rejected_credentials_is_a_configuration_error(
    twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(AdapterConfigError, match="401") as excinfo:
        twilio(auth_token="wrong-token").lookup(make_message("sms"), datetime.now(UTC))
    assert "wrong-token" not in str(excinfo.value)


def test_lookup_wants_an_aware_instant(
    twilio: Callable[..., TwilioAdapter], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(ValueError, match="naive"):
        twilio().lookup(make_message("sms"), datetime(2026, 3, 1, 12, 0))


def test_the_deadline_is_the_timeout_option() -> None:
    options = {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from_number": "+15005550006"}
    adapter = TwilioAdapter.from_settings({**options, "timeout": "2.5"})
    try:
        assert adapter.deadline == adapter.timeout == 2.5
    finally:
        adapter.close()
