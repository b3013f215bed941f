"""Provider servers for the fault suite: real SMTP (aiosmtpd), a Messages API on loopback, raw TCP.

Each counts what reached it (the sends that matter are counted here, at the server, never in the
worker), picks its reply from the recipient's address, and can run a hook when it receives a
message: the hook may kill the worker that sent it *before the reply leaves*, which is exactly
"the provider accepted the message, the worker never wrote the outcome" without any timing race.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import json
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from tests.servers import free_port

LOOPBACK = "127.0.0.1"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fault-suite-token"
SMTP_USER = "planner"
SMTP_PASSWORD = "correct-horse-battery"

#: SMTP replies chosen by the recipient's local part, at RCPT and at DATA.
RCPT_REPLIES = {
    "tempfail": "451 4.3.0 Try again later",
    "full": "452 4.2.2 Mailbox full",
    # As real servers word it, with the address refused ({address}).
    "nouser": "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
}
DATA_REPLIES = {
    "toobig": "552 5.3.4 Message too big for system",
    "spam": "554 5.7.1 Message rejected as spam",
}
#: The local part whose message the server reads in full, then hangs up without a reply.
DROP_DURING_DATA = "drop"

#: Messages API behaviour chosen by the destination number.
SMS_REPLIES: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = {
    "+15005550429": (429, {"code": 20429, "message": "Too Many Requests"}, {"Retry-After": "120"}),
    "+15005550500": (500, {"code": 20500, "message": "Internal Server Error"}, {}),
    "+15005550503": (503, {"code": 20503, "message": "Service Unavailable"}, {}),
    # Twilio's wording, with the number ({to}).
    "+15005551211": (400, {"code": 21211, "message": "The 'To' number {to} is not a valid number."}, {}),
    "+15005551610": (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"}, {}),
}
#: The number whose request is answered only after the client has given up.
SMS_SLOW = "+15005550777"

Hook = Callable[[int], None]


@dataclass
class FaultSmtp:
    """aiosmtpd handler. ``received`` holds (recipient, Message-ID) of every message whose DATA
    arrived, acknowledged or not; ``on_data(n)`` runs on the n-th such message before the reply,
    ``on_mail(n)`` on the n-th MAIL FROM (before any message content was sent)."""

    received: list[tuple[str, str]] = field(default_factory=list)
    #: The parsed messages of ``received``, in the same order (for what a message says).
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    #: Every RCPT TO per address, refused or not: each is a send attempt the server saw.
    rcpts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_data: Hook | None = None
    on_mail: Hook | None = None
    mails: int = 0
    #: SMTP sessions opened (EHLO received).
    sessions: int = 0
    #: The reply to the n-th message received, when not the usual one (a late 554, say).
    replies_by_count: dict[int, str] = field(default_factory=dict)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            self.mails += 1
            n = self.mails
        if self.on_mail is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.on_mail, n)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self.lock:
            self.rcpts[address] += 1
        reply = RCPT_REPLIES.get(address.partition("@")[0])
        if reply is not None:
            return reply.format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        rcpt = envelope.rcpt_tos[0]
        reply = DATA_REPLIES.get(rcpt.partition("@")[0])
        if reply is not None:
            return reply
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            self.received.append((rcpt, str(message["Message-ID"])))
            self.messages.append(message)  # type: ignore[arg-type]
            n = len(self.received)
        if rcpt.partition("@")[0] == DROP_DURING_DATA:
            server.transport.close()
            return "421 4.4.2 Connection dropped"  # never reaches the client: the socket is closed
        if self.on_data is not None:
            # Blocking hooks (killing a process and reaping it) run off the server's event loop.
            await asyncio.get_running_loop().run_in_executor(None, self.on_data, n)
        return self.replies_by_count.get(n, "250 Message accepted for delivery")

    def count(self) -> Counter[str]:
        """Messages received per Message-ID."""
        with self.lock:
            return Counter(message_id for _, message_id in self.received)

    def to(self, address: str) -> int:
        with self.lock:
            return sum(1 for rcpt, _ in self.received if rcpt == address)


@contextmanager
def running_smtp(handler: FaultSmtp, **parameters: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname=LOOPBACK, port=port, **parameters)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


class _RawHandler(socketserver.BaseRequestHandler):
    server: RawSmtp

    def handle(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        try:
            if self.server.mode == "421":
                self.request.sendall(b"421 4.3.2 Service not available, closing channel\r\n")
            elif self.server.mode == "silent":
                self.request.recv(1024)  # returns when the client gives up and disconnects
        except OSError:
            pass


class RawSmtp(socketserver.ThreadingTCPServer):
    """Misbehaves below SMTP: ``421`` refuses at the greeting, ``silent`` never says anything."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.connections = 0
        self.lock = threading.Lock()
        super().__init__((LOOPBACK, 0), _RawHandler)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


@contextmanager
def running_raw(mode: str) -> Iterator[RawSmtp]:
    server = RawSmtp(mode)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


class _SmsHandler(BaseHTTPRequestHandler):
    server: FaultSms

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        to = form.get("To", "")
        with self.server.lock:
            self.server.requests.append(to)
        if to == SMS_SLOW:
            # Accepted, but answered only after the client's deadline (``slow_seconds``), or never.
            if self.server.slow_seconds is None:
                self.server.release.wait(10)
            else:
                time.sleep(self.server.slow_seconds)
        status, body, headers = SMS_REPLIES.get(to, (201, {}, {}))
        body = {key: value.format(to=to) if isinstance(value, str) else value for key, value in body.items()}
        if status == 201:
            body = self.server.accept(form)
            if self.server.on_accept is not None:
                self.server.on_accept(len(self.server.accepted))
        self._reply(status, body, headers)

    def do_GET(self) -> None:
        """Twilio's message list (``GET .../Messages.json?To=&From=&DateSent>=``): what was accepted."""
        query = {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}
        with self.server.lock:
            self.server.lookups += 1
            found = [
                m for m in reversed(self.server.messages)
                if m["to"] == query.get("To", m["to"]) and m["from"] == query.get("From", m["from"])
            ]  # fmt: skip
        self._reply(200, {"messages": found, "page": 0, "page_size": 50, "next_page_uri": None}, {})

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout) or was killed

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FaultSms(ThreadingHTTPServer):
    """The Messages API shape the ``twilio`` adapter speaks. ``requests`` counts every POST per
    number (each is a send attempt the provider saw); ``accepted`` the ones answered 201."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _SmsHandler)
        self.requests: list[str] = []
        self.accepted: list[str] = []
        self.lock = threading.Lock()
        self.sids = itertools.count(1)
        self.release = threading.Event()
        self.on_accept: Hook | None = None
        #: How long an SMS_SLOW request waits before its answer (None: until released).
        self.slow_seconds: float | None = None
        #: The accepted messages, as Twilio's Message resource; and the lookups asked.
        self.messages: list[dict[str, Any]] = []
        self.lookups = 0

    def accept(self, form: dict[str, str]) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        with self.lock:
            message = {
                "sid": f"SM{next(self.sids):032x}", "to": form.get("To"), "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"), "body": form.get("Body"),
                "status": "queued", "direction": "outbound-api", "date_created": now, "date_sent": now,
            }  # fmt: skip
            self.accepted.append(str(form.get("To")))
            self.messages.append(message)
        return message

    @property
    def sids_given(self) -> list[str]:
        with self.lock:
            return [str(m["sid"]) for m in self.messages]

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def to(self, number: str) -> int:
        with self.lock:
            return self.requests.count(number)


@contextmanager
def running_sms() -> Iterator[FaultSms]:
    server = FaultSms()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
