"""A fallback rule and a locale tag at every door, on SQLite and PostgreSQL: the import (file and
HTTP), PUT and PATCH of recipients and subscriptions, ``/notify``, the CLI and the testing kit. A bad
one is a clear error naming its part (a 422, one line on stderr) and nothing is written; a good one
reads back as it is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from planner.app import App
from planner.cli import app as cli_app
from planner.commands.importer import ImportFailed
from planner.commands.notify import notify
from planner.core.locales import EXPECTED as LOCALE_EXPECTED
from planner.errors import InvalidInput
from planner.testing import PlannerService
from tests.api import test_api
from tests.api.test_text_doors import refused_field, row_counts, send_json
from tests.commands.test_ops import add_recipient

server = test_api.server  # the module's loopback uvicorn
AUTH = test_api.AUTH

SUBSCRIPTION = {"kind": "reminder", "channel": "email", "at": "08:00"}
NOTIFY = {"recipient_id": "u-1", "kind": "reminder", "channel": "email"}
TEXT = {**AUTH, "content-type": "text/plain"}
PERSON = {"timezone": "UTC", "email": "u-2@example.com", "phone": "+12125550101"}
#: A kind with email templates only (in the test's PLANNER_TEMPLATES_DIR).
EMAIL_ONLY = "invoice"

# (a bad fallback, the part a refusal names below its field, what it says was expected)
BAD_RULES: list[tuple[Any, str, str]] = [
    ({"channel": "email"}, ".channel", "a channel other than the first one ('email')"),
    ({"channel": "sms", "on": ["exploded"]}, ".on[0]", "what can befall email"),
    ({"channel": "sms", "on": ["undelivered"]}, ".on[0]", "what can befall email"),
    ({"channel": "sms", "on": []}, ".on", "a non-empty list"),
    ({"channel": "sms", "within": "0s"}, ".within", "a duration from 1m to 7d"),
    ({"channel": "sms", "within": "30d"}, ".within", "a duration from 1m to 7d"),
    ({"channel": "sms", "when": "now"}, ".when", "only the fields"),
    ("sms", "", "an object such as"),
]
BAD_TAGS = ["pt_BR", "en-", "english", "en-12", "x-klingon", "fr\u00e9"]


@pytest.fixture
def doors(server: tuple[test_api.Switch, str], app: App, tmp_path: Path) -> Iterator[httpx.Client]:
    """The API with a token; u-1 exists with an email reminder; ``invoice`` has no SMS template."""
    templates = tmp_path / "templates" / EMAIL_ONLY
    templates.mkdir(parents=True)
    (templates / "email_subject.txt").write_text("Invoice")
    (templates / "email.txt").write_text("Your invoice")
    app.settings.templates_dir = templates.parent
    app.settings.api_token = SecretStr(test_api.TOKEN)
    add_recipient(app, subscriptions=[SUBSCRIPTION])
    with test_api.serve(server, app) as client:
        yield client


def _doors_for(rule: Any) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, the field the refusal names) of each JSON door taking a fallback."""
    sub = {**SUBSCRIPTION, "fallback": rule}
    one = "/v1/recipients/u-1/subscriptions/reminder/email"
    return [
        ("PUT", "/v1/recipients/u-2", {**PERSON, "subscriptions": [sub]}, "subscriptions[0].fallback"),
        ("PUT", one, {"at": "09:00", "fallback": rule}, "fallback"),
        ("PATCH", one, {"fallback": rule}, "fallback"),
        ("POST", "/notify", {**NOTIFY, "fallback": rule}, "fallback"),
    ]


@pytest.mark.parametrize(("rule", "part", "expected"), BAD_RULES, ids=[r[1] or "shape" for r in BAD_RULES])
def test_a_bad_fallback_is_a_422_naming_its_part_at_every_json_door_and_writes_nothing(
    doors: httpx.Client, app: App, rule: Any, part: str, expected: str
) -> None:
    before = row_counts(app)
    for method, path, body, field in _doors_for(rule):
        response = send_json(doors, method, path, body)
        # /notify's schema says "an object": pydantic words that refusal itself.
        said = None if path == "/notify" and not part else expected
        assert refused_field(response, said) == field + part, (method, path)
    sub = {**SUBSCRIPTION, "fallback": rule}
    lines = json.dumps({"type": "recipient", "id": "u-3", **PERSON, "subscriptions": [sub]})
    response = doors.post("/v1/imports", content=lines.encode(), headers=TEXT)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["line"], error["field"]) == (1, f"subscriptions[0].fallback{part}")
    assert row_counts(app) == before


