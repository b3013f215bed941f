"""Message, errors, option parsing and the entry-point registry."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from adapters import (
    ENTRY_POINT_GROUP,
    AdapterConfigError,
    AdapterError,
    Message,
    OutcomeUnknown,
    PermanentError,
    TransientError,
    available_adapters,
    create_adapter,
    load_adapter_class,
    options_from_env,
)
from adapters.file import FileAdapter

BUILT_IN = {"smtp", "twilio", "file", "console", "capture"}


def message(**overrides: Any) -> Message:
    fields: dict[str, Any] = {
        "delivery_id": 42,
        "dedup_key": "dk",
        "recipient_id": "r-1",
        "kind": "reminder",
        "channel": "email",
        "to": "a@example.com",
        "subject": "s",
        "text": "t",
        "html": None,
        "scheduled_at": datetime(2026, 3, 1, 13, 5, tzinfo=UTC),
        "message_id": "<delivery-42.dk@planner.local>",
    }
    return Message(**{**fields, **overrides})


def test_message_normalises_scheduled_at_to_utc() -> None:
    local = datetime(2026, 3, 2, 2, 5, tzinfo=timezone(timedelta(hours=13)))
    assert message(scheduled_at=local).scheduled_at == datetime(2026, 3, 1, 13, 5, tzinfo=UTC)
    assert message(scheduled_at=local).scheduled_at.tzinfo is UTC


def test_message_rejects_naive_times_and_unknown_channels() -> None:
    with pytest.raises(ValueError, match="scheduled_at"):
        message(scheduled_at=datetime(2026, 3, 1, 13, 5))
    with pytest.raises(ValueError, match="channel"):
        message(channel="pigeon")


def test_message_metadata_is_a_frozen_copy() -> None:
    source = {"locale": "en"}
    frozen = message(metadata=source)
    source["locale"] = "fr"
    assert frozen.metadata == {"locale": "en"}
    with pytest.raises(TypeError):
        frozen.metadata["locale"] = "de"  # type: ignore[index]
    assert message().metadata == {}
    assert len({message(metadata={"a": "1"}), message(metadata={"a": "1"})}) == 1


@pytest.mark.parametrize(
    "error",
    [
        TransientError("later", retry_after=7.0, code="451"),
        PermanentError("gone", invalid_address=True, code="550"),
        AdapterConfigError("bad port", option="port"),
        OutcomeUnknown("no reply after the final dot", stage="data"),
        OutcomeUnknown("listing answered 503", stage="lookup", retry_after=30.0),
    ],
)
def test_errors_survive_pickling(error: Exception) -> None:
    # RQ moves exceptions between processes.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)


def test_an_unknown_outcome_is_neither_transient_nor_permanent() -> None:
    # A caller catching TransientError to retry must not catch this one by accident.
    assert not issubclass(OutcomeUnknown, TransientError | PermanentError | AdapterConfigError)
    assert issubclass(OutcomeUnknown, AdapterError)


def test_options_from_env_lowercases_and_matches_the_exact_prefix() -> None:
    environ = {
        "PLANNER_SMTP_HOST": "mail.example.com",
        "PLANNER_SMTP_FROM_ADDRESS": "a@example.com",
        "PLANNER_SMTPX_HOST": "other",
        "PLANNER_SMTP_": "ignored",
        "SMTP_HOST": "ignored",
        "PLANNER_TWILIO_ACCOUNT_SID": "AC1",
    }
    assert options_from_env("smtp", environ) == {"host": "mail.example.com", "from_address": "a@example.com"}
    assert options_from_env("twilio", environ) == {"account_sid": "AC1"}


def test_blank_options_count_as_unset() -> None:
    # `PLANNER_SMTP_USERNAME=` in a .env file must not demand a password.
    adapter = create_adapter("smtp", {"from_address": "a@example.com", "username": "", "password": " "})
    assert adapter.username is None  # type: ignore[attr-defined]


def test_available_adapters_lists_the_built_ins() -> None:
    found = available_adapters()
    assert set(found) >= BUILT_IN
    assert all(ep.group == ENTRY_POINT_GROUP for ep in found.values())


def test_unknown_adapter_lists_the_available_ones() -> None:
    with pytest.raises(AdapterConfigError) as excinfo:
        load_adapter_class("carrier-pigeon")
    assert "carrier-pigeon" in str(excinfo.value)
    for name in BUILT_IN:
        assert name in str(excinfo.value)


def test_create_adapter_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLANNER_FILE_DIRECTORY", str(tmp_path))
    adapter = create_adapter("file")
    assert isinstance(adapter, FileAdapter)
    assert adapter.directory == tmp_path


def test_create_adapter_reports_bad_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_SMTP_FROM_ADDRESS", "a@example.com")
    monkeypatch.setenv("PLANNER_SMTP_PORT", "twenty-five")
    with pytest.raises(AdapterConfigError, match="PLANNER_SMTP_PORT"):
        create_adapter("smtp")


@pytest.mark.parametrize(
    ("value", "complaint"),
    [("no_such_module_xyz:Adapter", "failed to load"), ("os:getcwd", "not an adapter class")],
)
def test_broken_plugins_are_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, complaint: str
) -> None:
    # An installed distribution declaring the broken entry point, found on sys.path.
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = {value}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AdapterConfigError, match=complaint):
        load_adapter_class("broken")
