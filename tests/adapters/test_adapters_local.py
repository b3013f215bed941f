"""The adapters that do not leave the machine: file, console, capture."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from freezegun import freeze_time

from adapters import Message, PermanentError, TransientError
from adapters.capture import CaptureAdapter
from adapters.console import ConsoleAdapter
from adapters.file import FileAdapter


@freeze_time("2026-03-01 13:05:09")
def test_file_writes_one_json_line_per_message(tmp_path: Path, make_message: Callable[..., Message]) -> None:
    auckland = timezone(timedelta(hours=13))
    message = make_message("sms", scheduled_at=datetime(2026, 3, 2, 2, 5, tzinfo=auckland))
    result = FileAdapter(directory=tmp_path / "outbox").send(message)

    assert result.provider_message_id == f"file-{message.delivery_id}"
    [line] = (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()
    assert json.loads(line) == {
        "delivery_id": message.delivery_id,
        "dedup_key": message.dedup_key,
        "recipient_id": message.recipient_id,
        "kind": "reminder",
        "channel": "sms",
        "scheduled_at": "2026-03-01T13:05:00Z",
        "sent_at": "2026-03-01T13:05:09Z",
        "to": message.to,
        "subject": None,
        "body": message.text,
        "message_id": message.message_id,
        "headers": {},
    }
    assert not (tmp_path / "outbox" / "email.jsonl").exists()


def test_file_writes_the_message_headers(tmp_path: Path, make_message: Callable[..., Message]) -> None:
    # What the email would carry, List-Unsubscribe among it, visible in the outbox.
    headers = {
        "List-Unsubscribe": "<https://planner.example.com/u/tok>, <mailto:u@example.com?subject=tok>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    FileAdapter(directory=tmp_path).send(make_message("email", headers=headers))
    [line] = (tmp_path / "email.jsonl").read_text().splitlines()
    assert json.loads(line)["headers"] == headers


def test_file_directory_is_created_on_first_send_only(
    tmp_path: Path, make_message: Callable[..., Message]
) -> None:
    adapter = FileAdapter.from_settings({"directory": str(tmp_path / "a" / "b")})
    assert not (tmp_path / "a").exists()
    adapter.send(make_message("email"))
    assert (tmp_path / "a" / "b" / "email.jsonl").exists()


def test_file_appends_whole_lines_from_concurrent_processes(tmp_path: Path) -> None:
    # Two real processes, as two RQ workers would be: every line must come out whole.
    writer = textwrap.dedent(
        f"""
        import sys
        from datetime import UTC, datetime
        from adapters import Message
        from adapters.file import FileAdapter

        adapter = FileAdapter(directory={str(tmp_path)!r})
        worker = int(sys.argv[1])
        for n in range(200):
            adapter.send(Message(
                delivery_id=worker * 1000 + n, dedup_key="k", recipient_id="r", kind="k",
                channel="email", to="a@example.com", subject="s", text=str(worker) * 20000, html=None,
                scheduled_at=datetime(2026, 1, 1, tzinfo=UTC), message_id=f"<{{worker}}-{{n}}@x>",
            ))
        """
    )
    with (
        subprocess.Popen([sys.executable, "-c", writer, "1"]) as first,
        subprocess.Popen([sys.executable, "-c", writer, "2"]) as second,
    ):
        assert first.wait(30) == 0
        assert second.wait(30) == 0
    records = [json.loads(line) for line in (tmp_path / "email.jsonl").read_text().splitlines()]
    assert sorted(r["delivery_id"] for r in records) == sorted(
        w * 1000 + n for w in (1, 2) for n in range(200)
    )


def test_console_prints_a_one_line_summary(make_message: Callable[..., Message]) -> None:
    stream = io.StringIO()
    message = make_message("email", subject="Your\nreminder", text="line one\nline two " + "x" * 200)
    result = ConsoleAdapter(stream=stream).send(message)

    assert result.provider_message_id == f"console-{message.delivery_id}"
    output = stream.getvalue()
    assert output.count("\n") == 1
    assert output.startswith("[email] 2026-03-01T13:05:00Z ")
    assert f"to={message.to}" in output
    assert "subject='Your reminder'" in output
    assert "line one line two" in output
    assert len(output) < 300


def test_console_defaults_to_the_current_stdout(
    capsys: pytest.CaptureFixture[str], make_message: Callable[..., Message]
) -> None:
    message = make_message("sms")
    ConsoleAdapter.from_settings({}).send(message)
    assert f"to={message.to}" in capsys.readouterr().out


def test_console_can_write_to_stderr(
    capsys: pytest.CaptureFixture[str], make_message: Callable[..., Message]
) -> None:
    ConsoleAdapter.from_settings({"stream": "stderr"}).send(make_message("sms"))
    captured = capsys.readouterr()
    assert "[sms]" in captured.err
    assert captured.out == ""


def test_capture_records_successes_and_attempts(make_message: Callable[..., Message]) -> None:
    adapter = CaptureAdapter()
    message = make_message("email")
    assert adapter.send(message).provider_message_id == f"capture-{message.delivery_id}"
    assert adapter.sent == [message]
    assert adapter.attempts == [message]
    adapter.clear()
    assert adapter.sent == adapter.attempts == []


@pytest.mark.parametrize(
    "error", [TransientError("try later", retry_after=3.0), PermanentError("gone", invalid_address=True)]
)
def test_capture_fail_with_simulates_provider_errors(
    make_message: Callable[..., Message], error: Exception
) -> None:
    def fail(message: Message) -> None:
        raise error

    adapter = CaptureAdapter(fail_with=fail)
    message = make_message("sms")
    with pytest.raises(type(error)) as excinfo:
        adapter.send(message)
    assert excinfo.value is error
    assert adapter.sent == []
    assert adapter.attempts == [message]

    adapter.fail_with = None
    adapter.send(message)
    assert adapter.sent == [message]


def test_capture_is_thread_safe(make_message: Callable[..., Message]) -> None:
    adapter = CaptureAdapter()
    messages = [make_message("email") for _ in range(400)]

    def send(chunk: list[Message]) -> None:
        for message in chunk:
            adapter.send(message)

    threads = [threading.Thread(target=send, args=(messages[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(m.delivery_id for m in adapter.sent) == sorted(m.delivery_id for m in messages)
