"""The dead-letter page's reads, from the daily counts the database keeps
(:mod:`planner.store.dead_letter_days`): a window's groups with their counts and the days they
span, and the chosen groups' latest rows.

A window's figures are its days after the first from the table, and its first, partial day from
the deliveries (one day of the open rows' index), in one statement. The chosen groups' latest rows
are read from the days the table names for them (their newest days, as many as hold a page), all
groups in one statement with one index range per run of consecutive days: a page costs the
window's days and the failures of the days it shows, whatever the number of deaths kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Executable,
    String,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.sql.elements import TextClause

from planner.core.status import DeliveryStatus
from planner.store.db import Session
from planner.store.dead_letter_days import ERROR_KEY, REASON_KEY
from planner.store.models import OPEN_PREDICATE
from planner.store.queries import delivery_dict
from planner.store.tables import DEAD_LETTER_DAYS, DELIVERIES, RECIPIENTS


class GroupKey(NamedTuple):
    """A dead-letter group: its reason and its error's first characters ('' for none)."""

    reason: str
    error: str


@dataclass
class GroupFigures:
    """A group's dead deliveries in a window: how many, on how many UTC days, the first and last."""

    deaths: int
    days: int
    first_day: date
    last_day: date


_C = DELIVERIES.c
# A delivery's group as the triggers key it (one rule: planner.store.dead_letter_days).
_reason = literal_column(REASON_KEY.format(row=DELIVERIES.name), String)
_error = literal_column(ERROR_KEY.format(row=DELIVERIES.name), String)
Span = tuple[datetime, datetime]


def groups_in(session: Session, since: datetime | None) -> dict[GroupKey, GroupFigures]:
    """The groups of the dead deliveries scheduled since ``since`` (None: every one kept) with their
    figures, in one statement: the days after ``since``'s from the table, the rest of ``since``'s
    day from the rows."""
    t = DEAD_LETTER_DAYS.c
    figures = (func.sum(t.deaths), func.count(), func.min(t.day), func.max(t.day))
    days = select(t.reason, t.error, *figures).group_by(t.reason, t.error)
    read: Executable = days
    if since is not None:
        day = _utc_day(since)
        first_day = (
            select(_reason, _error, func.count(), literal(1), literal(day), literal(day))
            .where(*_dead_in([(since, _midnight(day + timedelta(days=1)))]))
            .group_by(_reason, _error)
        )
        read = union_all(days.where(t.day > day), first_day)
    found: dict[GroupKey, GroupFigures] = {}
    for reason, error, deaths, spanned, first, last in session.execute(read):
        first, last = _as_date(first), _as_date(last)
        key = GroupKey(reason, error)
        known = found.get(key)
        if known is None:
            found[key] = GroupFigures(int(deaths), int(spanned), first, last)
        else:
            known.deaths += int(deaths)
            known.days += int(spanned)
            known.first_day, known.last_day = min(known.first_day, first), max(known.last_day, last)
    return {key: figures for key, figures in found.items() if figures.deaths > 0}


def latest_of_groups(
    session: Session, keys: Sequence[GroupKey], since: datetime | None, limit: int
) -> dict[GroupKey, list[dict[str, Any]]]:
    """Each group's ``limit`` latest dead deliveries scheduled since ``since``, whole, latest
    scheduled first (a group with none there is left out)."""
    if not keys:
        return {}
    days = _newest_days(session, keys, since, limit)
    if not days:
        return {}
    # A range of the open rows' index each (an OR of ranges would be read as one filtered scan).
    branches = [
        select(DELIVERIES, _reason.label("reason_key"), _error.label("error_key"))
        .where(*_dead_in([span]), _of(keys))
        for span in _spans(days, since)
    ]
    rows = (union_all(*branches) if len(branches) > 1 else branches[0]).subquery()
    latest_first = (rows.c.scheduled_at.desc(), rows.c.id.desc())
    rank = func.row_number().over(partition_by=(rows.c.reason_key, rows.c.error_key), order_by=latest_first)
    ranked = select(rows, rank.label("rank")).subquery()
    query = (
        select(ranked, RECIPIENTS.c.external_id)
        .join(RECIPIENTS, RECIPIENTS.c.id == ranked.c.recipient_id)
        .where(ranked.c.rank <= limit)
        .order_by(ranked.c.rank)
    )
    found: dict[GroupKey, list[dict[str, Any]]] = {}
    for row in session.execute(query):
        key = GroupKey(row.reason_key, row.error_key)
        found.setdefault(key, []).append(delivery_dict(row, row.external_id))
    return found


def _newest_days(
    session: Session, keys: Sequence[GroupKey], since: datetime | None, limit: int
) -> list[date]:
    """The days that hold each group's ``limit`` newest deaths (all of its days if fewer): those
    whose newer days hold fewer, at most ``limit`` a group, in one statement."""
    t = DEAD_LETTER_DAYS.c
    newer = func.sum(t.deaths).over(partition_by=(t.reason, t.error), order_by=t.day.desc()) - t.deaths
    listed = select(t.day, newer.label("newer")).where(
        or_(*(and_(t.reason == key.reason, t.error == key.error) for key in keys))
    )
    if since is not None:
        listed = listed.where(t.day >= _utc_day(since))
    ranked = listed.subquery()
    chosen = select(ranked.c.day).where(ranked.c.newer < limit).distinct()
    return [_as_date(day) for day in session.scalars(chosen)]


def _of(keys: Sequence[GroupKey]) -> ColumnElement[bool]:
    return or_(*(and_(_reason == key.reason, _error == key.error) for key in keys))


def _dead_in(spans: Sequence[Span]) -> list[ColumnElement[bool] | TextClause]:
    """Dead rows scheduled in one of ``spans``: ranges of the open rows' index."""
    return [
        text(OPEN_PREDICATE),
        _C.status == DeliveryStatus.dead.value,
        or_(*(and_(_C.scheduled_at >= start, _C.scheduled_at < end) for start, end in spans)),
    ]


def _spans(days: Sequence[date], since: datetime | None) -> list[Span]:
    """These days as ranges of scheduled time (from ``since`` on its day), consecutive ones as one."""
    spans: list[Span] = []
    for day in sorted(set(days)):
        start, end = _midnight(day), _midnight(day + timedelta(days=1))
        if since is not None:
            start = max(start, since)
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _as_date(value: date | str) -> date:
    # SQLite gives a literal or an aggregate of a date column back as its text.
    return value if isinstance(value, date) else date.fromisoformat(value)


def _utc_day(instant: datetime) -> date:
    return instant.astimezone(UTC).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
