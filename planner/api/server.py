"""How ``planner serve`` runs the API: uvicorn, with bounds on what one connection can hold or send.

uvicorn's own timeouts do not cover a request whose headers never finish (``timeout_keep_alive``
starts only after a first answer), so a client sending a header line every few seconds would hold
its connection for ever; and after answering a request whose body was not read (refused as too
large, or answered 401 before reading it), uvicorn would read on, discarding, for as long as the
client sends. :class:`BoundedH11Protocol` is uvicorn's h11 protocol with both bounded:

- a connection whose request headers are not complete within PLANNER_HTTP_HEADER_TIMEOUT of it
  opening, or of its previous answer, gets a ``408`` and is closed;
- a connection answered while its request body is still arriving is closed after the answer: the
  answer is flushed, the sending side shut, and what the client still sends is dropped unread for
  at most :data:`LINGER_SECONDS` (so a client busy sending sees the answer, not a reset).

The request line and headers are bounded in size as well: h11 refuses (400) a head still incomplete
past :data:`~planner.api.limits.MAX_HEADER_BYTES`, and the application (431) any larger one.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from planner.api.limits import MAX_HEADER_BYTES
from planner.settings import Settings

#: How long an unread request body is dropped after the answer, before the connection is closed.
LINGER_SECONDS = 2.0
_LATE = b"The request headers took too long to send.\n"
_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    + f"content-length: {len(_LATE)}\r\n\r\n".encode()
    + _LATE
)


class _LingeringTransport:
    """The connection's transport, whose ``close()`` lingers while the client still sends a body."""

    def __init__(self, transport: asyncio.Transport, protocol: BoundedH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.lingering = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.is_closing():
            return
        if self._protocol.conn.their_state is not h11.SEND_BODY or not self._transport.can_write_eof():
            self._transport.close()
            return
        self.lingering = True
        self._transport.write_eof()  # after what is buffered: the answer goes out whole
        self._transport.resume_reading()
        self._protocol.loop.call_later(LINGER_SECONDS, self._transport.close)

    def close_now(self) -> None:
        self._transport.close()


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a bounded close (see the module)."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _lingering: _LingeringTransport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._lingering = _LingeringTransport(transport, self)
        super().connection_made(self._lingering)  # type: ignore[arg-type]
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.lingering:
            return  # the rest of a body nobody reads: dropped
        super().data_received(data)
        self._disarm_once_headers_arrived()

    def eof_received(self) -> None:
        if self._lingering is not None and self._lingering.lingering:
            self._lingering.close_now()  # the client has sent everything: no need to wait

    def on_response_complete(self) -> None:
        if self.conn.their_state is h11.SEND_BODY:
            self.transport.close()  # answered before its body arrived: close (lingering), never read on
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers get the same time
            self._disarm_once_headers_arrived()  # a pipelined one may have arrived already

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _disarm_once_headers_arrived(self) -> None:
        # h11 leaves IDLE for the client's side only when a request's headers are complete.
        if self.conn.their_state is not h11.IDLE:
            self._disarm()

    def _headers_timed_out(self) -> None:
        self._deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.write(_TIMED_OUT)
            self.transport.close()


def bounded_protocol(header_timeout: float) -> type[BoundedH11Protocol]:
    """The protocol class uvicorn is given, with its header timeout."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,), {"header_timeout": header_timeout})


def server_config(api: Any, settings: Settings, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the API: the bounded protocol, no logging setup of its own."""
    return uvicorn.Config(
        api,
        host=host,
        port=port,
        http=bounded_protocol(settings.http_header_timeout.total_seconds()),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        log_config=None,
        log_level=settings.log_level.lower(),
        **options,
    )
