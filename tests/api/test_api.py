"""The HTTP API over real HTTP: a uvicorn server on loopback, started once for the module."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from planner.api import create_api
from planner.app import App, build_runner
from planner.processes.worker import make_worker
from tests.commands.test_ops import add_recipient, dead_email, deliverer
from tests.servers import free_port

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Switch:
    """An ASGI app forwarding to the current test's API, so one server serves every test."""

    def __init__(self) -> None:
        self.api: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.api is not None
        await self.api(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    port = free_port()
    config = uvicorn.Config(switch, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not instance.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield switch, f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


def serve(server: tuple[Switch, str], app: App) -> httpx.Client:
    switch, base_url = server
    switch.api = create_api(app)
    return httpx.Client(base_url=base_url, timeout=10)


@pytest.fixture
def client(server: tuple[Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = SecretStr(TOKEN)
    with serve(server, app) as http:
        yield http


def test_health_needs_no_token_and_every_other_route_does(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    for path in ("/deliveries", "/metrics", "/openapi.json", "/status"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401, path
        assert client.get(path, headers=AUTH).status_code == 200, path
    assert client.post("/deliveries/1/cancel").status_code == 401
    assert client.get("/deliveries").headers["www-authenticate"] == "Bearer"


def test_no_configured_token_means_503_not_open(server: tuple[Switch, str], app: App) -> None:
    app.settings.api_token = None
    with serve(server, app) as http:
        response = http.get("/deliveries", headers=AUTH)
        assert response.status_code == 503
        assert "API token not configured" in response.json()["detail"]
        assert http.get("/healthz").status_code == 200


def test_bad_input_is_a_422_naming_the_field(client: httpx.Client, app: App) -> None:
    add_recipient(app)

    def loc(response: httpx.Response) -> list[Any]:
        assert response.status_code == 422, response.text
        return [e["loc"] for e in response.json()["errors"]]

    body = {"recipient_id": "u-1", "kind": "reminder", "channel": "email"}
    assert loc(client.post("/notify", json={**body, "channel": "fax"}, headers=AUTH)) == [["body", "channel"]]
    assert loc(client.post("/notify", json={**body, "kind": "Bad Kind"}, headers=AUTH)) == [["body", "kind"]]
    missing = {k: v for k, v in body.items() if k != "recipient_id"}
    assert loc(client.post("/notify", json=missing, headers=AUTH)) == [["body", "recipient_id"]]
    naive = {**body, "at": "2026-03-01T10:00:00"}
    assert loc(client.post("/notify", json=naive, headers=AUTH)) == [["body", "at"]]
    reserved = {**body, "dedup_key": "sub:1:2026-03-01"}
    assert loc(client.post("/notify", json=reserved, headers=AUTH)) == [["body", "dedup_key"]]
    assert loc(client.get("/deliveries", params={"limit": 0}, headers=AUTH)) == [["query", "limit"]]
    assert loc(client.get("/deliveries", params={"status": "lost"}, headers=AUTH)) == [["query", "status"]]
    assert loc(client.get("/deliveries/abc", headers=AUTH)) == [["path", "delivery_id"]]
    webhook = {"recipient_id": "u-1", "event": "liked", "at": "2026-03-01T10:00:00Z"}
    assert loc(client.post("/engagement", json=webhook, headers=AUTH)) == [["body", "event"]]


def test_notify_list_show_cancel_retry(client: httpx.Client, app: App) -> None:
    add_recipient(app)
    body = {
        "recipient_id": "u-1",
        "kind": "reminder",
        "channel": "email",
        "dedup_key": "k-1",
        "data": {"a": 1},
    }
    created = client.post("/notify", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    delivery_id = created.json()["delivery"]["id"]
    repeat = client.post("/notify", json=body, headers=AUTH)
    assert repeat.status_code == 200 and repeat.json()["outcome"] == "duplicate"

    listed = client.get("/deliveries", params={"recipient": "u-1", "status": "queued"}, headers=AUTH).json()
    assert [d["id"] for d in listed] == [delivery_id]
    shown = client.get(f"/deliveries/{delivery_id}", headers=AUTH).json()
    assert shown["data"] == {"a": 1} and shown["timeline"][0]["event"] == "planned"
    assert client.get("/deliveries/999999", headers=AUTH).status_code == 404

    assert client.post(f"/deliveries/{delivery_id}/cancel", headers=AUTH).json()["status"] == "cancelled"
    conflict = client.post(f"/deliveries/{delivery_id}/cancel", headers=AUTH)
    assert conflict.status_code == 409 and "cannot be cancelled" in conflict.json()["detail"]

    dead = dead_email(app)
    retried = client.post(f"/deliveries/{dead}/retry", headers=AUTH)
    assert retried.status_code == 200 and retried.json()["requeued"] == [dead]
    assert client.post(f"/deliveries/{dead}/retry", headers=AUTH).status_code == 409

    webhook = {"recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z"}
    assert client.post("/engagement", json=webhook, headers=AUTH).status_code == 201
    ghost = client.post("/engagement", json={**webhook, "recipient_id": "ghost"}, headers=AUTH)
    assert ghost.status_code == 404


def test_a_delivery_shows_what_was_sent(client: httpx.Client, app: App) -> None:
    add_recipient(app)
    body = {"recipient_id": "u-1", "kind": "reminder", "channel": "email", "data": {"a": 1}}
    sent = client.post("/notify", json=body, headers=AUTH).json()["delivery"]["id"]
    assert client.get(f"/deliveries/{sent}", headers=AUTH).json()["message"] is None, "nothing sent yet"
    working, capture = deliverer(app)
    assert working.deliver_batch([sent]).sent == 1
    [message] = capture.sent
    kept = client.get(f"/deliveries/{sent}", headers=AUTH).json()["message"]
    assert (kept["subject"], kept["text"], kept["html"]) == (message.subject, message.text, message.html)
    assert kept["headers"]["To"] == "u-1@example.com" and kept["headers"]["Message-ID"] == message.message_id
    assert kept["cut"] is False and kept["digest"] is None and kept["size"] > 0


def test_pause_resume_explain_over_http(client: httpx.Client, app: App) -> None:
    add_recipient(app)
    assert client.post("/pauses/sms", headers=AUTH).json()["paused"] is True
    assert client.get("/status", headers=AUTH).json()["paused"][0]["value"] == "sms"
    assert client.delete("/pauses/sms", headers=AUTH).json()["changed"] is True
    explained = client.get("/explain/u-1", params={"date": "2026-03-08"}, headers=AUTH)
    assert explained.status_code == 200 and explained.json()["local_date"] == "2026-03-08"


def test_readyz_names_failing_checks(client: httpx.Client, app: App) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["workers", "planner"]
    # Without the token: the check names and flags, no detail (exception text names addresses).
    assert all("detail" not in check for check in body["checks"].values())
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    detailed = client.get("/readyz", headers=AUTH).json()
    assert detailed["checks"]["workers"]["detail"] == "no live RQ worker"

    build_runner(app).run(app.clock(), app.settings.horizon)
    worker = make_worker(app)
    worker.register_birth()
    try:
        ready = client.get("/readyz")
    finally:
        worker.register_death()
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


def test_metrics(client: httpx.Client, app: App) -> None:
    add_recipient(app)
    dead_email(app)
    sent = client.post(
        "/notify", json={"recipient_id": "u-1", "kind": "reminder", "channel": "email"}, headers=AUTH
    ).json()["delivery"]["id"]
    working, _ = deliverer(app)
    assert working.deliver_batch([sent]).sent == 1
    client.post("/notify", json={"recipient_id": "u-1", "kind": "reminder", "channel": "email"}, headers=AUTH)
    build_runner(app).run(app.clock(), app.settings.horizon)

    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'planner_deliveries{reason="",status="queued"} 1.0' in text
    assert 'planner_deliveries{reason="",status="sent"} 1.0' in text
    assert 'planner_deliveries{reason="permanent_failure",status="dead"} 1.0' in text
    # The lateness is wall time between the notify and the send: its bucket depends on the machine.
    assert 'planner_send_lateness_seconds_bucket{channel="email",le="+Inf"} 1.0' in text
    assert 'planner_send_lateness_seconds_count{channel="email"} 1.0' in text
    assert 'planner_delivery_attempts_bucket{channel="email",le="1.0"} 2.0' in text
    assert 'planner_queue_depth{queue="default"}' in text
    assert "planner_last_run_succeeded 1.0" in text
    assert "planner_last_run_duration_seconds" in text


def test_openapi_document(client: httpx.Client) -> None:
    document = client.get("/openapi.json", headers=AUTH).json()
    assert {"/notify", "/deliveries/{delivery_id}/retry", "/readyz", "/metrics"} <= set(document["paths"])
    assert "HTTPBearer" in document["components"]["securitySchemes"]
