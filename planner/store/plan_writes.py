"""How a planner chunk's plan is written: its deliveries (with their first timeline entries), the cursors.

Both databases get a chunk's rows as one parameter per statement, never one statement (or one set
of bound parameters) per row:

* **PostgreSQL**: one binary array per column, unnested into rows. psycopg parses a statement over
  4 KB or 50 parameters again on every execution and dumps arrays in text form with regex escaping;
  these go as binary arrays (``%(name)b``) through ``exec_driver_sql``.
* **SQLite**: one JSON array of rows, read by ``json_each`` inside SQLite, with the values already in
  the text forms SQLAlchemy stores (UTC instants as ``YYYY-MM-DD HH:MM:SS.ffffff``, so the stored
  text and its order are the same as any other write's). SQLAlchemy's executemany would process
  every parameter of every row in Python.

A delivery's first timeline entry ("planned") is not a row of its own: the delivery row holds its
status, reason and detail (``planned_*``; its instant is ``created_at``) and
:func:`planner.store.queries.timeline` reads it from there. A timeline row per delivery cost an
insert, an index entry and a foreign-key check each (docs/benchmarks.md, "The floor of a run").

Values are what the typed columns would store: instants go through UTCDateTime's check (aware,
converted to UTC), details are serialised as SQLAlchemy's JSON type does (an empty one is SQL NULL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from planner.core.planning import ChunkPlan, Cursor, PlannedDelivery
from planner.core.recipient import RecipientState
from planner.core.status import DeliveryStatus
from planner.core.webhook_events import (
    DeliveryFacts,
    delivery_outcome_event,
    outcome_event_type,
    public_recipient_id,
)
from planner.store.dialect import Dialect, utc_binder
from planner.store.webhook_endpoints import wanted_types
from planner.store.webhooks import emit

#: A plan's deliveries as they were inserted: (planned delivery, delivery id, job id).
Inserted = list[tuple[PlannedDelivery, int, str | None]]

_json_text = json.dumps  # what SQLAlchemy's JSON type (and psycopg's Json) serialise with

#: The columns a plan writes per delivery (the insert adds attempts and the two stamps).
DELIVERY_COLUMNS = (
    "dedup_key",
    "recipient_id",
    "subscription_id",
    "kind",
    "channel",
    "queue",
    "local_date",
    "occurrence_at",
    "scheduled_at",
    "status",
    "reason",
    "job_id",
    "planned_status",
    "planned_detail",
)
_DELIVERY_NAMES = ", ".join(DELIVERY_COLUMNS)
_PG_ARRAY_TYPES = [
    "varchar[]",
    "integer[]",
    "integer[]",
    "varchar[]",
    "varchar[]",
    "varchar[]",
    "date[]",
    "timestamptz[]",
    "timestamptz[]",
    "varchar[]",
    "varchar[]",
    "varchar[]",
    "varchar[]",
    "text[]",
]
# The first entry's reason is the reason the row is written with: planned_reason takes it from there.
PG_INSERT_PLAN = (
    f"INSERT INTO delivery ({_DELIVERY_NAMES}, planned_reason, attempts, created_at, updated_at)"
    f" SELECT {', '.join(c if c != 'planned_detail' else 'planned_detail::json' for c in DELIVERY_COLUMNS)},"
    " reason, 0, %(now)s, %(now)s FROM unnest("
    + ", ".join(f"%({name})b::{array}" for name, array in zip(DELIVERY_COLUMNS, _PG_ARRAY_TYPES, strict=True))
    + f") AS t({_DELIVERY_NAMES})"
    # No conflict target: the unique index is (dedup_key) on a single table, (dedup_key, local_date)
    # on a partitioned one, where a planned key carries its local date (planner.store.partitions).
    " ON CONFLICT DO NOTHING RETURNING id, dedup_key, job_id"
)
_PG_ADVANCE_CURSORS = (
    "UPDATE subscription SET next_at = t.next_at, next_local_date = t.next_local_date,"
    " next_wall_time = t.next_wall_time, updated_at = %(now)s"
    " FROM unnest(%(id)b::integer[], %(next_at)b::timestamptz[], %(next_local_date)b::date[],"
    " %(next_wall_time)b::time[])"
    " AS t(id, next_at, next_local_date, next_wall_time) WHERE subscription.id = t.id"
)


def _json_column(index: int) -> str:
    return f"json_extract(value, '$[{index}]')"


# "WHERE true" tells SQLite's parser that ON CONFLICT belongs to the INSERT, not to the SELECT's join.
# The detail goes in as JSON text (json_extract of an object would give SQLite's compact form, not
# the text SQLAlchemy's JSON type stores), so it travels as a string inside the row array.
_SQLITE_INSERT_DELIVERIES = (
    f"INSERT INTO delivery ({_DELIVERY_NAMES}, planned_reason, attempts, created_at, updated_at)"
    f" SELECT {', '.join(_json_column(i) for i in range(len(DELIVERY_COLUMNS)))},"
    f" {_json_column(DELIVERY_COLUMNS.index('reason'))}, 0, :now, :now"
    " FROM json_each(:rows) WHERE true"
    " ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key, job_id"
)
_SQLITE_ADVANCE_CURSORS = (
    "UPDATE subscription SET next_at = json_extract(t.value, '$[1]'),"
    " next_local_date = json_extract(t.value, '$[2]'), next_wall_time = json_extract(t.value, '$[3]'),"
    " updated_at = :now FROM json_each(:rows) AS t WHERE subscription.id = json_extract(t.value, '$[0]')"
)

#: Each status's text, looked up per row (an enum's ``.value`` is a descriptor call).
_STATUS_TEXT = {status: status.value for status in DeliveryStatus}


def write_plan(
    session: Session,
    dialect: Dialect,
    plan: ChunkPlan,
    jobs: Mapping[object, str],
    now: datetime,
    recipients: Mapping[int, RecipientState] | None = None,
) -> Inserted:
    """Insert the chunk's deliveries (a dedup conflict inserts nothing) with their first timeline
    entries, and the advanced cursors; returns what was inserted, with ids and job ids. Given the
    chunk's ``recipients``, the webhook events of the deliveries written skipped or suppressed
    are emitted too (:func:`emit_plan_events`)."""
    inserted: Inserted = []
    if plan.deliveries:
        job_ids = [jobs.get(d.dedup_key) for d in plan.deliveries]
        if dialect == "postgresql":
            inserted = _pg_insert(session, plan.deliveries, job_ids, now)
        else:
            inserted = _sqlite_insert(session, plan.deliveries, job_ids, now)
        if recipients is not None:
            emit_plan_events(session, inserted, recipients, now)
    if plan.cursors:
        if dialect == "postgresql":
            _pg_advance(session, plan.cursors, now)
        else:
            _sqlite_advance(session, plan.cursors, now)
    return inserted


#: The planner's outcomes a webhook event reports (the others are sends, or ``missed``).
_REPORTED = (DeliveryStatus.skipped, DeliveryStatus.suppressed)


def emit_plan_events(
    session: Session, inserted: Inserted, recipients: Mapping[int, RecipientState], now: datetime
) -> int:
    """``delivery.skipped`` and ``delivery.suppressed`` for the chunk's deliveries written so, when
    an enabled endpoint wants them: a chunk with none costs nothing, one with some a query for the
    wanted types and, when wanted, one insert for all of them (:func:`planner.store.webhooks.emit`)."""
    settled = [(d, i) for d, i, job_id in inserted if not job_id and d.status in _REPORTED]
    if not settled:
        return 0
    wanted = wanted_types(session)
    if not wanted.intersection(outcome_event_type(s.value, None) for s in _REPORTED):
        return 0
    events = [
        delivery_outcome_event(
            DeliveryFacts(delivery_id, public_recipient_id(recipients[d.recipient_id].external_id),
                          d.kind, d.channel, d.dedup_key, d.scheduled_at),
            _STATUS_TEXT[d.status], d.reason, now, attempts=0,
        )
        for d, delivery_id in settled
        if outcome_event_type(_STATUS_TEXT[d.status], d.reason) in wanted
    ]  # fmt: skip
    emitted = [e for e in events if e is not None]
    emit(session, emitted, now)
    return len(emitted)


def written_status(d: PlannedDelivery, job_id: str | None) -> str:
    """The status a planned delivery is inserted with.

    A delivery to send is written ``queued`` with its job id: no planned -> queued update after the
    enqueue. A crash between the commit and the enqueue leaves queued rows whose job is not in
    Redis, which is what the reconcile repairs.
    """
    return "queued" if job_id else _STATUS_TEXT[d.status]


def _matched(planned: Sequence[PlannedDelivery], rows: Any) -> Inserted:
    by_key = {d.dedup_key: d for d in planned}
    return [(by_key[dedup_key], delivery_id, job_id) for delivery_id, dedup_key, job_id in rows]


# -- PostgreSQL ---------------------------------------------------------------------------------


def _pg_insert(
    session: Session, planned: Sequence[PlannedDelivery], job_ids: list[str | None], now: datetime
) -> Inserted:
    utc = utc_binder(session)
    columns = {
        "dedup_key": [d.dedup_key for d in planned],
        "recipient_id": [d.recipient_id for d in planned],
        "subscription_id": [d.subscription_id for d in planned],
        "kind": [d.kind for d in planned],
        "channel": [d.channel for d in planned],
        "queue": [d.queue for d in planned],
        "local_date": [d.local_date for d in planned],
        "occurrence_at": [utc(d.occurrence_at) for d in planned],
        "scheduled_at": [utc(d.scheduled_at) for d in planned],
        "status": [written_status(d, job_id) for d, job_id in zip(planned, job_ids, strict=True)],
        "reason": [d.reason for d in planned],
        "job_id": job_ids,
        "planned_status": [_STATUS_TEXT[d.status] for d in planned],
        "planned_detail": [_json_text(d.detail) if d.detail else None for d in planned],
        "now": utc(now),
    }
    return _matched(planned, session.connection().exec_driver_sql(PG_INSERT_PLAN, columns))


def _pg_advance(session: Session, cursors: Mapping[int, Cursor], now: datetime) -> None:
    utc = utc_binder(session)
    session.connection().exec_driver_sql(
        _PG_ADVANCE_CURSORS,
        {
            "id": list(cursors),
            "next_at": [None if c.next_at is None else utc(c.next_at) for c in cursors.values()],
            "next_local_date": [c.next_local_date for c in cursors.values()],
            "next_wall_time": [c.next_wall_time for c in cursors.values()],
            "now": utc(now),
        },
    )


# -- SQLite -------------------------------------------------------------------------------------


def _sqlite_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _sqlite_time(value: time | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def _sqlite_run(session: Session, statement: str, rows: list[list[Any]], now: datetime) -> Any:
    return session.connection().exec_driver_sql(
        statement, {"rows": _json_text(rows), "now": utc_binder(session)(now)}
    )


def _sqlite_insert(
    session: Session, planned: Sequence[PlannedDelivery], job_ids: list[str | None], now: datetime
) -> Inserted:
    utc = utc_binder(session)  # the stored text form, as planner.store.types.instant_binder gives it
    rows = [
        [
            d.dedup_key,
            d.recipient_id,
            d.subscription_id,
            d.kind,
            d.channel,
            d.queue,
            _sqlite_date(d.local_date),
            utc(d.occurrence_at),
            utc(d.scheduled_at),
            written_status(d, job_id),
            d.reason,
            job_id,
            _STATUS_TEXT[d.status],
            _json_text(d.detail) if d.detail else None,
        ]
        for d, job_id in zip(planned, job_ids, strict=True)
    ]
    return _matched(planned, _sqlite_run(session, _SQLITE_INSERT_DELIVERIES, rows, now).all())


def _sqlite_advance(session: Session, cursors: Mapping[int, Cursor], now: datetime) -> None:
    utc = utc_binder(session)
    rows = [
        [sub_id, utc(c.next_at), _sqlite_date(c.next_local_date), _sqlite_time(c.next_wall_time)]
        for sub_id, c in cursors.items()
    ]
    _sqlite_run(session, _SQLITE_ADVANCE_CURSORS, rows, now)


__all__ = [
    "DELIVERY_COLUMNS",
    "PG_INSERT_PLAN",
    "Inserted",
    "emit_plan_events",
    "write_plan",
    "written_status",
]
