"""SmtpAdapter against a real aiosmtpd server: content, reply classification, TLS, broken servers."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from adapters import AdapterConfigError, Message, PermanentError, TransientError, batch_session
from adapters.smtp import SmtpAdapter
from tests.adapters.conftest import running_smtp

if TYPE_CHECKING:
    from tests.adapters.conftest import RawTcpServer, SmtpServer, TlsFiles

FROM = "Planner <noreply@planner.local>"


def smtp(server: SmtpServer | None = None, **kwargs: Any) -> SmtpAdapter:
    defaults: dict[str, Any] = {"from_address": FROM, "security": "none", "timeout": 5.0}
    if server is not None:
        defaults.update(host=server.host, port=server.port)
    return SmtpAdapter(**{**defaults, **kwargs})


def test_email_carries_headers_text_and_html(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    message = make_message("email", subject="Your reminder\n", html="<p>Hi</p>")
    adapter = smtp(smtp_server, clock=lambda: datetime(2026, 3, 1, 13, 5, 7, tzinfo=UTC))
    result = adapter.send(message)

    assert result.provider_message_id == message.message_id
    [mail] = smtp_server.recorder.by_message_id(message.message_id)
    assert mail.mail_from == "noreply@planner.local"
    assert mail.rcpt_tos == [message.to]
    email = mail.message
    assert email["From"] == FROM
    assert email["To"] == message.to
    assert email["Subject"] == "Your reminder"
    assert email["Date"] == "Sun, 01 Mar 2026 13:05:07 +0000"
    assert email["Auto-Submitted"] == "auto-generated"
    text = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert text is not None and text.get_content().splitlines() == message.text.splitlines()
    assert html is not None and html.get_content().strip() == "<p>Hi</p>"


def test_text_only_email_has_a_single_part(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    message = make_message("email", html=None, subject=None)
    smtp(smtp_server).send(message)
    [mail] = smtp_server.recorder.by_message_id(message.message_id)
    assert not mail.message.is_multipart()
    assert mail.message["Subject"] is None


@pytest.mark.parametrize(
    ("local_part", "code"),
    [("tempfail", "451"), ("datatempfail", "452")],
)
def test_4xx_replies_are_transient(
    smtp_server: SmtpServer, make_message: Callable[..., Message], local_part: str, code: str
) -> None:
    with pytest.raises(TransientError) as excinfo:
        smtp(smtp_server).send(make_message("email", to=f"{local_part}@example.com"))
    assert excinfo.value.code == code
    assert code in excinfo.value.reason


@pytest.mark.parametrize(
    ("local_part", "code", "invalid_address"),
    [
        ("nouser", "550", True),  # 5.1.1 bad mailbox
        ("bare550", "550", True),  # no enhanced code, refused at RCPT
        ("badsyntax", "553", True),
        ("relaydenied", "554", False),  # 5.7.1 is our policy problem, not the address
        ("datanouser", "550", True),  # 5.1.1 deferred to DATA
        ("spam", "554", False),
    ],
)
def test_5xx_replies_are_permanent(
    smtp_server: SmtpServer,
    make_message: Callable[..., Message],
    local_part: str,
    code: str,
    invalid_address: bool,
) -> None:
    with pytest.raises(PermanentError) as excinfo:
        smtp(smtp_server).send(make_message("email", to=f"{local_part}@example.com"))
    assert excinfo.value.invalid_address is invalid_address
    assert excinfo.value.code == code


@pytest.mark.parametrize("to", ["not-an-address", "a@b.example\r\nBcc: victim@example.com", ""])
def test_malformed_address_is_invalid_without_connecting(
    make_message: Callable[..., Message], to: str
) -> None:
    adapter = smtp(host="127.0.0.1", port=1)  # nothing listens there: must not be reached
    with pytest.raises(PermanentError) as excinfo:
        adapter.send(make_message("email", to=to))
    assert excinfo.value.invalid_address


@pytest.mark.parametrize("mode", ["close", "banner_then_close"])
def test_dropped_connection_is_transient(
    raw_tcp: Callable[[str], RawTcpServer], make_message: Callable[..., Message], mode: str
) -> None:
    with pytest.raises(TransientError):
        smtp(host="127.0.0.1", port=raw_tcp(mode).port).send(make_message("email"))


def test_silent_server_times_out_as_transient(
    raw_tcp: Callable[[str], RawTcpServer], make_message: Callable[..., Message]
) -> None:
    with pytest.raises(TransientError, match="timed out"):
        smtp(host="127.0.0.1", port=raw_tcp("silent").port, timeout=0.2).send(make_message("email"))


def test_connection_refused_is_transient(make_message: Callable[..., Message], closed_port: int) -> None:

    with pytest.raises(TransientError, match="ConnectionRefused"):
        smtp(host="127.0.0.1", port=closed_port).send(make_message("email"))


def tls_login(server: SmtpServer, tls_files: TlsFiles) -> SmtpAdapter:
    """An adapter doing STARTTLS (trusting the throwaway certificate) and AUTH with good credentials."""
    return smtp(
        server,
        security="starttls",
        username=server.username,
        password=server.password,
        ssl_context=tls_files.client_context(),
    )


def test_starttls_with_login(
    smtp_starttls_server: SmtpServer, tls_files: TlsFiles, make_message: Callable[..., Message]
) -> None:
    server = smtp_starttls_server
    adapter = tls_login(server, tls_files)
    message = make_message("email")
    assert adapter.send(message).provider_message_id == message.message_id
    assert len(server.recorder.by_message_id(message.message_id)) == 1


def test_rejected_credentials_are_a_configuration_error(
    smtp_starttls_server: SmtpServer, tls_files: TlsFiles, make_message: Callable[..., Message]
) -> None:
    adapter = smtp(
        smtp_starttls_server,
        security="starttls",
        username="planner",
        password="wrong",
        ssl_context=tls_files.client_context(),
    )
    with pytest.raises(AdapterConfigError, match="535") as excinfo:
        adapter.send(make_message("email"))
    assert excinfo.value.option == "username"
    assert "wrong" not in str(excinfo.value)


def test_server_without_starttls_is_a_configuration_error(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    # Never fall back to plaintext when TLS was asked for.
    with pytest.raises(AdapterConfigError) as excinfo:
        smtp(smtp_server, security="starttls").send(make_message("email"))
    assert excinfo.value.option == "security"


def test_server_demanding_starttls_of_a_plaintext_client_is_a_configuration_error(
    smtp_starttls_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    with pytest.raises(AdapterConfigError, match="530") as excinfo:
        smtp(smtp_starttls_server, security="none").send(make_message("email"))
    assert excinfo.value.option == "security"


def test_untrusted_certificate_is_not_accepted(
    smtp_starttls_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        smtp(smtp_starttls_server, security="starttls", ssl_context=ssl.create_default_context()).send(
            make_message("email")
        )


def test_implicit_tls(
    smtp_ssl_server: SmtpServer, tls_files: TlsFiles, make_message: Callable[..., Message]
) -> None:
    message = make_message("email")
    smtp(smtp_ssl_server, security="ssl", ssl_context=tls_files.client_context()).send(message)
    assert len(smtp_ssl_server.recorder.by_message_id(message.message_id)) == 1


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_default_port_follows_security(security: str, port: int) -> None:
    assert SmtpAdapter.from_settings({"from_address": FROM, "security": security}).port == port


def test_from_settings_reads_every_option() -> None:
    adapter = SmtpAdapter.from_settings(
        {
            "host": "mail.example.com",
            "port": "2525",
            "security": "SSL",
            "username": "u",
            "password": "hunter2-secret",
            "from_address": FROM,
            "timeout": "2.5",
            "local_hostname": "worker-1.example.com",
        }
    )
    assert (adapter.host, adapter.port, adapter.security, adapter.timeout) == (
        "mail.example.com",
        2525,
        "ssl",
        2.5,
    )
    assert adapter.username == "u"
    assert "hunter2" not in repr(adapter)


# ---------------------------------------------------------------------------------------------
# A worker's batch: one session (RSET between messages, QUIT at the end)


def _peers(server: SmtpServer, messages: list[Message]) -> list[tuple[str, int]]:
    return [server.recorder.by_message_id(m.message_id)[0].peer for m in messages]


def _commands(server: SmtpServer, peers: set[tuple[str, int]]) -> list[str]:
    with server.recorder.lock:
        return [command for command, peer in server.recorder.commands if peer in peers]


def test_a_batch_sends_every_message_over_one_tls_session(
    smtp_starttls_server: SmtpServer, tls_files: TlsFiles, make_message: Callable[..., Message]
) -> None:
    server = smtp_starttls_server
    adapter = tls_login(server, tls_files)
    messages = [make_message("email") for _ in range(3)]
    with batch_session(adapter):
        for message in messages:
            adapter.send(message)
    peers = _peers(server, messages)
    assert len(set(peers)) == 1  # one connection, one STARTTLS, one AUTH
    assert _commands(server, set(peers)) == ["RSET", "RSET", "QUIT"]


def test_outside_a_batch_each_message_has_its_own_connection(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    adapter = smtp(smtp_server)
    messages = [make_message("email") for _ in range(2)]
    for message in messages:
        adapter.send(message)
    peers = _peers(smtp_server, messages)
    assert len(set(peers)) == 2
    assert _commands(smtp_server, set(peers)) == ["QUIT", "QUIT"]


def test_a_refused_recipient_leaves_the_batch_session_usable(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    adapter = smtp(smtp_server)
    first, refused, last = (
        make_message("email"),
        make_message("email", to="nouser@example.com"),
        make_message("email"),
    )
    with batch_session(adapter):
        adapter.send(first)
        with pytest.raises(PermanentError) as excinfo:
            adapter.send(refused)
        adapter.send(last)
    assert excinfo.value.invalid_address  # classified as without a session
    assert len(set(_peers(smtp_server, [first, last]))) == 1


def test_a_session_dropped_mid_batch_is_replaced_before_the_next_message(
    smtp_server: SmtpServer, make_message: Callable[..., Message]
) -> None:
    adapter = smtp(smtp_server)
    dropped_after = make_message("email", to="hangup@example.com")
    messages = [dropped_after, make_message("email"), make_message("email")]
    with batch_session(adapter):
        for message in messages:
            adapter.send(message)  # the second finds the session gone at RSET and reconnects
    peers = _peers(smtp_server, messages)
    assert peers[0] != peers[1] == peers[2]
    assert all(len(smtp_server.recorder.by_message_id(m.message_id)) == 1 for m in messages)
    assert _commands(smtp_server, set(peers)) == ["RSET", "QUIT"]


def test_a_server_gone_for_good_mid_batch_is_transient_per_message(
    make_message: Callable[..., Message],
) -> None:
    with running_smtp() as server:
        adapter = smtp(server)
        with batch_session(adapter):
            adapter.send(make_message("email"))
            server_port = server.port
    # The same adapter, a new batch, and nothing listening any more: a transient error, no hang.
    adapter = smtp(host="127.0.0.1", port=server_port)
    with batch_session(adapter), pytest.raises(TransientError):
        adapter.send(make_message("email"))
