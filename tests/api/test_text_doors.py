"""The text rule at every HTTP door, over real HTTP on loopback, on SQLite and PostgreSQL.

NUL and lone surrogates are refused with a 422 naming the field before anything is written (on
PostgreSQL NUL used to be a 500; on SQLite a surrogate committed, then failed its answer); an
Idempotency-Key is never given back once a request's work committed; and no stored row makes a
read answer 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, text

from planner.app import App
from planner.core.validation import TEXT_EXPECTED
from planner.store.models import metadata
from planner.store.tables import DELIVERIES
from tests.api import test_api
from tests.api.test_webhooks import (
    BASE,
    INBOUND,
    MAILGUN_KEY,
    STATUS,
    TWILIO_TOKEN,
    mailgun_body,
    twilio_post,
)
from tests.api.test_webhooks import NOW as WEBHOOK_NOW
from tests.commands.test_ops import add_recipient

server = test_api.server  # the module's loopback uvicorn
AUTH = test_api.AUTH

NUL = "x\x00y"
SURROGATE = "x\udfffy"
NOTIFY = {"recipient_id": "u-1", "kind": "reminder", "channel": "email"}
EVENT = {"recipient_id": "u-1", "kind": "comments_digest"}
PERSON = {"timezone": "UTC", "email": "u-2@example.com"}


@pytest.fixture
def doors(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    """The API with a token, a public URL and the webhooks' secrets; recipient u-1 exists."""
    app.settings.api_token = SecretStr(test_api.TOKEN)
    app.settings.public_base_url = BASE
    app.settings.twilio_auth_token = SecretStr(TWILIO_TOKEN)
    app.settings.mailgun_signing_key = SecretStr(MAILGUN_KEY)
    add_recipient(app)
    with test_api.serve(server, app) as client:
        yield client


def row_counts(app: App) -> dict[str, int]:
    with app.engine.connect() as connection:
        return {
            t.name: connection.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
            if t.name not in ("idempotency_key", "audit_log")
        }


def send_json(
    client: httpx.Client, method: str, path: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    # json.dumps writes NUL and surrogates as \u escapes, as any client's JSON encoder does.
    content = json.dumps(body).encode()
    return client.request(
        method, path, content=content, headers={**AUTH, "content-type": "application/json", **headers}
    )


def refused_field(response: httpx.Response, rule: str | None = TEXT_EXPECTED) -> str:
    """The field a 422 problem names, saying what was expected; the body is JSON in UTF-8, as
    every answer must be."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = json.loads(response.content.decode("utf-8"))
    assert rule is None or rule in problem["detail"] or rule in json.dumps(problem["errors"])
    error = problem["errors"][0]
    return str(error.get("field") or error["loc"][-1])


# (method, path, body, the field the 422 names) for each JSON door that takes free text.
JSON_DOORS: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/notify", {**NOTIFY, "data": {"code": "{bad}"}}, "data.code"),
    ("POST", "/notify", {**NOTIFY, "data": {"{bad}": "key"}}, "data"),
    ("POST", "/notify", {**NOTIFY, "dedup_key": "{bad}"}, "dedup_key"),
    ("POST", "/v1/events", {**EVENT, "data": {"items": [{"title": "{bad}"}]}}, "data.items[0].title"),
    ("POST", "/v1/events", {**EVENT, "idempotency_key": "{bad}"}, "idempotency_key"),
    ("PUT", "/v1/recipients/u-2", {**PERSON, "attributes": {"plan": "{bad}"}}, "attributes.plan"),
    ("PATCH", "/v1/recipients/u-1", {"attributes": {"plan": "{bad}"}}, "attributes.plan"),
    ("PUT", "/v1/recipients/u-1/subscriptions/daily_brief/email", {"at": "08:00{bad}"}, "at"),
    # Engagement takes no free text: a kind's pattern and an instant's parser say what they expect.
    ("POST", "/engagement", {"recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z",
                             "kind": "reminder{bad}"}, "kind"),
    ("POST", "/engagement", {"recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z{bad}"},
     "at"),
    ("POST", "/v1/webhooks/email", {"id": "ev-{bad}", "event": "delivered", "message_id": "m@x"}, "id"),
]  # fmt: skip


def _filled(value: Any, bad: str) -> Any:
    return json.loads(json.dumps(value).replace("{bad}", json.dumps(bad)[1:-1]))


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
@pytest.mark.parametrize(
    ("method", "path", "body", "field"), JSON_DOORS, ids=[f"{d[1]}:{d[3]}" for d in JSON_DOORS]
)
def test_json_doors_refuse_bad_text_naming_the_field_and_write_nothing(
    doors: httpx.Client, app: App, method: str, path: str, body: dict[str, Any], field: str, bad: str
) -> None:
    before = row_counts(app)
    response = send_json(doors, method, path, _filled(body, bad))
    rule = None if path == "/engagement" else TEXT_EXPECTED  # a pattern or an instant's own words
    assert refused_field(response, rule) == field
    assert row_counts(app) == before


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_an_import_line_with_bad_text_is_refused_and_nothing_is_imported(
    doors: httpx.Client, app: App, bad: str
) -> None:
    good = {"type": "recipient", "id": "u-3", **PERSON}
    line = {"type": "recipient", "id": "u-2", **PERSON, "attributes": {"team": bad}}
    before = row_counts(app)
    body = f"{json.dumps(good)}\n{json.dumps(line)}\n".encode()
    response = doors.post("/v1/imports", content=body, headers={**AUTH, "content-type": "text/plain"})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["line"], error["field"], error["expected"]) == (2, "attributes.team", TEXT_EXPECTED)
    assert row_counts(app) == before


@pytest.mark.parametrize(
    ("path", "form", "field"),
    [
        (STATUS, {"MessageSid": "SM\x001", "MessageStatus": "delivered"}, "MessageSid"),
        (INBOUND, {"MessageSid": "SM1", "From": "+1212\x005550100", "Body": "STOP"}, "From"),
    ],
)  # fmt: skip
def test_signed_twilio_callbacks_with_nul_are_a_422_not_a_500(
    doors: httpx.Client, app: App, path: str, form: dict[str, str], field: str
) -> None:
    before = row_counts(app)
    assert refused_field(twilio_post(doors, path, form)) == field
    assert row_counts(app) == before


def test_a_signed_mailgun_event_with_a_nul_id_is_a_422_not_a_500(doors: httpx.Client, app: App) -> None:
    app.clock = lambda: WEBHOOK_NOW
    event = {"event": "delivered", "id": "ev\x001", "message": {"headers": {"message-id": "m@x"}}}
    before = row_counts(app)
    response = doors.post("/v1/webhooks/mailgun", json=mailgun_body(event, "token-1", at=WEBHOOK_NOW))
    assert refused_field(response) == "event-data.id"
    assert row_counts(app) == before


def deliveries(app: App) -> int:
    with app.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(DELIVERIES)) or 0


def test_a_retry_with_the_same_idempotency_key_never_writes_a_second_delivery(
    doors: httpx.Client, app: App
) -> None:
    """A lone surrogate in /notify data used to commit, fail its answer (500), give the key back,
    and let the client's retry write a second delivery."""
    body = {**NOTIFY, "data": {"name": SURROGATE}}
    for _ in range(2):
        response = send_json(doors, "POST", "/notify", body, **{"Idempotency-Key": "retry-1"})
        assert refused_field(response) == "data.name"
    assert deliveries(app) == 0


def refuse_inserts(app: App, table: str) -> None:
    """A trigger makes every insert into ``table`` fail: a real database error at that point."""
    trigger = f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table}"
    statements = {
        "sqlite": [f"{trigger} BEGIN SELECT RAISE(ABORT, 'refused'); END"],
        "postgresql": [
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            f"{trigger} FOR EACH ROW EXECUTE FUNCTION refuse_{table}()",
        ],
    }[app.engine.dialect.name]
    with app.engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def allow_inserts(app: App, table: str) -> None:
    on = f" ON {table}" if app.engine.dialect.name == "postgresql" else ""
    with app.engine.begin() as connection:
        connection.execute(text(f"DROP TRIGGER refuse_{table}{on}"))


