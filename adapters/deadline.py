"""One provider call's budget of seconds: connect and every read and write of the call together.

A socket timeout bounds one blocking operation, so a server trickling a reply a line at a time
is never cut off by it. An adapter makes a :class:`Deadline` when a call starts and sets each
socket timeout to :meth:`Deadline.remaining` just before blocking, which bounds the whole call.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class Deadline:
    """``seconds`` from now on the monotonic clock.

    The clock is bound here, at import, on purpose: sockets wait in real time, so a test that
    freezes ``time.monotonic`` for its simulated clock must not stop the budget running down.
    """

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left (never more than the budget); ``TimeoutError`` once none are."""
        left = min(self.seconds, self._end - self._clock())
        if left <= 0:
            raise TimeoutError(f"timed out: the {self.seconds:g}s deadline of the call has passed")
        return left

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g}s, {max(0.0, self._end - self._clock()):.3f}s left)"


def connect_within(host: str, port: int, deadline: Deadline) -> socket.socket:
    """A TCP connection to the first of ``host``'s addresses that answers, all of them within one
    budget (``socket.create_connection`` gives each address the whole timeout again).

    The name lookup itself is the resolver's and is not bounded here.
    """
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(deadline.remaining())
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error if error is not None else OSError(f"no address found for {host!r}")
