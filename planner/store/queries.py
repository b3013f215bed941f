"""Read-side queries shared by the CLI and the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, func, literal, select, text, tuple_
from sqlalchemy.orm import Session

from planner.core.status import DeliveryStatus
from planner.errors import NotFound
from planner.store.dialect import dialect_of
from planner.store.message_copies import message_copy
from planner.store.models import OPEN_PREDICATE, OPEN_STATUSES, Delivery, PlannerRun, Recipient
from planner.store.tables import DELIVERIES, PAUSES, RECIPIENTS, RUNS, SUBSCRIPTIONS
from planner.store.tables import DELIVERY_EVENTS as EVENTS
from planner.store.types import UTCDateTime


def insert_ignoring_duplicates(
    session: Session, table: Table, rows: list[dict[str, Any]], *also: Any, returning: Any = None
) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (or ``returning``): the rows that were new
    (and the columns ``also`` names)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    dialect_insert = pg_insert if dialect_of(session) == "postgresql" else sqlite_insert
    column = table.c.id if returning is None else returning
    return dialect_insert(table).values(rows).on_conflict_do_nothing().returning(column, *also)


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    recipient: str | None = None
    kind: str | None = None
    channel: str | None = None
    since: datetime | None = None
    limit: int | None = None
    #: Keyset paging: only rows after this (scheduled_at, id) in the list's order (planner.core.paging).
    after: tuple[datetime, int] | None = None
    #: The list's order: (scheduled_at, id) ascending, or latest first.
    newest_first: bool = False


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def delivery_dict(delivery: Delivery | Row[Any], recipient_external_id: str) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "dedup_key": delivery.dedup_key,
        "recipient_id": recipient_external_id,
        "subscription_id": delivery.subscription_id,
        "kind": delivery.kind,
        "channel": delivery.channel,
        "queue": delivery.queue,
        "local_date": _iso(delivery.local_date),
        "occurrence_at": _iso(delivery.occurrence_at),
        "scheduled_at": delivery.scheduled_at.isoformat(),
        "status": delivery.status,
        "reason": delivery.reason,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "provider_message_id": delivery.provider_message_id,
        "provider_status": delivery.provider_status,
        "job_id": delivery.job_id,
        "sent_at": _iso(delivery.sent_at),
        "created_at": delivery.created_at.isoformat(),
        "updated_at": delivery.updated_at.isoformat(),
        "template_locale": delivery.template_locale,
        "fallback_rule": delivery.fallback,
        "fallback_for": fallback_for(delivery.planned_detail),
    }


def fallback_for(planned_detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """The delivery a fallback stands in for, and why, from its first timeline entry's detail."""
    if not planned_detail or planned_detail.get("source") != "fallback":
        return None
    return {"delivery_id": planned_detail.get("fallback_for"), "because": planned_detail.get("because")}


