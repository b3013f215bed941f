"""``explain``: each rule's verdict for a recipient's subscriptions on a local date."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.app import App, build_runner
from planner.cli import app as cli_app
from planner.commands.importer import import_lines
from planner.errors import NotFound
from planner.readmodels.explain import explain

IMPORTED_AT = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
# Monday 2026-03-02, 08:00 EST.
RUN_AT = datetime(2026, 3, 2, 13, 0, tzinfo=UTC)

ANN = {
    "type": "recipient",
    "id": "ann",
    "timezone": "America/New_York",
    "email": "ann@example.com",
    "phone": "+12125550100",
    "subscriptions": [
        {"kind": "daily_brief", "channel": "email", "at": "08:00", "days": "daily"},
        {"kind": "weekly_digest", "channel": "sms", "at": "22:00", "days": ["mon"]},
        {"kind": "reminder", "channel": "email", "at": "02:30", "days": "daily"},
    ],
}


@pytest.fixture
def planned(app: App) -> App:
    import_lines(app.sessions, [json.dumps(ANN)], IMPORTED_AT)
    build_runner(app).run(RUN_AT, timedelta(hours=16))
    return app


def by_kind(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["kind"]: s for s in result["subscriptions"]}


def verdicts(sub: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["rule"]: v for v in sub["verdicts"]}


def test_explain_a_planned_day(planned: App) -> None:
    result = explain(planned, "ann", now=RUN_AT, local_date=date(2026, 3, 2))
    assert (result["timezone"], result["local_date"]) == ("America/New_York", "2026-03-02")
    subs = by_kind(result)

    brief = subs["daily_brief"]
    rules = verdicts(brief)
    assert brief["outcome"] == "queued"
    checked = ("cadence", "dst", "opt_out", "engagement", "quiet_hours", "cap")
    assert [rules[r]["verdict"] for r in checked] == ["pass"] * len(checked)
    # Inactive since the subscription started (2026-01-31 in New York): 30 days, the every-14-days tier,
    # and nothing sent before.
    assert rules["engagement"]["data"]["inactive_days"] == 30
    assert rules["dedup"]["data"]["dedup_key"].endswith(":2026-03-02")
    assert brief["delivery"]["timeline"][0]["event"] == "planned"
    assert "attempts" in rules

    digest = verdicts(subs["weekly_digest"])
    assert digest["quiet_hours"]["verdict"] == "deferred"
    assert digest["quiet_hours"]["data"]["send_at"] == "2026-03-03T13:00:00+00:00"
    assert subs["weekly_digest"]["delivery"]["reason"] == "quiet_hours_deferred"

    # 02:30 EST (07:30Z) was planned at 13:00Z, more than the 4 h allowed: missed.
    reminder = subs["reminder"]
    assert reminder["outcome"] == "missed (too_late)"
    assert verdicts(reminder)["lateness"]["verdict"] == "fail"


def test_explain_dst_gap_cadence_and_backoff(planned: App) -> None:
    # Sunday 2026-03-08: clocks in New York jump from 02:00 to 03:00.
    result = explain(planned, "ann", now=RUN_AT, local_date=date(2026, 3, 8))
    subs = by_kind(result)

    reminder = verdicts(subs["reminder"])
    assert reminder["dst"]["verdict"] == "adjusted"
    assert reminder["dst"]["data"] == {"adjustment": "gap", "shift_minutes": 60}
    assert "03:30" in reminder["dst"]["detail"]

    digest = subs["weekly_digest"]
    assert verdicts(digest)["cadence"]["verdict"] == "fail"
    assert "Sunday" in verdicts(digest)["cadence"]["detail"]
    assert digest["outcome"] == "no send: cadence"

    # 36 days without engagement: every 14 days, and the last send was on 2026-03-02.
    brief = subs["daily_brief"]
    engagement = verdicts(brief)["engagement"]
    assert engagement["verdict"] == "fail"
    assert engagement["data"]["days_since_last_send"] == 6
    assert brief["outcome"] == "would be skipped: engagement_backoff"
    assert verdicts(brief)["dedup"]["detail"].startswith("not planned yet")


def test_explain_kind_filter_adhoc_and_unknowns(planned: App) -> None:
    from planner.commands.notify import notify

    notify(planned, "ann", "password_reset", "email", now=RUN_AT, data={"code": "1"})
    result = explain(planned, "ann", now=RUN_AT, kind="password_reset")
    assert result["subscriptions"] == []
    assert [d["kind"] for d in result["adhoc"]] == ["password_reset"]
    only = explain(planned, "ann", now=RUN_AT, kind="weekly_digest", local_date=date(2026, 3, 2))
    assert [s["kind"] for s in only["subscriptions"]] == ["weekly_digest"]
    with pytest.raises(NotFound):
        explain(planned, "nobody", now=RUN_AT)
    with pytest.raises(NotFound):
        explain(planned, "ann", now=RUN_AT, kind="no_such_kind")


def test_cli_explain(planned: App, cli: CliRunner) -> None:
    as_json = cli.invoke(cli_app, ["explain", "ann", "--date", "2026-03-08", "--json"])
    assert as_json.exit_code == 0, as_json.stderr
    assert json.loads(as_json.stdout)["local_date"] == "2026-03-08"
    table = cli.invoke(cli_app, ["explain", "ann", "--date", "2026-03-08", "--kind", "reminder"])
    assert table.exit_code == 0, table.stderr
    assert "DST gap" in table.stdout and "quiet_hours" in table.stdout
    bad = cli.invoke(cli_app, ["explain", "ann", "--date", "08/03/2026"])
    assert bad.exit_code == 2 and "--date: '08/03/2026' is invalid" in bad.stderr


def test_explain_a_snoozed_subscription_agrees_with_the_next_run(planned: App) -> None:
    from planner.commands.recipients import patch_subscription

    patch_subscription(planned, "ann", "daily_brief", "email", {"snooze_until": "2026-03-05"}, RUN_AT)
    day = date(2026, 3, 3)
    brief = by_kind(explain(planned, "ann", now=RUN_AT, local_date=day))["daily_brief"]
    assert brief["outcome"] == "would be skipped: snoozed until 2026-03-05"
    assert verdicts(brief)["snooze"]["verdict"] == "fail"

    build_runner(planned).run(RUN_AT + timedelta(days=1), timedelta(hours=1))
    after = by_kind(explain(planned, "ann", now=RUN_AT + timedelta(days=1), local_date=day))["daily_brief"]
    assert after["outcome"] == "skipped (snoozed)"
