"""Dead letters counted per reason, error and UTC day of ``scheduled_at``, by the database itself.

The dead-letter page counts a window's dead deliveries by reason and error. Counted from the
deliveries, a window costs each of its deaths: a year's for "all kept". The table
``dead_letter_day`` holds the count per day instead, kept by triggers on ``delivery`` in the
transaction of every change, whichever code makes it (a worker's failure, the lease recovery, a
retry, a cancellation, an erasure, the retention): one more when a row becomes dead, one fewer when
it stops being dead or is deleted, and both when a dead row changes day, reason or error; a row of
the table goes when its count reaches 0. A partition dropped whole fires no trigger, so its dead
rows are subtracted first (:func:`forget_partition`).

A window then reads the days after its first here and its first, partial day from the deliveries
(:func:`counts`); a group's rows are read from the days the table names (:func:`group_rows`), one
index range each. Both cost what the window's days and the failures of a day hold, not the deaths
kept. A group is known by its reason and the first :data:`~planner.store.models.ERROR_KEY_LENGTH`
characters of its error ('' for none).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Executable, Select, func, literal, select, text, union_all
from sqlalchemy.sql.elements import TextClause

from planner.core.status import DeliveryStatus
from planner.store.db import Session
from planner.store.models import ERROR_KEY_LENGTH, OPEN_PREDICATE
from planner.store.queries import delivery_dict
from planner.store.tables import DEAD_LETTER_DAYS, DELIVERIES, RECIPIENTS

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
    if dialect == "sqlite":
        return [f"DROP TRIGGER IF EXISTS {name}" for name in TRIGGERS.values()]
    return [f"DROP TRIGGER IF EXISTS {name} ON {table}" for name in TRIGGERS.values()]


def count_all_sql(dialect: str, source: str = "delivery") -> str:
    """Every dead row of ``source`` counted into the table (the migration's fill; ``source`` a
    partition and a negative count: :func:`forget_partition`)."""
    return _count_sql(dialect, source, 1)


def _count_sql(dialect: str, source: str, sign: int) -> str:
    reason, error, day = _key(dialect, "d")
    return (
        f"INSERT INTO dead_letter_day (reason, error, day, deaths)"
        f" SELECT {reason}, {error}, {day}, {sign} * count(*) FROM {source} AS d"
        " WHERE d.status = 'dead' GROUP BY 1, 2, 3"
        " ON CONFLICT (reason, error, day) DO UPDATE SET deaths = dead_letter_day.deaths + excluded.deaths"
    )


def forget_partition(session: Session, partition: str) -> None:
    """Take a delivery partition's dead rows out of the counts, before it is dropped (PostgreSQL)."""
    session.execute(text(_count_sql("postgresql", partition, -1)))
    session.execute(text("DELETE FROM dead_letter_day WHERE deaths = 0"))


# ----------------------------------------------------------------------------- reads


class GroupKey(NamedTuple):
    """A dead-letter group: its reason and its error's first characters ('' for none)."""

    reason: str
    error: str


class GroupRows(NamedTuple):
    """A group's latest deliveries (whole, latest scheduled first) and the scheduled times it spans."""

    deliveries: list[dict[str, Any]]
    first: datetime
    last: datetime


_C = DELIVERIES.c
_reason = func.coalesce(_C.reason, "")
_error = func.substr(func.coalesce(_C.last_error, ""), 1, ERROR_KEY_LENGTH)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _dead_between(
    start: datetime, end: datetime, key: GroupKey | None = None
) -> list[ColumnElement[bool] | TextClause]:
    """Dead rows scheduled in [start, end) (of the group ``key``): a range of the open rows' index."""
    where: list[ColumnElement[bool] | TextClause] = [
        text(OPEN_PREDICATE), _C.status == DeliveryStatus.dead.value, _C.scheduled_at >= start,
        _C.scheduled_at < end,
    ]  # fmt: skip
    if key is not None:
        where += [_reason == key.reason, _error == key.error]
    return where


