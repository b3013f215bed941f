"""Two ``planner serve`` processes (real processes on two loopback ports, one database, one
PLANNER_SIGNING_SECRET) share dashboard sessions, in Chromium: a sign-in form served by one is posted
to the other, a form of one is posted to the other, and a restart signs nobody out. Without a secret,
``planner serve`` says so when it starts, and its sessions are its own."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from planner.app import App
from planner.auth import create_token
from planner.cli.serve import UNSIGNED_SESSIONS
from planner.store.queries import pause_list
from tests.faults.harness import Child, start
from tests.servers import free_port
from tests.ui.serving import ADMIN

SECRET = "shared-by-every-planner-serve-process"
#: What a balancer does to a form: the same page, posted to another process.
RETARGET_FORM = "(form, url) => { form.action = url; }"
RETARGET_BUTTON = "(button, url) => { button.form.action = url; }"


class Serve:
    """One ``planner serve --port PORT`` child on the test's database and Redis."""

    def __init__(self, app: App, log: Path, **env: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}
        self.env.update(
            PLANNER_DATABASE_URL=app.settings.database_url,
            PLANNER_REDIS_URL=app.settings.redis_url or "",
            PLANNER_LOG_LEVEL="WARNING",
            **env,
        )
        self.log, self.port = log, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.child: Child | None = None

    def start(self) -> Serve:
        self.child = start(self.env, self.log, "serve", "--port", str(self.port))
        deadline = time.monotonic() + 30
        while True:
            assert self.child.popen.poll() is None, self.child.output()
            assert time.monotonic() < deadline, f"planner serve did not answer: {self.child.output()}"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.child is not None and self.child.popen.poll() is None:
            self.child.popen.send_signal(signal.SIGTERM)
            self.child.wait(30)

    def output(self) -> str:
        return self.child.output() if self.child is not None else ""


@pytest.fixture
def serves(app: App, tmp_path: Path) -> Iterator[list[Serve]]:
    made: list[Serve] = []
    yield made
    for serve in made:
        serve.stop()
        if serve.child is not None:
            serve.child.stop()


def sign_in_through(tab: Any, form_from: Serve, post_to: Serve, token: str) -> None:
    """The sign-in form as ``form_from`` serves it, posted to ``post_to`` (as a balancer may send it)."""
    tab.goto(f"{form_from.url}/ui/login?next=/ui/pauses")
    tab.eval_on_selector("form[action='/ui/login']", RETARGET_FORM, f"{post_to.url}/ui/login")
    tab.fill("input[name=token]", token)
    tab.click("button[type=submit]")


def test_two_processes_share_a_session_and_a_restart_keeps_it(
    browser: Any, app: App, serves: list[Serve], tmp_path: Path
) -> None:
    token = create_token(app, "night-ops", ADMIN, app.clock())
    one = Serve(app, tmp_path / "one.log", PLANNER_SIGNING_SECRET=SECRET)
    two = Serve(app, tmp_path / "two.log", PLANNER_SIGNING_SECRET=SECRET)
    serves.extend([one, two])
    one.start()
    two.start()
    assert UNSIGNED_SESSIONS not in one.output()
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10000)

    sign_in_through(tab, one, two, token)
    tab.wait_for_url(f"{two.url}/ui/pauses")
    tab.goto(f"{one.url}/ui/pauses")
    assert tab.url == f"{one.url}/ui/pauses", "signed in on the other process too"

    tab.goto(f"{two.url}/ui/pauses")  # a form of one process, posted to the other
    tab.eval_on_selector("#pause-sms", RETARGET_BUTTON, f"{one.url}/ui/pauses")
    tab.click("#pause-sms")
    tab.wait_for_url(f"{one.url}/ui/pauses?msg=*")
    with app.sessions() as db:
        assert [p["value"] for p in pause_list(db)] == ["sms"]

    one.stop()
    one.start()
    tab.goto(f"{one.url}/ui/pauses")
    assert tab.url == f"{one.url}/ui/pauses", "a restart signs nobody out"
    tab.click("#resume-sms")
    tab.wait_for_url(f"{one.url}/ui/pauses?msg=*")
    with app.sessions() as db:
        assert pause_list(db) == []
    context.close()


def test_without_a_secret_serve_warns_and_its_sessions_are_its_own(
    browser: Any, app: App, serves: list[Serve], tmp_path: Path
) -> None:
    token = create_token(app, "night-ops", ADMIN, app.clock())
    one, two = Serve(app, tmp_path / "one.log"), Serve(app, tmp_path / "two.log")
    serves.extend([one, two])
    one.start()
    two.start()
    assert UNSIGNED_SESSIONS in " ".join(one.output().split()), one.output()
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(10000)
    sign_in_through(tab, one, one, token)
    tab.wait_for_url(f"{one.url}/ui/pauses")
    tab.goto(f"{two.url}/ui/pauses")
    assert tab.url.startswith(f"{two.url}/ui/login?next="), "the other process cannot check the cookie"
    context.close()
