"""Named API tokens with scopes, over real HTTP on loopback, managed with the real CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from planner.app import App
from planner.auth import ENV_TOKEN_NAME, Principal, authenticate, create_token, token_digest
from planner.cli import app as cli_app
from planner.store.tables import API_TOKENS, AUDIT
from tests.api import test_api
from tests.commands.test_ops import add_recipient

server = test_api.server  # the module's loopback uvicorn


@pytest.fixture
def http(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = None
    with test_api.serve(server, app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_from_the_cli_are_stored_hashed_and_revocable(app: App, cli: CliRunner) -> None:
    made = cli.invoke(cli_app, ["tokens", "create", "crm", "--scope", "read", "--scope", "write"])
    assert made.exit_code == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("pln_") and len(token) > 40
    assert authenticate(app, token) == Principal("crm", frozenset({"read", "write"}))
    with app.sessions() as session:
        stored = session.execute(select(API_TOKENS)).one()
    assert stored.token_hash == token_digest(token) and token not in json.dumps(
        dict(stored._mapping), default=str
    )

    listed = cli.invoke(cli_app, ["tokens", "list", "--json"])
    assert [(t["name"], t["scopes"]) for t in json.loads(listed.stdout)] == [("crm", ["read", "write"])]
    assert token not in listed.stdout
    again = cli.invoke(cli_app, ["tokens", "create", "crm", "--scope", "read"])
    assert again.exit_code == 1 and "name is 'crm'" in again.stderr
    bad = cli.invoke(cli_app, ["tokens", "create", "ops", "--scope", "root"])
    assert (
        bad.exit_code == 2
        and "--scope: 'root' is invalid; expected one or more of read, write, admin" in bad.stderr
    )
    reserved = cli.invoke(cli_app, ["tokens", "create", ENV_TOKEN_NAME, "--scope", "read"])
    assert reserved.exit_code == 2 and "NAME" in reserved.stderr

    assert cli.invoke(cli_app, ["tokens", "revoke", "crm"]).exit_code == 0
    assert authenticate(app, token) is None
    missing = cli.invoke(cli_app, ["tokens", "revoke", "crm"])
    assert missing.exit_code == 2 and "no token named 'crm'" in missing.stderr


def test_each_route_checks_its_scope(http: httpx.Client, app: App) -> None:
    now = app.clock()
    reader = create_token(app, "reader", ["read"], now)
    writer = create_token(app, "writer", ["write"], now)
    assert http.get("/deliveries").status_code == 401
    assert http.get("/deliveries", headers=bearer(reader + "x")).status_code == 401
    assert http.get("/deliveries", headers=bearer(reader)).status_code == 200
    assert http.get("/openapi.json", headers=bearer(reader)).status_code == 200

    forbidden = http.get("/deliveries", headers=bearer(writer))
    assert forbidden.status_code == 403
    assert forbidden.json()["detail"] == "token 'writer' lacks the 'read' scope (it has write)"
    assert forbidden.headers["content-type"] == "application/problem+json"
    assert http.post("/pauses/email", headers=bearer(reader)).status_code == 403
    assert http.post("/pauses/email", headers=bearer(writer)).status_code == 403
    body = {"recipient_id": "u-1", "kind": "reminder", "channel": "email"}
    assert http.post("/notify", json=body, headers=bearer(reader)).status_code == 403


def test_the_env_token_is_an_admin_named_api_token_and_changes_carry_the_actor(
    http: httpx.Client, app: App
) -> None:
    add_recipient(app)
    app.settings.api_token = SecretStr("env-secret")
    writer = create_token(app, "crm", ["write"], app.clock())
    body = {"recipient_id": "u-1", "kind": "reminder", "channel": "email", "at": "2199-01-01T00:00:00Z"}
    created = http.post("/notify", json=body, headers=bearer(writer))
    assert created.status_code == 201, created.text
    delivery_id = created.json()["delivery"]["id"]
    cancelled = http.post(f"/deliveries/{delivery_id}/cancel", headers=bearer("env-secret"))
    assert cancelled.status_code == 200, cancelled.text
    assert http.post("/pauses/sms", headers=bearer("env-secret")).status_code == 200

    shown = http.get(f"/deliveries/{delivery_id}", headers=bearer("env-secret")).json()
    actors = [(e["event"], (e.get("detail") or {}).get("actor")) for e in shown["timeline"]]
    assert actors == [("planned", "crm"), ("cancelled", ENV_TOKEN_NAME)]
    with app.sessions() as session:
        audit = [(r.actor, r.action, r.target) for r in session.execute(select(AUDIT).order_by(AUDIT.c.id))]
    assert audit[1:] == [
        ("crm", "notified", f"delivery:{delivery_id}"),
        (ENV_TOKEN_NAME, "delivery_cancelled", f"delivery:{delivery_id}"),
        (ENV_TOKEN_NAME, "paused", "sms"),
    ]
    assert audit[0][1] == "token_created"
