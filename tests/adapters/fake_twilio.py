"""A loopback server speaking the shape of Twilio's Messages API: create (POST) and list (GET).

The destination number chooses the behaviour (``+15005550429`` gets a 429, …). Every request is
recorded as received; a message the server accepts is kept, with Twilio's fields, and the list
answers from those, newest first, filtered and paged as Twilio documents (``To``, ``From``,
``DateSent>`` with a day, ``PageSize``, ``next_page_uri``).
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

LOOPBACK = "127.0.0.1"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"

TWILIO_RATE_LIMITED = "+15005550429"
TWILIO_SERVER_ERROR = "+15005550500"
TWILIO_INVALID_TO = "+15005550001"
TWILIO_BODY_ERROR = "+15005550400"
#: Accepts once the test sets ``release`` (or after 5 s), then answers.
TWILIO_SLOW = "+15005550777"
#: Reads the whole request, accepts the message, and hangs up without an answer.
TWILIO_HANGUP = "+15005550778"
#: Accepts, then sends the response's header lines (or its body) one per TRICKLE_INTERVAL.
TWILIO_TRICKLE_HEADERS = "+15005550779"
TWILIO_TRICKLE_BODY = "+15005550780"
TRICKLE_INTERVAL = 0.5
TRICKLE_SECONDS = 6.0


@dataclass
class TwilioRequest:
    path: str
    auth: tuple[str, str] | None
    form: dict[str, str]
    method: str = "POST"


def _twilio_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC))  # "Mon, 02 Mar 2026 13:05:09 +0000"


class _TwilioHandler(BaseHTTPRequestHandler):
    server: FakeTwilio

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        if not self._admitted(TwilioRequest(self.path, self._auth(), form)):
            return
        to = form.get("To", "")
        if to == TWILIO_SLOW:
            self.server.release.wait(5)
        refusal = _REFUSALS.get(to)
        if refusal is not None:
            self._reply(*refusal)
            return
        accepted = self.server.accept(form)
        if to == TWILIO_HANGUP:
            self.close_connection = True  # the request was read whole; no answer, the socket closes
        elif to in (TWILIO_TRICKLE_HEADERS, TWILIO_TRICKLE_BODY):
            self._trickle(accepted, headers=to == TWILIO_TRICKLE_HEADERS)
        else:
            self._reply(201, accepted)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if not self._admitted(TwilioRequest(url.path, self._auth(), query, "GET")):
            return
        self._reply(200, self.server.listing(query))

    def _auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization")
        if header is None or not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    def _admitted(self, request: TwilioRequest) -> bool:
        with self.server.lock:
            self.server.requests.append(request)
        if urlsplit(request.path).path != MESSAGES_PATH:
            self._reply(404, {"code": 20404, "message": "The requested resource was not found"})
            return False
        if request.auth != (ACCOUNT_SID, AUTH_TOKEN):
            self._reply(401, {"code": 20003, "message": "Authenticate"})
            return False
        return True

    def _reply(self, status: int, body: dict[str, Any], retry_after: str | None = None) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client timed out and left (timeout tests)

    def _trickle(self, body: dict[str, Any], *, headers: bool) -> None:
        """A whole, valid 201 response, a line (or a chunk of body) per TRICKLE_INTERVAL."""
        data = json.dumps(body).encode()
        pieces = int(TRICKLE_SECONDS / TRICKLE_INTERVAL)
        head = [b"HTTP/1.1 201 Created\r\n", b"Content-Type: application/json\r\n"]
        if headers:
            head += [f"X-Trickle-{n}: still thinking\r\n".encode() for n in range(pieces)]
            chunks = [data]
        else:
            size = max(1, len(data) // pieces)
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
        head.append(f"Content-Length: {len(data)}\r\n\r\n".encode())
        self.close_connection = True
        try:
            for piece in [*head, *chunks] if headers else [b"".join(head), *chunks]:
                self.wfile.write(piece)
                self.wfile.flush()
                time.sleep(TRICKLE_INTERVAL)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up at its deadline

    def log_message(self, format: str, *args: Any) -> None:
        pass


_REFUSALS: dict[str, tuple[int, dict[str, Any], str | None]] = {
    TWILIO_RATE_LIMITED: (429, {"code": 20429, "message": "Too Many Requests"}, "7"),
    TWILIO_SERVER_ERROR: (500, {"code": 20500, "message": "Internal Server Error"}, None),
    TWILIO_INVALID_TO: (
        400,
        {"code": 21211, "message": "The 'To' number is not a valid phone number."},
        None,
    ),
    TWILIO_BODY_ERROR: (400, {"code": 21602, "message": "Message body is required."}, None),
}


class FakeTwilio(ThreadingHTTPServer):
    daemon_threads = True
    account_sid = ACCOUNT_SID
    auth_token = AUTH_TOKEN
    RATE_LIMITED = TWILIO_RATE_LIMITED
    SERVER_ERROR = TWILIO_SERVER_ERROR
    INVALID_TO = TWILIO_INVALID_TO
    BODY_ERROR = TWILIO_BODY_ERROR
    SLOW = TWILIO_SLOW
    HANGUP = TWILIO_HANGUP
    TRICKLE_HEADERS = TWILIO_TRICKLE_HEADERS
    TRICKLE_BODY = TWILIO_TRICKLE_BODY

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _TwilioHandler)
        self.requests: list[TwilioRequest] = []
        #: Messages the server accepted, as Twilio's Message resource (oldest first).
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.accepted_changed = threading.Condition(self.lock)
        self.sids = itertools.count(1)
        self.release = threading.Event()  # lets a TWILIO_SLOW request finish early

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def requests_to(self, number: str, method: str = "POST") -> list[TwilioRequest]:
        with self.lock:
            return [r for r in self.requests if r.form.get("To") == number and r.method == method]

    def accept(self, form: dict[str, str]) -> dict[str, Any]:
        now = _twilio_date(datetime.now(UTC))
        message = {
            "sid": f"SM{next(self.sids):032x}",
            "account_sid": ACCOUNT_SID,
            "to": form.get("To"),
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form.get("Body"),
            "status": "queued",
            "direction": "outbound-api",
            "date_created": now,
            "date_sent": now,  # sent at once: the day filter works on this date
        }
        with self.accepted_changed:
            self.accepted.append(message)
            self.accepted_changed.notify_all()
        return message

    def wait_accepted(self, body: str, timeout: float = 10.0) -> dict[str, Any]:
        """The accepted message with this body, once the server has accepted it."""
        with self.accepted_changed:
            found = self.accepted_changed.wait_for(
                lambda: [m for m in self.accepted if m["body"] == body], timeout
            )
        assert found, f"the server accepted no message with body {body!r} within {timeout} s"
        return found[0]

    def listing(self, query: dict[str, str]) -> dict[str, Any]:
        """One page of the accepted messages matching Twilio's list filters, newest first."""
        after = query.get("DateSent>")
        filters = [(field, query[key]) for key, field in (("To", "to"), ("From", "from")) if key in query]
        with self.lock:
            matching = [
                m
                for m in reversed(self.accepted)
                if all(m[field] == value for field, value in filters)
                and (after is None or _day(m["date_sent"]) >= date.fromisoformat(after))
            ]
        size, page = int(query.get("PageSize", "50")), int(query.get("Page", "0"))
        more = len(matching) > (page + 1) * size
        following = urlencode({**query, "Page": str(page + 1), "PageToken": f"PA{page + 1}"})
        return {
            "messages": matching[page * size : (page + 1) * size],
            "page": page,
            "page_size": size,
            "next_page_uri": f"{MESSAGES_PATH}?{following}" if more else None,
        }


def _day(twilio_date: str) -> date:
    return parsedate_to_datetime(twilio_date).astimezone(UTC).date()


@pytest.fixture(scope="session")
def twilio_server() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)