def counts(session: Session, since: datetime | None) -> Counter[GroupKey]:
    """The dead deliveries scheduled since ``since`` (None: every one kept), per group: the days
    after ``since``'s from the table, the rest of ``since``'s day from the deliveries."""
    t = DEAD_LETTER_DAYS.c
    days = select(t.reason, t.error, func.sum(t.deaths)).group_by(t.reason, t.error)
    counted: Executable = days
    if since is not None:
        next_day = since.astimezone(UTC).date() + timedelta(days=1)
        first_day = select(_reason, _error, func.count()).where(*_dead_between(since, _midnight(next_day)))
        counted = union_all(days.where(t.day >= next_day), first_day.group_by(_reason, _error))
    found: Counter[GroupKey] = Counter()
    for reason, error, n in session.execute(counted):
        found[GroupKey(reason, error)] += int(n)
    return +found  # only groups with deaths


def group_rows(session: Session, key: GroupKey, since: datetime | None, limit: int) -> GroupRows | None:
    """The group's ``limit`` latest dead deliveries scheduled since ``since`` and the scheduled times
    it spans, read from its days in the table (newest first, as many as hold ``limit`` deaths), one
    index range per run of consecutive days; None when it has none."""
    t = DEAD_LETTER_DAYS.c
    days = select(t.day, t.deaths).where(t.reason == key.reason, t.error == key.error)
    if since is not None:
        days = days.where(t.day >= since.astimezone(UTC).date())
    listed = list(session.execute(days.order_by(t.day.desc())))
    newest: list[date] = []
    held = 0
    for day, deaths in listed:
        if held >= limit:
            break
        newest.append(day)
        held += deaths
    if not newest:
        return None
    branches = [select(DELIVERIES).where(*_dead_between(*span, key)) for span in _spans(newest, since)]
    rows = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
    # Every row of the group is read when its days hold no more than the page: the first is among them.
    every_row = len(newest) == len(listed) and held <= limit
    oldest = [day for day, _ in reversed(listed)]
    earliest = literal(None) if every_row else _earliest(key, oldest[0], since).scalar_subquery()
    latest = session.execute(
        select(rows, RECIPIENTS.c.external_id, earliest.label("earliest"))
        .join(RECIPIENTS, RECIPIENTS.c.id == rows.c.recipient_id)
        .order_by(rows.c.scheduled_at.desc(), rows.c.id.desc())
        .limit(limit)
    ).all()
    if not latest:
        return None
    first = latest[-1].scheduled_at if every_row else latest[0].earliest
    if first is None:  # none on the oldest day after ``since``: a later day has the first
        first = next(f for day in oldest[1:] if (f := session.scalar(_earliest(key, day, since))) is not None)
    found = [delivery_dict(row, row.external_id) for row in latest]
    return GroupRows(found, first, latest[0].scheduled_at)


def _spans(days_newest_first: list[date], since: datetime | None) -> list[tuple[datetime, datetime]]:
    """The days as ranges of scheduled time, consecutive days as one (the same rows, fewer scans)."""
    spans: list[tuple[datetime, datetime]] = []
    for day in days_newest_first:
        start, end = _day_range(day, since)
        if spans and spans[-1][0] == end:
            spans[-1] = (start, spans[-1][1])
        else:
            spans.append((start, end))
    return spans


def _day_range(day: date, since: datetime | None) -> tuple[datetime, datetime]:
    start = _midnight(day)
    return (start if since is None else max(start, since)), _midnight(day + timedelta(days=1))


def _earliest(key: GroupKey, day: date, since: datetime | None) -> Select[tuple[datetime]]:
    """The group's earliest dead row scheduled on ``day`` (and since ``since``). First in order, not
    ``min()``: PostgreSQL plans that over every month's partition twice (as an aggregate, and as
    each index read in order), which takes longer than reading the row."""
    where = _dead_between(*_day_range(day, since), key)
    return select(_C.scheduled_at).where(*where).order_by(_C.scheduled_at).limit(1)
