"""The CLI in a pipe and on a terminal, as real processes: ``planner deliveries list | tail`` gets
whole values, tab-separated under a header line; a terminal gets rich's tables; ``--json`` stays."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer
from planner.auth import create_token
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.settings import Settings
from tests.helpers import Clock, recipient_line, runner

NOW = datetime(2026, 3, 6, 10, 20, tzinfo=UTC)
LONG_ID = "customer-" + "x" * 70
BRIEF = [{"kind": "daily_brief", "channel": "email", "at": "12:30"}]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def planner(settings: Settings, *args: str, terminal: bool = False) -> str:
    """``planner ARGS`` in its own process, its standard output a pipe (or a terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PLANNER_", "FORCE_COLOR", "COLUMNS"))}
    env |= {
        "PLANNER_DATABASE_URL": settings.database_url,
        "PLANNER_REDIS_URL": settings.redis_url or "",
        "PLANNER_LOG_LEVEL": "WARNING",
        "TERM": "xterm",
    }
    command = [sys.executable, "-m", "planner.cli", *args]
    if not terminal:
        done = subprocess.run(command, env=env, capture_output=True, timeout=120)  # stdout: a pipe
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(command, env=env, stdout=follower, stderr=subprocess.PIPE)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the process ended
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()
    finally:
        os.close(leader)
    return b"".join(chunks).decode()


@pytest.fixture
def timed_app(settings: Settings) -> Iterator[App]:
    app = App(settings, clock=Clock(NOW))
    yield app
    app.close()


@pytest.fixture
def sent(timed_app: App) -> int:
    """A recipient with a long id, two planned deliveries and a sent ad-hoc message (the third)."""
    app = timed_app
    import_lines(app.sessions, [recipient_line(LONG_ID, "America/New_York", BRIEF)], NOW)
    runner(app).run(NOW, timedelta(days=2))
    result = notify(app, LONG_ID, "daily_brief", "email", now=NOW, data={"headline": "Snow\tand ice"})
    capture = CaptureAdapter()
    build_deliverer(app, adapters={"email": capture, "sms": capture}).deliver_batch([result.delivery["id"]])
    assert len(capture.sent) == 1
    return int(result.delivery["id"])


def test_deliveries_list_prints_whole_values_in_a_pipe_and_a_table_on_a_terminal(
    settings: Settings, sent: int
) -> None:
    lines = planner(settings, "deliveries", "list").splitlines()
    assert lines[0] == "id\trecipient\tkind\tchannel\tlocal date\tscheduled (UTC)\tstatus\treason"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 3 and all(len(row) == 8 for row in rows)
    assert {row[1] for row in rows} == {LONG_ID}, "the whole id"
    for row in rows:
        assert datetime.fromisoformat(row[5]).tzinfo is not None, row[5]  # the whole instant
    assert "…" not in "\n".join(lines)
    assert json.loads(planner(settings, "deliveries", "list", "--json"))[0]["recipient_id"] == LONG_ID
    screen = planner(settings, "deliveries", "list", terminal=True)
    assert "3 deliveries" in screen and "┏━━━━┳━━━" in screen and "\t" not in screen, "a terminal: a table"


def test_deliveries_show_in_a_pipe_prints_what_was_sent(settings: Settings, sent: int) -> None:
    output = planner(settings, "deliveries", "show", str(sent))
    blocks = output.split("\n\n")
    fields = dict(line.split("\t", 1) for line in blocks[0].splitlines()[1:])
    assert fields["recipient id"] == LONG_ID and fields["status"] == "sent"
    assert blocks[1].splitlines()[:2] == ["# timeline", "at (UTC)\tevent\tstatus\treason\tdetail"]
    message = dict(line.split("\t", 1) for line in blocks[2].splitlines()[1:])
    assert blocks[2].splitlines()[0] == "message\tvalue"
    assert message["subject"] == "Your daily brief for 2026-03-06"
    assert message["To"] == f"{LONG_ID}@example.com" and message["Message-ID"].startswith("<delivery-")
    assert "--- text body ---\n" in output and "Today: Snow\tand ice" in output, "the body as it was sent"
    assert "--- HTML body (source) ---\n<p>Good morning" in output


def test_other_list_commands_print_whole_values_in_a_pipe(
    settings: Settings, timed_app: App, sent: int
) -> None:
    create_token(timed_app, "crm-integration-with-a-long-name", ["read", "write"], NOW)
    tokens = planner(settings, "tokens", "list").splitlines()
    assert tokens[0] == "name\tscopes\tcreated_at"
    assert tokens[1].split("\t") == ["crm-integration-with-a-long-name", "read,write", NOW.isoformat()]
    recipients = planner(settings, "recipients", "list").splitlines()
    assert recipients[1].split("\t")[:2] == [LONG_ID, "America/New_York"]
    status = planner(settings, "status").split("\n\n")
    title = "deliveries: in flight, dead ones due in the last 7 days, settled ones due in the last 24 hours"
    assert status[0].splitlines()[0] == f"{title}\tvalue"
    assert "queued\t2" in status[0].splitlines()  # the sent one is due before the last 24 h
    assert status[1].splitlines()[:2] == ["# RQ queues", "queue\twaiting\tscheduled"]
    templates = planner(settings, "templates", "check").splitlines()
    assert templates[0] == "kind\tchannel\tlocale\tstatus\tsubscriptions\tdata keys\tproblems"
    assert "daily_brief\temail\tdefault\tok\t1\t" in "\n".join(templates)
    explained = planner(settings, "explain", LONG_ID, "--date", "2026-03-09").splitlines()
    assert explained[0].startswith(f"# {LONG_ID} · daily_brief by email · 2026-03-09 (America/New_York)")
    assert explained[1] == "rule\tverdict\tdetail" and len(explained) > 4
    simulated = planner(settings, "simulate", LONG_ID, "--from", "2026-03-09", "--days", "1").splitlines()
    assert simulated[0] == "Local date\tKind\tChannel\tLocal time\tUTC\tNotes"
    assert simulated[1].split("\t")[:5] == [
        "2026-03-09",
        "daily_brief",
        "email",
        "12:30 -04:00 EDT",
        "2026-03-09 16:30Z",
    ]