def fallback_delivery(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fallback standing in for a delivery, from the ``fallback_planned`` entry of its timeline."""
    for entry in entries:
        if entry["event"] == "fallback_planned" and entry["detail"]:
            link = entry["detail"]
            keys = (("delivery_id", "fallback_delivery_id"), ("channel", "channel"), ("because", "because"))
            return {name: link.get(key) for name, key in keys}
    return None


def _with_recipient() -> Any:
    return select(DELIVERIES, RECIPIENTS.c.external_id.label("recipient_external_id")).join(
        RECIPIENTS, RECIPIENTS.c.id == DELIVERIES.c.recipient_id
    )


def filter_conditions(flt: DeliveryFilter) -> list[ColumnElement[bool]]:
    """The conditions of ``flt`` on recipient, kind, channel and since (its status and paging aside)."""
    c = DELIVERIES.c
    conditions: list[ColumnElement[bool]] = []
    if flt.recipient:
        # The recipient's id first (one lookup), so the deliveries are found by their own index.
        wanted = select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == flt.recipient)
        conditions.append(c.recipient_id == wanted.scalar_subquery())
    if flt.kind:
        conditions.append(c.kind == flt.kind)
    if flt.channel:
        conditions.append(c.channel == flt.channel)
    if flt.since:
        conditions.append(c.scheduled_at >= flt.since)
    return conditions


def after_cursor(flt: DeliveryFilter) -> list[ColumnElement[bool]]:
    """Keyset paging: the rows after ``flt.after`` in the list's order (none without a cursor)."""
    if flt.after is None:
        return []
    key = tuple_(DELIVERIES.c.scheduled_at, DELIVERIES.c.id)
    bound = tuple_(literal(flt.after[0], UTCDateTime()), literal(flt.after[1]))
    return [key < bound if flt.newest_first else key > bound]


def list_order(flt: DeliveryFilter) -> tuple[Any, Any]:
    """A list's stable order: (scheduled_at, id), ascending or latest first."""
    c = DELIVERIES.c
    return (c.scheduled_at.desc(), c.id.desc()) if flt.newest_first else (c.scheduled_at, c.id)


def list_deliveries(session: Session, flt: DeliveryFilter) -> list[dict[str, Any]]:
    """The deliveries matching ``flt``, in a stable order: (scheduled_at, id), ascending or latest
    first, from ``flt.after`` on (keyset paging: each page costs the same, however deep)."""
    c = DELIVERIES.c
    stmt = _with_recipient()
    if flt.status:
        stmt = stmt.where(c.status == flt.status)
        if flt.status in OPEN_STATUSES:  # the open-status index (literal: SQLite's partial index needs it)
            stmt = stmt.where(text(OPEN_PREDICATE))
    stmt = stmt.where(*filter_conditions(flt), *after_cursor(flt)).order_by(*list_order(flt))
    if flt.limit:
        stmt = stmt.limit(flt.limit)
    return [delivery_dict(row, row.recipient_external_id) for row in session.execute(stmt)]


def get_delivery(session: Session, delivery_id: int) -> dict[str, Any]:
    """One delivery with its data, its full timeline and the kept copy of its message."""
    row = session.execute(_with_recipient().where(DELIVERIES.c.id == delivery_id)).first()
    if row is None:
        raise NotFound("delivery", delivery_id)
    data = delivery_dict(row, row.recipient_external_id)
    data["data"] = row.data
    data["timeline"] = timeline(session, delivery_id, row)
    data["fallback_delivery"] = fallback_delivery(data["timeline"])
    # What was sent, as kept (planner.store.message_copies): None before a final outcome after a
    # provider call, and past PLANNER_STORED_MESSAGE_RETENTION.
    data["message"] = message_copy(session, delivery_id)
    return data


def find_delivery_by_key(session: Session, dedup_key: str) -> dict[str, Any] | None:
    row = session.execute(_with_recipient().where(DELIVERIES.c.dedup_key == dedup_key)).first()
    if row is None:
        return None
    data = delivery_dict(row, row.recipient_external_id)
    data["data"] = row.data
    return data


def timeline(session: Session, delivery_id: int, row: Row[Any] | None = None) -> list[dict[str, Any]]:
    """A delivery's timeline, oldest first: its stored entries and the ones its row implies.

    ``row`` is the delivery's row when the caller has it (any select with the columns of
    :data:`IMPLYING_COLUMNS`); without it, one more statement reads them.
    """
    if row is None:
        row = session.execute(select(*IMPLYING_COLUMNS).where(DELIVERIES.c.id == delivery_id)).first()
    events = session.execute(select(EVENTS).where(EVENTS.c.delivery_id == delivery_id).order_by(EVENTS.c.id))
    stored = [
        {"at": e.at.isoformat(), "event": e.event, "status": e.status, "reason": e.reason, "detail": e.detail}
        for e in events
    ]
    return stored if row is None else with_implied_entries(row, stored)


#: The delivery columns the implied entries are read from.
IMPLYING_COLUMNS = tuple(
    DELIVERIES.c[name]
    for name in (
        "created_at",
        "planned_status",
        "planned_reason",
        "planned_detail",
        "status",
        "sent_at",
        "attempts",
        "provider_message_id",
    )
)


def with_implied_entries(row: Any, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``stored`` (in id order) with the entries the delivery row implies, exactly as the rows that
    were written for them before migration 0014:

    * "planned" at ``created_at``, first (nothing happens to a delivery before it exists), unless
      ``planned_status`` is None: a row written before 0014, whose "planned" entry is stored;
    * the worker's "sent" at ``sent_at`` with the attempt and the provider's message id, unless a
      "sent" entry is stored (a delivery sent before 0014). A sent delivery changes no more, so the
      row still holds what the entry said; it goes before the provider's callbacks (``provider_*``,
      which need the message id the send returned) and after everything else. The order is the
      order of writing, not of ``at``: the worker's and the API's clocks may differ.
    """
    entries = list(stored)
    if row.status == "sent" and row.sent_at is not None and all(e["event"] != "sent" for e in stored):
        sent = {
            "at": row.sent_at.isoformat(),
            "event": "sent",
            "status": "sent",
            "reason": None,
            "detail": {"provider_message_id": row.provider_message_id, "attempt": row.attempts},
        }
        callbacks = [i for i, e in enumerate(entries) if e["event"].startswith("provider_")]
        entries.insert(callbacks[0] if callbacks else len(entries), sent)
    if row.planned_status is not None:
        planned = {
            "at": row.created_at.isoformat(),
            "event": "planned",
            "status": row.planned_status,
            "reason": row.planned_reason,
            "detail": row.planned_detail,
        }
        entries.insert(0, planned)
    return entries


def planned_details(session: Session) -> dict[int, dict[str, Any]]:
    """Every delivery's first timeline entry's detail (empty when it had none), by delivery id."""
    c = DELIVERIES.c
    found = {
        delivery_id: detail or {}
        for delivery_id, detail in session.execute(
            select(c.id, c.planned_detail).where(c.planned_status.is_not(None))
        )
    }
    legacy = session.execute(select(EVENTS.c.delivery_id, EVENTS.c.detail).where(EVENTS.c.event == "planned"))
    found.update((delivery_id, detail or {}) for delivery_id, detail in legacy)
    return found


def pause_list(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(PAUSES).order_by(PAUSES.c.created_at, PAUSES.c.id))
    return [
        {
            "scope": p.scope,
            "value": p.value,
            "since": p.created_at.isoformat(),
            "reason": p.reason,
            "detail": p.detail,
        }
        for p in rows
    ]


def recipient_by_external_id(session: Session, external_id: str) -> Recipient:
    found = session.scalars(select(Recipient).where(RECIPIENTS.c.external_id == external_id)).first()
    if found is None:
        raise NotFound("recipient", external_id)
    return found


def last_runs(session: Session) -> tuple[PlannerRun | None, PlannerRun | None]:
    """The latest planner run, and the latest successful one."""
    latest = session.scalars(select(PlannerRun).order_by(RUNS.c.started_at.desc()).limit(1)).first()
    succeeded = session.scalars(
        select(PlannerRun).where(RUNS.c.status == "succeeded").order_by(RUNS.c.started_at.desc()).limit(1)
    ).first()
    return latest, succeeded


def oldest_overdue_cursor(session: Session, now: datetime) -> datetime | None:
    """The earliest ``next_at`` of an active subscription that is already in the past (None if none)."""
    value = session.scalar(
        select(func.min(SUBSCRIPTIONS.c.next_at)).where(
            SUBSCRIPTIONS.c.active.is_(True), SUBSCRIPTIONS.c.next_at < now
        )
    )
    return value if isinstance(value, datetime) else None


def oldest_due_delivery(session: Session, now: datetime) -> datetime | None:
    """The earliest ``scheduled_at`` of a delivery waiting to be sent that is already in the past.

    Held-back deliveries (paused, quiet hours, rate limited, retrying) wait with their
    ``scheduled_at`` moved to when they go next, so a past one means no worker has taken it.
    """
    c = DELIVERIES.c
    waiting = [DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value]
    value = session.scalar(
        # The open-status index's own predicate, literal: SQLite uses a partial index only then.
        select(func.min(c.scheduled_at)).where(
            text(OPEN_PREDICATE), c.status.in_(waiting), c.scheduled_at < now
        )
    )
    return value if isinstance(value, datetime) else None


def run_dict(run: PlannerRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "status": run.status,
        "started_at": run.started_at.isoformat(),
        "finished_at": _iso(run.finished_at),
        "window_end": run.window_end.isoformat(),
        "occurrences": run.occurrences,
        "counts": run.counts,
        "error": run.error,
    }


def subscribed_kinds(session: Session) -> dict[tuple[str, str], int]:
    """(kind, channel) -> number of active subscriptions."""
    c = SUBSCRIPTIONS.c
    rows = session.execute(
        select(c.kind, c.channel, func.count()).where(c.active.is_(True)).group_by(c.kind, c.channel)
    )
    return {(kind, channel): int(n) for kind, channel, n in rows}
