"""smtplib's client with every blocking operation bounded by the current call's :class:`Deadline`,
and with a record of whether the message was handed over (its final ``.`` sent)."""

from __future__ import annotations

import io
import smtplib
import socket
import ssl
from typing import Any

from adapters.deadline import Deadline, connect_within

_END_OF_DATA = b"\r\n.\r\n"


class _DeadlineReader(io.RawIOBase):
    """The session's replies, read with the socket timeout set to what is left of the call's
    budget before each read: a reply trickled line by line still ends at the deadline."""

    def __init__(self, sock: socket.socket, client: DeadlineSMTP) -> None:
        super().__init__()
        self._sock = sock
        self._client = client

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(self._client.deadline.remaining())
        return self._sock.recv_into(buffer)


class DeadlineSMTP(smtplib.SMTP):
    """Connects in the constructor (so ``deadline`` bounds the connection and its greeting), with
    implicit TLS when ``implicit_tls`` is given; :meth:`begin_call` starts each later call.

    ``handed_over`` turns true once the message's final ``.`` has been sent: from then on a
    timeout or a dropped connection leaves the server's decision unknown.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        deadline: Deadline,
        local_hostname: str,
        implicit_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.deadline = deadline
        self.handed_over = False
        self._in_data = False
        self._implicit_tls = implicit_tls
        # smtplib keeps the host for STARTTLS's certificate check in a private attribute.
        self.tls_hostname = host
        super().__init__(host, port, local_hostname=local_hostname, timeout=deadline.seconds)

    def begin_call(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.handed_over = False

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = connect_within(host, port, self.deadline)
        if self._implicit_tls is None:
            return sock
        try:
            # CPython bounds the whole handshake by the socket timeout, not each read of it.
            sock.settimeout(self.deadline.remaining())
            return self._implicit_tls.wrap_socket(sock, server_hostname=self.tls_hostname)
        except BaseException:
            sock.close()
            raise

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = io.BufferedReader(_DeadlineReader(self.sock, self))
        return super().getreply()

    def send(self, s: Any) -> None:
        if self.sock is not None:
            # One sendall, plain or TLS, is bounded as a whole by the timeout set before it.
            self.sock.settimeout(self.deadline.remaining())
        super().send(s)
        if self._in_data and isinstance(s, bytes) and s.endswith(_END_OF_DATA):
            self.handed_over = True

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)
        finally:
            self._in_data = False
