"""httpx with every network operation of a call bounded by that call's :class:`Deadline`, and a
record of whether the request was sent in full.

httpx's timeouts bound each read, write or connect on its own, so a response trickled a few
bytes at a time is never cut off. Here httpcore's network backend (its documented extension
point) is wrapped: each connect, TLS handshake, read and write gets what is left of the budget of
the call in progress (:func:`deadline_scope`), and raises httpcore's own timeout once none is, so
httpx maps it to ``ConnectTimeout``/``ReadTimeout``/``WriteTimeout`` as usual.
"""

from __future__ import annotations

import socket
import ssl
import typing
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpcore
import httpx

from adapters.deadline import Deadline

_CALL: ContextVar[Deadline | None] = ContextVar("adapters_http_call_deadline", default=None)


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[None]:
    """The requests made inside (in this thread or task) share ``deadline``."""
    token = _CALL.set(deadline)
    try:
        yield
    finally:
        _CALL.reset(token)


def _budget(timeout: float | None, timed_out: type[httpcore.TimeoutException]) -> float | None:
    deadline = _CALL.get()
    if deadline is None:
        return timeout
    try:
        left = deadline.remaining()
    except TimeoutError as exc:
        raise timed_out(str(exc)) from exc
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, budget))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


#: How a host name becomes the addresses to connect to: ``(host, port, seconds left or None)``. A
#: caller's resolver may bound the look-up or refuse addresses by raising ``OSError`` (its text is
#: the connection error's).
Resolver = Callable[[str, int, float | None], list[str]]


def resolve_all(host: str, port: int, budget: float | None) -> list[str]:
    """Every address of ``host``, as the system resolver gives them (the look-up is not bounded)."""
    return [str(address[0]) for *_, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, resolve: Resolver = resolve_all) -> None:
        self._inner = httpcore.SyncBackend()
        self._resolve = resolve

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Each of the host's addresses in turn, all within one budget (the inner backend would
        give each address the whole timeout). TLS is started later, with the host's own name."""
        try:
            found = self._resolve(host, port, _budget(timeout, httpcore.ConnectTimeout))
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        error: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in found:
            try:
                budget = _budget(timeout, httpcore.ConnectTimeout)
                stream = self._inner.connect_tcp(address, port, budget, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream)
        raise error if error is not None else httpcore.ConnectError(f"{host}: no address found")

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (its exception mapping, response streams, keep-alive pool) over a
    connection pool whose network backend honours :func:`deadline_scope`, and finds each host's
    addresses with ``resolve``."""

    def __init__(self, resolve: Resolver = resolve_all) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(resolve),
        )


class BodySent:
    """An httpcore ``trace`` extension noting whether the request body was written in full.

    The exception alone cannot say: httpcore swallows a write error while sending and goes on
    to read the response, so a ``ReadError`` or ``RemoteProtocolError`` may follow a request
    the server never received whole. Only the ``send_request_body.complete`` event means it did.
    """

    def __init__(self) -> None:
        self.complete = False

    def __call__(self, event: str, info: dict[str, typing.Any]) -> None:
        if event.endswith(".send_request_body.complete"):
            self.complete = True
