"""The management API (/v1) over real HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from planner.app import App, build_deliverer, build_runner
from planner.auth import create_token
from planner.commands.notify import notify
from planner.errors import ConfigurationError
from planner.settings import Settings
from planner.store.idempotency import CARRIED_OUT, IN_PROGRESS
from planner.store.tables import DELIVERIES, DELIVERY_EVENTS, IDEMPOTENCY, RECIPIENTS
from tests.api import test_api
from tests.commands.test_ops import deliverer
from tests.helpers import timelines

server = test_api.server  # the module's loopback uvicorn

NOW = datetime(2026, 3, 6, 10, 20, tzinfo=UTC)
ANN = {
    "timezone": "America/New_York",
    "email": "ann@example.com",
    "quiet_hours": {"email": "none"},
    "subscriptions": [{"kind": "reminder", "channel": "email", "at": "02:30", "days": "daily"}],
}


@pytest.fixture
def http(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = None
    app.clock = lambda: NOW
    token = create_token(app, "crm", ["read", "write"], NOW)
    with test_api.serve(server, app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def deliveries(app: App) -> list[Any]:
    with app.sessions() as session:
        return list(session.execute(select(DELIVERIES).order_by(DELIVERIES.c.id)))


def test_put_creates_then_replaces_idempotently_and_get_shows_the_next_sends(http: httpx.Client) -> None:
    created = http.put("/v1/recipients/ann", json=ANN)
    assert created.status_code == 201, created.text
    again = http.put("/v1/recipients/ann", json=ANN)
    assert again.status_code == 200 and again.json() == created.json()

    shown = http.get("/v1/recipients/ann").json()
    assert shown["subscriptions"] == [
        {"kind": "reminder", "channel": "email", "at": "02:30", "days": "daily", "active": True}
    ]
    sends = shown["next_sends"]
    assert len(sends) == 5
    # 2026-03-08 02:30 does not exist in New York (the clocks jump from 02:00 to 03:00).
    gap = next(s for s in sends if s["local_date"] == "2026-03-08")
    assert gap["send_local"] == "2026-03-08T03:30:00-04:00" and gap["send_at"] == "2026-03-08T07:30:00+00:00"
    assert any("DST" in note or "gap" in note for note in gap["notes"]), gap
    assert sends[0]["send_at"] == "2026-03-07T07:30:00+00:00"


def test_bad_bodies_are_422s_naming_the_field_and_write_nothing(http: httpx.Client, app: App) -> None:
    def error(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code == 422, response.text
        return dict(response.json()["errors"][0])

    assert (
        error(http.put("/v1/recipients/ann", json={**ANN, "timezone": "Mars/Olympus"}))["field"] == "timezone"
    )
    assert error(http.put("/v1/recipients/ann", json={**ANN, "colour": "red"}))["field"] == "colour"
    bad_sub = {**ANN, "subscriptions": [{"kind": "reminder", "channel": "email", "at": "25:00"}]}
    assert error(http.put("/v1/recipients/ann", json=bad_sub))["field"] == "subscriptions[0].at"
    assert error(http.put("/v1/recipients/ann", json={**ANN, "id": "bob"}))["field"] == "id"
    with app.sessions() as session:
        assert session.scalar(select(RECIPIENTS.c.id)) is None
    assert http.patch("/v1/recipients/ann", json={"timezone": "UTC"}).status_code == 404
    http.put("/v1/recipients/ann", json=ANN)
    assert error(http.patch("/v1/recipients/ann", json={"subscriptions": []}))["field"] == "subscriptions"
    assert (
        error(http.put("/v1/recipients/ann/subscriptions/reminder/email", json={"at": "x"}))["field"] == "at"
    )


def test_a_change_inside_the_covered_window_is_planned_at_once(http: httpx.Client, app: App) -> None:
    http.put("/v1/recipients/ann", json={**ANN, "timezone": "UTC", "subscriptions": []})
    build_runner(app).run(NOW.replace(minute=0), timedelta(hours=1))  # the 10:00 run covers 10:00..11:00
    assert deliveries(app) == []

    put = http.put("/v1/recipients/ann/subscriptions/reminder/email", json={"at": "10:45"})
    assert put.status_code == 200, put.text
    [planned] = deliveries(app)
    assert planned.scheduled_at == NOW.replace(minute=45) and planned.status == "queued"

    # A changed schedule cancels the pending delivery, and the new time is planned at once too.
    http.put("/v1/recipients/ann/subscriptions/reminder/email", json={"at": "10:50"})
    old, new = deliveries(app)
    assert (old.status, old.reason) == ("cancelled", "schedule_changed")
    assert new.scheduled_at == NOW.replace(minute=50) and new.status == "queued"

    removed = http.delete("/v1/recipients/ann/subscriptions/reminder/email")
    assert removed.status_code == 200 and removed.json()["subscriptions"] == []
    assert [(d.status, d.reason) for d in deliveries(app)][-1] == ("cancelled", "schedule_changed")

    # Later than the covered window: left to the next run.
    http.put("/v1/recipients/ann/subscriptions/reminder/email", json={"at": "11:30"})
    assert len(deliveries(app)) == 2


def test_patch_changes_only_what_it_names(http: httpx.Client) -> None:
    http.put("/v1/recipients/ann", json=ANN)
    patched = http.patch("/v1/recipients/ann", json={"timezone": "Europe/Paris", "opt_out": ["sms"]})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["timezone"], body["email"], body["opt_out"]) == ("Europe/Paris", "ann@example.com", ["sms"])
    assert body["preferences"]["sms"] == {"opted_out": True, "opted_out_kinds": []}
    assert len(body["subscriptions"]) == 1


def test_delete_erases_personal_data_and_cancels_pending_deliveries(http: httpx.Client, app: App) -> None:
    http.put("/v1/recipients/ann", json=ANN)
    build_runner(app).run(NOW, timedelta(days=2))
    assert {d.status for d in deliveries(app)} == {"queued"}

    erased = http.delete("/v1/recipients/ann")
    assert erased.status_code == 200, erased.text
    assert erased.json()["deliveries_cancelled"] == 2
    assert {(d.status, d.reason) for d in deliveries(app)} == {("cancelled", "recipient_deleted")}
    with app.sessions() as session:
        row = session.execute(select(RECIPIENTS)).one()
        reasons = set(
            session.scalars(select(DELIVERY_EVENTS.c.reason).where(DELIVERY_EVENTS.c.event == "cancelled"))
        )
    assert row.email is None and row.phone is None and row.external_id.startswith("#erased-")
    assert reasons == {"recipient_deleted"}
    assert http.get("/v1/recipients/ann").status_code == 404
    # The id is free again: a new person can take it.
    assert http.put("/v1/recipients/ann", json=ANN).status_code == 201


def test_v1_routes_check_scopes(http: httpx.Client, app: App) -> None:
    reader = create_token(app, "reader", ["read"], NOW)
    as_reader = {"Authorization": f"Bearer {reader}"}
    assert http.put("/v1/recipients/ann", json=ANN, headers=as_reader).status_code == 403
    http.put("/v1/recipients/ann", json=ANN)
    assert http.get("/v1/recipients/ann", headers=as_reader).status_code == 200
    assert http.delete("/v1/recipients/ann", headers=as_reader).status_code == 403
    assert http.get("/v1/recipients/ann", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_preferences_per_channel_and_per_kind_reach_the_planner(http: httpx.Client, app: App) -> None:
    app.settings.critical_kinds = ["password_reset"]
    http.put("/v1/recipients/ann", json={**ANN, "timezone": "UTC"})
    kind = http.put("/v1/recipients/ann/preferences/email/reminder", json={"opted_out": True})
    assert kind.status_code == 200, kind.text
    assert kind.json()["preferences"]["email"] == {"opted_out": False, "opted_out_kinds": ["reminder"]}
    assert http.get("/v1/recipients/ann").json()["next_sends"] == []  # simulate honours it too

    build_runner(app).run(NOW, timedelta(days=1))
    [planned] = deliveries(app)
    assert (planned.status, planned.reason) == ("suppressed", "opted_out")
    [entry] = timelines(app)[planned.id]
    assert entry["detail"]["scope"] == "kind:reminder"

    critical = http.put("/v1/recipients/ann/preferences/email/password_reset", json={"opted_out": True})
    assert critical.status_code == 422
    assert "PLANNER_CRITICAL_KINDS cannot be opted out of" in critical.json()["detail"]
    whole = http.put("/v1/recipients/ann/preferences/sms", json={"opted_out": True})
    assert whole.json()["preferences"]["sms"]["opted_out"] is True and whole.json()["changed"] is True
    assert http.put("/v1/recipients/ann/preferences/sms", json={"opted_out": True}).json()["changed"] is False
    assert http.put("/v1/recipients/ann/preferences/fax", json={"opted_out": True}).status_code == 422
    assert http.put("/v1/recipients/ann/preferences/sms", json={"opted_out": "maybe"}).status_code == 422


def test_the_smtp_adapter_needs_a_public_url_and_a_signing_key(tmp_path: Path) -> None:
    """Where the links are made (the worker's deliverer); the settings themselves load (see
    tests/cli/test_settings_where_used.py for the commands)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path}/p.db", email_adapter="smtp")
    assert "PLANNER_PUBLIC_BASE_URL is unset" in (settings.unsubscribe_links_problem() or "")
    settings.public_base_url = "https://x.example"
    assert "PLANNER_SIGNING_SECRET is unset" in (settings.unsubscribe_links_problem() or "")
    app = App(settings)
    with pytest.raises(ConfigurationError, match="PLANNER_SIGNING_SECRET is unset"):
        build_deliverer(app)
    app.close()


