"""Sending deliveries: claim in the database, re-check, rate-limit, render, send, record.

A delivery is claimed by one conditional UPDATE (``queued``/``retrying``/``planned`` -> ``sending``,
counting the attempt, with a lease); only the claimer calls the provider, so duplicate jobs and
racing workers are harmless. Everything that is not a send goes back with a reason: paused and
quiet-hours deliveries wait (their attempt is refunded), rate-limited ones come back when the window
frees, failures retry with backoff or end ``dead``.

A batch is claimed, loaded and rendered together, but each provider call's outcome is committed
before the next provider call starts (outcomes that involve no provider ride along with the next
one), so a worker that dies costs at most the one message in flight. Its lease expires;
:func:`~planner.dispatch.leases.recover_expired_leases` hands the rest to another worker, which
sends with the same Message-ID. Every release to a new job goes through
:func:`~planner.dispatch.reassign.reassign`.

A digest delivery's events are bound to it in the claim's transaction and read with it
(:mod:`planner.store.digests`); one that finds none is recorded ``skipped`` (``empty_digest``).

A provider refusing the adapter's settings (``AdapterConfigError``) pauses the channel (reason
``adapter_config``) and puts the delivery back with its attempt refunded.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog
from sqlalchemy import Connection, Engine, Row, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from adapters import Adapter, AdapterConfigError, Message, PermanentError, TransientError, batch_session
from planner.core.checks import Audience, recheck_at_send
from planner.core.localtime import to_local
from planner.core.policy import PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.redact import redact
from planner.core.retry import RetryPolicy, decide_retry
from planner.core.status import DeliveryStatus
from planner.core.unsubscribe import UnsubscribeTarget, sign
from planner.delivery.templating import Renderer, TemplateFailure
from planner.dispatch.ratelimit import ProviderLimiter
from planner.dispatch.reassign import Move, Reassigned, enqueue_reassigned, reassign
from planner.store.digests import DigestContents, bind_events, digest_targets, load_contents
from planner.store.models import Delivery, Recipient, kinds_opted_out
from planner.store.pauses import (
    ADAPTER_CONFIG,
    PAUSE_DETAIL_MAX,
    active_pauses,
    is_paused,
    pause_for_adapter_config,
)
from planner.store.timeline import event_row
from planner.store.types import UTCDateTime, instant_binder

log = structlog.get_logger("planner.delivery")

CLAIMABLE = (DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value)
#: A job may run a little before its instant (clock skew between hosts); not more.
EARLY_TOLERANCE = timedelta(seconds=5)
PAUSE_POLL = timedelta(seconds=60)


def message_id_for(delivery_id: int, dedup_key: str, domain: str = "planner.local") -> str:
    """The same Message-ID on every attempt of a delivery, so duplicates are recognisable."""
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:16]
    return f"<delivery-{delivery_id}.{digest}@{domain}>"


@dataclass(frozen=True)
class _Release:
    """A claimed delivery handed back to a new job instead of being finished."""

    move: Move
    status: DeliveryStatus
    reason: str
    event: str
    refund: bool


@dataclass
class _Outcomes:
    """Outcomes decided but not yet written.

    Outcomes that involve no provider call (held back, rate-limited) wait here and are written in
    the transaction of the next provider call's outcome; a provider call's outcome is written
    before the next provider call starts (see :meth:`Deliverer._write`).
    """

    finals: list[dict[str, Any]] = field(default_factory=list)
    releases: list[_Release] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    invalid_addresses: list[tuple[int, str, str]] = field(default_factory=list)
    #: (recipient id, channel) the provider says the recipient opted out of.
    opt_outs: list[tuple[int, str]] = field(default_factory=list)
    #: Channels whose adapter proved its configuration wrong: (channel, redacted error).
    config_pauses: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.finals or not self.only_finals())

    def event_of(self, delivery_id: int) -> dict[str, Any] | None:
        """The timeline entry recorded with a final outcome (None for a plain "sent": implied)."""
        return next((e for e in self.events if e["delivery_id"] == delivery_id), None)

    def only_finals(self) -> bool:
        return not (self.releases or self.invalid_addresses or self.opt_outs or self.config_pauses)


@dataclass
class _Batch:
    """The state of one batch while its deliveries are sent one by one."""

    now: datetime
    report: BatchReport
    slots: _Slots
    pauses: frozenset[tuple[str, str]]
    db: _Connection
    #: The batch's hold on its claimed rows: ``lease_until`` as the claim (or the last renewal) wrote it.
    lease_until: datetime
    out: _Outcomes = field(default_factory=_Outcomes)
    #: The claimed digest deliveries and the events bound to them at the claim.
    digests: dict[int, DigestContents] = field(default_factory=dict)
    log: Any = None


# PostgreSQL: outcomes and their timeline entries in one statement (so one round trip when that is
# all there is to write); an entry is added only for a delivery this worker still held ``sending``.
# A plain "sent" has no entry to add (its event is NULL here): the row implies it (sent_at, attempts,
# provider_message_id; planner.store.queries.timeline reads it from there).
_PG_FINALS = text(
    "WITH v AS (SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]), "
    "CAST(:reasons AS varchar[]), CAST(:errors AS varchar[]), CAST(:pmids AS varchar[]), "
    "CAST(:sent AS timestamptz[]), CAST(:ats AS timestamptz[]), CAST(:events AS varchar[]), "
    "CAST(:details AS json[])) AS v(id, status, reason, last_error, pmid, sent_at, at, event, detail)), "
    "u AS (UPDATE delivery AS d SET status = v.status, reason = v.reason, last_error = v.last_error, "
    "provider_message_id = v.pmid, sent_at = v.sent_at, lease_until = NULL, updated_at = :now "
    "FROM v WHERE d.id = v.id AND d.status = 'sending' RETURNING d.id) "
    "INSERT INTO delivery_event (delivery_id, at, event, status, reason, detail) "
    "SELECT v.id, v.at, v.event, v.status, v.reason, v.detail FROM v JOIN u ON u.id = v.id "
    "WHERE v.event IS NOT NULL"
).bindparams(bindparam("now", type_=UTCDateTime))


# One outcome (the common case: a message just sent), sent straight to the driver: this runs once per
# message, and compiling a statement would cost more than running it. PostgreSQL: update and
# timeline entry in one statement; SQLite (local, no round trips): two. A plain "sent" is the update
# alone: its timeline entry is implied by the row.
_PG_ONE_SENT = (
    "UPDATE delivery SET status = %(status)s, reason = %(reason)s, last_error = %(last_error)s, "
    "provider_message_id = %(pmid)s, sent_at = %(sent_at)s, lease_until = NULL, updated_at = %(now)s "
    "WHERE id = %(id)s AND status = 'sending'"
)
_PG_ONE_FINAL = (
    f"WITH u AS ({_PG_ONE_SENT} RETURNING id) "
    "INSERT INTO delivery_event (delivery_id, at, event, status, reason, detail) "
    "SELECT id, %(at)s, %(event)s, %(status)s, %(reason)s, CAST(%(detail)s AS json) FROM u"
)
_SQLITE_ONE_FINAL = (
    "UPDATE delivery SET status = :status, reason = :reason, last_error = :last_error, "
    "provider_message_id = :pmid, sent_at = :sent_at, lease_until = NULL, updated_at = :now "
    "WHERE id = :id AND status = 'sending' RETURNING id"
)
_SQLITE_ONE_EVENT = (
    "INSERT INTO delivery_event (delivery_id, at, event, status, reason, detail) "
    "VALUES (:id, :at, :event, :status, :reason, :detail)"
)


class _Connection:
    """A batch's own database connection for its outcome writes, opened on first use.

    One connection for the whole batch: a checkout (and its pre-ping) per message would cost more
    than the write. When the server drops it (a restart), :meth:`drop` lets the next write open a
    fresh one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None
        self.autocommit: Connection | None = None
        instant = instant_binder(engine.dialect)
        #: An aware instant as the driver takes it for a UTCDateTime column.
        self.instant: Callable[[datetime | None], Any] = instant

    def driver(self) -> Any:
        """The driver's own connection: autocommit on PostgreSQL (one statement, one round trip);
        on SQLite the caller begins and commits."""
        postgres = self.engine.dialect.name == "postgresql"
        connection = self.single_statements() if postgres else self.transactional()
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


