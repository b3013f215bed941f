"""The HTTP API against hostile input: schemathesis over the OpenAPI document, the reproductions of
issue 12 by hand, and the API while Redis is down. A 500 is a defect; every 4xx is a problem-details
body naming the field; a rejected request writes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.generation.modes import GenerationMode
from sqlalchemy import func, select

from planner.api import create_api
from planner.app import App, build_runner
from planner.processes.worker import make_worker
from planner.settings import Settings
from planner.store.models import metadata
from tests.api.test_api import AUTH, TOKEN, Switch, serve, server  # noqa: F401 -- the module's server
from tests.commands.test_ops import add_recipient

#: Examples per operation and generation mode; 13 operations x 2 modes x 2 backends.
EXAMPLES = 40
#: The management API's operations (/v1) take whole import documents: fewer examples each keep the
#: suite's time bounded (every body goes through the importer's validation, tested on its own).
EXAMPLES_V1 = 12
#: The webhooks answer random input at their signature check (403): a few examples each show it.
EXAMPLES_WEBHOOKS = 6


#: Twilio's form of optional strings has no schema-invalid variant that can be form-encoded:
#: hypothesis searches for seconds and finds none. Their positive cases reach the signature check.
_FORM_ONLY = frozenset({"/v1/webhooks/twilio/status", "/v1/webhooks/twilio/inbound"})


def _examples(path: str) -> int:
    if path.startswith("/v1/webhooks/"):
        return EXAMPLES_WEBHOOKS
    return EXAMPLES_V1 if path.startswith("/v1/") else EXAMPLES


#: What each schemathesis run sent, by (method, path, status): the issue's closing figures.
SENT: Counter[tuple[str, str, int]] = Counter()

load_all_checks()
# The validators are narrower than JSON Schema can say (instants 1970..2200, a kind needs a
# template), so schema-valid data may rightly get a 422; every other check runs.
EXCLUDED = [CHECKS.get_one("positive_data_acceptance")]


#: Routes a person opens in a browser: their 404 is a page, not problem details.
PAGES = {("GET", "/u/{token}")}


def _problem(response: Any) -> dict[str, Any]:
    content_type = response.headers["content-type"]
    content_type = content_type[0] if isinstance(content_type, list) else content_type  # schemathesis
    assert content_type.startswith("application/problem+json"), response.text
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == response.status_code and body["title"] and body["detail"]
    return body


def _row_counts(app: App) -> dict[str, int]:
    with app.engine.connect() as connection:
        return {
            t.name: connection.scalar(select(func.count()).select_from(t)) or 0
            for t in metadata.sorted_tables
        }


@pytest.fixture
def healthy(app: App) -> Iterator[App]:
    """A recipient, one planner run and a live worker: /readyz answers 200, so any 5xx is a defect."""
    app.settings.api_token = SecretStr(TOKEN)
    # The webhooks' secrets: random input reaches their signature checks (a 403), not a 503.
    app.settings.public_base_url = "https://planner.example.com"
    app.settings.twilio_auth_token = SecretStr("twilio-auth-token")
    app.settings.mailgun_signing_key = SecretStr("mailgun-signing-key")
    add_recipient(app)
    build_runner(app).run(app.clock(), app.settings.horizon)
    worker = make_worker(app)
    worker.register_birth()
    yield app
    worker.register_death()


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, session: requests.Session) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=_examples(operation.path),
        deadline=None,
        derandomize=True,  # the same cases every run: a failure fails again
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=AUTH)
        SENT[(case.method, operation.path, response.status_code)] += 1
        assert response.status_code < 500, response.text
        if response.status_code >= 400 and (case.method, operation.path) not in PAGES:
            _problem(response)
        case.validate_response(response, headers=AUTH, excluded_checks=EXCLUDED)

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to get wrong in a route without input


def test_schemathesis_finds_no_server_error(server: tuple[Switch, str], healthy: App) -> None:  # noqa: F811
    switch, base_url = server
    api = create_api(healthy)
    switch.api = api
    document = api.openapi()
    # The token is sent with every case; authentication has its own tests (tests/test_api.py), and
    # a case "without" the header that still carries it would count as wrongly accepted.
    document["components"].pop("securitySchemes", None)
    for methods in document["paths"].values():
        for spec in methods.values():
            spec.pop("security", None)
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    SENT.clear()
    with requests.Session() as session:
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if mode is GenerationMode.NEGATIVE and operation.path in _FORM_ONLY:
                    continue
                _fuzz(operation, mode, base_url, session)
    assert sum(SENT.values()) >= sum(_examples(o.path) for o in operations), SENT
    assert {path for _, path, _ in SENT} >= {"/v1/recipients/{recipient_id}", "/v1/webhooks/mailgun"}
    # Nothing random gets past a signature check.
    assert not [k for k in SENT if k[1].startswith("/v1/webhooks/twilio") and k[2] == 200], SENT
    assert not [key for key in SENT if key[2] >= 500]


DEEP: dict[str, Any] = {}
_level = DEEP
for _ in range(300):
    _level["a"] = {}
    _level = _level["a"]

NOTIFY = {"recipient_id": "u-1", "kind": "reminder", "channel": "email"}
ENGAGE = {"recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z"}

# (method, path, json body or raw bytes, expected status, the field the error names)
HOSTILE: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/notify", {**NOTIFY, "data": DEEP}, 422, "data"),
    ("POST", "/notify", {**NOTIFY, "data": {"n": float("nan")}}, 422, "data"),
    ("POST", "/notify", {**NOTIFY, "at": "9999-12-31T23:59:59Z"}, 422, "at"),
    ("POST", "/notify", {**NOTIFY, "at": "0001-01-01T00:00:00+14:00"}, 422, "at"),
    ("POST", "/notify", {**NOTIFY, "at": "9999-12-31T23:59:59-23:59"}, 422, "at"),
    ("POST", "/notify", {**NOTIFY, "kind": "probe_kind\n"}, 422, "kind"),
    ("POST", "/notify", {**NOTIFY, "recipient_id": "u-1\n"}, 422, "recipient_id"),
    ("POST", "/notify", {**NOTIFY, "kind": "brief"}, 422, "kind"),
    ("POST", "/notify", {**NOTIFY, "recipient_id": "x" * 100_000}, 422, "recipient_id"),
    ("POST", "/notify", b"{bad", 422, "body"),
    ("POST", "/notify", b"\xff\xfe{}", 422, "body"),
    ("POST", "/notify", b"[" * 100_000, 422, "body"),
    ("POST", "/notify", b'{"recipient_id": 1e99999}', 422, "recipient_id"),
    ("POST", "/engagement", {**ENGAGE, "at": "9999-12-31T23:59:59Z"}, 422, "at"),
    ("POST", "/engagement", {**ENGAGE, "at": "0001-01-01T00:00:00+14:00"}, 422, "at"),
    ("POST", "/engagement", {**ENGAGE, "kind": "daily_brief\n"}, 422, "kind"),
    ("GET", "/deliveries/9223372036854775808", None, 422, "delivery_id"),
    ("GET", "/deliveries/0", None, 422, "delivery_id"),
    ("GET", "/deliveries/2147483648", None, 422, "delivery_id"),
    ("POST", "/deliveries/-9223372036854775809/retry", None, 422, "delivery_id"),
    ("POST", "/deliveries/99999999999999999999999/cancel", None, 422, "delivery_id"),
    ("GET", "/deliveries?since=9999-12-31T23:59:59Z", None, 422, "since"),
    ("GET", "/deliveries?since=0001-01-01T00:00:00%2B14:00", None, 422, "since"),
    ("GET", "/deliveries?limit=9223372036854775808", None, 422, "limit"),
    ("GET", "/deliveries?recipient=u-1&recipient=u-2", None, 422, "recipient"),
    ("GET", "/deliveries?since=1", None, 422, "since"),
    ("POST", "/notify", {**NOTIFY, "at": 1767225600}, 422, "at"),
    ("GET", "/v1/recipients/u-1?statsu=1", None, 422, "statsu"),
    ("GET", "/explain/u-1?date=9999-12-31", None, 422, "date"),
    ("GET", "/explain/u-1?date=0001-01-01", None, 422, "date"),
    ("POST", "/pauses/probe_kind%0A", None, 422, "target"),
    ("DELETE", "/pauses/Email", None, 422, "target"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"), HOSTILE, ids=[h[1][:40] for h in HOSTILE]
)
def test_hostile_request_is_a_4xx_naming_the_field_and_writes_nothing(
    client: httpx.Client, app: App, method: str, path: str, body: Any, status: int, field: str
) -> None:
    add_recipient(app)
    before = _row_counts(app)
    if isinstance(body, bytes):
        response = client.request(
            method, path, content=body, headers={**AUTH, "content-type": "application/json"}
        )
    elif isinstance(body, dict):
        content = json.dumps(body, allow_nan=True).encode()
        response = client.request(
            method, path, content=content, headers={**AUTH, "content-type": "application/json"}
        )
    else:
        response = client.request(method, path, headers=AUTH)
    assert response.status_code == status, response.text
    problem = _problem(response)
    named = [e["loc"][-1] if e.get("loc") else "" for e in problem.get("errors", [])]
    assert field in named or field in problem["detail"], problem
    assert len(response.content) < 5000, "the echoed value is truncated"
    assert _row_counts(app) == before


@pytest.fixture
def client(server: tuple[Switch, str], app: App) -> Iterator[httpx.Client]:  # noqa: F811
    app.settings.api_token = SecretStr(TOKEN)
    with serve(server, app) as http:
        yield http


def test_path_parameter_errors_say_path(client: httpx.Client) -> None:
    response = client.post("/pauses/Not%20A%20Kind", headers=AUTH)
    assert response.status_code == 422
    assert _problem(response)["errors"][0]["loc"] == ["path", "target"]


def test_options_lists_every_method_of_the_path(client: httpx.Client) -> None:
    response = client.options("/pauses/sms")
    assert response.status_code == 204
    assert set(response.headers["allow"].split(", ")) == {"POST", "DELETE", "OPTIONS"}
    wrong = client.put("/pauses/sms", headers=AUTH)
    assert wrong.status_code == 405 and "DELETE" in wrong.headers["allow"]


def test_openapi_lists_error_responses(client: httpx.Client) -> None:
    document = client.get("/openapi.json", headers=AUTH).json()
    retry = document["paths"]["/deliveries/{delivery_id}/retry"]["post"]["responses"]
    assert {"401", "404", "409", "422", "503"} <= set(retry)
    assert "application/problem+json" in retry["409"]["content"]


@pytest.fixture
def redis_down(app: App, tmp_path: Any) -> Iterator[App]:
    """The same database, and a Redis URL on a port nothing listens on."""
    from tests.servers import free_port

    down = App(Settings(**{**app.settings.model_dump(), "redis_url": f"redis://127.0.0.1:{free_port()}/0"}))
    down.settings.api_token = SecretStr(TOKEN)
    yield down
    down.close()


def test_redis_down_is_503_never_500_and_writes_nothing(
    server: tuple[Switch, str],  # noqa: F811
    app: App,
    redis_down: App,
) -> None:
    add_recipient(app)
    before = _row_counts(app)
    with serve(server, redis_down) as http:
        for method, path in (("GET", "/status"), ("GET", "/metrics"), ("POST", "/notify")):
            response = http.request(method, path, headers=AUTH, json=NOTIFY if method == "POST" else None)
            assert response.status_code == 503, (path, response.text)
            assert "Redis" in _problem(response)["title"]
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "redis" in ready.json()["failing"]
        # Without the token, names only: the exception text carries internal addresses.
        assert "127.0.0.1" not in ready.text and "detail" not in ready.json()["checks"]["redis"]
        assert "127.0.0.1" in http.get("/readyz", headers=AUTH).text
    assert _row_counts(app) == before


def test_redis_failing_after_the_commit_answers_what_was_done(
    server: tuple[Switch, str],  # noqa: F811
    app: App,
    redis_conn: redis.Redis,
) -> None:
    """A Redis user that may PING but not enqueue: the row is saved, the answer says so (202),
    and the reconcile enqueues it once Redis takes jobs again."""
    from planner.dispatch.reconcile import reconcile
    from tests.helpers import jobs_in_redis

    add_recipient(app)
    redis_conn.execute_command("ACL", "SETUSER", "pingonly", "on", ">pw", "~*", "+ping", "+hello", "+client")
    url = app.settings.redis_url
    assert url is not None
    limited = App(
        Settings(
            **{**app.settings.model_dump(), "redis_url": url.replace("redis://", "redis://pingonly:pw@")}
        )
    )
    limited.settings.api_token = SecretStr(TOKEN)
    try:
        with serve(server, limited) as http:
            response = http.post("/notify", json=NOTIFY, headers=AUTH)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["outcome"] == "saved" and "reconcile" in body["message"]
        assert body["delivery"]["status"] == "queued" and body["delivery"]["job_id"]
        assert jobs_in_redis(redis_conn) == {}
        assert reconcile(app.sessions, app.redis, app.clock()).reenqueued == 1
        assert list(jobs_in_redis(redis_conn).values()) == [[body["delivery"]["id"]]]
    finally:
        limited.close()
        redis_conn.execute_command("ACL", "DELUSER", "pingonly")
