"""Loopback servers the adapter tests talk to: real SMTP (aiosmtpd), a fake Twilio, raw TCP.

Everything binds 127.0.0.1 on a free port and is started once per session. Recipients choose
the server's behaviour (``tempfail@…`` gets a 451, ``+15005550429`` gets a 429, …) so one
server serves every test.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import itertools
import json
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters import Message

LOOPBACK = "127.0.0.1"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "test-auth-token"
SMTP_USER = "planner"
SMTP_PASSWORD = "s3cret"

# SMTP replies chosen by the recipient's local part.
RCPT_REPLIES = {
    "tempfail": "451 4.3.0 Try again later",
    "nouser": "550 5.1.1 No such user here",
    "bare550": "550 Mailbox unavailable",
    "badsyntax": "553 Requested action not taken: mailbox name not allowed",
    "relaydenied": "554 5.7.1 Relay access denied",
}
DATA_REPLIES = {
    "datatempfail": "452 4.3.1 Insufficient system storage",
    "datanouser": "550 5.1.1 Recipient address rejected after DATA",
    "spam": "554 5.7.1 Message rejected as spam",
}

# Twilio behaviour chosen by the destination number.
TWILIO_RATE_LIMITED = "+15005550429"
TWILIO_SERVER_ERROR = "+15005550500"
TWILIO_INVALID_TO = "+15005550001"
TWILIO_BODY_ERROR = "+15005550400"
TWILIO_SLOW = "+15005550777"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    return free_port()


# ---------------------------------------------------------------------------------------------
# Messages


#: Delivery ids unique for the whole session, so session-wide servers never confuse two tests'
#: messages (an id() of a collected object can come back in a later test).
_DELIVERY_IDS = itertools.count(1)


@pytest.fixture
def make_message() -> Callable[..., Message]:
    def make(channel: str = "email", **overrides: Any) -> Message:
        delivery_id = overrides.pop("delivery_id", next(_DELIVERY_IDS))
        fields: dict[str, Any] = {
            "delivery_id": delivery_id,
            "dedup_key": f"dk-{delivery_id}",
            "recipient_id": f"r-{delivery_id}",
            "kind": "reminder",
            "channel": channel,
            "to": f"user{delivery_id}@example.com"
            if channel == "email"
            else f"+1555{delivery_id % 10**7:07d}",
            "subject": "Your reminder" if channel == "email" else None,
            "text": f"Hello {delivery_id},\nthis is your reminder.",
            "html": f"<p>Hello {delivery_id}</p>" if channel == "email" else None,
            "scheduled_at": datetime(2026, 3, 1, 13, 5, tzinfo=UTC),
            "message_id": f"<delivery-{delivery_id}.dk@planner.local>",
        }
        fields.update(overrides)
        return Message(**fields)

    return make


# ---------------------------------------------------------------------------------------------
# SMTP


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    #: The client's (host, port): one per connection, so equal peers mean a reused session.
    peer: tuple[str, int] = ("", 0)


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records accepted mail, refuses recipients whose local part asks for it."""

    received: list[ReceivedMail] = field(default_factory=list)
    #: ("RSET" | "QUIT", peer) in the order the server saw them.
    commands: list[tuple[str, tuple[str, int]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.commands.append(("RSET", session.peer))
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.commands.append(("QUIT", session.peer))
        return "221 Bye"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = RCPT_REPLIES.get(address.partition("@")[0])
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            reply = DATA_REPLIES.get(rcpt.partition("@")[0])
            if reply is not None:
                return reply
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed, session.peer)
            )
        if any(rcpt.startswith("hangup@") for rcpt in envelope.rcpt_tos):
            # Accept, then drop the connection, as a server's idle timeout or restart would.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"

    def by_message_id(self, message_id: str) -> list[ReceivedMail]:
        with self.lock:
            return [mail for mail in self.received if mail.message["Message-ID"] == message_id]


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: SmtpRecorder
    username: str = SMTP_USER
    password: str = SMTP_PASSWORD


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


