"""What a first integration meets, over real HTTP on SQLite and PostgreSQL: one rule for a kind
without templates at every door (its 422 lists the kinds there are and where templates come from),
a replayed event answering what was stored, and an event no digest collects yet saying so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from planner.app import App
from tests.api import test_api
from tests.commands.test_ops import add_recipient
from tests.helpers import Clock

server = test_api.server  # the module's loopback uvicorn
AUTH = test_api.AUTH
NOW = datetime(2026, 3, 2, 14, 1, 53, 734700, tzinfo=UTC)
DIGEST = {"kind": "comments_digest", "channel": "email", "at": "18:00", "digest": True}


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def client(
    server: tuple[test_api.Switch, str], app: App, clock: Clock, tmp_path: Path
) -> Iterator[httpx.Client]:
    """The API on the test's clock, with a templates folder of the team's own (one kind: standup)."""
    (tmp_path / "templates" / "standup").mkdir(parents=True)
    (tmp_path / "templates" / "standup" / "sms.txt").write_text("Stand-up at {{ scheduled_local }}")
    app.settings.templates_dir = tmp_path / "templates"
    app.settings.api_token = SecretStr(test_api.TOKEN)
    timed = App(app.settings, clock=clock)
    add_recipient(timed)
    with test_api.serve(server, timed) as http:
        yield http
    timed.close()


def event(client: httpx.Client, **fields: object) -> httpx.Response:
    body = {"recipient_id": "u-1", "kind": "comments_digest", **fields}
    return client.post("/v1/events", json=body, headers=AUTH)


def test_a_replayed_event_answers_the_stored_occurred_at(client: httpx.Client, clock: Clock) -> None:
    first = event(client, idempotency_key="comment-1")
    assert first.status_code == 201, first.text
    clock.now = NOW + timedelta(minutes=10, seconds=44)
    again = event(client, idempotency_key="comment-1")
    later = event(client, idempotency_key="comment-1", occurred_at="2026-03-02T15:00:00Z")
    assert again.status_code == later.status_code == 200
    stored = first.json()["occurred_at"]
    assert datetime.fromisoformat(stored) == NOW
    assert again.json()["occurred_at"] == later.json()["occurred_at"] == stored
    assert again.json()["id"] == first.json()["id"]


def test_an_event_no_digest_collects_is_kept_and_the_answer_says_until_when(
    client: httpx.Client, app: App
) -> None:
    loose = event(client)
    assert loose.status_code == 201
    body = loose.json()
    assert body["collected_by"] == []
    kept_until = (NOW + app.settings.digest_retention).isoformat()
    assert kept_until in body["note"] and "PLANNER_DIGEST_RETENTION" in body["note"]
    person = {"timezone": "UTC", "email": "u-1@example.com", "subscriptions": [DIGEST]}
    assert client.put("/v1/recipients/u-1", json=person, headers=AUTH).status_code == 200
    collected = event(client).json()
    assert collected["collected_by"] == ["email"] and "note" not in collected


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return json.dumps(response.json())


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/events", {"recipient_id": "u-1", "kind": "standups"}),
        ("POST", "/notify", {"recipient_id": "u-1", "kind": "standups", "channel": "sms"}),
        ("PUT", "/v1/recipients/u-1",
         {"timezone": "UTC", "phone": "+12125550100",
          "subscriptions": [{"kind": "standups", "channel": "sms", "at": "09:00"}]}),
        ("POST", "/v1/imports", None),
    ],
    ids=["events", "notify", "put", "import"],
)  # fmt: skip
def test_an_unknown_kind_is_refused_listing_the_kinds_and_where_templates_come_from(
    client: httpx.Client, method: str, path: str, body: dict[str, object] | None, tmp_path: Path
) -> None:
    if body is None:
        line = {"type": "recipient", "id": "u-2", "timezone": "UTC", "phone": "+12125550100",
                "subscriptions": [{"kind": "standups", "channel": "sms", "at": "09:00"}]}  # fmt: skip
        response = client.post("/v1/imports", content=json.dumps(line), headers=AUTH)
    else:
        response = client.request(method, path, json=body, headers=AUTH)
    text = _refusal(response)
    assert "'standups' is invalid" in text
    assert "standup" in text.replace("standups", "") and "daily_brief" in text
    assert f"PLANNER_TEMPLATES_DIR ({tmp_path / 'templates'})" in text
