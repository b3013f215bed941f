"""In Chromium, on both databases: a dashboard session ends at once when its token is revoked
(`planner tokens revoke`), when it signs out (a copy of the cookie replayed afterwards is refused)
and after the idle timeout by the app's clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from planner.app import App
from planner.auth import create_token
from planner.cli import app as cli_app
from planner.settings import Settings
from planner.store.queries import pause_list
from planner.ui.session import COOKIE
from tests.helpers import Clock
from tests.ui.conftest import follow
from tests.ui.serving import ADMIN, serving

NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ui_app(settings: Settings, clock: Clock) -> Iterator[App]:
    secret = {"signing_secret": SecretStr("a-signing-secret-of-32-bytes-min")}
    app = App(settings.model_copy(update=secret), clock=clock)
    yield app
    app.close()


@pytest.fixture
def context(browser: Any, ui_app: App) -> Iterator[Any]:
    with serving(ui_app) as base_url:
        opened = browser.new_context(base_url=base_url)
        opened.set_default_timeout(5000)
        yield opened
        opened.close()


def signed_in_tab(context: Any, token: str) -> Any:
    tab = context.new_page()
    tab.goto("/ui/login?next=/ui/pauses")
    tab.fill("input[name=token]", token)
    tab.click("button[type=submit]")
    tab.wait_for_url("**/ui/pauses")
    return tab


def test_revoking_the_token_ends_its_dashboard_session_at_the_next_request(
    context: Any, ui_app: App, cli: CliRunner
) -> None:
    tab = signed_in_tab(context, create_token(ui_app, "night-ops", ADMIN, NOW))
    other = context.new_page()  # a form loaded before the revocation, posted after it
    other.goto("/ui/pauses")
    assert other.locator("#pause-sms").is_visible()

    revoked = cli.invoke(cli_app, ["tokens", "revoke", "night-ops"])
    assert revoked.exit_code == 0, revoked.output
    assert "1 dashboard session ended" in revoked.stdout

    tab.reload()
    assert "/ui/login?next=/ui/pauses" in tab.url
    follow(other, "#pause-sms")
    assert "Not signed in" in other.locator("main").inner_text()
    with ui_app.sessions() as db:
        assert pause_list(db) == []


def test_after_signing_out_a_replayed_cookie_is_refused(context: Any, ui_app: App) -> None:
    tab = signed_in_tab(context, create_token(ui_app, "night-ops", ADMIN, NOW))
    copied = [c for c in context.cookies() if c["name"] == COOKIE]
    assert len(copied) == 1
    tab.click("text=Sign out")
    tab.wait_for_url("**/ui/login")
    context.add_cookies(copied)  # the cookie as it was before signing out, put back
    tab.goto("/ui/pauses")
    assert "/ui/login?next=/ui/pauses" in tab.url


def test_an_idle_session_ends_by_the_apps_clock(context: Any, ui_app: App, clock: Clock) -> None:
    tab = signed_in_tab(context, create_token(ui_app, "night-ops", ADMIN, NOW))
    clock.now += timedelta(minutes=29)
    tab.goto("/ui/pauses")
    assert tab.url.endswith("/ui/pauses") and tab.locator("#pause-sms").is_visible()
    clock.now += timedelta(minutes=30, seconds=1)
    tab.goto("/ui/pauses")
    assert "/ui/login?next=/ui/pauses" in tab.url
    assert "30 minutes without use" in tab.locator("main").inner_text()
