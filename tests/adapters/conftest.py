"""Loopback servers the adapter tests talk to: real SMTP (aiosmtpd), a fake Twilio (fake_twilio.py), raw TCP.

Everything binds 127.0.0.1 on a free port and is started once per session. Recipients choose
the server's behaviour (``tempfail@…`` gets a 451, ``+15005550429`` gets a 429, …) so one
server serves every test; for SMTP, so does the client's EHLO name (``trickle.example``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
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
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters import Message
from tests.adapters.fake_twilio import FakeTwilio, TwilioRequest, twilio_server

__all__ = ["FakeTwilio", "TwilioRequest", "twilio_server"]  # the Messages API's fake, and its fixture

LOOPBACK = "127.0.0.1"
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
#: ``slowaccept@``: the server accepts the message this long after its final ".".
SLOW_ACCEPT_SECONDS = 2.5
#: ``trickle@`` (after the final "."), and an EHLO naming ``TRICKLE_EHLO``: "250-" continuation
#: lines this often, for ``TRICKLE_SECONDS``, before the reply's last line.
TRICKLE_EHLO = "trickle.example"
TRICKLE_INTERVAL = 0.5
TRICKLE_SECONDS = 6.0


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
    #: The message exactly as it came over the wire (dot-stuffing undone), headers included.
    raw: bytes = b""


@dataclass
class SmtpRecorder:
    """aiosmtpd handler: records accepted mail, refuses recipients whose local part asks for it."""

    received: list[ReceivedMail] = field(default_factory=list)
    #: Every message content the server was sent (its final "." seen), accepted or not.
    data_received: list[bytes] = field(default_factory=list)
    #: ("RSET" | "QUIT", peer) in the order the server saw them.
    commands: list[tuple[str, tuple[str, int]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # the hook's duty, as aiosmtpd documents
        if hostname == TRICKLE_EHLO:
            await _trickle(server, "250-still thinking about your EHLO")
        return responses

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
        raw: bytes = envelope.original_content
        with self.lock:
            self.data_received.append(raw)
        local_parts = {rcpt.partition("@")[0] for rcpt in envelope.rcpt_tos}
        for local_part in local_parts:
            reply = DATA_REPLIES.get(local_part)
            if reply is not None:
                return reply
        mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), _parsed(raw), session.peer, raw)
        if "slowaccept" in local_parts:
            # Shielded: aiosmtpd cancels a session's handler when the client leaves, but a real
            # server that has the message goes on to accept it.
            await asyncio.shield(self._accept_later(mail, SLOW_ACCEPT_SECONDS))
        elif "trickle" in local_parts:
            await _trickle(server, "250-still storing your message")
            await asyncio.shield(self._accept_later(mail, 0))
        else:
            await self._accept_later(mail, 0)
        if any(rcpt.startswith("hangup@") for rcpt in envelope.rcpt_tos):
            # Accept, then drop the connection, as a server's idle timeout or restart would.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"

    async def _accept_later(self, mail: ReceivedMail, seconds: float) -> None:
        await asyncio.sleep(seconds)
        with self.lock:
            self.received.append(mail)

    def by_message_id(self, message_id: str) -> list[ReceivedMail]:
        with self.lock:
            return [mail for mail in self.received if mail.message["Message-ID"] == message_id]

    def contents_received(self, message_id: str) -> int:
        """How many times the server was sent the content of that message (accepted or not)."""
        line = f"\r\nMessage-ID: {message_id}\r\n".encode()
        with self.lock:
            return sum(line in b"\r\n" + raw for raw in self.data_received)


def _parsed(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def _trickle(server: Any, line: str) -> None:
    """Continuation lines of a reply, slowly, while the client is still there to read them."""
    for _ in range(int(TRICKLE_SECONDS / TRICKLE_INTERVAL)):
        if server.transport is None or server.transport.is_closing():
            return
        await server.push(line)
        await asyncio.sleep(TRICKLE_INTERVAL)


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
            elif self.server.mode == "listen_only":
                while self.request.recv(4096):  # reads a request whole, answers never
                    pass
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
    'silent' never answers (an SMTP client waits for a greeting), 'listen_only' reads everything and
    never answers (an HTTP client sends its request first)."""
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
