"""Browser tests of the dashboard: Debian's chromium driven by Playwright, against a real server.

One browser for the session; one uvicorn server, one PostgreSQL database and one data set per
module. The service's clock is fixed at :data:`NOW` (the App's injected clock, as everywhere in
the service), the Saturday before the 2026-03-08 US clock change, so the pages have a DST change
to show whatever the day the suite runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from adapters import Message, PermanentError
from adapters.capture import CaptureAdapter
from planner.app import App, build_deliverer, build_runner
from planner.commands.importer import import_lines
from planner.commands.notify import notify
from planner.commands.recipients import set_preference
from planner.processes.worker import make_worker
from planner.settings import Settings
from tests.conftest import new_pg_database
from tests.http_server import serving as serving
from tests.servers import PostgresServer, RedisServer, require_postgres

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "ui-test-token"
SIGNING_SECRET = "ui-test-signing-secret"
NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "sample.jsonl"

#: Recipients the tests read by hand: a 02:30 cadence in New York hits the 2026-03-08 gap; an
#: evening SMS in London is deferred by the default SMS quiet hours (21:00-08:00).
EXTRA = [
    {"type": "recipient", "id": "ny-early", "timezone": "America/New_York", "email": "ny@example.com",
     "subscriptions": [{"kind": "night_report", "channel": "email", "at": "02:30", "days": "daily"}]},
    {"type": "recipient", "id": "ann", "timezone": "Europe/London", "phone": "+447700900123",
     "email": "ann@example.com",
     "subscriptions": [{"kind": "daily_brief", "channel": "sms", "at": "22:30", "days": "daily"}]},
    # Three wall times on a weekly rule, the last Friday of the month (snoozed), and a digest whose
    # kind she opted out of (by the unsubscribe link, in populate()).
    {"type": "recipient", "id": "rita", "timezone": "Europe/Paris", "email": "rita@example.com",
     "phone": "+33612345678", "quiet_hours": {"sms": {"start": "22:00", "end": "07:00"}},
     "subscriptions": [
         {"kind": "reminder", "channel": "sms", "at": ["09:00", "13:00", "17:30"],
          "rrule": "FREQ=WEEKLY;BYDAY=MO,WE,FR"},
         {"kind": "daily_brief", "channel": "email", "at": "08:00", "rrule": "FREQ=MONTHLY;BYDAY=-1FR",
          "snooze_until": "2026-04-01"},
         {"kind": "weekly_digest", "channel": "email", "at": "07:30", "days": "mon", "digest": True,
          "start_date": "2026-03-02", "end_date": "2026-12-28"},
     ]},
]  # fmt: skip


# Per module, not per session: Playwright's sync API keeps an event loop running in the main thread
# while it is open, and a later test calling asyncio.run() (the testing kit's) would find it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def ui_app(
    postgres_server: PostgresServer | None,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[App]:
    server = require_postgres(postgres_server)
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    connection.close()
    url = new_pg_database(server)
    settings = ui_settings(url, redis_server.url, tmp_path_factory.mktemp("outbox"))
    app = App(settings, clock=lambda: NOW)
    populate(app)
    worker = make_worker(app)
    worker.register_birth()  # a live worker, as the overview should see one
    yield app
    worker.register_death()
    app.close()
    server.drop_database(url.rsplit("/", 1)[1])


def ui_settings(database_url: str, redis_url: str, outbox: Path) -> Settings:
    """The data set's service: capture adapters, an admin token, signed unsubscribe links, and the
    team's name for one kind."""
    return Settings(
        database_url=database_url, redis_url=redis_url, outbox_dir=outbox,
        email_adapter="capture", sms_adapter="capture", api_token=SecretStr(TOKEN),
        signing_secret=SecretStr(SIGNING_SECRET), kind_names={"weekly_digest": "the weekly digest"},
    )  # fmt: skip


def _failing(error: str) -> CaptureAdapter:
    def fail(_message: Message) -> None:
        raise PermanentError(error)

    return CaptureAdapter(fail_with=fail)


def populate(app: App) -> None:
    """The sample recipients and the two above, one planner run, a few sends and dead letters."""
    lines = SAMPLE.read_text().splitlines() + [json.dumps(line) for line in EXTRA]
    import_lines(app.sessions, lines, NOW - timedelta(hours=2))
    set_preference(app, "rita", "email", "weekly_digest", True, NOW - timedelta(hours=2))
    build_runner(app).run(NOW - timedelta(hours=1), timedelta(hours=1))
    build_runner(app).run(NOW, app.settings.horizon)
    working = CaptureAdapter()
    sender = build_deliverer(app, adapters={"email": working, "sms": working})
    with app.sessions() as session:
        due = [i for (i,) in session.execute(_due_ids(), {"now": NOW})]
    sender.deliver_batch(due)
    _history(app)
    for n, error in enumerate(["550 5.1.1 mailbox unavailable"] * 4 + ["552 5.2.2 mailbox full"] * 2):
        result = notify(app, f"u-{10 + n}", "daily_brief", "email", now=NOW)
        adapter = _failing(error)
        build_deliverer(app, adapters={"email": adapter, "sms": adapter}).deliver_batch(
            [result.delivery["id"]]
        )


def _history(app: App) -> None:
    """Three sends two days ago: older than the overview's 24 hours of settled outcomes."""
    then = App(app.settings, clock=lambda: NOW - timedelta(days=2))
    working = CaptureAdapter()
    sender = build_deliverer(then, adapters={"email": working, "sms": working})
    for n in range(3):
        result = notify(then, f"u-{30 + n}", "daily_brief", "email", now=then.clock())
        assert sender.deliver_batch([result.delivery["id"]]).sent == 1
    then.close()


def _due_ids() -> Any:
    from sqlalchemy import text

    return text("SELECT id FROM delivery WHERE status = 'queued' AND scheduled_at <= :now ORDER BY id")


@pytest.fixture(scope="module")
def base_url(ui_app: App) -> Iterator[str]:
    with serving(ui_app) as url:
        yield url


@pytest.fixture(scope="module")
def signed_in(browser: Any, base_url: str) -> Iterator[Any]:
    """A browser context signed in once for the module (its pages share the session cookie)."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    sign_in(page, TOKEN)
    close_settled(page)
    yield context
    context.close()


def sign_in(page: Any, token: str) -> None:
    """Sign in through the form and wait until the overview has loaded: closing a page while the
    form's redirect is committing can hang Chromium's close for good (playwright#41900)."""
    page.goto("/ui/login")
    page.fill("input[name=token]", token)
    with page.expect_navigation(url="**/ui", wait_until="load"):
        page.click("button[type=submit]")


@pytest.fixture
def page(signed_in: Any) -> Iterator[Any]:
    tab = signed_in.new_page()
    tab.set_default_timeout(5000)  # a missing element fails in seconds, not 30
    yield tab
    close_settled(tab)


def follow(page: Any, selector: str) -> None:
    """Click a link or a submit button and wait for the page it leads to: a read right after a bare
    click can see the page it leaves, or none."""
    with page.expect_navigation():
        page.click(selector)


def close_settled(tab: Any) -> None:
    """Close a tab once whatever navigation its last click started has committed and loaded (a
    close racing a navigation's commit can hang; playwright#41900)."""
    tab.goto("about:blank")
    tab.close()