def test_bulk_import_streams_json_lines_atomically_or_skipping(http: httpx.Client, app: App) -> None:
    good = json.dumps({"type": "recipient", "id": "bob", "timezone": "UTC", "email": "bob@example.com"})
    bad = json.dumps({"type": "recipient", "id": "eve", "timezone": "Mars/Olympus"})
    body = f"{good}\n{bad}\n".encode()

    refused = http.post("/v1/imports", content=body, headers={"Content-Type": "text/plain"})
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["errors"]
    assert (error["line"], error["field"], error["value"]) == (2, "timezone", "'Mars/Olympus'")
    assert "IANA" in error["expected"]
    with app.sessions() as session:
        assert session.scalar(select(RECIPIENTS.c.id)) is None  # atomic: nothing written

    def chunks() -> Iterator[bytes]:  # a streamed upload, in pieces that split lines
        yield body[:10]
        yield body[10:]

    skipped = http.post("/v1/imports", params={"skip_invalid": "true"}, content=chunks())
    assert skipped.status_code == 200, skipped.text
    report = skipped.json()
    assert report["recipients_created"] == 1 and [e["line"] for e in report["errors"]] == [2]
    assert http.get("/v1/recipients/bob").status_code == 200


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    http: httpx.Client, app: App
) -> None:
    http.put("/v1/recipients/ann", json={**ANN, "subscriptions": []})
    body = {"recipient_id": "ann", "kind": "reminder", "channel": "email", "at": "2026-03-06T12:00:00Z"}
    key = {"Idempotency-Key": "order-1234-welcome"}
    first = http.post("/notify", json=body, headers=key)
    assert first.status_code == 201, first.text
    again = http.post("/notify", json=body, headers=key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["idempotency-replayed"] == "true"
    assert len(deliveries(app)) == 1

    other = http.post("/notify", json={**body, "kind": "daily_brief"}, headers=key)
    assert other.status_code == 422
    assert "Idempotency-Key 'order-1234-welcome' was used for another request" in other.json()["detail"]
    assert http.post("/notify", json=body, headers={"Idempotency-Key": "bad key"}).status_code == 422
    assert len(deliveries(app)) == 1


def test_patch_sets_locale_and_attributes_which_templates_receive(
    http: httpx.Client, app: App, tmp_path: Path
) -> None:
    templates = tmp_path / "templates" / "welcome"
    templates.mkdir(parents=True)
    (templates / "email_subject.txt").write_text("Welcome ({{ recipient.locale }})")
    (templates / "email.txt").write_text("Your plan: {{ recipient.attributes.plan }}")
    app.settings.templates_dir = tmp_path / "templates"
    http.put("/v1/recipients/ann", json={**ANN, "timezone": "UTC", "subscriptions": []})

    def error(changes: dict[str, Any]) -> dict[str, Any]:
        response = http.patch("/v1/recipients/ann", json=changes)
        assert response.status_code == 422, response.text
        return dict(response.json()["errors"][0])

    assert error({"locale": "français"})["field"] == "locale"
    assert error({"attributes": ["pro"]})["field"] == "attributes"
    assert error({"attributes": {"first name": "Ann"}})["field"] == "attributes.first name"
    assert error({"attributes": {"bio": "x" * 5000}})["expected"] == "at most 4096 bytes of JSON"
    assert error({"attributes": {"a": {"b": {"c": {"d": {}}}}}})["field"] == "attributes.a.b.c.d"
    assert http.get("/v1/recipients/ann").json()["attributes"] == {}  # nothing was written

    patched = http.patch("/v1/recipients/ann", json={"locale": "pt-BR", "attributes": {"plan": "pro"}})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["locale"], patched.json()["attributes"]) == ("pt-BR", {"plan": "pro"})
    kept = http.patch("/v1/recipients/ann", json={"timezone": "Europe/Paris"}).json()
    assert (kept["locale"], kept["attributes"]) == ("pt-BR", {"plan": "pro"})

    result = notify(app, "ann", "welcome", "email", now=NOW)
    send, capture = deliverer(app)
    assert send.deliver_batch([int(result.delivery["id"])]).sent == 1
    [message] = capture.sent
    assert (message.subject, message.text) == ("Welcome (pt-BR)", "Your plan: pro")

    http.delete("/v1/recipients/ann")
    with app.sessions() as session:
        erased = session.execute(select(RECIPIENTS.c.locale, RECIPIENTS.c.attributes)).one()
    assert tuple(erased) == (None, None)


