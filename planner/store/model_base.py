"""What every table model shares: the base class and the instant column."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from planner.store.types import UTCDateTime


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    """An instant column (UTC, aware), empty by default."""
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


class TableModel(SQLModel):
    """The base of the tables: their pydantic validators are built on first use, not at import.

    The rows are written and read through SQLAlchemy, which never validates them; building the
    validators of 13 models at import cost about 0.1 s of every command's start-up (a `planner run`
    with nothing due validates none of them).
    """

    model_config = ConfigDict(defer_build=True)  # type: ignore[assignment]
