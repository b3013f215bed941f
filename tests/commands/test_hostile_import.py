"""``planner import`` against hostile files: a corpus of bad lines through the real CLI, and random
JSON through the importer. Every bad line is one message naming its line, field and value (cut
short); there is no traceback; an atomic import leaves the database as it was; ``--skip-invalid``
still imports the good lines.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.importer import ImportFailed, ImportReport, import_lines
from planner.core.import_records import ENGAGEMENT_KEYS, RECIPIENT_KEYS
from planner.store.models import metadata

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def recipient(**overrides: Any) -> dict[str, Any]:
    line: dict[str, Any] = {
        "type": "recipient",
        "id": "good-1",
        "timezone": "America/New_York",
        "email": "good@example.com",
        "phone": "+12125550100",
        "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": "08:00"}],
    }
    line.update(overrides)
    return line


def engagement(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "engagement",
        "recipient_id": "good-1",
        "event": "opened",
        "at": "2026-03-01T10:00:00Z",
    } | overrides


def js(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


SUB = {"kind": "daily_brief", "channel": "email", "at": "08:00"}


def learned(between: list[str] | None = None, default: str = "09:00") -> dict[str, Any]:
    return {"auto": {"between": between or ["07:00", "21:00"], "default": default}}


# (line 2 of the file, the field its error names, a fragment of the value the error shows)
CORPUS: list[tuple[bytes, str, str]] = [
    (deep(100_000), "json", "[[[["),
    (deep(40), "json", "[[[["),
    (b'{"type": "recipient", "id": "x", "opt_out": ' + b"9" * 5000 + b"}", "json", "9999"),
    (js(engagement(at="9999-12-31T23:59:59-23:59")), "at", "9999-12-31"),
    (js(engagement(at="0001-01-01T00:00:00+14:00")), "at", "0001-01-01"),
    (js(engagement(at="9999-12-31T23:59:59Z")), "at", "9999"),
    (js(engagement(at="2026-03-01T10:00:00")), "at", "2026-03-01"),
    (js(engagement(at=1_700_000_000)), "at", "1700000000"),
    (js(engagement(event="liked")), "event", "liked"),
    (js(engagement(recipient_id="ghost")), "recipient_id", "ghost"),
    (b'{"type": "recipient", "id": "\xff"}', "line", "xff"),
    ('{"type": "recipient", "id": "café"}'.encode("latin-1"), "line", "xe9"),
    (js(recipient(id="case-r\n")), "id", "case-r\\n"),
    (js(recipient(id="other-1")), "id", "already on line 1"),
    (js(recipient(id="x" * 1_000_000)), "id", "1000000 characters"),
    (js(recipient(id="")), "id", "''"),
    (js(recipient(id=None)), "id", "None"),
    (js(recipient(id=12)), "id", "12"),
    (js(recipient(id="u 1")), "id", "u 1"),
    (js(recipient(email="ann@example.com\n")), "email", "ann@example.com\\n"),
    (js(recipient(email="not-an-email")), "email", "not-an-email"),
    (js(recipient(phone="+12125550100\n")), "phone", "+12125550100\\n"),
    (js(recipient(phone="212-555-0100")), "phone", "212-555-0100"),
    (js(recipient(timezone="Factory")), "timezone", "Factory"),
    (js(recipient(timezone="Mars/Olympus_Mons")), "timezone", "Mars/Olympus_Mons"),
    (js(recipient(timezone="../../etc/passwd")), "timezone", "../../etc/passwd"),
    (js(recipient(timezone="America/New_York\n")), "timezone", "America/New_York"),
    (js(recipient(timezone=["UTC"])), "timezone", "['UTC']"),
    (
        js(recipient(quiet_hours={"sms": {"start": "08:00", "end": "08:00"}})),
        "quiet_hours.sms",
        "08:00-08:00",
    ),
    (js(recipient(quiet_hours={"sms": {"start": "9pm", "end": "08:00"}})), "quiet_hours.sms.start", "9pm"),
    (
        js(recipient(quiet_hours={"sms": {"start": "24:00", "end": "08:00"}})),
        "quiet_hours.sms.start",
        "24:00",
    ),
    (js(recipient(quiet_hours={"fax": {"start": "21:00", "end": "08:00"}})), "quiet_hours.fax", "fax"),
    (js(recipient(quiet_hours="21:00-08:00")), "quiet_hours", "21:00-08:00"),
    (js(recipient(opt_out="sms")), "opt_out", "sms"),
    (js(recipient(opt_out=["fax"])), "opt_out", "fax"),
    (js(recipient(subscriptions={"kind": "x"})), "subscriptions", "kind"),
    (js(recipient(subscriptions=[SUB, SUB])), "subscriptions[1]", "daily_brief/email"),
    (js(recipient(subscriptions=[{**SUB, "kind": "brief"}])), "subscriptions[0].kind", "brief"),
    (
        js(recipient(subscriptions=[{**SUB, "kind": "daily_brief\n"}])),
        "subscriptions[0].kind",
        "daily_brief\\n",
    ),
    (js(recipient(subscriptions=[{**SUB, "channel": "fax"}])), "subscriptions[0].channel", "fax"),
    (js(recipient(subscriptions=[{**SUB, "at": "25:00"}])), "subscriptions[0].at", "25:00"),
    (js(recipient(subscriptions=[{**SUB, "at": "08:00\n"}])), "subscriptions[0].at", "08:00"),
    # Learned send times: a window shorter than one slot, inverted, a default outside it, in a list.
    (
        js(recipient(subscriptions=[{**SUB, "at": learned(["07:00", "07:20"])}])),
        "subscriptions[0].at.auto.between",
        "one 30-minute slot",
    ),
    (
        js(recipient(subscriptions=[{**SUB, "at": learned(["21:00", "07:00"])}])),
        "subscriptions[0].at.auto.between",
        "start before the end",
    ),
    (
        js(recipient(subscriptions=[{**SUB, "at": learned(default="22:00")}])),
        "subscriptions[0].at.auto.default",
        "inside the window 07:00-21:00",
    ),
    (js(recipient(subscriptions=[{**SUB, "at": [learned()]}])), "subscriptions[0].at", "not in a list"),
    (js(recipient(subscriptions=[{**SUB, "days": ["someday"]}])), "subscriptions[0].days", "someday"),
    (js(recipient(subscriptions=[{**SUB, "active": "yes"}])), "subscriptions[0].active", "yes"),
    (js(recipient(subscriptions=[{**SUB, "extra": 1}])), "subscriptions[0].extra", "1"),
    (js(recipient(email=None)), "subscriptions[0].channel", "email"),
    (js(recipient(nickname="annie")), "nickname", "annie"),
    (b'{"type": "recipient", "type": "recipient", "id": "d"}', "type", "recipient"),
    (b'{"type": "recipient", "id": "d", "id": "e"}', "id", "e"),
    (b'{"type": "recipient", "id": ', "json", '"type"'),
    (b"[1, 2, 3]", "json", "[1, 2, 3]"),
    (b'"just a string"', "json", "just a string"),
    (b"NaN", "json", "NaN"),
    (js({"type": "robot"}), "type", "robot"),
    (js({"id": "no-type"}), "type", "None"),
]


def _counts(app: App) -> dict[str, int]:
    with app.engine.connect() as connection:
        return {
            t.name: connection.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
        }


@pytest.fixture
def runner(cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    return cli


def _import(runner: CliRunner, path: Path, *options: str) -> Any:
    result = runner.invoke(cli_app, ["import", str(path), *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream
    return result


def test_every_bad_line_is_named_and_nothing_is_written(runner: CliRunner, app: App, tmp_path: Path) -> None:
    seeded = tmp_path / "seed.jsonl"
    seeded.write_bytes(js(recipient()) + b"\n")
    assert _import(runner, seeded).exit_code == 0
    before = _counts(app)
    for number, (line, field, fragment) in enumerate(CORPUS):
        path = tmp_path / f"bad-{number}.jsonl"
        path.write_bytes(js(recipient(id="other-1", email="o@example.com")) + b"\n" + line + b"\n")
        result = _import(runner, path)
        assert result.exit_code == 1, (number, result.stderr)
        errors = [row for row in result.stderr.splitlines() if row.startswith("line 2:")]
        assert len(errors) == 1, (number, result.stderr[:500])
        assert errors[0].startswith(f"line 2: {field}:"), (number, errors[0][:300])
        assert fragment in errors[0], (number, errors[0][:300])
        assert len(errors[0]) < 400, "echoed values are cut short"
        assert "nothing was imported" in result.stderr
        assert _counts(app) == before, number


def test_skip_invalid_imports_the_good_lines_around_every_bad_one(
    runner: CliRunner, app: App, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [js(recipient()), js(recipient(id="other-1", email="o@example.com"))]
    for number, (line, _, _) in enumerate(CORPUS):
        lines += [line, js(recipient(id=f"good-{number + 2}", email=f"g{number}@example.com"))]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = _import(runner, path, "--skip-invalid", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["invalid_lines"] == len(CORPUS)
    assert report["recipients_created"] == len(CORPUS) + 2
    assert _counts(app)["recipient"] == len(CORPUS) + 2


def test_reimporting_engagement_records_each_event_once(runner: CliRunner, app: App, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join([js(recipient()), js(engagement()), js(engagement(event="clicked"))]) + b"\n")
    first = json.loads(_import(runner, path, "--json").stdout)
    again = json.loads(_import(runner, path, "--json").stdout)
    assert (first["engagement_events"], again["engagement_events"]) == (2, 0)
    assert again["engagement_already_recorded"] == 2
    assert _counts(app)["engagement_event"] == 2


def test_quiet_hours_none_is_explicit(app: App) -> None:
    import_lines(app.sessions, [json.dumps(recipient(quiet_hours={"sms": "none"}))], NOW)
    from planner.store.models import Recipient

    with app.sessions() as session:
        person = session.scalars(select(Recipient)).one()
    quiet = person.own_quiet_hours("sms")
    assert quiet is not None and quiet.is_empty


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
# Every field a line may carry (the importer's own lists: a new field is fuzzed too).
FIELDS = st.sampled_from(sorted(RECIPIENT_KEYS | ENGAGEMENT_KEYS))
LINES = st.one_of(
    st.dictionaries(FIELDS, JSON, max_size=8).map(lambda d: {"type": "recipient", **d}),
    st.dictionaries(FIELDS, JSON, max_size=6).map(lambda d: {"type": "engagement", **d}),
    st.fixed_dictionaries(
        {"type": st.just("recipient"), "id": st.just("h-1"), "timezone": st.just("UTC")}
    ).flatmap(lambda base: st.dictionaries(FIELDS, JSON, max_size=4).map(lambda d: {**base, **d})),
    JSON,
)
TRIED: list[int] = [0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@given(obj=LINES)
@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_random_json_is_imported_or_refused_by_line_never_crashes(app: App, obj: Any) -> None:
    TRIED[0] += 1
    line = json.dumps(obj)
    try:
        report = import_lines(app.sessions, [line, "\n"], NOW)
    except ImportFailed as failure:
        assert failure.errors and all(e.line == 1 and e.field for e in failure.errors), failure.errors
        assert len(str(failure)) < 2000
    else:
        assert isinstance(report, ImportReport) and report.lines == 1
