"""What one request can make the service do, at every door, on both databases, against the server
``planner serve`` runs (its uvicorn configuration): the caller is identified before a body is read,
every body is bounded before it is read, duplicate JSON keys are refused, headers that never finish
are cut off, and the unsubscribe page cannot be framed. Requests go over raw sockets where what the
receiver sees matters (a body never sent, headers trickling)."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import SecretStr

from planner.api.app import API_ROUTERS
from planner.api.limits import KIB, MIB
from planner.api.routing import ApiRoute
from planner.app import App
from planner.auth import create_token
from planner.core.json_objects import repeated
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.settings import Settings
from planner.store.queries import recipient_by_external_id
from tests.api.test_hostile_api import _row_counts
from tests.commands.test_ops import add_recipient
from tests.http_server import serving

NOW = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
SECRET = "the-signing-secret-of-this-test!"

#: Every door that takes a JSON body behind a token: (method, route, a concrete path, its scope).
JSON_DOORS: list[tuple[str, str, str]] = [
    ("PUT", "/v1/recipients/{recipient_id}", "/v1/recipients/u-1"),
    ("PATCH", "/v1/recipients/{recipient_id}", "/v1/recipients/u-1"),
    ("PUT", "/v1/recipients/{recipient_id}/subscriptions/{kind}/{channel}",
     "/v1/recipients/u-1/subscriptions/reminder/email"),
    ("PATCH", "/v1/recipients/{recipient_id}/subscriptions/{kind}/{channel}",
     "/v1/recipients/u-1/subscriptions/reminder/email"),
    ("PUT", "/v1/recipients/{recipient_id}/preferences/{channel}", "/v1/recipients/u-1/preferences/email"),
    ("PUT", "/v1/recipients/{recipient_id}/preferences/{channel}/{kind}",
     "/v1/recipients/u-1/preferences/email/reminder"),
    ("POST", "/v1/notify", "/v1/notify"),
    ("POST", "/v1/engagement", "/v1/engagement"),
    ("POST", "/notify", "/notify"),  # deprecated
    ("POST", "/engagement", "/engagement"),  # deprecated
    ("POST", "/v1/events", "/v1/events"),
    ("POST", "/v1/webhooks/email", "/v1/webhooks/email"),
]  # fmt: skip

#: A body repeating one key, for each door (and Mailgun's, which has no token), and the key.
REPEATED: list[tuple[str, str, bytes, str]] = [
    ("PUT", "/v1/recipients/u-1", b'{"timezone": "UTC", "email": "a@example.com", "timezone": "Asia/Tokyo"}',
     "timezone"),
    ("PATCH", "/v1/recipients/u-1", b'{"timezone": "UTC", "timezone": "Asia/Tokyo"}', "timezone"),
    ("PUT", "/v1/recipients/u-1/subscriptions/reminder/email", b'{"at": "09:00", "at": "10:00"}', "at"),
    ("PATCH", "/v1/recipients/u-1/subscriptions/reminder/email", b'{"at": "09:00", "at": "10:00"}', "at"),
    ("PUT", "/v1/recipients/u-1/preferences/email", b'{"opted_out": true, "opted_out": false}', "opted_out"),
    ("PUT", "/v1/recipients/u-1/preferences/email/reminder", b'{"opted_out": true, "opted_out": false}',
     "opted_out"),
    ("POST", "/notify", b'{"recipient_id": "u-1", "kind": "reminder", "channel": "email", "channel": "sms"}',
     "channel"),
    ("POST", "/notify",
     b'{"recipient_id": "u-1", "kind": "reminder", "channel": "email", "data": {"code": 1, "code": 2}}',
     "code"),
    ("POST", "/engagement",
     b'{"recipient_id": "u-1", "event": "opened", "at": "2026-03-01T10:00:00Z", "event": "clicked"}',
     "event"),
    ("POST", "/v1/events", b'{"recipient_id": "u-1", "kind": "reminder", "data": {"a": 1}, "kind": "other"}',
     "kind"),
    ("POST", "/v1/webhooks/email",
     b'{"id": "e-1", "event": "delivered", "message_id": "<m@example.com>", "id": "e-2"}', "id"),
    ("POST", "/v1/webhooks/mailgun",
     b'{"signature": {"timestamp": "1", "token": "t", "signature": "s"}, "event-data": {"event": "failed"},'
     b' "signature": {"timestamp": "2", "token": "u", "signature": "s"}}', "signature"),
]  # fmt: skip


#: The doors that take a JSON body behind the admin scope (webhook endpoints), and a body of each
#: repeating a key.
ADMIN_JSON_DOORS: list[tuple[str, str, str, bytes, str]] = [
    ("POST", "/v1/webhook-endpoints", "/v1/webhook-endpoints",
     b'{"url": "https://a.example.com", "event_types": ["delivery.sent"], "url": "https://b.example.com"}',
     "url"),
    ("PATCH", "/v1/webhook-endpoints/{endpoint_id}", "/v1/webhook-endpoints/1",
     b'{"enabled": true, "enabled": false}', "enabled"),
    ("POST", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", "/v1/webhook-endpoints/1/rotate-secret",
     b'{"overlap": "1h", "overlap": "0s"}', "overlap"),
]  # fmt: skip


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[App, str]]:
    keys = {
        "signing_secret": SecretStr(SECRET),
        "mailgun_signing_key": SecretStr("mailgun-key"),
        "http_header_timeout": timedelta(seconds=1),
    }
    app = App(settings.model_copy(update=keys), clock=lambda: NOW)
    with serving(app) as url:
        yield app, url
    app.close()


@pytest.fixture
def tokens(served: tuple[App, str]) -> dict[str, str]:
    app, _ = served
    add_recipient(app, subscriptions=[{"kind": "reminder", "channel": "email", "at": "09:00"}])
    return {
        "write": create_token(app, "writer", ["read", "write"], NOW),
        "read": create_token(app, "reader", ["read"], NOW),
        "admin": create_token(app, "admin", ["read", "admin"], NOW),
    }


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=10)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _header_lines(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return [line.lower() for line in head.split("\r\n")[1:]]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.mark.parametrize(("method", "route", "path"), JSON_DOORS, ids=[f"{m} {r}" for m, r, _ in JSON_DOORS])
def test_the_caller_is_identified_and_held_to_its_scope_before_the_body_is_read(
    served: tuple[App, str], tokens: dict[str, str], method: str, route: str, path: str
) -> None:
    app, url = served
    before = _row_counts(app)
    with httpx.Client(base_url=url, timeout=10) as http:
        anonymous = http.request(method, path, content=b"{bad", headers={"Content-Type": "application/json"})
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.headers["www-authenticate"] == "Bearer"
        reader = http.request(method, path, content=b"{bad", headers=_auth(tokens["read"]))
        assert reader.status_code == 403 and "lacks the 'write' scope" in reader.json()["detail"], reader.text
        writer = http.request(method, path, content=b"{bad", headers=_auth(tokens["write"]))
        assert writer.status_code == 422 and writer.json()["errors"][0]["loc"] == ["body"], writer.text
    assert _row_counts(app) == before


@pytest.mark.parametrize(
    ("method", "route", "path", "body", "key"),
    ADMIN_JSON_DOORS,
    ids=[f"{door[0]} {door[1]}" for door in ADMIN_JSON_DOORS],
)
def test_admin_doors_identify_and_scope_first_and_refuse_a_repeated_key(
    served: tuple[App, str], tokens: dict[str, str], method: str, route: str, path: str, body: bytes, key: str
) -> None:
    app, url = served
    before = _row_counts(app)
    with httpx.Client(base_url=url, timeout=10) as http:
        anonymous = http.request(method, path, content=b"{bad", headers={"Content-Type": "application/json"})
        assert anonymous.status_code == 401, anonymous.text
        # Refused before its body was read: the server closes the connection and says so, so the
        # client sends its next request on a new one.
        assert anonymous.headers["connection"] == "close"
        writer = http.request(method, path, content=b"{bad", headers=_auth(tokens["write"]))
        assert writer.status_code == 403 and "lacks the 'admin' scope" in writer.json()["detail"], writer.text
        assert writer.headers["connection"] == "close"
        admin = http.request(method, path, content=b"{bad", headers=_auth(tokens["admin"]))
        assert admin.status_code == 422 and admin.json()["errors"][0]["loc"] == ["body"], admin.text
        twice = http.request(method, path, content=body, headers=_auth(tokens["admin"]))
        assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == key, twice.text
    assert _row_counts(app) == before


def test_every_api_route_identifies_first_and_every_json_door_is_tested_here() -> None:
    routes = [route for router in API_ROUTERS for route in router.routes]
    assert all(isinstance(route, ApiRoute) for route in routes)
    with_json = {(m, r.path) for r in routes if r.body_field is not None for m in r.methods}  # type: ignore[attr-defined]
    doors = {(m, route) for m, route, _ in JSON_DOORS} | {(d[0], d[1]) for d in ADMIN_JSON_DOORS}
    assert with_json == doors | {("POST", "/v1/webhooks/mailgun")}


@pytest.mark.parametrize(
    ("method", "path", "body", "key"), REPEATED,
    ids=[f"{r[1]}:{r[3]}" for r in REPEATED],
)
def test_a_repeated_json_key_is_refused_naming_it_and_writes_nothing(
    served: tuple[App, str], tokens: dict[str, str], method: str, path: str, body: bytes, key: str
) -> None:
    app, url = served
    before = _row_counts(app)
    response = httpx.request(method, f"{url}{path}", content=body, headers=_auth(tokens["write"]), timeout=10)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    [error] = problem["errors"]
    assert (error["loc"], error["field"], error["expected"]) == (["body", key], key, repeated(key)), problem
    assert problem["detail"].startswith(f"{key}: ") and repeated(key) in problem["detail"]
    assert _row_counts(app) == before


#: (method, path, bound): a route of each bound (planner.api.limits).
BOUNDS = [
    ("POST", "/v1/webhooks/mailgun", 64 * KIB),
    ("POST", "/v1/webhooks/twilio/status", 64 * KIB),
    ("POST", "/v1/webhooks/email", 64 * KIB),
    ("POST", "/notify", 256 * KIB),
    ("PUT", "/v1/recipients/u-1", 256 * KIB),
    ("GET", "/deliveries", 256 * KIB),
    ("POST", "/v1/imports", 256 * MIB),
    ("POST", "/u/payload.signature", 4 * KIB),
    ("POST", "/ui/login", 64 * KIB),
]


@pytest.mark.parametrize(("method", "path", "bound"), BOUNDS, ids=[f"{m} {p}" for m, p, _ in BOUNDS])
def test_a_body_declared_over_its_bound_is_refused_before_a_byte_of_it_is_read(
    served: tuple[App, str], method: str, path: str, bound: int
) -> None:
    _, url = served
    with _connect(url) as sock:  # the body is never sent: the answer cannot wait for it
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: {bound + 1}\r\n\r\n".encode())
        answer = _until_closed(sock)
    assert _status(answer) == 413, answer[:300]
    assert "connection: close" in _header_lines(answer)
    problem = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert problem["title"] == "Payload too large" and f"over {bound} bytes" in problem["detail"]


def test_an_unauthenticated_webhook_body_is_read_no_further_than_its_bound(served: tuple[App, str]) -> None:
    """The Mailgun webhook read a 30 MB unsigned body before answering 403: now it stops at 64 KiB."""
    _, url = served
    total, chunk = 30 * MIB, b"x" * (64 * KIB)
    sent = [0]
    with _connect(url) as sock:
        sock.sendall(b"POST /v1/webhooks/mailgun HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")  # fmt: skip

        def upload() -> None:
            try:
                while sent[0] < total:
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    sent[0] += len(chunk)
            except OSError:  # the server closed the connection: the rest is never read
                pass

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        assert select.select([sock], [], [], 30)[0], "no answer"
        sent_when_answered = sent[0]
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            answer = _until_closed(sock)
        uploader.join(30)
    assert _status(answer) == 413, answer[:300]
    assert "body too large" in answer.decode(errors="replace")
    # Answered once 64 KiB were read: what the client had sent by then is what the sockets' buffers hold.
    assert sent_when_answered < total // 2, sent_when_answered


def test_a_body_within_its_bound_reaches_the_route(served: tuple[App, str], tokens: dict[str, str]) -> None:
    _, url = served
    auth = _auth(tokens["write"])
    with httpx.Client(base_url=url, timeout=30) as http:
        filler = {"recipient_id": "u-1", "kind": "reminder", "channel": "email", "data": {"x": ""}}
        envelope = len(json.dumps(filler).encode())
        filler["data"]["x"] = "y" * (256 * KIB - envelope)  # exactly the bound: its validator answers
        at_bound = http.post("/notify", content=json.dumps(filler).encode(), headers=auth)
        assert at_bound.status_code == 422 and at_bound.json()["errors"][0]["field"] == "data", at_bound.text
        over = http.post("/notify", content=json.dumps(filler).encode() + b" ", headers=auth)
        assert over.status_code == 413
        # An import far over the JSON routes' bound, with an Idempotency-Key (read by the middleware).
        line = {"type": "recipient", "id": "big-import", "timezone": "UTC", "email": "big@example.com"}
        body = b"\n" * (MIB) + json.dumps(line).encode() + b"\n"
        imported = http.post("/v1/imports", content=body, headers={**auth, "Idempotency-Key": "import-1"})
        assert imported.status_code == 200 and imported.json()["recipients_created"] == 1, imported.text


def _trickle(sock: socket.socket, line: bytes, times: int = 100) -> bytes:
    """Send ``line`` every 0.2 s (20 s at most) until the server answers and closes; its answer."""
    answer = b""
    for _ in range(times):
        try:
            sock.sendall(line)
        except OSError:
            break
        if select.select([sock], [], [], 0.2)[0]:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def test_request_headers_that_never_finish_are_cut_off(served: tuple[App, str]) -> None:
    _, url = served
    with _connect(url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = _trickle(sock, b"X-Slow: still-coming\r\n")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert "connection: close" in _header_lines(answer)

    with _connect(url) as sock:  # a keep-alive connection's next request gets the same deadline
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = _trickle(sock, b"X-Slow: still-coming\r\n")
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]

    with _connect(url) as sock:  # a connection that never sends a byte
        assert _until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_request_headers_are_bounded_in_size(served: tuple[App, str]) -> None:
    _, url = served
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
    for size, status in ((15 * KIB, 200), (17 * KIB, 431)):  # sent whole: the application refuses it
        with _connect(url) as sock:
            sock.sendall(head + b"a" * size + b"\r\n\r\n")
            assert _status(_until_closed(sock)) == status, size
    with _connect(url) as sock:  # never finished: h11 stops buffering it past 16 KiB
        sock.sendall(head + b"a" * (17 * KIB))
        answer = _until_closed(sock)
    assert _status(answer) == 400, answer[:200]


def _unsubscribe_token(app: App, secret: str) -> str:
    with app.sessions() as db:
        row_id = recipient_by_external_id(db, "u-1").id
    assert row_id is not None
    return sign(secret.encode(), UnsubscribeTarget(row_id, "reminder", "email"))


UNFRAMED = {
    "x-frame-options: deny",
    "content-security-policy: frame-ancestors 'none'",
    "referrer-policy: no-referrer",
}


def test_every_unsubscribe_answer_forbids_framing(served: tuple[App, str], tokens: dict[str, str]) -> None:
    app, url = served
    token = _unsubscribe_token(app, SECRET)
    form = b"List-Unsubscribe=One-Click"
    for request in (
        f"GET /u/{token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(),
        b"GET /u/AAAA.BBBB HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",  # 404
        f"POST /u/{token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(form)}\r\n\r\n".encode() + form,
    ):
        with _connect(url) as sock:
            sock.sendall(request)
            answer = _until_closed(sock)
        assert set(_header_lines(answer)) >= UNFRAMED, answer[:600]


def test_unsubscribe_links_signed_before_a_rotation_keep_working(settings: Settings) -> None:
    def app_with(secret: str, previous: list[str]) -> App:
        keys = {"signing_secret": SecretStr(secret), "previous_signing_secrets": [*map(SecretStr, previous)]}
        return App(settings.model_copy(update=keys), clock=lambda: NOW)

    old = app_with(SECRET, [])
    add_recipient(old)
    link = _unsubscribe_token(old, SECRET)
    old.close()
    for previous, status in (([SECRET], 200), ([], 404)):
        rotated = app_with("the-next-signing-secret-32-bytes", previous)
        with serving(rotated) as url:
            assert httpx.get(f"{url}/u/{link}", timeout=10).status_code == status, previous
        rotated.close()
