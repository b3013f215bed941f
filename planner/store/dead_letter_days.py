"""Dead letters counted per reason, error and UTC day of ``scheduled_at``, by the database itself.

The dead-letter page counts a window's dead deliveries by reason and error. Counted from the
deliveries, a window costs each of its deaths: a year's for "all kept". The table
``dead_letter_day`` holds the count per day instead, kept by triggers on ``delivery`` in the
transaction of every change, whichever code makes it (a worker's failure, the lease recovery, a
retry, a cancellation, an erasure, the retention): one more when a row becomes dead, one fewer when
it stops being dead or is deleted, and both when a dead row changes day, reason or error; a row of
the table goes when its count reaches 0. A partition dropped whole fires no trigger, so its dead
rows are subtracted first (:func:`forget_partition`).

The dead-letter page reads it (:mod:`planner.store.dead_letters`). A group is known by its reason
and the first :data:`~planner.store.models.ERROR_KEY_LENGTH` characters of its error ('' for none).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text

from planner.store.db import Session
from planner.store.dialect import dialect_of
from planner.store.models import ERROR_KEY_LENGTH

UTC_DAY = {
    "sqlite": "date({row}.scheduled_at)", "postgresql": "({row}.scheduled_at AT TIME ZONE 'UTC')::date"
}  # fmt: skip
REASON_KEY = "coalesce({row}.reason, '')"
ERROR_KEY = f"substr(coalesce({{row}}.last_error, ''), 1, {ERROR_KEY_LENGTH})"

#: The triggers' names, per event.
TRIGGERS = {event: f"dead_letter_day_{event.lower()}" for event in ("INSERT", "UPDATE", "DELETE")}
#: A dead row's change that moves it to another count.
_MOVED = ("status", "scheduled_at", "reason", "last_error")


def _key(dialect: str, row: str) -> tuple[str, str, str]:
    return REASON_KEY.format(row=row), ERROR_KEY.format(row=row), UTC_DAY[dialect].format(row=row)


def _add(dialect: str, row: str, delta: int, when: str = "") -> str:
    """One more (``delta`` 1) or one fewer (-1) for ``row``'s (reason, error, day); then the count's
    row goes if it is 0."""
    reason, error, day = _key(dialect, row)
    # 'WHERE true' without a condition: SQLite reads an upsert's ON after a bare SELECT as a join's.
    values = f"SELECT {reason}, {error}, {day}, {delta} WHERE {when or 'true'}"
    upsert = (
        f"INSERT INTO dead_letter_day (reason, error, day, deaths) {values}"
        " ON CONFLICT (reason, error, day) DO UPDATE SET deaths = dead_letter_day.deaths + excluded.deaths;"
    )
    if delta > 0:
        return upsert
    return upsert + (
        f" DELETE FROM dead_letter_day WHERE reason = {reason} AND error = {error} AND day = {day}"
        " AND deaths = 0;"
    )


def _update_when(dialect: str) -> str:
    dead = "(OLD.status = 'dead' OR NEW.status = 'dead')"
    if dialect == "postgresql":
        old, new = (", ".join(f"{row}.{c}" for c in _MOVED) for row in ("OLD", "NEW"))
        return f"{dead} AND ({old}) IS DISTINCT FROM ({new})"
    return f"{dead} AND ({' OR '.join(f'OLD.{c} IS NOT NEW.{c}' for c in _MOVED)})"


def trigger_ddl(dialect: str, table: str = "delivery") -> list[str]:
    """The statements creating the triggers on ``table`` (and, on PostgreSQL, their function)."""
    if dialect == "sqlite":
        update_body = _add(dialect, "OLD", -1, "OLD.status = 'dead'") + " " + _add(
            dialect, "NEW", 1, "NEW.status = 'dead'"
        )
        return [
            f"CREATE TRIGGER {TRIGGERS['INSERT']} AFTER INSERT ON {table} WHEN NEW.status = 'dead'"
            f" BEGIN {_add(dialect, 'NEW', 1)} END",
            f"CREATE TRIGGER {TRIGGERS['UPDATE']} AFTER UPDATE OF {', '.join(_MOVED)} ON {table}"
            f" WHEN {_update_when(dialect)} BEGIN {update_body} END",
            f"CREATE TRIGGER {TRIGGERS['DELETE']} AFTER DELETE ON {table} WHEN OLD.status = 'dead'"
            f" BEGIN {_add(dialect, 'OLD', -1)} END",
        ]
    function = (
        "CREATE OR REPLACE FUNCTION dead_letter_day_count() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  IF TG_OP <> 'INSERT' AND OLD.status = 'dead' THEN {_add(dialect, 'OLD', -1)} END IF;\n"
        f"  IF TG_OP <> 'DELETE' AND NEW.status = 'dead' THEN {_add(dialect, 'NEW', 1)} END IF;\n"
        "  RETURN NULL;\n"
        "END $$"
    )
    when = {"INSERT": "NEW.status = 'dead'", "UPDATE": _update_when(dialect), "DELETE": "OLD.status = 'dead'"}
    return [function] + [
        f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW WHEN ({when[event]})"
        " EXECUTE FUNCTION dead_letter_day_count()"
        for event, name in TRIGGERS.items()
    ]


def drop_triggers_ddl(dialect: str, table: str = "delivery") -> list[str]:
    """The statements dropping the triggers from ``table`` (the function stays)."""
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS.values()]
    return [f"DROP TRIGGER IF EXISTS {name} ON {table}" for name in TRIGGERS.values()]


def count_all_sql(dialect: str, source: str = "delivery") -> str:
    """Every dead row of ``source`` added to the counts (migration 0025's fill)."""
    return _count_sql(dialect, source, 1)


def _count_sql(dialect: str, source: str, sign: int) -> str:
    reason, error, day = _key(dialect, "d")
    return (
        f"INSERT INTO dead_letter_day (reason, error, day, deaths)"
        f" SELECT {reason}, {error}, {day}, {sign} * count(*) FROM {source} AS d"
        " WHERE d.status = 'dead' GROUP BY 1, 2, 3"
        " ON CONFLICT (reason, error, day) DO UPDATE SET deaths = dead_letter_day.deaths + excluded.deaths"
    )


def lock_counts(session: Session, delivery_ids: Sequence[int]) -> None:
    """Before a statement changes many deliveries at once: lock the counts their dead rows are in
    (every error's, of each reason and day, so an erasure's move to no error is covered), in key
    order. The triggers lock them in the order the statement meets its rows; two such statements
    (two operators' "requeue all", one and the retention) meeting two counts in opposite orders
    would deadlock. SQLite has one writer at a time: nothing to do."""
    if delivery_ids:
        _lock_counts_where(session, "d.id = ANY(:ids)", {"ids": list(delivery_ids)})


def lock_recipient_counts(session: Session, recipient_id: int) -> None:
    """:func:`lock_counts` for every dead delivery of one recipient (an erasure), in the same
    statement that finds them."""
    _lock_counts_where(session, "d.recipient_id = :recipient", {"recipient": recipient_id})


def _lock_counts_where(session: Session, deliveries: str, params: dict[str, object]) -> None:
    """Lock, in key order, the counts of the dead deliveries ``d`` meeting ``deliveries``."""
    if dialect_of(session) != "postgresql":
        return
    reason, _, day = _key("postgresql", "d")
    session.execute(
        text(
            "SELECT 1 FROM dead_letter_day WHERE (reason, day) IN"
            f" (SELECT {reason}, {day} FROM delivery AS d WHERE {deliveries} AND d.status = 'dead')"
            " ORDER BY reason, error, day FOR UPDATE"
        ),
        params,
    )


def forget_partition(session: Session, partition: str) -> None:
    """Take a delivery partition's dead rows out of the counts, before it is dropped (PostgreSQL)."""
    session.execute(text(_count_sql("postgresql", partition, -1)))
    session.execute(text("DELETE FROM dead_letter_day WHERE deaths = 0"))
