"""Database engines, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout so a planner run and
workers can share one file; PostgreSQL uses a bounded connection pool.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session as Session
from sqlalchemy.orm import sessionmaker

from planner.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

#: What code above the store holds: a :class:`Session` (a unit of work it opens, commits or rolls
#: back, and hands to the store's functions; it never builds a statement on one) and the factory
#: that opens them (``App.sessions``).
SessionFactory: TypeAlias = sessionmaker[Session]
T = TypeVar("T")


_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


def create_db_engine(url: str, *, pool_size: int = 8, sqlite_synchronous: str = "full") -> Engine:
    """An engine for ``url``; SQLite files get WAL mode, foreign keys, a busy timeout and the
    ``synchronous`` level asked for (``full``: each commit is on disk before it returns)."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Autocommit at the driver level so SQLAlchemy's BEGIN below decides when a transaction starts.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # A new file gives the pages the retention frees back to the file system on the next
            # "PRAGMA incremental_vacuum" (planner.store.retention); an existing file keeps its mode
            # (a no-op here) and reuses its free pages, so it still stops growing at a steady state.
            cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
            cursor.execute("PRAGMA journal_mode=WAL")
            # FULL (the default): a commit is on disk before it returns (the WAL fsynced), so a power
            # loss cannot undo an outcome the worker recorded and make it send the message again.
            cursor.execute(f"PRAGMA synchronous={_SYNCHRONOUS[sqlite_synchronous]}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            # A planner chunk or a worker batch changes a few MB of pages (rows and their indexes):
            # with SQLite's default 2 MB page cache a transaction spills them to the WAL before its
            # commit, and with the default 1,000-page auto-checkpoint nearly every commit copies the
            # WAL back into the database file. 64 MiB of cache per connection, and a checkpoint
            # every 16,000 pages (64 MB of WAL), keep both to what the data needs.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute("PRAGMA wal_autocheckpoint=16000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # IMMEDIATE takes the write lock up front: two writers queue on busy_timeout
            # instead of failing with "database is locked" when a read upgrades to a write.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)
    raise ConfigurationError(
        f"database_url: {url!r} is not supported; expected 'sqlite:///path' or 'postgresql+psycopg://...'"
    )


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


def engine_of(factory: SessionFactory) -> Engine:
    """The engine a session factory was built on (:func:`make_session_factory`)."""
    engine = factory.kw["bind"]
    assert isinstance(engine, Engine)
    return engine


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with factory() as session, session.begin():
        yield session


def lost_a_race(exc: BaseException) -> bool:
    """Whether ``exc`` is an insert that lost a race: its unique key was taken by a transaction that
    committed first (PostgreSQL's unique_violation; SQLite serialises its writers, but would say
    the same)."""
    if not isinstance(exc, IntegrityError):
        return False
    return getattr(exc.orig, "sqlstate", None) == "23505" or "UNIQUE constraint failed" in str(exc.orig)


#: PostgreSQL's deadlock_detected and serialization_failure: the database aborted this transaction
#: for another one's sake, and the same work in a new transaction can succeed.
TRANSIENT_CONFLICTS = frozenset({"40P01", "40001"})


def lost_to_a_conflict(exc: BaseException) -> bool:
    """Whether ``exc`` is the database aborting the transaction for a concurrent one's sake."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in TRANSIENT_CONFLICTS


def transaction_retried_once(factory: SessionFactory, work: Callable[[Session], T]) -> T:
    """``work(session)`` in a transaction; when it lost a race for a unique key (two requests
    creating the same recipient), once more in a new transaction, which sees the winner's rows and
    updates them. Losing twice raises (the caller's answer: a conflict, send it again)."""
    try:
        with transaction(factory) as session:
            return work(session)
    except IntegrityError as exc:
        if not lost_a_race(exc):
            raise
    with transaction(factory) as session:
        return work(session)


def copy_sqlite_file(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to the new file ``target`` with SQLite's backup API, so
    a write-ahead log the source may still have is part of the copy."""
    import sqlite3

    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)


def migrations_dir() -> Path:
    module = import_module("planner.migrations")
    assert module.__file__ is not None
    return Path(module.__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (creating the SQLite file if needed)."""
    if revision == "head" and is_at_head(engine):
        return  # the common case of every `planner run`: no need to load Alembic (~0.3 s)
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest migration this code ships."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return ScriptDirectory.from_config(config).get_current_head()


_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


def shipped_heads() -> set[str]:
    """The head revisions of the shipped migrations, read from their ``revision`` and
    ``down_revision`` lines without importing Alembic (tests compare it with Alembic's answer)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (migrations_dir() / "versions").glob("*.py"):
        for name, value in _REVISION_LINE.findall(script.read_text()):
            found = set(re.findall(r"[\"']([^\"']+)[\"']", value))
            (revisions if name == "revision" else parents).update(found)
    return revisions - parents


def stamped_revisions(engine: Engine) -> set[str]:
    """The revisions recorded in ``alembic_version``; empty when the table does not exist."""
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:
        return set()


def is_at_head(engine: Engine) -> bool:
    """Whether the database is at the shipped head, in one cheap query."""
    heads = shipped_heads()
    return bool(heads) and stamped_revisions(engine) == heads
