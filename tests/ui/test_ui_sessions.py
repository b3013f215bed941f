"""Dashboard sessions over real HTTP: read scope, expiry, tampering (the browser signs in as admin)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from planner.app import App
from planner.auth import Principal
from planner.store.queries import pause_list
from planner.ui import create_ui_router
from planner.ui.session import COOKIE, Signer
from tests.commands.test_ops import add_recipient, dead_email
from tests.servers import free_port

SIGNER = Signer(b"k" * 32)
READER = Principal("grafana-readonly", frozenset({"read"}))


@pytest.fixture
def ui(app: App) -> Iterator[httpx.Client]:
    api = FastAPI()
    api.include_router(create_ui_router(app, signer=SIGNER))
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=free_port(), lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.config.port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client
    server.should_exit = True
    thread.join(10)


def test_a_read_token_sees_everything_but_cannot_act(ui: httpx.Client, app: App) -> None:
    add_recipient(app)
    dead = dead_email(app)
    cookie, session = SIGNER.new_session(READER, app.clock())
    ui.cookies.set(COOKIE, cookie)
    page = ui.get("/ui/dead")
    assert page.status_code == 200 and f"/ui/deliveries/{dead}" in page.text
    assert 'name="id"' not in page.text and "Retry selected" not in page.text  # no action offered
    assert "Pause sms" not in ui.get("/ui/pauses").text
    refused = ui.post("/ui/pauses", data={"csrf": session.csrf, "target": "sms", "action": "pause"})
    assert refused.status_code == 403 and "read access only" in refused.text
    retry = ui.post(f"/ui/deliveries/{dead}/retry", data={"csrf": session.csrf})
    assert retry.status_code == 403
    with app.sessions() as db:
        assert pause_list(db) == []


def test_an_expired_or_tampered_session_goes_back_to_the_sign_in_form(ui: httpx.Client, app: App) -> None:
    admin = Principal("api-token", frozenset({"read", "write", "admin"}))
    old, _ = SIGNER.new_session(admin, app.clock() - timedelta(hours=12, seconds=1))
    fresh, _ = SIGNER.new_session(admin, app.clock())
    payload, mac = fresh.split(".")
    forged, _ = Signer(b"x" * 32).new_session(admin, app.clock())
    for value in (old, f"{payload}x.{mac}", forged, "garbage"):
        ui.cookies.set(COOKIE, value)
        response = ui.get("/ui/pauses")
        assert (response.status_code, response.headers["location"]) == (303, "/ui/login?next=/ui/pauses")
    ui.cookies.set(COOKIE, fresh)
    assert ui.get("/ui/pauses").status_code == 200
