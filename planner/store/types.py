"""Column types: instants are always aware and stored in UTC, whatever the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from planner.errors import NaiveDatetimeError


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that refuses naive datetimes and always comes back aware in UTC.

    SQLite has no time zone type, so values are normalised to UTC on the way in and
    tagged as UTC on the way out; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(value.isoformat())
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # Stored naive so lexical order in SQLite equals time order; always UTC by construction.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def instant_binder(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """Bind an instant exactly as a UTCDateTime column does on ``dialect``, for statements sent to
    the driver itself: refuses naive datetimes, and on SQLite gives the stored text form
    (``YYYY-MM-DD HH:MM:SS.ffffff``, always with microseconds, so text order is time order); the
    driver's own datetime adapter would drop zero microseconds."""
    processor = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert processor is not None
    return processor
