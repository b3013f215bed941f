"""The suite every built-in adapter must pass: it sends, the message arrives, settings are checked."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from adapters import (
    Adapter,
    AdapterConfigError,
    Message,
    PermanentError,
    available_adapters,
    call_deadline,
    create_adapter,
    load_adapter_class,
)
from adapters.capture import CaptureAdapter
from adapters.console import ConsoleAdapter
from adapters.file import FileAdapter
from adapters.smtp import SmtpAdapter
from adapters.twilio import TwilioAdapter

if TYPE_CHECKING:
    from tests.adapters.conftest import FakeTwilio, SmtpServer

BUILT_IN = ["smtp", "twilio", "file", "console", "capture"]

# (adapter, changes to its valid settings, option the error must name); None removes the option.
BAD_SETTINGS: list[tuple[str, dict[str, str | None], str]] = [
    ("smtp", {"port": "smtp"}, "port"),
    ("smtp", {"port": "70000"}, "port"),
    ("smtp", {"security": "tls"}, "security"),
    ("smtp", {"timeout": "-1"}, "timeout"),
    ("smtp", {"from_address": "nobody"}, "from_address"),
    ("smtp", {"from_address": None}, "from_address"),
    ("smtp", {"username": "planner"}, "password"),
    ("twilio", {"account_sid": "not-a-sid"}, "account_sid"),
    ("twilio", {"auth_token": None}, "auth_token"),
    ("twilio", {"from_number": None}, "from_number"),
    ("twilio", {"from_number": "0800 NOT A NUMBER"}, "from_number"),
    ("twilio", {"messaging_service_sid": "XX1"}, "messaging_service_sid"),
    ("twilio", {"base_url": "ftp://example.com"}, "base_url"),
    ("twilio", {"timeout": "soon"}, "timeout"),
    ("file", {"directory": os.devnull}, "directory"),
    ("console", {"stream": "printer"}, "stream"),
]


@dataclass
class Case:
    adapter: Adapter
    arrived: Callable[[Message], int]  # how many copies of the message reached the far end
    settings: dict[str, str]  # valid from_settings options


def _smtp_case(server: SmtpServer) -> Case:
    settings = {
        "host": server.host,
        "port": str(server.port),
        "security": "none",
        "from_address": "Planner <noreply@planner.local>",
        "timeout": "5",
    }

    def arrived(message: Message) -> int:
        return len(server.recorder.by_message_id(message.message_id))

    return Case(SmtpAdapter.from_settings(settings), arrived, settings)


def _twilio_case(server: FakeTwilio) -> Case:
    settings = {
        "account_sid": server.account_sid,
        "auth_token": server.auth_token,
        "from_number": "+15005550006",
        "base_url": server.base_url,
        "timeout": "5",
    }

    def arrived(message: Message) -> int:
        return sum(
            request.form.get("Body") == message.text
            and request.auth == (server.account_sid, server.auth_token)
            for request in server.requests_to(message.to)
        )

    return Case(TwilioAdapter.from_settings(settings), arrived, settings)


def _file_case(directory: Path) -> Case:
    adapter = FileAdapter(directory=directory)

    def arrived(message: Message) -> int:
        path = adapter.path_for(message.channel)
        lines = path.read_text().splitlines() if path.exists() else []
        return sum(json.loads(line)["message_id"] == message.message_id for line in lines)

    return Case(adapter, arrived, {"directory": str(directory)})


def _console_case() -> Case:
    stream = io.StringIO()

    def arrived(message: Message) -> int:
        return sum(
            f"to={message.to}" in line and f"delivery={message.delivery_id}" in line
            for line in stream.getvalue().splitlines()
        )

    return Case(ConsoleAdapter(stream=stream), arrived, {"stream": "stderr"})


def _capture_case() -> Case:
    adapter = CaptureAdapter()
    return Case(adapter, adapter.sent.count, {})


@pytest.fixture(params=BUILT_IN)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Case]:
    name = request.param
    if name == "smtp":
        built = _smtp_case(request.getfixturevalue("smtp_server"))
    elif name == "twilio":
        built = _twilio_case(request.getfixturevalue("twilio_server"))
    elif name == "file":
        built = _file_case(tmp_path)
    elif name == "console":
        built = _console_case()
    else:
        built = _capture_case()
    yield built
    built.adapter.close()


def test_sends_on_each_channel_and_the_message_arrives(
    case: Case, make_message: Callable[..., Message]
) -> None:
    assert case.adapter.channels, "an adapter must serve at least one channel"
    for channel in sorted(case.adapter.channels):
        message = make_message(channel)
        result = case.adapter.send(message)
        assert isinstance(result.provider_message_id, str)
        assert result.provider_message_id
        assert case.arrived(message) == 1


def test_sending_the_same_message_twice_delivers_it_twice_under_one_message_id(
    case: Case, make_message: Callable[..., Message]
) -> None:
    message = make_message(sorted(case.adapter.channels)[0])
    first = case.adapter.send(message)
    second = case.adapter.send(message)
    assert case.arrived(message) == 2
    if isinstance(case.adapter, SmtpAdapter):
        assert first.provider_message_id == second.provider_message_id == message.message_id


# Only the single-channel adapters can be handed a channel they do not serve.
@pytest.mark.parametrize("case", ["smtp", "twilio"], indirect=True)
def test_refuses_a_channel_it_does_not_serve(case: Case, make_message: Callable[..., Message]) -> None:
    others = {"email", "sms"} - case.adapter.channels
    assert others, f"{case.adapter.name} serves every channel"
    message = make_message(others.pop())
    with pytest.raises(PermanentError) as excinfo:
        case.adapter.send(message)
    assert not excinfo.value.invalid_address
    assert case.arrived(message) == 0


def test_from_settings_builds_a_working_adapter(case: Case) -> None:
    type(case.adapter).from_settings(case.settings).close()


@pytest.mark.parametrize(
    ("case", "changes", "option"),
    BAD_SETTINGS,
    indirect=["case"],
    ids=[f"{name}-{option}-{i}" for i, (name, _, option) in enumerate(BAD_SETTINGS)],
)
def test_from_settings_names_the_bad_option(case: Case, changes: dict[str, str | None], option: str) -> None:
    options = {k: v for k, v in {**case.settings, **changes}.items() if v is not None}
    with pytest.raises(AdapterConfigError) as excinfo:
        type(case.adapter).from_settings(options).close()
    assert excinfo.value.option == option
    assert option in str(excinfo.value)


def test_from_settings_rejects_unknown_options(case: Case) -> None:
    with pytest.raises(AdapterConfigError, match="pasword") as excinfo:
        type(case.adapter).from_settings({**case.settings, "pasword": "x"})
    assert excinfo.value.option == "pasword"


def test_declares_the_deadline_of_a_provider_call(case: Case) -> None:
    # The network adapters' timeout bounds a whole call; the local ones have no provider to wait for.
    expected = float(case.settings["timeout"]) if "timeout" in case.settings else None
    assert getattr(case.adapter, "deadline", "missing") == expected
    assert call_deadline(case.adapter) == expected


def test_close_is_idempotent(case: Case) -> None:
    case.adapter.close()
    case.adapter.close()


def test_registered_under_its_name(case: Case) -> None:
    adapter_class = type(case.adapter)
    assert adapter_class.name in available_adapters()
    assert load_adapter_class(adapter_class.name) is adapter_class
    created = create_adapter(adapter_class.name, case.settings)
    try:
        assert type(created) is adapter_class
    finally:
        created.close()
