"""`GET /v1/recipients`: find recipients over real HTTP on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from planner.app import App
from planner.auth import create_token
from tests.api import test_api

server = test_api.server  # the module's loopback uvicorn

NOW = datetime(2026, 3, 6, 10, 20, tzinfo=UTC)


def person(zone: str, **addresses: str) -> dict[str, object]:
    return {"timezone": zone, **addresses}


@pytest.fixture
def http(server: tuple[test_api.Switch, str], app: App) -> Iterator[httpx.Client]:
    app.settings.api_token = None
    app.clock = lambda: NOW
    token = create_token(app, "crm", ["read", "write"], NOW)
    with test_api.serve(server, app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        for rid, body in {
            "ann": person("Europe/London", email="Ann@Example.com", phone="+447700900123"),
            "annex": person("Europe/London", phone="+12125550100"),
            "bob": person("America/New_York", email="bob@example.com"),
        }.items():
            assert client.put(f"/v1/recipients/{rid}", json=body).status_code == 201
        assert client.put("/v1/recipients/bob/preferences/email", json={"opted_out": True}).status_code == 200
        yield client


def found(http: httpx.Client, **params: object) -> list[str]:
    response = http.get("/v1/recipients", params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["recipients"]]


def test_search_filter_and_page(http: httpx.Client) -> None:
    assert found(http) == ["ann", "annex", "bob"]
    assert found(http, q="ann") == ["ann", "annex"]
    assert found(http, q="ann@example.COM") == ["ann"]
    assert found(http, q="+1 212-555-0100") == ["annex"]
    assert found(http, phone="(+44) 7700 900123") == ["ann"]
    assert found(http, zone="Europe/London", id_prefix="ann") == ["ann", "annex"]
    assert found(http, opted_out="email") == ["bob"]
    assert found(http, opted_out="any", zone="Europe/London") == []
    first = http.get("/v1/recipients", params={"limit": 2}).json()
    assert [r["id"] for r in first["recipients"]] == ["ann", "annex"] and first["next_after"] == "annex"
    rest = http.get("/v1/recipients", params={"limit": 2, "after": first["next_after"]}).json()
    assert rest == {
        "recipients": [
            {
                "id": "bob", "timezone": "America/New_York", "email": "bob@example.com", "phone": None,
                "preferences": {"email": {"opted_out": True, "opted_out_kinds": []},
                                "sms": {"opted_out": False, "opted_out_kinds": []}},
                "invalid": {"email": None, "sms": None}, "subscriptions": 0,
            }
        ],
        "next_after": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phone": "12"}, "phone"),
        ({"email": "nobody"}, "email"),
        ({"zone": "Mars/Base"}, "zone"),
        ({"opted_out": "fax"}, "opted_out"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"after": "a b"}, "after"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_searches_are_422s_naming_the_field(
    http: httpx.Client, params: dict[str, object], field: str
) -> None:
    response = http.get("/v1/recipients", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["loc"][-1] for e in response.json()["errors"]] == [field]


def test_listing_needs_the_read_scope(http: httpx.Client, app: App) -> None:
    writer = create_token(app, "writer", ["write"], NOW)
    assert http.get("/v1/recipients", headers={"Authorization": f"Bearer {writer}"}).status_code == 403
    assert http.get("/v1/recipients", headers={"Authorization": "Bearer nope"}).status_code == 401
