"""Dashboard sessions over real HTTP, on both databases: read scope, the token's current state, idle
and absolute expiry by the app's clock, tampering, key rotation, sign-in replacing a session."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from planner.app import App
from planner.auth import create_token
from planner.settings import Settings
from planner.store.queries import pause_list
from planner.store.tables import API_TOKENS
from planner.ui.session import COOKIE, Signer
from tests.commands.test_ops import add_recipient, dead_email
from tests.helpers import Clock
from tests.ui.serving import ADMIN, field, is_sign_in_redirect, serving, sign_in, use_cookie

NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
SECRET = "a-signing-secret-of-32-bytes-min"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def ui_app(settings: Settings, clock: Clock) -> Iterator[App]:
    app = App(settings.model_copy(update={"signing_secret": SecretStr(SECRET)}), clock=clock)
    yield app
    app.close()


@pytest.fixture
def base_url(ui_app: App) -> Iterator[str]:
    with serving(ui_app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as http:
        yield http


def test_a_read_token_sees_everything_but_cannot_act(client: httpx.Client, ui_app: App) -> None:
    add_recipient(ui_app)
    dead = dead_email(ui_app)
    assert sign_in(client, create_token(ui_app, "grafana", ["read"], NOW)).status_code == 303
    page = client.get("/ui/dead")
    assert page.status_code == 200 and f"/ui/deliveries/{dead}" in page.text
    assert 'name="id"' not in page.text and "Retry selected" not in page.text  # no action offered
    assert "Pause sms" not in client.get("/ui/pauses").text
    csrf = field(page.text, "csrf")
    refused = client.post("/ui/pauses", data={"csrf": csrf, "target": "sms", "action": "pause"})
    assert refused.status_code == 403 and "read access only" in refused.text
    assert client.post(f"/ui/deliveries/{dead}/retry", data={"csrf": csrf}).status_code == 403
    with ui_app.sessions() as db:
        assert pause_list(db) == []


def test_a_session_ends_after_the_idle_timeout_and_after_its_lifetime(
    client: httpx.Client, ui_app: App, clock: Clock
) -> None:
    token = create_token(ui_app, "ops", ADMIN, NOW)
    sign_in(client, token)
    for _ in range(2):  # each use moves the idle deadline on
        clock.now += timedelta(minutes=29)
        assert client.get("/ui/pauses").status_code == 200
    clock.now += timedelta(minutes=30, seconds=1)
    assert is_sign_in_redirect(client.get("/ui/pauses"))

    signed_in = clock.now = NOW + timedelta(days=1)
    sign_in(client, token)
    while clock.now < signed_in + timedelta(hours=12) - timedelta(minutes=20):  # a request every 20 min
        clock.now += timedelta(minutes=20)
        assert client.get("/ui/pauses").status_code == 200, clock.now
    clock.now = signed_in + timedelta(hours=12) - timedelta(seconds=1)
    assert client.get("/ui/pauses").status_code == 200
    clock.now += timedelta(seconds=1)  # busy all along, but 12 hours after sign-in
    assert is_sign_in_redirect(client.get("/ui/pauses"))


def test_a_cookie_not_signed_here_or_naming_no_session_goes_back_to_the_sign_in_form(
    client: httpx.Client, ui_app: App
) -> None:
    sign_in(client, create_token(ui_app, "ops", ADMIN, NOW))
    good = client.cookies[COOKIE]
    session_id, mac = good.split(".")
    here = Signer(SECRET.encode())
    forged = [
        f"{session_id}x.{mac}",  # tampered id
        Signer(b"another-secret").sign("session", session_id),  # right id, wrong key
        here.sign("session", "no-such-session-id"),  # right key, no session
        "garbage",
    ]
    for value in forged:
        use_cookie(client, value)
        assert is_sign_in_redirect(client.get("/ui/pauses")), value
        assert client.post("/ui/pauses", data={"target": "sms", "action": "pause"}).status_code == 401
    use_cookie(client, good)
    assert client.get("/ui/pauses").status_code == 200


def test_the_session_has_its_tokens_current_scopes_not_those_at_sign_in(
    client: httpx.Client, ui_app: App
) -> None:
    sign_in(client, create_token(ui_app, "ops", ADMIN, NOW))
    csrf = field(client.get("/ui/pauses").text, "csrf")
    with ui_app.sessions() as db, db.begin():
        db.execute(update(API_TOKENS).where(API_TOKENS.c.name == "ops").values(scopes="read"))
    page = client.get("/ui/pauses")
    assert page.status_code == 200 and "(read only)" in page.text
    refused = client.post("/ui/pauses", data={"csrf": csrf, "target": "sms", "action": "pause"})
    assert refused.status_code == 403 and "read access only" in refused.text
    with ui_app.sessions() as db:
        assert pause_list(db) == []


def test_changing_the_environment_token_ends_its_sessions(client: httpx.Client, ui_app: App) -> None:
    ui_app.settings.api_token = SecretStr("the-first-environment-token")
    sign_in(client, "the-first-environment-token")
    assert client.get("/ui/pauses").status_code == 200
    ui_app.settings.api_token = SecretStr("the-second-environment-token")
    assert is_sign_in_redirect(client.get("/ui/pauses"))
    ui_app.settings.api_token = SecretStr("the-first-environment-token")
    assert is_sign_in_redirect(client.get("/ui/pauses")), "ended, not suspended"


def test_signing_in_again_ends_the_browsers_previous_session(client: httpx.Client, ui_app: App) -> None:
    token = create_token(ui_app, "ops", ADMIN, NOW)
    sign_in(client, token)
    first = client.cookies[COOKIE]
    sign_in(client, token)
    second = client.cookies[COOKIE]
    assert first != second
    use_cookie(client, first)
    assert is_sign_in_redirect(client.get("/ui/pauses"))
    use_cookie(client, second)
    assert client.get("/ui/pauses").status_code == 200


def test_logout_ends_the_session_for_every_copy_of_the_cookie(client: httpx.Client, ui_app: App) -> None:
    sign_in(client, create_token(ui_app, "ops", ADMIN, NOW))
    kept = client.cookies[COOKIE]
    csrf = field(client.get("/ui/pauses").text, "csrf")
    assert client.post("/ui/logout", data={"csrf": "wrong"}).status_code == 403
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
    use_cookie(client, kept)  # a copy taken before the logout
    assert is_sign_in_redirect(client.get("/ui/pauses"))
    replayed = client.post("/ui/pauses", data={"csrf": csrf, "target": "sms", "action": "pause"})
    assert replayed.status_code == 401
    with ui_app.sessions() as db:
        assert pause_list(db) == []


def test_a_rotated_secret_keeps_the_sessions_it_signed_while_it_is_listed_as_previous(
    settings: Settings, clock: Clock
) -> None:
    def app_with(secret: str, previous: list[str]) -> App:
        keys = {"signing_secret": SecretStr(secret), "previous_signing_secrets": [*map(SecretStr, previous)]}
        return App(settings.model_copy(update=keys), clock=clock)

    before = app_with(SECRET, [])
    token = create_token(before, "ops", ADMIN, NOW)
    with serving(before) as url, httpx.Client(base_url=url) as http:
        sign_in(http, token)
        cookie = http.cookies[COOKIE]
        csrf = field(http.get("/ui/pauses").text, "csrf")
    before.close()
    rotated = app_with("the-new-signing-secret-32-bytes!", [SECRET])
    with serving(rotated) as url, httpx.Client(base_url=url) as http:
        use_cookie(http, cookie)
        assert http.get("/ui/pauses").status_code == 200
        paused = http.post("/ui/pauses", data={"csrf": csrf, "target": "sms", "action": "pause"})
        assert paused.status_code == 303, paused.text
    rotated.close()
    dropped = app_with("the-new-signing-secret-32-bytes!", [])
    with serving(dropped) as url, httpx.Client(base_url=url) as http:
        use_cookie(http, cookie)
        assert is_sign_in_redirect(http.get("/ui/pauses"))
    dropped.close()