def test_two_concurrent_posts_with_one_idempotency_key_run_once(
    http: httpx.Client, app: App, redis_conn: redis.Redis
) -> None:
    http.put("/v1/recipients/ann", json={**ANN, "subscriptions": []})
    body = {"recipient_id": "ann", "kind": "reminder", "channel": "email", "at": "2026-03-06T12:00:00Z"}
    key = {"Idempotency-Key": "race-1"}

    def reserved() -> bool:
        # Held: in progress, or its delivery committed and its answer not stored yet.
        with app.sessions() as session:
            status = session.scalar(select(IDEMPOTENCY.c.status).where(IDEMPOTENCY.c.key == "race-1"))
        return status in (IN_PROGRESS, CARRIED_OUT)

    # Redis refuses writes for a while: the first request, its key reserved and its delivery saved,
    # waits at the enqueue until the second has been answered.
    redis_conn.execute_command("CLIENT", "PAUSE", "20000", "WRITE")
    try:
        with (
            ThreadPoolExecutor(1) as pool,
            httpx.Client(base_url=http.base_url, headers=http.headers) as other,
        ):
            first = pool.submit(http.post, "/notify", json=body, headers=key)
            deadline = time.monotonic() + 10
            while not reserved():
                assert time.monotonic() < deadline and not first.done(), "the first request never reserved"
                time.sleep(0.01)
            second = other.post("/notify", json=body, headers=key)
            different = other.post("/notify", json={**body, "kind": "daily_brief"}, headers=key)
            assert not first.done()
            redis_conn.execute_command("CLIENT", "UNPAUSE")
            answered = first.result(timeout=10)
    finally:
        redis_conn.execute_command("CLIENT", "UNPAUSE")
    assert second.status_code == 409 and second.headers["retry-after"] == "1", second.text
    assert "still running" in second.json()["detail"]
    assert different.status_code == 422
    assert answered.status_code == 201, answered.text
    replay = http.post("/notify", json=body, headers=key)
    assert (replay.status_code, replay.json()) == (201, answered.json())
    assert len(deliveries(app)) == 1
