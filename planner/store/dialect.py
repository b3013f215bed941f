"""Which database a session talks to, and the few statements that differ between them.

The one place that answers "am I on PostgreSQL?": everything else asks :func:`dialect_of`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, Integer, String, any_, bindparam, func, literal_column, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from planner.store.types import instant_binder

Dialect = Literal["sqlite", "postgresql"]


def dialect_of(target: Session | Engine | sessionmaker[Session]) -> Dialect:
    """The dialect of a session, an engine or a session factory."""
    if isinstance(target, sessionmaker):
        bind = target.kw.get("bind")
        assert isinstance(bind, Engine), "session factories are built on an engine (planner.store.db)"
        target = bind
    engine_or_conn = target.get_bind() if isinstance(target, Session) else target
    name = engine_or_conn.dialect.name
    assert name in ("sqlite", "postgresql"), name
    return name  # type: ignore[return-value]


def one_of(column: Any, ids: Sequence[int], dialect: Dialect) -> ColumnElement[bool]:
    """``column IN (ids)`` for integer ids, as one parameter: on PostgreSQL ``column = ANY(:ids)``,
    on SQLite ``column IN (SELECT value FROM json_each(:ids))``; the same condition and plan.

    A chunk's id lists hold a thousand values: as IN they are a thousand parameters, which psycopg
    parses out of the statement text again on every execution and SQLAlchemy coerces and renders one
    by one; as one array (a JSON array on SQLite) they are one parameter of a short statement.
    """
    if dialect == "postgresql":
        # Imported here: the PostgreSQL dialect costs about 50 ms of a SQLite process's start-up.
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(ids), type_=ARRAY(column.type)))  # type: ignore[no-any-return]
    as_json = bindparam(None, json.dumps([int(i) for i in ids]), type_=String())
    return column.in_(select(literal_column("value")).select_from(func.json_each(as_json)))  # type: ignore[no-any-return]


def id_rows(ids: Sequence[int], dialect: Dialect) -> Any:
    """``ids`` as a table of one column, ``id``, in one parameter (as :func:`one_of`): the outer side
    of a per-id subquery (each id's latest row, read from an index and stopped at the first)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam(None, list(ids), type_=ARRAY(Integer()))
        return func.unnest(array).table_valued("id").render_derived(name="ids")
    as_json = bindparam(None, json.dumps([int(i) for i in ids]), type_=String())
    rows = func.json_each(as_json).table_valued("value").alias("ids")
    return select(rows.c.value.label("id")).subquery("ids")


def utc_binder(session: Session) -> Callable[[datetime | None], Any]:
    """Bind an instant as a UTCDateTime column would (refuses naive datetimes), for raw statements."""
    return instant_binder(session.get_bind().dialect)


def not_indexed(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQLite: ``column`` as a term its planner may not read an index for (a unary ``+``, SQLite's
    documented way to disqualify one), so that it walks the index the statement was written for."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)
