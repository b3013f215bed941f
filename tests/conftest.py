"""Session-wide real servers (Redis, PostgreSQL) and per-test databases on both backends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import structlog
from sqlalchemy import Engine
from typer.testing import CliRunner

from planner.app import App
from planner.settings import Settings
from planner.store.db import create_db_engine, upgrade
from planner.testing._template import copy_migrated_sqlite
from tests.servers import PostgresServer, RedisServer, require_postgres, start_postgres, start_redis

TEMPLATE_DB = "planner_template"
_counter = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    if server is not None:
        # Migrations run once into a template; each test copies it (CREATE DATABASE ... TEMPLATE).
        server.create_database(TEMPLATE_DB)
        engine = create_db_engine(server.url(TEMPLATE_DB))
        upgrade(engine)
        engine.dispose()
        server.wait_until_unused(TEMPLATE_DB)  # its backends exit after the disconnect, not with it
    yield server
    if server is not None:
        server.stop()


@pytest.fixture
def pg(postgres_server: PostgresServer | None) -> PostgresServer:
    return require_postgres(postgres_server)


def new_pg_database(server: PostgresServer) -> str:
    name = f"t_{next(_counter)}"
    server.create_database(name, template=TEMPLATE_DB)
    return server.url(name)


def new_sqlite_database(path: Path) -> str:
    """A migrated, empty SQLite file at ``path``: a copy of a file migrated once per process."""
    copy_migrated_sqlite(path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a copy of a migrated SQLite file, then of the PostgreSQL template."""
    if request.param == "sqlite":
        yield new_sqlite_database(tmp_path / "planner.db")
        return
    server = require_postgres(request.getfixturevalue("postgres_server"))
    url = new_pg_database(server)
    yield url
    server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    connection = redis.Redis.from_url(redis_server.url)
    connection.flushall()
    connection.close()
    return redis_server.url


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        outbox_dir=tmp_path / "outbox",
        email_adapter="capture",
        sms_adapter="capture",
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    instance = App(settings)
    yield instance
    instance.close()


@pytest.fixture
def engine(app: App) -> Engine:
    return app.engine


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[CliRunner]:
    """The ``planner`` CLI, in-process, on the test's database and Redis."""
    monkeypatch.setenv("PLANNER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("PLANNER_REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("PLANNER_LOG_LEVEL", "WARNING")
    # The CLI configures structlog for itself; later tests get the configuration they had.
    saved = structlog.get_config()
    yield CliRunner()
    structlog.configure(**saved)
