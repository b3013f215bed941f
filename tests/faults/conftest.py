"""Fixtures of the fault suite: a migrated database per test (PostgreSQL, or both backends) on the
session's real Redis. The soak test is marked ``slow``, which the default run deselects
(``-m "not slow"`` in pyproject.toml); run it with ``-m slow``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from planner.app import App
from planner.settings import Settings
from tests.conftest import new_pg_database, new_sqlite_database
from tests.faults.harness import Child
from tests.faults.servers import FaultSmtp, running_smtp
from tests.servers import PostgresServer


def _app(url: str, redis_url: str, tmp_path: Path) -> App:
    return App(Settings(database_url=url, redis_url=redis_url, outbox_dir=tmp_path / "outbox"))


@pytest.fixture
def pg_app(pg: PostgresServer, redis_url: str, tmp_path: Path) -> Iterator[App]:
    app = _app(new_pg_database(pg), redis_url, tmp_path)
    yield app
    app.close()


@pytest.fixture(params=["sqlite", "postgres"])
def any_app(request: pytest.FixtureRequest, redis_url: str, tmp_path: Path) -> Iterator[App]:
    """A migrated database on each backend."""
    if request.param == "sqlite":
        app = _app(new_sqlite_database(tmp_path / "planner.db"), redis_url, tmp_path)
    else:
        app = _app(new_pg_database(request.getfixturevalue("pg")), redis_url, tmp_path)
    yield app
    app.close()


@pytest.fixture
def smtp() -> Iterator[tuple[FaultSmtp, int]]:
    handler = FaultSmtp()
    with running_smtp(handler) as port:
        yield handler, port


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()
