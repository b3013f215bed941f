"""``explain``, ``simulate`` and the CLI on a learned send time: the statistic over the window, the
choice and why, before and after the planner decided (the recorded choice stays what it was)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from planner.app import App, build_runner
from planner.cli import app as cli_app
from planner.commands.importer import import_lines
from planner.readmodels.explain import explain
from planner.readmodels.simulate import simulate_recipient
from planner.settings import Settings

SYDNEY = "Australia/Sydney"
WINDOW = {"auto": {"between": ["07:00", "21:00"], "default": "09:00"}}
# Sydney, 2026-03-10 (AEDT, +11:00): the window opens at 07:00 local = 20:00Z the day before.
OPENS = datetime(2026, 3, 9, 20, 0, tzinfo=UTC)


def engaged(day: date, hh_mm: str, event: str = "opened") -> str:
    """An engagement at a local wall time in Sydney (AEDT in these weeks)."""
    local = datetime.fromisoformat(f"{day.isoformat()}T{hh_mm}:00+11:00")
    stamp = local.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": "engagement", "recipient_id": "sue", "event": event, "at": stamp})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """No engagement backoff: these tests are about when each date's send goes, not whether."""
    return settings.model_copy(update={"backoff_tiers": [(0, 1)]})


@pytest.fixture
def sue(app: App) -> App:
    line = {
        "type": "recipient", "id": "sue", "timezone": SYDNEY, "email": "sue@example.com",
        "subscriptions": [{"kind": "daily_brief", "channel": "email", "at": WINDOW, "days": "daily"}],
    }  # fmt: skip
    history = [engaged(date(2026, 3, d), "19:40") for d in range(4, 10)] + [
        engaged(date(2026, 3, 5), "12:10")
    ]
    import_lines(app.sessions, [json.dumps(line), *history], OPENS - timedelta(hours=3))
    return app


def learned_of(result: dict[str, Any]) -> dict[str, Any]:
    [sub] = result["subscriptions"]
    assert sub["learned_time"] is not None
    return dict(sub["learned_time"])


def test_explain_shows_the_statistic_the_choice_and_why_before_and_after_the_run(sue: App) -> None:
    day = date(2026, 3, 10)
    before = explain(sue, "sue", now=OPENS - timedelta(hours=2), local_date=day)
    learned = learned_of(before)
    assert (learned["window"], learned["default"], learned["slot_minutes"]) == ("07:00-21:00", "09:00", 30)
    histogram = {row["slot"]: row for row in learned["histogram"]}
    assert len(histogram) == 28 and histogram["19:30"]["events"] == 6 and histogram["12:00"]["events"] == 1
    assert histogram["19:30"]["weight"] > 5 > histogram["12:00"]["weight"] > 0
    assert (learned["choice"]["chosen"], learned["choice"]["basis"]) == ("19:30", "learned")
    assert learned["recorded"] is None
    [sub] = before["subscriptions"]
    line = next(v for v in sub["verdicts"] if v["rule"] == "learned_time")
    assert line["detail"].startswith("learned time 19:30: ")
    assert sub["outcome"] == "would be sent"

    build_runner(sue).run(OPENS - timedelta(hours=1), timedelta(hours=1))
    # Mornings recorded after the run (an import of older opens): the statistic moves, the decided
    # date does not.
    mornings = [engaged(day - timedelta(days=d), f"08:{10 + d:02d}") for d in range(1, 12)]
    import_lines(sue.sessions, mornings, OPENS - timedelta(minutes=30))
    after = explain(sue, "sue", now=OPENS - timedelta(minutes=20), local_date=day)
    learned = learned_of(after)
    assert learned["recorded"]["chosen"] == "19:30" and learned["choice"]["chosen"] == "08:00"
    [sub] = after["subscriptions"]
    line = next(v for v in sub["verdicts"] if v["rule"] == "learned_time")
    assert "decided 19:30 (learned" in line["detail"] and "the statistic now says 08:00" in line["detail"]
    assert sub["delivery"]["scheduled_at"] == "2026-03-10T08:30:00+00:00"  # 19:30 AEDT
    [planned] = sub["delivery"]["timeline"]
    assert planned["detail"]["learned_time"]["chosen"] == "19:30"


def test_simulate_shows_each_dates_chosen_time_until_the_history_fades(sue: App) -> None:
    sends, title = simulate_recipient(sue, "sue", date(2026, 3, 10), 28)
    assert "every day at a learned time between 07:00 and 21:00 (default 09:00)" in title
    times = [(s.local_date, s.send_local.strftime("%H:%M %z")) for s in sends]
    assert len(times) == 28 and len({d for d, _ in times}) == 28
    assert times[0] == (date(2026, 3, 10), "19:30 +1100")
    assert sends[0].notes[0].startswith("learned time 19:30: ")
    # Without new engagement the weights halve every 14 days: under the threshold, the default.
    defaults = [s for s in sends if s.choice is not None and s.choice.basis == "default"]
    assert defaults and all(s.send_local.strftime("%H:%M") == "09:00" for s in defaults)
    assert "too little history" in defaults[0].notes[0]
    # Sydney leaves DST on 2026-04-05: the learned hour stays 19:30 local, its offset changes.
    learned = [s for s in sends if s.choice is not None and s.choice.learned]
    assert {s.send_local.strftime("%H:%M") for s in learned} == {"19:30"}


def test_the_cli_draws_the_statistic_as_a_table(sue: App, cli: CliRunner) -> None:
    build_runner(sue).run(OPENS - timedelta(hours=1), timedelta(hours=1))
    result = cli.invoke(cli_app, ["explain", "sue", "--date", "2026-03-10"])
    assert result.exit_code == 0, result.output
    assert "engagement by half hour 07:00-21:00: learned 19:30" in " ".join(result.output.split())
    chosen = next(line for line in result.output.splitlines() if "← chosen" in line)
    assert "19:30" in chosen and "6" in chosen
