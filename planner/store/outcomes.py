"""A worker batch's outcome writes, each conditional on the batch's claim.

A final outcome (sent, dead, suppressed...) changes a delivery only while it is ``sending`` under the
claim token of the batch writing it. When it is not (the batch's lease ran out, the delivery was
recovered and perhaps sent by another worker), the status stays as the new owner left it and the
late result is kept on the timeline as a ``stale_outcome`` entry, with what the provider said: a
stale *acceptance* stays visible in ``deliveries show`` and the dashboard.

One outcome (the common case: a message just sent) goes straight to the driver: this runs once per
message, and compiling a statement would cost more than running it. PostgreSQL: the update (and the
timeline entry, when there is one) in one statement; SQLite: one short transaction. A plain "sent"
writes no entry: the row implies it (``planner.store.queries.timeline``).

An outcome whose webhook event some endpoint wants (:class:`Final`'s ``webhook``, decided by the batch
from the types wanted at its claim) writes it with the outcome, and one that carries the copy of its
message (:mod:`planner.store.message_copies`) writes that too, only when the outcome was written: in the
same statement on PostgreSQL, in the same transaction on SQLite (:mod:`planner.store.webhooks`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from planner.core.job_batches import JobBatch
from planner.core.message_copy import MessageCopy
from planner.core.policy import PlanningPolicy
from planner.core.status import DeliveryStatus
from planner.core.webhook_events import WebhookEvent
from planner.store import webhooks
from planner.store.batch_connection import BatchConnection
from planner.store.fallbacks import after_failure
from planner.store.message_copies import (
    PG_MANY_COPIES,
    PG_ONE_COPY,
    SQLITE_ONE_COPY,
    copy_params,
    many_copy_params,
)
from planner.store.pauses import pause_for_adapter_config
from planner.store.reassign import Move, Reassigned, reassign
from planner.store.tables import RECIPIENTS
from planner.store.timeline import event_row, record_events
from planner.store.types import UTCDateTime, instant_binder

log = structlog.get_logger("planner.delivery")


@dataclass(slots=True)
class Final:
    """One final outcome; ``event`` is its timeline entry (None for a plain "sent": implied by the
    row), ``webhook`` the event it emits when an endpoint wants its type (written only with it)."""

    delivery_id: int
    status: str
    reason: str | None
    last_error: str | None
    provider_message_id: str | None
    sent_at: datetime | None
    event: dict[str, Any] | None
    webhook: WebhookEvent | None = None
    #: The language of the templates the message was rendered from (``delivery.template_locale``).
    locale: str | None = None
    #: What was handed to the provider, kept with the outcome (None: nothing to keep).
    message: MessageCopy | None = None


_SENT = (
    "UPDATE delivery SET status = %(status)s, reason = %(reason)s, last_error = %(last_error)s, "
    "provider_message_id = %(pmid)s, sent_at = %(sent_at)s, template_locale = %(locale)s, "
    "lease_until = NULL, updated_at = %(now)s "
    "WHERE id = %(id)s AND status = 'sending' AND claim_id = %(claim)s"
)
_PG_ONE_SENT = f"{_SENT} RETURNING id"
# A timeline entry copies its delivery's local date (its month's partition on PostgreSQL).
_PG_ENTRY = (
    "INSERT INTO delivery_event (delivery_id, local_date, at, event, status, reason, detail) "
    "SELECT id, local_date, %(at)s, %(event)s, %(status)s, %(reason)s, CAST(%(detail)s AS json) FROM u"
)


def _pg_one_statement(entry: bool, copy: bool, webhook: bool) -> str:
    """One outcome with what goes with it (its timeline entry, its message's copy, its webhook
    event), in one statement: each a data-modifying CTE on the updated row ``u``, so all or none."""
    if not (entry or copy or webhook):
        return _PG_ONE_SENT
    parts = [f"u AS ({_SENT} RETURNING id, local_date)"]
    parts += [f"e AS ({_PG_ENTRY})"] if entry else []
    parts += [PG_ONE_COPY] if copy else []
    parts += [f"w AS ({webhooks.PG_ONE})"] if webhook else []
    return f"WITH {', '.join(parts)} SELECT id FROM u"


#: The PostgreSQL statement of one outcome, by (has a timeline entry, a message copy, a webhook event).
_PG_ONE = {
    (entry, copy, webhook): _pg_one_statement(entry, copy, webhook)
    for entry in (False, True)
    for copy in (False, True)
    for webhook in (False, True)
}
_SQLITE_ONE_FINAL = (
    "UPDATE delivery SET status = :status, reason = :reason, last_error = :last_error, "
    "provider_message_id = :pmid, sent_at = :sent_at, template_locale = :locale, lease_until = NULL, "
    "updated_at = :now WHERE id = :id AND status = 'sending' AND claim_id = :claim RETURNING id"
)
_SQLITE_ONE_EVENT = (
    "INSERT INTO delivery_event (delivery_id, local_date, at, event, status, reason, detail) "
    "VALUES (:id, (SELECT local_date FROM delivery WHERE id = :id), :at, :event, :status, :reason, :detail)"
)
# Several outcomes in one statement (PostgreSQL); returns the ids it changed.
_PG_FINALS_SQL = (
    "WITH v AS (SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]), "
    "CAST(:reasons AS varchar[]), CAST(:errors AS varchar[]), CAST(:pmids AS varchar[]), "
    "CAST(:sent AS timestamptz[]), CAST(:ats AS timestamptz[]), CAST(:events AS varchar[]), "
    "CAST(:details AS json[]), CAST(:locales AS varchar[])) "
    "AS v(id, status, reason, last_error, pmid, sent_at, at, event, detail, locale)), "
    "u AS (UPDATE delivery AS d SET status = v.status, reason = v.reason, last_error = v.last_error, "
    "provider_message_id = v.pmid, sent_at = v.sent_at, template_locale = v.locale, lease_until = NULL, "
    "updated_at = :now "
    "FROM v WHERE d.id = v.id AND d.status = 'sending' AND d.claim_id = :claim "
    "RETURNING d.id, d.local_date), "
    "e AS (INSERT INTO delivery_event (delivery_id, local_date, at, event, status, reason, detail) "
    "SELECT v.id, u.local_date, v.at, v.event, v.status, v.reason, v.detail FROM v JOIN u ON u.id = v.id "
    "WHERE v.event IS NOT NULL)"
)
_PG_FINALS = text(f"{_PG_FINALS_SQL} SELECT id FROM u").bindparams(bindparam("now", type_=UTCDateTime))
_PG_FINALS_COPIES = text(f"{_PG_FINALS_SQL}, {PG_MANY_COPIES} SELECT id FROM u").bindparams(
    bindparam("now", type_=UTCDateTime)
)


def _params(
    final: Final, token: str, now: datetime, instant: Callable[[datetime | None], Any]
) -> dict[str, Any]:
    row = {
        "id": final.delivery_id,
        "status": final.status,
        "reason": final.reason,
        "last_error": final.last_error,
        "pmid": final.provider_message_id,
        "sent_at": instant(final.sent_at),
        "locale": final.locale,
        "now": instant(now),
        "claim": token,
    }
    if final.event is not None:
        row["at"] = instant(final.event["at"])
        row["event"] = final.event["event"]
        row["detail"] = json.dumps(final.event["detail"]) if final.event["detail"] is not None else None
    if final.webhook is not None:
        row |= webhooks.one_params(final.webhook, instant)
    if final.message is not None:
        row |= copy_params(final.message)
    return row


def write_one(db: BatchConnection, final: Final, token: str, now: datetime) -> bool:
    """One final outcome, committed before this returns; False when the claim was lost (the outcome
    is then kept as a ``stale_outcome`` entry). Driver errors are raised as SQLAlchemy's, a lost
    connection flagged, so the caller can write again on a new one."""
    row = _params(final, token, now, db.instant)
    raw = db.driver()
    dialect = db.engine.dialect
    cursor = raw.cursor()
    try:
        if db.postgres:
            cursor.execute(
                _PG_ONE[(final.event is not None, final.message is not None, final.webhook is not None)],
                row,
                prepare=True,
            )
            written = cursor.fetchone() is not None
        else:
            written = _sqlite_one(raw, cursor, row, final)
    except dialect.loaded_dbapi.Error as exc:
        # Parameters hidden: they hold the message's text, which is never logged.
        raise DBAPIError.instance(
            None, row, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
            connection_invalidated=dialect.is_disconnect(exc, raw, cursor), dialect=dialect,
        ) from exc  # fmt: skip
    finally:
        cursor.close()
    if not written and db.postgres:
        _record_stale_pg(db, [final], token, now)
    return written


def _sqlite_one(raw: Any, cursor: Any, row: dict[str, Any], final: Final) -> bool:
    cursor.execute("BEGIN IMMEDIATE")
    try:
        written = cursor.execute(_SQLITE_ONE_FINAL, row).fetchone() is not None
        if written and final.event is not None:
            cursor.execute(_SQLITE_ONE_EVENT, row)
        if written and final.webhook is not None:
            cursor.execute(webhooks.SQLITE_ONE, row)
        if written and final.message is not None:
            cursor.execute(SQLITE_ONE_COPY, row)
        if not written:
            stale = stale_entry(final, row["claim"])
            stale["detail"] = json.dumps(stale["detail"])
            cursor.execute(_SQLITE_ONE_EVENT, {**stale, "id": final.delivery_id, "at": row["now"]})
        cursor.execute("COMMIT")
        return written
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise


def write_many(connection: Connection, finals: Sequence[Final], token: str, now: datetime) -> set[int]:
    """Several final outcomes in the caller's transaction, with the webhook events of those written;
    returns the ids whose claim was lost (kept as ``stale_outcome`` entries)."""
    if not finals:
        return set()
    if connection.dialect.name == "postgresql":
        written = _write_pg_many(connection, finals, token, now)
    else:
        instant = instant_binder(connection.dialect)
        written = set()
        for final in finals:
            row = _params(final, token, now, instant)
            if connection.exec_driver_sql(_SQLITE_ONE_FINAL, row).first() is not None:
                written.add(final.delivery_id)
                if final.event is not None:
                    connection.exec_driver_sql(_SQLITE_ONE_EVENT, row)
                if final.message is not None:
                    connection.exec_driver_sql(SQLITE_ONE_COPY, row)
    stale = [f for f in finals if f.delivery_id not in written]
    emitted = [f.webhook for f in finals if f.webhook is not None and f.delivery_id in written]
    if stale or emitted:
        with Session(bind=connection) as session:
            record_stale(session, stale, token, now)
            webhooks.emit(session, emitted, now)
    return {f.delivery_id for f in stale}


def record_stale(session: Session, finals: Iterable[Final], token: str, now: datetime) -> None:
    """Keep late outcomes (the batch lost its claim first) as ``stale_outcome`` timeline entries."""
    record_events(session, [_stale_row(f, token, now) for f in finals])


def _write_pg_many(connection: Connection, finals: Sequence[Final], token: str, now: datetime) -> set[int]:
    from psycopg.types.json import Json  # what SQLAlchemy's JSON type binds on psycopg

    no_event: dict[str, Any] = {"at": None, "event": None, "detail": None}  # a plain "sent"
    entries = [f.event or no_event for f in finals]
    kept = [f for f in finals if f.message is not None]
    copies = many_copy_params([f.delivery_id for f in kept], [f.message for f in kept if f.message])
    result = connection.execute(
        _PG_FINALS_COPIES if kept else _PG_FINALS,
        {
            "ids": [f.delivery_id for f in finals],
            "statuses": [f.status for f in finals],
            "reasons": [f.reason for f in finals],
            "errors": [f.last_error for f in finals],
            "pmids": [f.provider_message_id for f in finals],
            "sent": [f.sent_at for f in finals],
            "ats": [e["at"] for e in entries],
            "events": [e["event"] for e in entries],
            "details": [Json(e["detail"]) for e in entries],
            "locales": [f.locale for f in finals],
            "now": now,
            "claim": token,
        }
        | (copies if kept else {}),
    )
    return {int(row[0]) for row in result}


def stale_entry(final: Final, token: str) -> dict[str, Any]:
    """The ``stale_outcome`` timeline entry of an outcome that arrived after its claim was lost."""
    detail = {
        "outcome": final.status,
        "reason": final.reason,
        "provider_message_id": final.provider_message_id,
        "error": final.last_error,
        "claim_id": token,
    }
    return {"event": "stale_outcome", "status": None, "reason": final.reason, "detail": detail}


def _stale_row(final: Final, token: str, now: datetime) -> dict[str, Any]:
    entry = stale_entry(final, token)
    return event_row(final.delivery_id, now, entry["event"], reason=entry["reason"], detail=entry["detail"])


def _record_stale_pg(db: BatchConnection, finals: Iterable[Final], token: str, now: datetime) -> None:
    with Session(bind=db.single_statements()) as session:
        record_stale(session, finals, token, now)


def mark_invalid(session: Session, recipient_id: int, channel: str, reason: str, now: datetime) -> None:
    """The provider says the recipient's address on ``channel`` is invalid: the rules suppress it."""
    session.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id)
        .values({f"{channel}_invalid": reason, "updated_at": now})
    )


