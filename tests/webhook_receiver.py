"""A webhook receiver on loopback that checks every request it gets, as a team's own service would.

Each request is verified twice from the raw bytes it arrived as: with the Standard Webhooks
reference library (``Webhook(secret).verify``), and by recomputing the signature by hand as the
specification defines it (base64 of HMAC-SHA256, keyed with the secret's decoded bytes, over
``{webhook-id}.{webhook-timestamp}.{body}``; one of the space-separated ``v1,`` values must match).
A request that fails either check is answered 400 and kept in :attr:`Receiver.rejected`; tests
assert that list stays empty.

The test controls the answer: a status code, a redirect, a body of a chosen size, a hold (the
handler waits on an event before answering), or no server at all (:meth:`Receiver.down`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.servers import free_port


@dataclass(frozen=True)
class Received:
    webhook_id: str
    timestamp: str
    signatures: tuple[str, ...]
    body: bytes
    headers: dict[str, str]

    @property
    def payload(self) -> dict[str, Any]:
        parsed = json.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed


def hand_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The specification's signature, computed without the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@dataclass
class Receiver:
    """The server's state, shared with its handler threads."""

    secrets: list[str] = field(default_factory=list)
    status: int = 204
    answer: bytes = b""
    location: str | None = None
    #: When set, each request waits on it (after reading the body) before answering.
    hold: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    #: Requests received whole and verified, but whose answer is held (see :attr:`hold`).
    held: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = field(default_factory=free_port)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def verify(self, body: bytes, headers: dict[str, str]) -> Received:
        """Both checks of one request; raises AssertionError naming what failed."""
        webhook_id, timestamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        signatures = tuple(headers.get("webhook-signature", "").split(" "))
        assert headers.get("content-type") == "application/json", headers
        by_library = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                by_library.append(secret)
            except WebhookVerificationError:
                pass
        by_hand = [s for s in self.secrets if hand_signature(s, webhook_id, timestamp, body) in signatures]
        assert by_library, f"standardwebhooks refused {webhook_id}"
        assert by_hand == by_library, (by_hand, by_library)
        return Received(webhook_id, timestamp, signatures, body, headers)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    got = receiver.verify(body, headers)
                except (AssertionError, ValueError) as exc:
                    with receiver.lock:
                        receiver.rejected.append(f"{headers.get('webhook-id')}: {exc}")
                    self._answer(400, b"bad signature")
                    return
                if receiver.hold is not None:
                    with receiver.lock:
                        receiver.held.append(got)
                    receiver.hold.wait(60)
                with receiver.lock:
                    receiver.received.append(got)
                self._answer(receiver.status, receiver.answer)

            def _answer(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the sender is gone (killed, or it stopped reading)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def down(self) -> None:
        """Stop listening: requests are refused at connect, as with a receiver that is down."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def up(self) -> None:
        self.start()

    def ids(self) -> Counter[str]:
        with self.lock:
            return Counter(r.webhook_id for r in self.received)

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r.payload for r in self.received]