def test_a_fallback_needs_templates_on_its_channel_and_none_on_a_digest(
    doors: httpx.Client, app: App
) -> None:
    before = row_counts(app)
    invoice = {"kind": EMAIL_ONLY, "channel": "email", "at": "08:00", "fallback": {"channel": "sms"}}
    response = send_json(doors, "PUT", "/v1/recipients/u-2", {**PERSON, "subscriptions": [invoice]})
    assert refused_field(response, "a kind with sms templates") == "subscriptions[0].fallback.channel"
    body = {"recipient_id": "u-1", "kind": EMAIL_ONLY, "channel": "email", "fallback": {"channel": "sms"}}
    assert refused_field(send_json(doors, "POST", "/notify", body), "sms templates") == "fallback.channel"
    digest = {"kind": "comments_digest", "channel": "email", "at": "08:00", "digest": True,
              "fallback": {"channel": "sms"}}  # fmt: skip
    response = send_json(doors, "PUT", "/v1/recipients/u-2", {**PERSON, "subscriptions": [digest]})
    assert refused_field(response, "no fallback on a digest subscription") == "subscriptions[0].fallback"
    assert row_counts(app) == before


def test_a_good_fallback_reads_back_as_stored_and_null_removes_it(doors: httpx.Client) -> None:
    path = "/v1/recipients/u-1/subscriptions/reminder/email"
    rule = {"channel": "sms", "on": ["dead", "bounced"], "within": "PT90M"}
    assert send_json(doors, "PATCH", path, {"fallback": rule}).status_code == 200
    [sub] = doors.get("/v1/recipients/u-1", headers=AUTH).json()["subscriptions"]
    assert sub["fallback"] == {"channel": "sms", "on": ["bounced", "dead"], "within": "1h30m"}
    assert send_json(doors, "PATCH", path, {"fallback": None}).status_code == 200
    [sub] = doors.get("/v1/recipients/u-1", headers=AUTH).json()["subscriptions"]
    assert "fallback" not in sub
    rule = {"channel": "email", "on": ["failed"]}
    created = send_json(doors, "POST", "/notify", {**NOTIFY, "channel": "sms", "fallback": rule})
    assert created.status_code == 201, created.text
    assert created.json()["delivery"]["fallback_rule"] == {**rule, "within": "1d"}


@pytest.mark.parametrize("tag", BAD_TAGS)
def test_a_locale_that_is_not_bcp_47_is_refused_at_every_door_and_writes_nothing(
    doors: httpx.Client, app: App, tag: str
) -> None:
    before = row_counts(app)
    for method, path, body in [
        ("PUT", "/v1/recipients/u-2", {**PERSON, "locale": tag}),
        ("PATCH", "/v1/recipients/u-1", {"locale": tag}),
    ]:
        assert refused_field(send_json(doors, method, path, body), LOCALE_EXPECTED) == "locale"
    line = json.dumps({"type": "recipient", "id": "u-3", **PERSON, "locale": tag})
    response = doors.post("/v1/imports", content=line.encode(), headers=TEXT)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "locale"
    assert row_counts(app) == before


def test_a_locale_is_stored_in_its_canonical_case(doors: httpx.Client) -> None:
    assert send_json(doors, "PATCH", "/v1/recipients/u-1", {"locale": "zh-hant-tw"}).status_code == 200
    assert doors.get("/v1/recipients/u-1", headers=AUTH).json()["locale"] == "zh-Hant-TW"


def test_the_cli_refuses_a_bad_fallback_in_one_line(cli: CliRunner, app: App) -> None:
    add_recipient(app)
    before = row_counts(app)
    for given, message in [
        ('{"channel": "email"}', "error: --fallback.channel: 'email' is invalid; expected a channel other"),
        ("sms", "error: --fallback: 'sms' is invalid; expected a JSON object"),
        ('["sms"]', "error: --fallback: '[\"sms\"]' is invalid; expected a JSON object such as"),
    ]:
        out = cli.invoke(cli_app, ["notify", "u-1", "reminder", "--channel", "email", "--fallback", given])
        assert out.exit_code != 0
        assert out.stderr.startswith(message) and out.stderr.count("\n") == 1, out.stderr
    assert row_counts(app) == before
    good = '{"channel": "sms", "on": ["bounced"], "within": "2h"}'
    args = ["notify", "u-1", "reminder", "--channel", "email", "--fallback", good, "--json"]
    out = cli.invoke(cli_app, args)
    assert out.exit_code == 0, out.stderr
    assert json.loads(out.stdout)["delivery"]["fallback_rule"]["within"] == "2h"


def test_the_python_api_and_the_testing_kit_take_the_same_rules(
    app: App, planner_service: PlannerService
) -> None:
    add_recipient(app)
    with pytest.raises(InvalidInput, match=r"^fallback\.within: '0s' is invalid"):
        notify(app, "u-1", "reminder", "email", now=app.clock(), fallback={"channel": "sms", "within": "0s"})
    planner_service.add_recipient("ann", timezone="UTC")
    with pytest.raises(ImportFailed, match=r"subscriptions\[0\]\.fallback\.channel: 'email' is invalid"):
        planner_service.subscribe("ann", "reminder", at="08:00", fallback={"channel": "email"})
    with pytest.raises(ImportFailed, match="locale: 'pt_BR' is invalid; expected a BCP 47 language tag"):
        planner_service.add_recipient("bob", timezone="UTC", locale="pt_BR")
    with pytest.raises(InvalidInput, match=r"^fallback\.on\[0\]: 'bounced' is invalid"):
        planner_service.notify("ann", "reminder", "sms", fallback={"channel": "email", "on": ["bounced"]})
    assert planner_service.deliveries() == []