@contextmanager
def running_smtp(**smtp_parameters: Any) -> Iterator[SmtpServer]:
    recorder = SmtpRecorder()
    port = free_port()
    controller = Controller(
        recorder, hostname=LOOPBACK, port=port, server_hostname="localhost", **smtp_parameters
    )
    controller.start()
    try:
        yield SmtpServer(LOOPBACK, port, recorder)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@dataclass
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a throwaway certificate")
    directory = tmp_path_factory.mktemp("tls")
    files = TlsFiles(cert=directory / "cert.pem", key=directory / "key.pem")
    # An EC key is generated in milliseconds, unlike RSA.
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(files.key),
            "-out",
            str(files.cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            f"subjectAltName=IP:{LOOPBACK},DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return files


@pytest.fixture(scope="session")
def smtp_starttls_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    """Demands STARTTLS, then AUTH (``SMTP_USER``/``SMTP_PASSWORD``) before accepting mail."""
    with running_smtp(
        tls_context=tls_files.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticate,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_ssl_server(tls_files: TlsFiles) -> Iterator[SmtpServer]:
    with running_smtp(ssl_context=tls_files.server_context()) as server:
        yield server


# ---------------------------------------------------------------------------------------------
# Raw TCP: servers that misbehave below the SMTP level


class _RawHandler(socketserver.BaseRequestHandler):
    server: RawTcpServer

    def handle(self) -> None:
        try:
            if self.server.mode == "banner_then_close":
                self.request.sendall(b"220 localhost ESMTP\r\n")
                self.request.recv(1024)
            elif self.server.mode == "silent":
                self.request.recv(1024)  # returns when the client gives up and disconnects
        except OSError:
            pass
        # "close" (and every mode, eventually): returning closes the connection.


class RawTcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        super().__init__((LOOPBACK, 0), _RawHandler)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port


@pytest.fixture(scope="session")
def raw_tcp() -> Iterator[Callable[[str], RawTcpServer]]:
    """``raw_tcp(mode)``: 'close' hangs up at once, 'banner_then_close' after the greeting,
    'silent' never answers."""
    started: dict[str, RawTcpServer] = {}

    def get(mode: str) -> RawTcpServer:
        if mode not in started:
            server = RawTcpServer(mode)
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
            started[mode] = server
        return started[mode]

    yield get
    for server in started.values():
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# Twilio


@dataclass
class TwilioRequest:
    path: str
    auth: tuple[str, str] | None
    form: dict[str, str]


class _TwilioHandler(BaseHTTPRequestHandler):
    server: FakeTwilio

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        auth = _basic_auth(self.headers.get("Authorization"))
        with self.server.lock:
            self.server.requests.append(TwilioRequest(self.path, auth, form))
        if self.path != f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json":
            self._reply(404, {"code": 20404, "message": "The requested resource was not found"})
            return
        if auth != (ACCOUNT_SID, AUTH_TOKEN):
            self._reply(401, {"code": 20003, "message": "Authenticate"})
            return
        to = form.get("To", "")
        if to == TWILIO_SLOW:
            self.server.release.wait(5)
        if to == TWILIO_RATE_LIMITED:
            self._reply(429, {"code": 20429, "message": "Too Many Requests"}, retry_after="7")
        elif to == TWILIO_SERVER_ERROR:
            self._reply(500, {"code": 20500, "message": "Internal Server Error"})
        elif to == TWILIO_INVALID_TO:
            self._reply(400, {"code": 21211, "message": "The 'To' number is not a valid phone number."})
        elif to == TWILIO_BODY_ERROR:
            self._reply(400, {"code": 21602, "message": "Message body is required."})
        else:
            sid = f"SM{next(self.server.sids):032x}"
            self._reply(201, {"sid": sid, "status": "queued", "to": to, "body": form.get("Body")})

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
            pass  # the client timed out and left (timeout tests)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if header is None or not header.startswith("Basic "):
        return None
    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    return user, password


class FakeTwilio(ThreadingHTTPServer):
    daemon_threads = True
    account_sid = ACCOUNT_SID
    auth_token = AUTH_TOKEN
    RATE_LIMITED = TWILIO_RATE_LIMITED
    SERVER_ERROR = TWILIO_SERVER_ERROR
    INVALID_TO = TWILIO_INVALID_TO
    BODY_ERROR = TWILIO_BODY_ERROR
    SLOW = TWILIO_SLOW

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _TwilioHandler)
        self.requests: list[TwilioRequest] = []
        self.lock = threading.Lock()
        self.sids = itertools.count(1)
        self.release = threading.Event()  # lets a TWILIO_SLOW request finish early

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    def requests_to(self, number: str) -> list[TwilioRequest]:
        with self.lock:
            return [request for request in self.requests if request.form.get("To") == number]


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