def mark_opted_out(session: Session, recipient_id: int, channel: str, now: datetime) -> None:
    """The provider says the recipient opted out of ``channel`` (an SMS STOP)."""
    session.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id)
        .values({f"{channel}_opt_out": True, "updated_at": now})
    )


@dataclass(frozen=True)
class Release:
    """A claimed delivery handed back to a new job instead of being finished."""

    move: Move
    status: DeliveryStatus
    reason: str
    event: str
    refund: bool
    #: What the provider said, when the release follows a provider call (a retry): kept as a stale
    #: outcome if the claim was lost meanwhile.
    answer: Final | None = None


@dataclass
class Outcomes:
    """Outcomes decided but not yet written."""

    finals: list[Final] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    invalid_addresses: list[tuple[int, str, str]] = field(default_factory=list)
    #: (recipient id, channel) the provider says the recipient opted out of.
    opt_outs: list[tuple[int, str]] = field(default_factory=list)
    #: Channels whose adapter proved its configuration wrong: (channel, redacted error).
    config_pauses: list[tuple[str, str]] = field(default_factory=list)
    #: Webhook events of what the provider said of the recipient (an opt-out, an invalid address).
    webhooks: list[WebhookEvent] = field(default_factory=list)
    #: Final outcomes that may call a fallback: (delivery id, the conditions met), planned in the
    #: transaction that writes the outcome (:mod:`planner.store.fallbacks`).
    failures: list[tuple[int, frozenset[str]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.finals or not self.only_finals())

    def only_finals(self) -> bool:
        return not (
            self.releases
            or self.invalid_addresses
            or self.opt_outs
            or self.config_pauses
            or self.webhooks
            or self.failures
        )

    def emits(self) -> bool:
        return bool(self.webhooks) or any(f.webhook is not None for f in self.finals)


@dataclass(frozen=True)
class Written:
    #: The released deliveries' new jobs, to enqueue now that the commit is done.
    moved: Reassigned
    #: Deliveries whose claim was lost before their outcome was written (kept as stale outcomes).
    stale: set[int]
    #: The jobs of fallbacks planned with the outcomes, to enqueue now that the commit is done.
    fallbacks: list[JobBatch] = field(default_factory=list)


def write(
    db: BatchConnection,
    out: Outcomes,
    token: str,
    now: datetime,
    batch_size: int,
    policy: PlanningPolicy | None = None,
) -> Written:
    """Make a batch's pending outcomes durable under its claim ``token``; with ``policy``, plan the
    fallbacks the failures call, in the same transaction.

    A connection the server dropped (a restart) is replaced and the write made once more: the
    statements only change deliveries still ``sending`` under this claim, so a write that did commit
    before the connection died changes nothing the second time.
    """
    try:
        return _write_once(db, out, token, now, batch_size, policy)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost while recording outcomes; writing them on a new one")
        db.drop()
        return _write_once(db, out, token, now, batch_size, policy)


def _write_once(
    db: BatchConnection,
    out: Outcomes,
    token: str,
    now: datetime,
    batch_size: int,
    policy: PlanningPolicy | None,
) -> Written:
    if len(out.finals) == 1 and out.only_finals():
        # The common case (one message sent): straight to the driver, one transaction.
        final = out.finals[0]
        stale = set() if write_one(db, final, token, now) else {final.delivery_id}
        return Written(Reassigned(), stale)
    if db.postgres and out.only_finals() and not out.emits():
        # One statement in autocommit; with webhook events, the transaction below holds both.
        return Written(Reassigned(), write_many(db.single_statements(), out.finals, token, now))
    connection = db.transactional()
    with connection.begin(), Session(bind=connection) as session:
        stale = write_many(connection, out.finals, token, now)
        moved, lost = _write_releases(session, out.releases, token, now, batch_size)
        for recipient_id, channel, reason in out.invalid_addresses:
            mark_invalid(session, recipient_id, channel, reason, now)
        for recipient_id, channel in out.opt_outs:
            mark_opted_out(session, recipient_id, channel, now)
        for channel, error in out.config_pauses:
            pause_for_adapter_config(session, channel, error, now)
        webhooks.emit(session, out.webhooks, now)
        fallbacks = _plan_fallbacks(session, out.failures, stale, now, policy)
    return Written(moved, stale | lost, fallbacks)


def _plan_fallbacks(
    session: Session,
    failures: list[tuple[int, frozenset[str]]],
    stale: set[int],
    now: datetime,
    policy: PlanningPolicy | None,
) -> list[JobBatch]:
    """The fallbacks the written failures call (a stale outcome calls none: it changed nothing)."""
    jobs = []
    for delivery_id, conditions in failures:
        if policy is None or delivery_id in stale:
            continue
        planned = after_failure(session, delivery_id, conditions, reported=False, policy=policy, now=now)
        if planned is not None and planned.job is not None:
            jobs.append(planned.job)
    return jobs


def _write_releases(
    session: Session, releases: list[Release], token: str, now: datetime, batch_size: int
) -> tuple[Reassigned, set[int]]:
    """Give the released deliveries new jobs (only those still held under ``token``); a provider's
    answer whose delivery was not held any more is kept as a stale outcome."""
    groups: dict[tuple[DeliveryStatus, str, str, bool], list[Move]] = {}
    for r in releases:
        groups.setdefault((r.status, r.reason, r.event, r.refund), []).append(r.move)
    moved = Reassigned()
    for (status, reason, event, refund), moves in groups.items():
        moved += reassign(
            session,
            moves,
            now,
            status=status,
            reason=reason,
            event=event,
            from_statuses=[DeliveryStatus.sending],
            attempts="refund" if refund else "keep",
            batch_size=batch_size,
            claim=token,
        )
    lost = [r.answer for r in releases if r.answer is not None and r.move.delivery_id not in moved.ids]
    if lost:
        record_stale(session, lost, token, now)
    return moved, {f.delivery_id for f in lost}
