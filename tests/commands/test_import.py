"""Validated import: every bad input gets a message naming line, field and reason; atomic by default."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.importer import ImportFailed, import_lines
from planner.commands.recipients import set_preference
from planner.store.models import EngagementEvent, Recipient, Subscription
from planner.store.preferences import set_channel_opt_out

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def recipient(**overrides: object) -> str:
    base: dict[str, object] = {
        "type": "recipient",
        "id": "u-1",
        "timezone": "America/New_York",
        "email": "ann@example.com",
        "phone": "+12125550100",
        "quiet_hours": {"sms": {"start": "21:00", "end": "08:00"}},
        "subscriptions": [
            {"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"},
            {"kind": "weekly_digest", "channel": "sms", "at": "18:30", "days": ["mon", "thu"]},
        ],
    }
    base.update(overrides)
    return json.dumps(base)


ENGAGEMENT = json.dumps(
    {"type": "engagement", "recipient_id": "u-1", "event": "opened", "at": "2026-03-01T13:05:00Z"}
)


def count(app: App, model: type) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_import_creates_recipients_subscriptions_and_cursors(app: App) -> None:
    report = import_lines(app.sessions, [recipient(), ENGAGEMENT], NOW)
    assert (report.recipients_created, report.subscriptions_created, report.engagement_events) == (1, 2, 1)
    with app.sessions() as session:
        subs = {s.kind: s for s in session.scalars(select(Subscription))}
    # 12:00 UTC is 07:00 EST on 2026-03-01: today's 08:00 brief is still ahead.
    assert subs["daily_brief"].next_at == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
    assert subs["daily_brief"].next_local_date.isoformat() == "2026-03-01"
    # 2026-03-01 is a Sunday: the next Mon/Thu 18:30 is Monday 2026-03-02, 23:30 UTC.
    assert subs["weekly_digest"].next_at == datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert subs["weekly_digest"].days == "mon,thu"


def test_a_reimport_never_lifts_an_opt_out_only_the_preferences_route_does(app: App) -> None:
    import_lines(app.sessions, [recipient(opt_out=["email"])], NOW)
    # The recipient's own STOP, recorded since (as the inbound SMS webhook records it).
    with app.sessions() as session, session.begin():
        person = session.scalars(select(Recipient)).one()
        assert person.id is not None
        set_channel_opt_out(session, person.id, "sms", True, NOW)

    report = import_lines(app.sessions, [recipient()], NOW)  # a CRM that knows of neither

    assert report.opt_outs_kept == 2 and report.as_dict()["opt_outs_kept"] == 2
    with app.sessions() as session:
        person = session.scalars(select(Recipient)).one()
    assert (person.email_opt_out, person.sms_opt_out) == (True, True)
    set_preference(app, "u-1", "sms", None, False, NOW)
    assert import_lines(app.sessions, [recipient(opt_out=["email"])], NOW).opt_outs_kept == 0
    with app.sessions() as session:
        person = session.scalars(select(Recipient)).one()
    assert (person.email_opt_out, person.sms_opt_out) == (True, False)


def test_reimport_upserts_and_recomputes_cursor(app: App) -> None:
    import_lines(app.sessions, [recipient()], NOW)
    changed = recipient(
        timezone="Europe/London",
        email="ann@new.example.com",
        subscriptions=[{"kind": "daily_brief", "channel": "email", "at": "09:15", "days": ["sat"]}],
    )
    report = import_lines(app.sessions, [changed], NOW)
    assert report.recipients_created == 0 and report.recipients_updated == 1
    assert report.subscriptions_deactivated == 1
    with app.sessions() as session:
        person = session.scalars(select(Recipient)).one()
        subs = {s.kind: s for s in session.scalars(select(Subscription))}
    assert (person.timezone, person.email) == ("Europe/London", "ann@new.example.com")
    assert subs["daily_brief"].send_time == time(9, 15)
    # The first Saturday 09:15 London (GMT) after 2026-03-01 12:00Z is 2026-03-07 09:15Z.
    assert subs["daily_brief"].next_at == datetime(2026, 3, 7, 9, 15, tzinfo=UTC)
    assert subs["weekly_digest"].active is False and subs["weekly_digest"].next_at is None


BAD_LINES = [
    (recipient(timezone="America/New_Yrok"), "timezone", "America/New_Yrok"),
    (recipient(timezone="EST5EDT-ish"), "timezone", "IANA time zone"),
    (
        recipient(subscriptions=[{"kind": "daily_brief", "channel": "email", "at": "8am"}]),
        "subscriptions[0].at",
        "HH:MM",
    ),
    (
        recipient(subscriptions=[{"kind": "daily_brief", "channel": "email", "at": "24:00"}]),
        "subscriptions[0].at",
        "HH:MM",
    ),
    (
        recipient(
            subscriptions=[{"kind": "d", "channel": "email", "at": "08:00", "days": ["mon", "funday"]}]
        ),
        "subscriptions[0].days",
        "funday",
    ),
    (
        recipient(subscriptions=[{"kind": "d", "channel": "fax", "at": "08:00"}]),
        "subscriptions[0].channel",
        "fax",
    ),
    (recipient(email="ann-at-example.com"), "email", "email address"),
    (recipient(phone="212-555-0100"), "phone", "E.164"),
    (recipient(quiet_hours={"sms": {"start": "9pm", "end": "08:00"}}), "quiet_hours.sms.start", "9pm"),
    (
        json.dumps(
            {"type": "engagement", "recipient_id": "u-1", "event": "opened", "at": "2026-03-01T13:05:00"}
        ),
        "at",
        "offset",
    ),
    (
        json.dumps(
            {"type": "engagement", "recipient_id": "u-1", "event": "liked", "at": "2026-03-01T13:05:00Z"}
        ),
        "event",
        "opened",
    ),
    ('{"type": "recipient", "id": "u-1", ', "json", "JSON object"),
    (json.dumps({"type": "robot"}), "type", "'recipient' or 'engagement'"),
    (recipient(nickname="annie"), "nickname", "only the fields"),
    *[
        (
            recipient(subscriptions=[{"kind": "d", "channel": "email", "at": "08:00", **sub}]),
            field,
            hint,
        )
        for sub, field, hint in [
            (
                {"rrule": "FREQ=SOMETIMES"},
                "subscriptions[0].rrule",
                "'FREQ=SOMETIMES' is invalid; expected an RRULE",
            ),
            ({"rrule": "FREQ=HOURLY"}, "subscriptions[0].rrule", "FREQ of DAILY, WEEKLY, MONTHLY or YEARLY"),
            ({"rrule": "FREQ=MINUTELY"}, "subscriptions[0].rrule", "FREQ of DAILY"),
            ({"rrule": "FREQ=SECONDLY"}, "subscriptions[0].rrule", "FREQ of DAILY"),
            (
                {"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},
                "subscriptions[0].rrule",
                "occurs on at least one",
            ),
            (
                {"rrule": "FREQ=DAILY;UNTIL=20260101", "start_date": "2026-02-01"},
                "subscriptions[0].rrule",
                "an UNTIL on or after the start date 2026-02-01",
            ),
            ({"rrule": "FREQ=DAILY;INTERVAL=2"}, "subscriptions[0].start_date", "counts from its first date"),
            ({"rrule": "FREQ=DAILY", "days": "weekdays"}, "subscriptions[0].rrule", "either days or rrule"),
            ({"start_date": "2026-13-01"}, "subscriptions[0].start_date", "a date YYYY-MM-DD"),
            (
                {"start_date": "2026-03-02", "end_date": "2026-03-01"},
                "subscriptions[0].end_date",
                "on or after",
            ),
            ({"snooze_until": "soon"}, "subscriptions[0].snooze_until", "a date YYYY-MM-DD"),
        ]
    ],
    (
        recipient(
            subscriptions=[
                {
                    "kind": "d",
                    "channel": "email",
                    "at": [f"{h:02d}:{m:02d}" for h in range(13) for m in (0, 30)],
                }
            ]
        ),
        "subscriptions[0].at",
        "a list of 1 to 24",
    ),
]


@pytest.mark.parametrize(
    ("line", "field", "hint"), BAD_LINES, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD_LINES)]
)
def test_bad_input_is_rejected_with_line_field_and_reason(app: App, line: str, field: str, hint: str) -> None:
    with pytest.raises(ImportFailed) as failure:
        import_lines(app.sessions, [recipient(id="u-0"), line], NOW)
    [error] = failure.value.errors
    assert error.line == 2
    assert error.field == field
    assert hint in error.message
    assert str(error).startswith(f"line 2: {field}:")
    # Atomic: the good first line was not imported either.
    assert count(app, Recipient) == 0


def test_engagement_for_unknown_recipient_rolls_back_everything(app: App) -> None:
    orphan = json.dumps(
        {"type": "engagement", "recipient_id": "ghost", "event": "opened", "at": "2026-03-01T13:05:00Z"}
    )
    with pytest.raises(ImportFailed) as failure:
        import_lines(app.sessions, [recipient(), orphan], NOW)
    assert "line 2: recipient_id: 'ghost' is not a known recipient" in str(failure.value)
    assert count(app, Recipient) == 0
    assert count(app, EngagementEvent) == 0


def test_skip_invalid_imports_the_good_lines(app: App) -> None:
    lines = [recipient(), recipient(id="u-2", timezone="Mars/Olympus_Mons"), recipient(id="u-3"), ENGAGEMENT]
    report = import_lines(app.sessions, lines, NOW, skip_invalid=True)
    assert report.recipients_created == 2
    assert [(e.line, e.field) for e in report.errors] == [(2, "timezone")]
    assert count(app, Recipient) == 2
    assert count(app, EngagementEvent) == 1


@pytest.fixture
def cli_env(cli: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    return cli


def test_cli_import_reports_errors_and_exits_non_zero(cli_env: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(recipient() + "\n" + recipient(id="u-2", timezone="Europe/Londn") + "\n")
    result = cli_env.invoke(cli_app, ["import", str(path)])
    assert result.exit_code == 1
    assert "line 2: timezone: 'Europe/Londn' is invalid" in result.stderr
    assert "nothing was imported" in result.stderr

    result = cli_env.invoke(cli_app, ["import", str(path), "--skip-invalid", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["recipients_created"] == 1 and summary["invalid_lines"] == 1


def test_cli_import_sample_fixture(cli_env: CliRunner) -> None:
    sample = Path(__file__).resolve().parents[2] / "fixtures" / "sample.jsonl"
    result = cli_env.invoke(cli_app, ["import", str(sample), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["recipients_created"] >= 200
    assert summary["invalid_lines"] == 0
