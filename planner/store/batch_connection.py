"""A delivery batch's own database connection, for its outcome and lease writes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from planner.store.types import instant_binder


class BatchConnection:
    """A batch's own database connection for its outcome writes, opened on first use.

    One connection for the whole batch: a checkout (and its pre-ping) per message would cost more
    than the write. When the server drops it (a restart), :meth:`drop` lets the next write open a
    fresh one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.connection: Connection | None = None
        self.autocommit: Connection | None = None
        #: An aware instant as the driver takes it for a UTCDateTime column.
        self.instant: Callable[[datetime | None], Any] = instant_binder(engine.dialect)

    def driver(self) -> Any:
        """The driver's own connection: autocommit on PostgreSQL (one statement, one round trip);
        on SQLite the caller begins and commits."""
        connection = self.single_statements() if self.postgres else self.transactional()
        return connection.connection.driver_connection

    def transactional(self) -> Connection:
        if self.connection is None:
            self.connection = self.engine.connect()
        return self.connection

    def single_statements(self) -> Connection:
        """A connection in autocommit mode: each statement is its own transaction, one round trip."""
        if self.autocommit is None:
            self.autocommit = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self.autocommit

    def drop(self) -> None:
        for connection in (self.connection, self.autocommit):
            if connection is not None:
                connection.invalidate()
                connection.close()
        self.connection = self.autocommit = None

    def close(self) -> None:
        for connection in (self.connection, self.autocommit):
            if connection is not None:
                connection.close()
        self.connection = self.autocommit = None
