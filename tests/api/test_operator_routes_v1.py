"""The operator routes under /v1, in one vocabulary (``recipient_id``), and their old paths kept for a
release: the same answers, marked deprecated in the OpenAPI document and by their headers."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from planner.app import App
from tests.api import test_api
from tests.commands.test_ops import add_recipient, dead_email

server = test_api.server  # the module's loopback uvicorn
AUTH = test_api.AUTH
#: RFC 9745: the instant the old routes were deprecated (2026-12-07T00:00Z), in epoch seconds.
DEPRECATION = "@1796601600"
#: RFC 8594: when the old routes stop answering, an HTTP-date.
SUNSET = "Wed, 30 Jun 2027 00:00:00 GMT"


@pytest.fixture
def http(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = SecretStr(test_api.TOKEN)
    add_recipient(app)
    add_recipient(app, "u-2")
    with test_api.serve(server, app) as client:
        client.headers.update(AUTH)
        yield client


def _notify(http: httpx.Client, prefix: str, recipient: str) -> int:
    body = {"recipient_id": recipient, "kind": "reminder", "channel": "email"}
    created = http.post(f"{prefix}/notify", json=body)
    assert created.status_code == 201, created.text
    return int(created.json()["delivery"]["id"])


def test_every_operator_route_answers_under_v1_naming_the_recipient_recipient_id(
    http: httpx.Client, app: App
) -> None:
    mine = _notify(http, "/v1", "u-1")
    _notify(http, "/v1", "u-2")
    listed = http.get("/v1/deliveries", params={"recipient_id": "u-1"})
    assert listed.status_code == 200 and [d["id"] for d in listed.json()] == [mine]
    assert "deprecation" not in listed.headers and "sunset" not in listed.headers
    old_name = http.get("/v1/deliveries", params={"recipient": "u-1"})
    assert old_name.status_code == 422 and old_name.json()["errors"][0]["loc"] == ["query", "recipient"]
    assert "recipient_id" in old_name.json()["errors"][0]["msg"]
    assert http.get(f"/v1/deliveries/{mine}").json()["recipient_id"] == "u-1"
    assert http.post(f"/v1/deliveries/{mine}/cancel").json()["status"] == "cancelled"
    dead = dead_email(app)
    assert http.post(f"/v1/deliveries/{dead}/retry").json()["requeued"] == [dead]
    assert http.post("/v1/pauses/sms").json()["paused"] is True
    assert http.get("/v1/status").json()["paused"][0]["value"] == "sms"
    assert http.delete("/v1/pauses/sms").json()["changed"] is True
    explained = http.get("/v1/explain/u-1", params={"date": "2026-03-08"})
    assert explained.status_code == 200 and explained.json()["recipient_id"] == "u-1"
    opened = {"recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z"}
    assert http.post("/v1/engagement", json=opened).status_code == 201


def test_the_old_paths_answer_the_same_with_deprecation_sunset_and_successor_link(
    http: httpx.Client,
) -> None:
    mine = _notify(http, "", "u-1")
    _notify(http, "", "u-2")
    old = http.get("/deliveries", params={"recipient": "u-1"})
    new = http.get("/v1/deliveries", params={"recipient_id": "u-1"})
    assert old.status_code == 200 and old.json() == new.json() and [d["id"] for d in old.json()] == [mine]
    assert old.headers["Deprecation"] == DEPRECATION and old.headers["Sunset"] == SUNSET
    assert old.headers["Link"] == '</v1/deliveries>; rel="successor-version"'
    calls = [
        ("GET", f"/deliveries/{mine}", 200),
        ("GET", "/deliveries/999999", 404),  # errors say so too
        ("POST", f"/deliveries/{mine}/cancel", 200),
        ("POST", "/pauses/sms", 200),
        ("DELETE", "/pauses/sms", 200),
        ("GET", "/status", 200),
        ("GET", "/explain/u-1", 200),
        ("GET", "/explain/nobody%20here", 422),
    ]
    for method, path, status in calls:
        answer = http.request(method, path)
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["Deprecation"] == DEPRECATION and answer.headers["Sunset"] == SUNSET, path
        assert answer.headers["Link"] == f'</v1{path}>; rel="successor-version"', path
    anonymous = httpx.post(http.base_url.join("/notify"), json={})
    assert anonymous.status_code == 401
    assert anonymous.headers["Link"] == '</v1/notify>; rel="successor-version"'
    for path in ("/ui/deliveries", "/v1/status", "/healthz", "/metrics"):
        assert "deprecation" not in http.get(path).headers, path


def test_the_openapi_document_marks_the_old_paths_deprecated(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    old = {"/deliveries", "/deliveries/{delivery_id}", "/deliveries/{delivery_id}/retry",
           "/deliveries/{delivery_id}/cancel", "/notify", "/engagement", "/pauses/{target}",
           "/explain/{recipient_id}", "/status"}  # fmt: skip
    for path in old:
        assert f"/v1{path}" in paths, path
        for method, operation in paths[path].items():
            assert operation.get("deprecated") is True, (method, path)
        for method, operation in paths[f"/v1{path}"].items():
            assert "deprecated" not in operation, (method, path)
    names = {p["name"] for p in paths["/v1/deliveries"]["get"]["parameters"]}
    assert "recipient_id" in names and "recipient" not in names
    assert "recipient" in {p["name"] for p in paths["/deliveries"]["get"]["parameters"]}