def _final_row(
    final: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    now: datetime,
    instant: Callable[[datetime | None], Any],
) -> dict[str, Any]:
    """The parameters of the one-outcome statements (``_PG_ONE_FINAL``/``_SENT``,
    ``_SQLITE_ONE_FINAL``/``_EVENT``); ``event`` is None for a plain "sent" (the row implies it)."""
    row = {
        "id": final["b_id"],
        "status": final["status"],
        "reason": final["reason"],
        "last_error": final["last_error"],
        "pmid": final["provider_message_id"],
        "sent_at": instant(final["sent_at"]),
        "now": instant(now),
    }
    if event is not None:
        row["at"] = instant(event["at"])
        row["event"] = event["event"]
        row["detail"] = json.dumps(event["detail"]) if event["detail"] is not None else None
    return row


def _write_one_final(
    db: _Connection, final: Mapping[str, Any], event: Mapping[str, Any] | None, now: datetime
) -> None:
    """One final outcome and its timeline entry (none for a plain "sent"), committed before this returns.

    Sent to the driver itself: this runs once per message, and SQLAlchemy's execution machinery
    (events, result set-up, a transaction object) would cost more than the statements. Driver errors
    are raised as SQLAlchemy's, a lost connection flagged, as :meth:`Deliverer._write` expects.
    """
    row = _final_row(final, event, now, db.instant)
    raw = db.driver()
    dialect = db.engine.dialect
    cursor = raw.cursor()
    try:
        if dialect.name == "postgresql":
            cursor.execute(_PG_ONE_FINAL if event is not None else _PG_ONE_SENT, row, prepare=True)
        else:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                if cursor.execute(_SQLITE_ONE_FINAL, row).fetchone() is not None and event is not None:
                    cursor.execute(_SQLITE_ONE_EVENT, row)
                cursor.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(
            None,
            row,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=dialect.is_disconnect(exc, raw, cursor),
            dialect=dialect,
        ) from exc
    finally:
        cursor.close()


