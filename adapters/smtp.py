"""Email through any SMTP server, with the stdlib client.

Inside a worker's batch (:func:`adapters.base.batch_session`) one session carries every message:
connect, STARTTLS and AUTH once, ``RSET`` before each further message, ``QUIT`` when the batch
ends. A session the server dropped (idle timeout, restart, ``421``) is noticed at ``RSET`` and
replaced before the message is sent, so it costs a reconnection, never a message. Outside a batch
each send has a connection of its own. Either way a message's errors are classified the same.

``timeout`` is the most one ``send`` may take (exposed as ``deadline``): the connection, TLS,
AUTH, ``RSET`` and every command and reply of the message together. Once the message's final
``.`` is sent, a timeout or a dropped connection is :class:`OutcomeUnknown`: the server may have
accepted it, and only a reply would say.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import ClassVar, Literal, Self, cast, get_args

from adapters._email_headers import WIRE_POLICY
from adapters._smtp_client import DeadlineSMTP
from adapters.base import Message, SendResult, check_channel
from adapters.deadline import Deadline
from adapters.errors import AdapterConfigError, AdapterError, OutcomeUnknown, PermanentError, TransientError
from adapters.options import OptionReader, check_timeout, config_error

Security = Literal["starttls", "ssl", "none"]
SECURITY_MODES: frozenset[str] = frozenset(get_args(Security))
DEFAULT_PORTS: Mapping[str, int] = {"starttls": 587, "ssl": 465, "none": 25}
#: Seconds one send may take. Submission servers answer the end of a small message within a few
#: seconds; content scanning at end-of-data is what takes longer.
DEFAULT_TIMEOUT = 20.0

# RFC 3463 enhanced status code at the start of the reply text, e.g. "5.1.1".
_ENHANCED_STATUS = re.compile(r"\s*[245]\.(\d{1,3})\.(\d{1,3})\b")
# Without an enhanced code, these RCPT replies mean "no such mailbox" / "bad address".
_BAD_MAILBOX_REPLIES = frozenset({550, 551, 553})

Stage = Literal["connect", "starttls", "login", "mail"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _email_address(value: str) -> str | None:
    """The bare address in ``value`` ("Name <a@b>" or "a@b"), or None if it cannot be one."""
    if "\r" in value or "\n" in value:
        return None
    _, address = parseaddr(value)
    local, at, domain = address.rpartition("@")
    if not (at and local and domain) or any(c.isspace() for c in address):
        return None
    return address


class SmtpAdapter:
    name: ClassVar[str] = "smtp"
    channels: ClassVar[frozenset[str]] = frozenset({"email"})
    options: ClassVar[frozenset[str]] = frozenset(
        {"host", "port", "security", "username", "password", "from_address", "timeout", "local_hostname"}
    )

    def __init__(
        self,
        *,
        from_address: str,
        host: str = "localhost",
        port: int | None = None,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if security not in SECURITY_MODES:
            raise config_error(self.name, "security", security, f"one of {', '.join(sorted(SECURITY_MODES))}")
        if not host or any(c.isspace() for c in host):
            raise config_error(self.name, "host", host, "a host name or IP address")
        if port is not None and not 0 < port < 65536:
            raise config_error(self.name, "port", port, "an integer from 1 to 65535")
        if (username is None) != (password is None):
            missing = "password" if password is None else "username"
            raise AdapterConfigError(
                f"smtp: username and password go together; {missing} is missing", option=missing
            )
        envelope_from = _email_address(from_address)
        if envelope_from is None:
            raise config_error(
                self.name, "from_address", from_address, "an address like 'Planner <noreply@example.com>'"
            )
        self.host = host
        self.port = port if port is not None else DEFAULT_PORTS[security]
        self.security: Security = security
        self.username = username
        self._password = password
        self.from_address = from_address
        self._envelope_from = envelope_from
        self.timeout = check_timeout(self.name, timeout)
        #: The most one ``send`` takes, in seconds (see :class:`adapters.base.Adapter`).
        self.deadline: float | None = self.timeout
        self._local_hostname = local_hostname
        self._ssl_context = ssl_context
        self._clock = clock
        self._client: DeadlineSMTP | None = None
        self._batching = False
        self._lock = threading.Lock()  # one session: one message on it at a time

    @classmethod
    def from_settings(cls, options: Mapping[str, str]) -> Self:
        read = OptionReader(cls.name, options, cls.options)
        return cls(
            from_address=read.require("from_address", "an address like 'Planner <noreply@example.com>'"),
            host=read.get("host", "localhost") or "localhost",
            port=read.get_int("port", low=1, high=65535),
            security=cast(Security, read.get_choice("security", SECURITY_MODES, "starttls")),
            username=read.get("username"),
            password=read.get("password"),
            timeout=read.get_float("timeout", DEFAULT_TIMEOUT),
            local_hostname=read.get("local_hostname"),
        )

    def __repr__(self) -> str:
        return f"SmtpAdapter(host={self.host!r}, port={self.port}, security={self.security!r})"

    def send(self, message: Message) -> SendResult:
        check_channel(self, message)
        recipient = _email_address(message.to)
        if recipient is None:
            raise PermanentError(f"{message.to!r} is not an email address", invalid_address=True)
        email = self._compose(message)
        with self._lock:
            stage: list[Stage] = ["connect"]
            try:
                client = self._session(stage, Deadline(self.timeout))
                stage[0] = "mail"
                client.send_message(email, from_addr=self._envelope_from, to_addrs=[recipient])
            except (smtplib.SMTPException, OSError) as exc:
                handed_over = self._client is not None and self._client.handed_over
                if not _session_survives(exc, stage[0]):
                    self._drop()
                raise self._classify(exc, stage[0], recipient, handed_over) from exc
            finally:
                if not self._batching:
                    self._quit()  # after the server accepted the message, a failed QUIT is nothing
        return SendResult(provider_message_id=message.message_id, detail=f"accepted by {self.host}")

    def start_batch(self) -> None:
        """Keep the session open between sends until :meth:`end_batch`."""
        self._batching = True

    def end_batch(self) -> None:
        """Close the batch's session; its ``QUIT`` has a deadline of its own."""
        with self._lock:
            self._batching = False
            if self._client is not None:
                self._client.begin_call(Deadline(self.timeout))
            self._quit()

    def close(self) -> None:
        self.end_batch()

    def _session(self, stage: list[Stage], deadline: Deadline) -> DeadlineSMTP:
        """The batch's open session reset for a new message, or a new one (connected, STARTTLS,
        AUTH), either within ``deadline``; ``stage`` says how far it got, for the error's
        classification."""
        if self._client is not None:
            self._client.begin_call(deadline)
            try:
                self._client.rset()
                return self._client
            except (smtplib.SMTPException, OSError):
                self._drop()  # dropped or confused: nothing of this message was sent yet
        client = self._connect(deadline)
        self._client = client
        if self.security == "starttls":
            stage[0] = "starttls"
            client.starttls(context=self._tls_context())
        if self.username is not None and self._password is not None:
            stage[0] = "login"
            client.login(self.username, self._password)
        return client

    def _quit(self) -> None:
        if self._client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._client.quit()
            self._drop()

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _compose(self, message: Message) -> EmailMessage:
        # List-Unsubscribe and Message-ID are written as their RFCs define them, never as encoded-words.
        email = EmailMessage(policy=WIRE_POLICY)
        try:
            email["From"] = self.from_address
            email["To"] = message.to
            if message.subject is not None:
                # Templates may leave a trailing newline; a header must be one line.
                email["Subject"] = " ".join(message.subject.split())
            email["Date"] = format_datetime(self._clock())
            email["Message-ID"] = message.message_id
            # RFC 3834: tells autoresponders (vacation replies) not to answer a notification.
            email["Auto-Submitted"] = "auto-generated"
            content = {}
            for name, value in message.headers.items():
                if name.lower().startswith("content-"):
                    content[name] = value  # set_content replaces every Content-* field: set after it
                else:
                    email[name] = value
            email.set_content(message.text)
            if message.html is not None:
                email.add_alternative(message.html, subtype="html")
            for name, value in content.items():
                email[name] = value
        except ValueError as exc:
            raise PermanentError(f"cannot build the email: {exc}") from exc
        return email

    def _connect(self, deadline: Deadline) -> DeadlineSMTP:
        """Connect and read the greeting within ``deadline``; smtplib closes the socket itself if
        that fails."""
        if self._local_hostname is None:
            # smtplib would otherwise do a DNS lookup for the EHLO name on every connection.
            self._local_hostname = socket.getfqdn()
        return DeadlineSMTP(
            self.host,
            self.port,
            deadline=deadline,
            local_hostname=self._local_hostname,
            implicit_tls=self._tls_context() if self.security == "ssl" else None,
        )

    def _tls_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _classify(
        self, exc: smtplib.SMTPException | OSError, stage: Stage, recipient: str, handed_over: bool
    ) -> AdapterError:
        where = f"{self.host}:{self.port}"
        if handed_over and not _is_reply(exc):
            return OutcomeUnknown(
                f"{where} was sent the whole message, then gave no reply to it "
                f"({type(exc).__name__}: {exc}); it may have accepted it",
                stage="data",
            )
        if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 530:
            # "Must issue STARTTLS first" / "Authentication required": every message would fail alike.
            text = _text(exc.smtp_error)
            option = "security" if "starttls" in text.lower() else "username"
            return AdapterConfigError(
                f"{where} requires {'STARTTLS' if option == 'security' else 'authentication'}: 530 {text}; "
                f"check PLANNER_SMTP_{option.upper()}",
                option=option,
            )
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, raw = exc.recipients.get(recipient) or next(iter(exc.recipients.values()))
            return _reply_error(f"{where} refused recipient {recipient}", code, raw, blame_recipient="rcpt")
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return _reply_error(f"{where} refused sender {exc.sender}", exc.smtp_code, exc.smtp_error)
        if isinstance(exc, smtplib.SMTPResponseException):
            if stage == "login" and exc.smtp_code >= 500:
                return AdapterConfigError(
                    f"{where} rejected the credentials of PLANNER_SMTP_USERNAME={self.username!r}: "
                    f"{exc.smtp_code} {_text(exc.smtp_error)}",
                    option="username",
                )
            blame: Literal["data"] | None = "data" if stage == "mail" else None
            return _reply_error(f"{where} failed during {stage}", exc.smtp_code, exc.smtp_error, blame)
        # SMTPException subclasses OSError, so "plain OSError" must exclude it.
        if isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(exc, smtplib.SMTPException):
            return TransientError(f"{where} unreachable during {stage}: {type(exc).__name__}: {exc}")
        if stage in ("starttls", "login"):
            # STARTTLS or AUTH not offered: falling back to plaintext or anonymous would be unsafe.
            option = "security" if stage == "starttls" else "username"
            return AdapterConfigError(
                f"{where} cannot {stage} ({exc}); check PLANNER_SMTP_{option.upper()}", option=option
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return PermanentError(f"{where} cannot accept this message: {exc}")
        return TransientError(f"{where} failed during {stage}: {type(exc).__name__}: {exc}")


def _is_reply(exc: smtplib.SMTPException | OSError) -> bool:
    """Whether the server answered (a garbled line, code -1, is no answer)."""
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code != -1


def _session_survives(exc: smtplib.SMTPException | OSError, stage: Stage) -> bool:
    """A reply the server gave to this message's envelope or content leaves the session usable
    (``RSET`` next); a failed connect, STARTTLS or AUTH, a dropped connection, a timeout or ``421``
    (the server is closing the channel) does not."""
    if stage != "mail":
        return False
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code != 421 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code != 421


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _reply_error(
    context: str, code: int, raw: bytes | str, blame_recipient: Literal["rcpt", "data"] | None = None
) -> AdapterError:
    text = _text(raw)
    reason = f"{context}: {code} {text}"
    if not 500 <= code < 600:
        # 4xx, or a garbled reply (smtplib reports -1): worth another try.
        return TransientError(reason, code=str(code))
    invalid = blame_recipient is not None and _blames_address(code, text, blame_recipient)
    return PermanentError(reason, invalid_address=invalid, code=str(code))


def _blames_address(code: int, text: str, stage: Literal["rcpt", "data"]) -> bool:
    """Whether a 5xx reply says the recipient's address itself is bad (vs. policy, size, relay)."""
    enhanced = _ENHANCED_STATUS.match(text)
    if enhanced:
        subject, detail = int(enhanced[1]), int(enhanced[2])
        # X.1.* is addressing status except 1.7/1.8, which are about the sender; 2.1 is "disabled".
        return (subject == 1 and detail not in (7, 8)) or (subject, detail) == (2, 1)
    # A bare code at DATA time is too vague to condemn the address; at RCPT it is the usual signal.
    return stage == "rcpt" and code in _BAD_MAILBOX_REPLIES
