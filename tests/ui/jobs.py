"""Jobs for the real RQ worker the workers page is tested with (imported by that process)."""

from __future__ import annotations

import redis


def hold(url: str, key: str, seconds: int = 30) -> str:
    """Busy until ``key`` is pushed (or ``seconds`` pass): a job the page sees running."""
    connection = redis.Redis.from_url(url)
    try:
        for _ in range(seconds):  # short waits: the URL's socket timeout may be shorter than ``seconds``
            if connection.blpop([key], timeout=1) is not None:
                return "released"
        return "timed out"
    finally:
        connection.close()


def fail() -> None:
    raise RuntimeError("a job that fails, for the failed count")