class _Slots:
    """Provider rate-limit slots for one batch, taken from Redis in bulk as they are first needed.

    A slot taken for a delivery that then does not send (deferred, suppressed) is not given back:
    the limit errs on the side of sending less, never more.
    """

    def __init__(self, limiter: ProviderLimiter | None, remaining: Counter[str]) -> None:
        self.limiter = limiter
        #: Deliveries of the batch not yet past this point, per channel: how many slots to ask for.
        self.remaining = remaining
        self.held: Counter[str] = Counter()
        self.exhausted: set[str] = set()

    def take(self, channel: str) -> bool:
        if self.limiter is None:
            return True
        if not self.held[channel] and channel not in self.exhausted:
            self.held[channel] = self.limiter.acquire_up_to(channel, self.remaining[channel])
            if not self.held[channel]:
                self.exhausted.add(channel)
        if self.held[channel]:
            self.held[channel] -= 1
            return True
        return False


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    suppressed: int = 0
    skipped: int = 0
    waiting: int = 0
    #: Claimed, then left to another worker: this one's lease ran out before it reached them.
    taken_over: int = 0


class Deliverer:
    """Sends batches of deliveries. Every dependency is passed in."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        connection: redis.Redis,
        adapters: Mapping[str, Adapter],
        renderer: Renderer,
        policy: PlanningPolicy,
        retry: RetryPolicy,
        *,
        limiter: ProviderLimiter | None = None,
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 100,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        secrets: Collection[str] = (),
        unsubscribe: UnsubscribeLinks | None = None,
        digest_cap: int = 50,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.adapters = adapters
        self.renderer = renderer
        self.policy = policy
        self.retry = retry
        self.limiter = limiter
        self.lease = lease
        self.batch_size = batch_size
        self.clock = clock
        self.rng = rng or random.Random()
        #: Values never to be stored or logged (passwords, tokens) when an adapter error quotes them.
        self.secrets = tuple(secrets)
        self.unsubscribe = unsubscribe
        #: Events listed in a digest's template; the rest are counted (``events_more``).
        self.digest_cap = digest_cap
        #: Set by the worker on a warm shutdown: the batch hands its unsent deliveries back.
        self.stopping = threading.Event()

    # -- claim -----------------------------------------------------------------------------------

    def claim(self, session: Session, ids: Sequence[int], now: datetime) -> list[int]:
        table = Delivery.__table__  # type: ignore[attr-defined]
        result = session.execute(
            update(table)
            .where(
                table.c.id.in_(list(ids)),
                table.c.status.in_(CLAIMABLE),
                table.c.scheduled_at <= now + EARLY_TOLERANCE,
            )
            .values(
                status=DeliveryStatus.sending.value,
                attempts=table.c.attempts + 1,
                lease_until=now + self.lease,
                updated_at=now,
            )
            .returning(table.c.id)
        )
        return [int(row[0]) for row in result]

    def _reschedule_early(self, session: Session, unclaimed: set[int], now: datetime) -> Reassigned:
        """Pending deliveries this job reached before their instant get a new job at that instant.

        A job can run early (clock skew between hosts, a redriven duplicate); dropping it would leave the
        delivery waiting on a job that is already spent.
        """
        if not unclaimed:
            return Reassigned()
        table = Delivery.__table__  # type: ignore[attr-defined]
        rows = session.execute(
            select(table.c.id, table.c.status, table.c.reason, table.c.scheduled_at).where(
                table.c.id.in_(sorted(unclaimed)),
                table.c.status.in_(CLAIMABLE),
                table.c.scheduled_at > now + EARLY_TOLERANCE,
            )
        ).all()
        moved = Reassigned()
        # Grouped by status and reason: an early job must not change either, only the job id.
        groups: dict[tuple[str, str | None], list[Move]] = {}
        for r in rows:
            groups.setdefault((r.status, r.reason), []).append(Move(r.id, r.scheduled_at))
        for (status, reason), moves in groups.items():
            moved += reassign(
                session,
                moves,
                now,
                status=DeliveryStatus(status),
                reason=reason,
                event="rescheduled_early",
                from_statuses=[DeliveryStatus(status)],
                batch_size=self.batch_size,
            )
        return moved

    def _enqueue_early(self, moved: Reassigned, now: datetime) -> None:
        if moved.ids:
            enqueue_reassigned(self.redis, moved, now)
            log.info("job ran early; deliveries rescheduled", deliveries=len(moved.ids))

    # -- the batch -------------------------------------------------------------------------------

    def deliver_batch(self, ids: Sequence[int]) -> BatchReport:
        """Claim, load and render a batch; send its deliveries one by one, each outcome durable
        before the next provider call, so a crash costs at most the one message in flight."""
        now = self.clock()
        report = BatchReport()
        with self.sessions() as session, session.begin():
            claimed = self.claim(session, ids, now)
            early = self._reschedule_early(session, set(ids) - set(claimed), now)
            if not claimed:
                self._enqueue_early(early, now)
                return report
            deliveries, recipients = _load(session, claimed)
            pauses = active_pauses(session)
            digests = self._bind_digests(session, claimed, now)
            session.expunge_all()
        self._enqueue_early(early, now)
        report.claimed = len(claimed)
        slots = _Slots(self.limiter, Counter(d.channel for d in deliveries))
        db = _Connection(self.sessions.kw["bind"])
        # The lease as claim() wrote it: renewals are conditional on it.
        batch = _Batch(now, report, slots, pauses, db, lease_until=now + self.lease, digests=digests)
        try:
            with self._provider_sessions({d.channel for d in deliveries}):
                self._send_all(deliveries, recipients, batch)
        finally:
            batch.db.close()
        return report

    @contextmanager
    def _provider_sessions(self, channels: Collection[str]) -> Iterator[None]:
        """One provider session per adapter for the batch (an SMTP connection reused with RSET)."""
        with ExitStack() as stack:
            for adapter in {id(a): a for c, a in self.adapters.items() if c in channels}.values():
                stack.enter_context(batch_session(adapter))
            yield

    def _send_all(
        self, deliveries: Sequence[DeliveryRow], recipients: Mapping[int, RecipientRow], batch: _Batch
    ) -> None:
        batch.log = log.bind()  # the logger resolved once per batch, not once per delivery
        held: set[int] | None = None  # None: every claimed delivery is still this batch's
        for index, delivery in enumerate(deliveries):
            if self.stopping.is_set():
                # Only what this batch still holds: a row another worker took is its to hand back.
                self._hand_back([d for d in deliveries[index:] if held is None or d.id in held], batch)
                break
            if self.clock() >= batch.lease_until - self.lease / 2:
                held = self._renew_lease(deliveries[index:], batch)
            if held is not None and delivery.id not in held:
                batch.report.taken_over += 1
            elif self._one(delivery, recipients[delivery.recipient_id], batch):
                # A provider was called: its outcome (and anything waiting) is written now.
                self._write(batch)
            batch.slots.remaining[delivery.channel] -= 1
        self._write(batch)

    def _renew_lease(self, rest: Sequence[DeliveryRow], batch: _Batch) -> set[int]:
        """Half-way through its lease, extend the batch's hold on the deliveries it has still to send;
        returns those it still holds.

        A slow provider can make a batch outlast its lease, and then any worker's maintenance pass
        hands the rest to a new job: sending them here too would send them twice. The renewal is
        conditional on the lease this batch wrote, so rows recovered meanwhile (and perhaps claimed
        again) are not this batch's any more and are left to their new job.
        """
        self._write(batch)  # outcomes waiting for a ride are written first, under the old lease
        now = self.clock()
        until = now + self.lease
        table = Delivery.__table__  # type: ignore[attr-defined]
        with self.sessions() as session, session.begin():
            kept = set(
                session.scalars(
                    update(table)
                    .where(
                        table.c.id.in_([d.id for d in rest]),
                        table.c.status == DeliveryStatus.sending.value,
                        table.c.lease_until == batch.lease_until,
                    )
                    .values(lease_until=until)
                    .returning(table.c.id)
                )
            )
        batch.lease_until = until
        if len(kept) < len(rest):
            batch.log.warning(
                "lease ran out; deliveries another worker took are left to it",
                taken_over=len(rest) - len(kept),
                lease=str(self.lease),
            )
        return kept

    def _bind_digests(
        self, session: Session, claimed: Sequence[int], now: datetime
    ) -> dict[int, DigestContents]:
        """Bind the free events to the claimed digest deliveries, in the claim's transaction, and
        read what each will list: a crash after this commit, or a retry, finds the same events
        bound to the same delivery (:mod:`planner.store.digests`)."""
        targets = digest_targets(session, claimed)
        bind_events(session, targets, now)
        return load_contents(session, [t.delivery_id for t in targets], self.digest_cap)

    def _hand_back(self, rest: Sequence[DeliveryRow], batch: _Batch) -> None:
        """The worker is stopping: the claimed deliveries not yet sent go back to the queue, due now
        and with their attempt refunded, instead of waiting ``sending`` for their lease to expire."""
        for d in rest:
            self._release(batch.out, d, batch.now, "worker_stopped", refund=True)
            batch.report.waiting += 1
        log.info("worker stopping; claimed deliveries handed back", deliveries=len(rest))

    def _one(self, d: DeliveryRow, recipient: RecipientRow, batch: _Batch) -> bool:
        """Send one delivery, or record why not; True when a provider was called."""
        logger = batch.log.bind(
            delivery_id=d.id, recipient=recipient.external_id, kind=d.kind, channel=d.channel
        )
        if self._held_back(d, recipient, batch):
            return False
        digest = batch.digests.get(d.id)
        if digest is not None and not digest.total:
            # Nothing happened since the last digest: recorded, never sent (and never rate-limited).
            self._final(batch.out, d, DeliveryStatus.skipped, "empty_digest", batch.now)
            batch.report.skipped += 1
            logger.info("digest empty", outcome="skipped")
            return False
        channel = d.channel
        if not batch.slots.take(channel):
            assert self.limiter is not None
            self._release(
                batch.out, d, self.limiter.retry_at(channel, batch.now), "rate_limited", refund=True
            )
            batch.report.waiting += 1
            return False
        return self._send(d, recipient, batch, logger)

    def _message(
        self, d: DeliveryRow, recipient: RecipientRow, address: str | None, digest: DigestContents | None
    ) -> Message:
        if not address:
            raise PermanentError(f"recipient has no {d.channel} address")
        context = _context(d, recipient)
        if digest is not None:
            context |= _digest_context(digest, recipient.timezone)
        headers: dict[str, str] = {}
        if self.unsubscribe is not None and d.channel == "email" and not self.policy.is_critical(d.kind):
            link = self.unsubscribe.link(recipient.id, d.kind, d.channel)
            context["unsubscribe_url"] = link
            headers = self.unsubscribe.headers(link)
        rendered = self.renderer.render(d.kind, d.channel, context)
        return Message(
            delivery_id=d.id,
            dedup_key=d.dedup_key,
            recipient_id=recipient.external_id,
            kind=d.kind,
            channel=d.channel,
            to=address,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            scheduled_at=d.scheduled_at,
            message_id=message_id_for(d.id, d.dedup_key),
            headers=headers,
        )

    def _send(self, d: DeliveryRow, recipient: RecipientRow, batch: _Batch, logger: Any) -> bool:
        """Render and hand one message to the provider; record what became of it.

        Returns whether the provider was called (a render failure or a missing address never reaches it).
        """
        channel = d.channel
        out = batch.out
        try:
            address = recipient.email if channel == "email" else recipient.phone
            message = self._message(d, recipient, address, batch.digests.get(d.id))
        except (TemplateFailure, PermanentError) as exc:
            self._failed(out, d, batch, logger, permanent=True, error=str(exc), retry_after=None)
            return False
        try:
            result = self.adapters[channel].send(message)
        except AdapterConfigError as exc:
            self._config_error(d, batch, exc, logger)
        except PermanentError as exc:
            if exc.opted_out:
                self._opted_out(d, recipient, batch, str(exc), logger)
                return True
            if exc.invalid_address:
                out.invalid_addresses.append((recipient.id, channel, str(exc)[:500]))
            self._failed(out, d, batch, logger, permanent=True, error=str(exc), retry_after=None)
        except TransientError as exc:
            self._failed(out, d, batch, logger, permanent=False, error=str(exc), retry_after=exc.retry_after)
        except Exception as exc:  # an adapter bug or an unexpected library error: assume it may pass
            error = f"{type(exc).__name__}: {exc}"
            self._failed(out, d, batch, logger, permanent=False, error=error, retry_after=None)
        else:
            self._sent(d, result.provider_message_id, batch, logger)
        return True

    def _sent(self, d: DeliveryRow, provider_message_id: str | None, batch: _Batch, logger: Any) -> None:
        at = self.clock()
        batch.out.finals.append(
            {
                "b_id": d.id,
                "status": DeliveryStatus.sent.value,
                "reason": None,
                "last_error": None,
                "provider_message_id": provider_message_id,
                "sent_at": at,
            }
        )
        # No timeline entry: "sent" at sent_at with this attempt and message id is implied by the row.
        batch.report.sent += 1
        logger.info(
            "delivery sent",
            outcome="sent",
            attempt=d.attempts,
            lateness=(at - d.scheduled_at).total_seconds(),
        )

    def _opted_out(
        self, d: DeliveryRow, recipient: RecipientRow, batch: _Batch, error: str, logger: Any
    ) -> None:
        """The provider says the recipient opted out (an SMS STOP): record it on the recipient, so
        the rule chain suppresses every later delivery on the channel, and suppress this one."""
        batch.out.opt_outs.append((recipient.id, d.channel))
        self._final(batch.out, d, DeliveryStatus.suppressed, "opted_out", self.clock(), error=error[:2000])
        batch.report.suppressed += 1
        logger.info("recipient opted out at the provider", outcome="suppressed", error=error)

    def _config_error(self, d: DeliveryRow, batch: _Batch, exc: AdapterConfigError, logger: Any) -> None:
        """The provider proved the adapter's settings wrong: no delivery can succeed until an operator
        fixes them. Pause the channel (reason ``adapter_config``) and put this delivery back, its
        attempt refunded, where ``planner resume CHANNEL`` finds it."""
        error = redact(str(exc), self.secrets)[:PAUSE_DETAIL_MAX]
        batch.out.config_pauses.append((d.channel, error))
        batch.pauses = batch.pauses | {("channel", d.channel)}
        self._release(
            batch.out,
            d,
            batch.now + PAUSE_POLL,
            "paused",
            refund=True,
            detail={"pause": ADAPTER_CONFIG, "error": error},
        )
        batch.report.waiting += 1
        logger.error("adapter configuration refused; channel paused", outcome="paused", error=error)

    def _held_back(self, d: DeliveryRow, recipient: RecipientRow, batch: _Batch) -> bool:
        """The re-check at send time (the facts may have changed since planning): True when the
        delivery does not go out now, with its outcome recorded."""
        now = batch.now
        stop = recheck_at_send(
            self.policy,
            kind=d.kind,
            channel=d.channel,
            audience=_audience(recipient, d.channel),
            scheduled_at=d.scheduled_at,
            now=now,
        )
        if stop is not None and stop.failed:
            assert stop.status is not None and stop.reason is not None
            error = stop.detail.get("invalid")
            if "late_by_seconds" in stop.detail:
                # Workers were down longer than the kind tolerates: a stale brief is worse than none.
                error = f"{stop.detail['late_by_seconds']} s late"
            self._final(batch.out, d, stop.status, stop.reason, now, error=error)
            batch.report.suppressed += 1
            return True
        if is_paused(batch.pauses, d.channel, d.kind):
            self._release(batch.out, d, now + PAUSE_POLL, "paused", refund=True)
            batch.report.waiting += 1
            return True
        if stop is not None:
            window = stop.detail["window"]
            detail = {"zone": recipient.timezone, "window": window, "until": stop.at.isoformat()}
            self._release(batch.out, d, stop.at, "quiet_hours_deferred", refund=True, detail=detail)
            batch.report.waiting += 1
            return True
        return False

    # -- outcomes --------------------------------------------------------------------------------

    def _final(
        self,
        out: _Outcomes,
        d: DeliveryRow,
        status: DeliveryStatus,
        reason: str,
        now: datetime,
        *,
        error: str | None = None,
    ) -> None:
        out.finals.append(
            {
                "b_id": d.id,
                "status": status.value,
                "reason": reason,
                "last_error": error,
                "provider_message_id": None,
                "sent_at": None,
            }
        )
        out.events.append(
            event_row(
                d.id,
                now,
                status.value,
                status=status.value,
                reason=reason,
                detail={"error": error} if error else None,
            )
        )

    def _release(
        self,
        out: _Outcomes,
        d: DeliveryRow,
        at: datetime,
        reason: str,
        *,
        refund: bool,
        status: DeliveryStatus = DeliveryStatus.queued,
        detail: dict[str, Any] | None = None,
        last_error: str | None = None,
    ) -> None:
        move = Move(d.id, at, detail=detail, last_error=last_error) if last_error else Move(d.id, at, detail)
        event = reason if reason != "transient_failure" else "retry_scheduled"
        out.releases.append(_Release(move, status, reason, event, refund))

    def _failed(
        self,
        out: _Outcomes,
        d: DeliveryRow,
        batch: _Batch,
        logger: Any,
        *,
        permanent: bool,
        error: str,
        retry_after: float | None,
    ) -> None:
        decision = decide_retry(
            self.retry, d.attempts, permanent=permanent, retry_after=retry_after, rng=self.rng
        )
        at = self.clock()
        if decision.delay is None:
            self._final(out, d, DeliveryStatus.dead, decision.reason, at, error=error[:2000])
            batch.report.dead += 1
            logger.warning(
                "delivery dead", outcome="dead", reason=decision.reason, error=error, attempt=d.attempts
            )
            return
        self._release(
            out,
            d,
            at + decision.delay,
            decision.reason,
            refund=False,
            status=DeliveryStatus.retrying,
            detail={"error": error[:500], "attempt": d.attempts},
            last_error=error[:2000],
        )
        batch.report.retrying += 1
        logger.info(
            "delivery will retry",
            outcome="retrying",
            error=error,
            attempt=d.attempts,
            delay=decision.delay.total_seconds(),
        )

    def _write(self, batch: _Batch) -> None:
        """Make the batch's pending outcomes durable, then enqueue the new jobs of released deliveries.

        A connection the server dropped (a restart) is replaced and the write made once more: the
        statements only change deliveries still ``sending``, so a write that did commit before the
        connection died changes nothing the second time.
        """
        out, batch.out = batch.out, _Outcomes()
        if not out:
            return
        now = self.clock()
        try:
            moved = self._write_once(batch.db, out, now)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("database connection lost while recording outcomes; writing them on a new one")
            batch.db.drop()
            moved = self._write_once(batch.db, out, now)
        enqueue_reassigned(self.redis, moved, now)

    def _write_once(self, db: _Connection, out: _Outcomes, now: datetime) -> Reassigned:
        if len(out.finals) == 1 and out.only_finals():
            # The common case (one message sent): straight to the driver, one transaction.
            final = out.finals[0]
            _write_one_final(db, final, out.event_of(final["b_id"]), now)
            return Reassigned()
        if db.engine.dialect.name == "postgresql" and out.only_finals():
            # The common case (one message sent): a single statement, its own transaction.
            self._write_finals(db.single_statements(), out, now)
            return Reassigned()
        connection = db.transactional()
        with connection.begin(), Session(bind=connection) as session:
            self._write_finals(connection, out, now)
            moved = self._write_releases(session, out.releases, now)
            for recipient_id, channel, reason in out.invalid_addresses:
                session.execute(
                    update(Recipient)
                    .where(col(Recipient.id) == recipient_id)
                    .values({f"{channel}_invalid": reason, "updated_at": now})
                )
            for recipient_id, channel in out.opt_outs:
                session.execute(
                    update(Recipient)
                    .where(col(Recipient.id) == recipient_id)
                    .values({f"{channel}_opt_out": True, "updated_at": now})
                )
            for channel, error in out.config_pauses:
                pause_for_adapter_config(session, channel, error, now)
        return moved

    def _write_finals(self, connection: Connection, out: _Outcomes, now: datetime) -> None:
        """Final outcomes and their timeline entries, for deliveries still ``sending`` only."""
        if not out.finals:
            return
        events = {e["delivery_id"]: e for e in out.events}
        postgres = connection.dialect.name == "postgresql"
        if postgres and len(out.finals) > 1:
            self._write_pg_finals(connection, out.finals, events, now)
            return
        instant = instant_binder(connection.dialect)
        for r in out.finals:
            event = events.get(r["b_id"])
            row = _final_row(r, event, now, instant)
            if postgres:
                connection.exec_driver_sql(_PG_ONE_FINAL if event is not None else _PG_ONE_SENT, row)
            elif connection.exec_driver_sql(_SQLITE_ONE_FINAL, row).first() is not None and event is not None:
                connection.exec_driver_sql(_SQLITE_ONE_EVENT, row)

    def _write_pg_finals(
        self, connection: Connection, finals: list[dict[str, Any]], events: dict[int, Any], now: datetime
    ) -> None:
        from psycopg.types.json import Json  # what SQLAlchemy's JSON type binds on psycopg

        no_event: dict[str, Any] = {"at": None, "event": None, "detail": None}  # a plain "sent"
        entries = [events.get(r["b_id"], no_event) for r in finals]
        connection.execute(
            _PG_FINALS,
            {
                "ids": [r["b_id"] for r in finals],
                "statuses": [r["status"] for r in finals],
                "reasons": [r["reason"] for r in finals],
                "errors": [r["last_error"] for r in finals],
                "pmids": [r["provider_message_id"] for r in finals],
                "sent": [r["sent_at"] for r in finals],
                "ats": [e["at"] for e in entries],
                "events": [e["event"] for e in entries],
                "details": [Json(e["detail"]) for e in entries],
                "now": now,
            },
        )

    def _write_releases(self, session: Session, releases: list[_Release], now: datetime) -> Reassigned:
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
                batch_size=self.batch_size,
            )
        return moved


@dataclass(frozen=True)
class UnsubscribeLinks:
    """One-click unsubscribe (RFC 8058, RFC 2369) for non-critical email."""

    base_url: str
    secret: bytes
    mailto: str | None = None

    def link(self, recipient_id: int, kind: str, channel: str) -> str:
        token = sign(self.secret, UnsubscribeTarget(recipient_id, kind, channel))
        return f"{self.base_url}/u/{token}"

    def headers(self, link: str) -> dict[str, str]:
        targets = [f"<{link}>"]
        if self.mailto:
            token = link.rsplit("/", 1)[1]
            targets.append(f"<mailto:{self.mailto}?subject=unsubscribe%20{token}>")
        return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


#: A claimed delivery and its recipient as plain rows (attribute access by column name): the batch is
#: only read, and ORM objects would cost more to build and read than the rest of the work on them.
DeliveryRow = Row[Any]
RecipientRow = Row[Any]
_DELIVERY_COLUMNS = (
    "id", "recipient_id", "kind", "channel", "dedup_key", "local_date", "scheduled_at", "attempts", "data",
)  # fmt: skip
_RECIPIENT_COLUMNS = (
    "id", "external_id", "timezone", "email", "phone", "locale", "attributes", "email_opt_out", "sms_opt_out",
    "opt_outs", "email_invalid", "sms_invalid", "email_quiet_start", "email_quiet_end", "sms_quiet_start",
    "sms_quiet_end",
)  # fmt: skip


def _load(session: Session, claimed: Sequence[int]) -> tuple[list[DeliveryRow], dict[int, RecipientRow]]:
    """The claimed deliveries (in id order) and their recipients, in two statements."""
    deliveries_table = Delivery.__table__  # type: ignore[attr-defined]
    recipients_table = Recipient.__table__  # type: ignore[attr-defined]
    deliveries = list(
        session.execute(
            select(*(deliveries_table.c[name] for name in _DELIVERY_COLUMNS))
            .where(deliveries_table.c.id.in_(claimed))
            .order_by(deliveries_table.c.id)
        )
    )
    recipient_ids = {d.recipient_id for d in deliveries}
    recipients = {
        r.id: r
        for r in session.execute(
            select(*(recipients_table.c[name] for name in _RECIPIENT_COLUMNS)).where(
                recipients_table.c.id.in_(recipient_ids)
            )
        )
    }
    return deliveries, recipients


def _audience(recipient: RecipientRow, channel: str) -> Audience:
    """What the rule chain needs of the recipient on ``channel`` (as :meth:`Recipient.audience`)."""
    start = recipient.email_quiet_start if channel == "email" else recipient.sms_quiet_start
    end = recipient.email_quiet_end if channel == "email" else recipient.sms_quiet_end
    email = channel == "email"
    return Audience(
        timezone=recipient.timezone,
        address=recipient.email if email else recipient.phone,
        opted_out=bool(recipient.email_opt_out if email else recipient.sms_opt_out),
        invalid=recipient.email_invalid if email else recipient.sms_invalid,
        quiet_hours=QuietHours(start, end) if start is not None and end is not None else None,
        opted_out_kinds=kinds_opted_out(recipient.opt_outs, channel),
    )


def _context(d: DeliveryRow, recipient: RecipientRow) -> dict[str, Any]:
    local = to_local(d.scheduled_at, recipient.timezone)
    return {
        "recipient": {
            "external_id": recipient.external_id,
            "timezone": recipient.timezone,
            "email": recipient.email,
            "phone": recipient.phone,
            "locale": recipient.locale,
            "attributes": recipient.attributes or {},
        },
        "delivery": {"id": d.id, "kind": d.kind, "channel": d.channel, "dedup_key": d.dedup_key},
        "local_date": (d.local_date or local.date()).isoformat(),
        "scheduled_local": local.strftime("%Y-%m-%d %H:%M %Z"),
        "data": d.data or {},
    }


def _digest_context(digest: DigestContents, zone: str) -> dict[str, Any]:
    """``events`` (oldest first, at most the cap), ``events_more`` (the rest) and ``events_total``."""
    events = [
        {
            "id": e["id"],
            "occurred_at": e["occurred_at"].isoformat(),
            "occurred_local": to_local(e["occurred_at"], zone).strftime("%Y-%m-%d %H:%M"),
            "data": e["data"],
        }
        for e in digest.events
    ]
    return {"events": events, "events_more": digest.more, "events_total": digest.total}