def test_a_5xx_after_the_commit_keeps_the_idempotency_key_and_the_retry_does_nothing_again(
    doors: httpx.Client, app: App
) -> None:
    """The audit entry, written after the delivery committed, fails (as it would if the database
    went away between the two transactions): the 500 is the answer kept for the key."""
    refuse_inserts(app, "audit_log")
    first = send_json(doors, "POST", "/notify", NOTIFY, **{"Idempotency-Key": "after-commit"})
    assert first.status_code == 500, first.text
    assert deliveries(app) == 1
    again = send_json(doors, "POST", "/notify", NOTIFY, **{"Idempotency-Key": "after-commit"})
    assert (again.status_code, again.headers.get("idempotency-replayed")) == (500, "true")
    assert again.content == first.content
    allow_inserts(app, "audit_log")
    third = send_json(doors, "POST", "/notify", NOTIFY, **{"Idempotency-Key": "after-commit"})
    assert third.status_code == 500 and third.headers.get("idempotency-replayed") == "true"
    assert deliveries(app) == 1


def test_a_5xx_before_any_commit_gives_the_key_back(doors: httpx.Client, app: App) -> None:
    """The delivery's own insert fails: nothing committed, so the same request may run again."""
    refuse_inserts(app, "delivery")
    first = send_json(doors, "POST", "/notify", NOTIFY, **{"Idempotency-Key": "before-commit"})
    assert first.status_code == 500, first.text
    allow_inserts(app, "delivery")
    again = send_json(doors, "POST", "/notify", NOTIFY, **{"Idempotency-Key": "before-commit"})
    assert again.status_code == 201, again.text
    assert "idempotency-replayed" not in again.headers
    assert deliveries(app) == 1


def test_reading_a_row_written_before_the_text_rule_never_answers_500(doors: httpx.Client, app: App) -> None:
    """SQLite kept a lone surrogate as JSON's escape; the answer carries it the same way."""
    if app.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL never stored a lone surrogate: its json type refuses one")
    created = send_json(doors, "POST", "/notify", {**NOTIFY, "data": {"name": "Ann"}})
    delivery_id = created.json()["delivery"]["id"]
    with app.engine.begin() as connection:
        connection.execute(
            text("UPDATE delivery SET data = :data WHERE id = :id"),
            {"data": '{"name": "A\\udfffnn"}', "id": delivery_id},
        )
    response = doors.get(f"/deliveries/{delivery_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    assert b'"A\\udfffnn"' in response.content
    assert json.loads(response.content)["data"] == {"name": "A\udfffnn"}
