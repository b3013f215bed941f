"""Sending deliveries: claim in the database, re-check, rate-limit, render, send, record.

A batch claims its deliveries with one conditional UPDATE carrying a new claim token
(:mod:`planner.store.claims`); only the claimer calls the provider, so duplicate jobs and racing
workers are harmless, and every later write of the batch is conditional on the token, so a batch
that lost its lease changes nothing (:mod:`planner.store.outcomes`). Everything that is not a send
goes back with a reason: paused and quiet-hours deliveries wait (their attempt is refunded),
rate-limited ones come back when the window frees, failures retry with backoff or end ``dead``
(:mod:`planner.delivery.outcomes` says how each provider answer is classified).

Each provider call's outcome is committed before the next provider call starts, and a call starts
only while the batch's lease has the adapter's deadline left (:mod:`planner.delivery.lease`): a
worker that dies costs at most the one message in flight, and its other deliveries come back within
one lease. A digest delivery's events are bound to it in the claim's transaction
(:mod:`planner.store.digests`); one that finds none is recorded ``skipped`` (``empty_digest``).

A provider refusing the adapter's settings (``AdapterConfigError``) pauses the channel (reason
``adapter_config``) and puts the delivery back with its attempt refunded.
"""

from __future__ import annotations

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

from adapters import (
    Adapter,
    AdapterConfigError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
    batch_session,
)
from adapters.base import call_deadline
from planner.core.checks import recheck_at_send
from planner.core.message_copy import MessageCopy
from planner.core.policy import PlanningPolicy
from planner.core.redact import redact, without_address
from planner.core.retry import RetryPolicy
from planner.core.status import DeliveryStatus
from planner.core.webhook_events import public_recipient_id
from planner.delivery.lease import BatchLease
from planner.delivery.message import MessageMaker, UnsubscribeLinks, kept_copy
from planner.delivery.outcomes import UNKNOWN, BatchEvents, Recorder
from planner.delivery.templating import Renderer, TemplateFailure
from planner.dispatch.ratelimit import ProviderLimiter, Slots
from planner.dispatch.reassign import enqueue_reassigned
from planner.store.batch_connection import BatchConnection
from planner.store.claims import (
    DeliveryRow,
    RecipientRow,
    claim,
    last_unknown_outcome,
    load_batch,
    new_claim_token,
    reached_early,
)
from planner.store.db import Session, SessionFactory, engine_of, transaction
from planner.store.digests import DigestContents, bind_events, digest_targets, load_contents
from planner.store.pauses import ADAPTER_CONFIG, PAUSE_DETAIL_MAX, active_pauses, is_paused
from planner.store.reassign import Move, Reassigned, reassign
from planner.store.recipient_facts import recipient_state
from planner.store.webhook_endpoints import wanted_types

log = structlog.get_logger("planner.delivery")

PAUSE_POLL = timedelta(seconds=60)


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
    #: Handed to the provider with no answer (a timeout after the message was sent).
    unknown: int = 0
    #: Outcomes that arrived after the claim was lost: kept on the timeline, no status changed.
    stale: int = 0


@dataclass
class _Batch:
    """The state of one batch while its deliveries are sent one by one."""

    now: datetime
    report: BatchReport
    slots: Slots
    pauses: frozenset[tuple[str, str]]
    lease: BatchLease
    recorder: Recorder
    #: The claimed digest deliveries and the events bound to them at the claim.
    digests: dict[int, DigestContents] = field(default_factory=dict)
    #: For deliveries whose last attempt had an unknown outcome: when that attempt started.
    unknown_since: dict[int, datetime | None] = field(default_factory=dict)
    log: Any = None


class Deliverer:
    """Sends batches of deliveries. Every dependency is passed in."""

    def __init__(
        self,
        sessions: SessionFactory,
        connection: redis.Redis,
        adapters: Mapping[str, Adapter],
        renderer: Renderer,
        policy: PlanningPolicy,
        retry: RetryPolicy,
        *,
        limiter: ProviderLimiter | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = 100,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        secrets: Collection[str] = (),
        unsubscribe: UnsubscribeLinks | None = None,
        digest_cap: int = 50,
        unknown_delay: timedelta = timedelta(minutes=15),
        clock_skew: timedelta = timedelta(seconds=5),
        copy_bytes: int = 65536,
    ) -> None:
        self.sessions = sessions
        self.redis = connection
        self.adapters = adapters
        self.messages = MessageMaker(renderer, policy, unsubscribe)
        self.policy = policy
        self.retry = retry
        self.limiter = limiter
        self.lease = lease
        self.batch_size = batch_size
        self.clock = clock
        self.rng = rng or random.Random()
        #: Values never to be stored or logged (passwords, tokens) when an adapter error quotes them.
        self.secrets = tuple(secrets)
        #: Events listed in a digest's template; the rest are counted (``events_more``).
        self.digest_cap = digest_cap
        self.unknown_delay = unknown_delay
        self.clock_skew = clock_skew
        #: The most a message's kept copy may hold (0: no copy is kept).
        self.copy_bytes = copy_bytes
        #: Per channel, the most one provider call may take (the adapter's deadline).
        self.deadlines = {c: timedelta(seconds=call_deadline(a) or 0) for c, a in adapters.items()}
        #: Set by the worker on a warm shutdown: the batch hands its unsent deliveries back.
        self.stopping = threading.Event()

    # -- the batch -------------------------------------------------------------------------------

    def deliver_batch(self, ids: Sequence[int], job_id: str | None = None) -> BatchReport:
        """Claim the deliveries of ``ids`` that job ``job_id`` carries (any, when None), then send
        them one by one, each outcome durable before the next provider call."""
        now = self.clock()
        report = BatchReport()
        token = new_claim_token()
        with transaction(self.sessions) as session:
            claimed = claim(session, ids, job_id, token, now, self.lease)
            early = self._reschedule_early(session, set(ids) - set(claimed), job_id, now)
            if not claimed:
                self._enqueue_early(early, now)
                return report
            deliveries, recipients = load_batch(session, claimed)
            events = BatchEvents(
                wanted_types(session), {r.id: public_recipient_id(r.external_id) for r in recipients.values()}
            )
            pauses = active_pauses(session)
            digests = self._bind_digests(session, claimed, now)
            unknown_since = {
                d.id: last_unknown_outcome(session, d.id) for d in deliveries if d.reason == UNKNOWN
            }
        self._enqueue_early(early, now)
        report.claimed = len(claimed)
        db = BatchConnection(engine_of(self.sessions))
        batch = _Batch(
            now,
            report,
            Slots(self.limiter, Counter(d.channel for d in deliveries)),
            pauses,
            BatchLease(db, token, claimed, self.lease, now + self.lease, self.clock, self.clock_skew),
            Recorder(
                db,
                self.redis,
                token,
                self.retry,
                self.rng,
                unknown_delay=self.unknown_delay,
                batch_size=self.batch_size,
                events=events,
                policy=self.policy,
            ),
            digests,
            unknown_since,
        )
        try:
            with self._provider_sessions({d.channel for d in deliveries}):
                self._send_all(deliveries, recipients, batch)
        finally:
            db.close()
        report.stale = len(batch.recorder.stale)
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
        for index, delivery in enumerate(deliveries):
            if self.stopping.is_set():
                self._hand_back(deliveries[index:], batch)
                break
            if self._one(delivery, recipients[delivery.recipient_id], batch):
                # A provider was called: its outcome (and anything waiting) is written now.
                batch.recorder.write(self.clock())
            batch.slots.remaining[delivery.channel] -= 1
        batch.recorder.write(self.clock())

    def _hand_back(self, rest: Sequence[DeliveryRow], batch: _Batch) -> None:
        """The worker is stopping: the claimed deliveries not yet sent go back to the queue, due now
        and with their attempt refunded, instead of waiting ``sending`` for their lease to expire.
        Only those the batch still holds move: the release is conditional on its claim."""
        for d in rest:
            batch.recorder.release(d, batch.now, "worker_stopped", refund=True)
            batch.report.waiting += 1
        log.info("worker stopping; claimed deliveries handed back", deliveries=len(rest))

    def _bind_digests(
        self, session: Session, claimed: Sequence[int], now: datetime
    ) -> dict[int, DigestContents]:
        """Bind the free events to the claimed digest deliveries, in the claim's transaction, and
        read what each will list: a crash after this commit, or a retry, finds the same events
        bound to the same delivery (:mod:`planner.store.digests`)."""
        targets = digest_targets(session, claimed)
        bind_events(session, targets, now)
        return load_contents(session, [t.delivery_id for t in targets], self.digest_cap)

    # -- early jobs ------------------------------------------------------------------------------

    def _reschedule_early(
        self, session: Session, unclaimed: set[int], job_id: str | None, now: datetime
    ) -> Reassigned:
        """Pending deliveries this job reached before their instant get a new job at that instant.

        A job can run early (clock skew between hosts, a redriven duplicate); dropping it would leave
        the delivery waiting on a job that is already spent.
        """
        if not unclaimed:
            return Reassigned()
        moved = Reassigned()
        # Grouped by status and reason: an early job must not change either, only the job id.
        groups: dict[tuple[str, str | None], list[Move]] = {}
        for r in reached_early(session, sorted(unclaimed), job_id, now):
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

    # -- one delivery ----------------------------------------------------------------------------

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
            batch.recorder.final(d, DeliveryStatus.skipped, "empty_digest", batch.now)
            batch.report.skipped += 1
            logger.info("digest empty", outcome="skipped")
            return False
        if not batch.slots.take(d.channel):
            assert self.limiter is not None
            retry_at = self.limiter.retry_at(d.channel, batch.now)
            batch.recorder.release(d, retry_at, "rate_limited", refund=True)
            batch.report.waiting += 1
            return False
        if not batch.lease.keep(d.id, self.deadlines.get(d.channel, timedelta(0))):
            batch.report.taken_over += 1  # recovered meanwhile: its new job sends it
            return False
        return self._send(d, recipient, batch, logger)

    def _held_back(self, d: DeliveryRow, recipient: RecipientRow, batch: _Batch) -> bool:
        """The re-check at send time (the facts may have changed since planning): True when the
        delivery does not go out now, with its outcome recorded."""
        now = batch.now
        audience = recipient_state(recipient).audience(d.channel)
        stop = recheck_at_send(
            self.policy,
            kind=d.kind,
            channel=d.channel,
            audience=audience,
            scheduled_at=d.scheduled_at,
            now=now,
        )
        if stop is not None and stop.failed:
            assert stop.status is not None and stop.reason is not None
            error = stop.detail.get("invalid")
            if "late_by_seconds" in stop.detail:
                # Workers were down longer than the kind tolerates: a stale brief is worse than none.
                error = f"{stop.detail['late_by_seconds']} s late"
            batch.recorder.final(d, stop.status, stop.reason, now, error=error)
            batch.report.suppressed += 1
            return True
        if is_paused(batch.pauses, d.channel, d.kind):
            batch.recorder.release(d, now + PAUSE_POLL, "paused", refund=True)
            batch.report.waiting += 1
            return True
        if stop is not None:
            detail = {
                "zone": recipient.timezone,
                "window": stop.detail["window"],
                "until": stop.at.isoformat(),
            }
            batch.recorder.release(d, stop.at, "quiet_hours_deferred", refund=True, detail=detail)
            batch.report.waiting += 1
            return True
        return False

    def _send(self, d: DeliveryRow, recipient: RecipientRow, batch: _Batch, logger: Any) -> bool:
        """Render and hand one message to the provider; record what became of it.

        Returns whether the provider was called (a render failure or a missing address never reaches it).
        """
        try:
            message = self.messages.make(d, recipient, batch.digests.get(d.id))
        except Exception as exc:  # making a message does no I/O: what fails here fails every time
            known = isinstance(exc, TemplateFailure | PermanentError)
            error = str(exc) if known else f"{type(exc).__name__}: {exc}"
            outcome = batch.recorder.failed(d, self.clock(), permanent=True, error=error, retry_after=None)
            self._count(batch, outcome, logger, error, d)
            return False
        adapter = self.adapters[d.channel]
        copy = kept_copy(message, batch.digests.get(d.id), self.copy_bytes)
        if d.id in batch.unknown_since and self._found_by_lookup(adapter, message, d, batch, logger, copy):
            return True
        started = self.clock()
        try:
            result = adapter.send(message)
        except AdapterConfigError as exc:
            self._config_error(d, batch, exc, logger)
        except PermanentError as exc:
            self._refused(d, recipient, batch, exc, without_address(str(exc), message.to), logger, copy)
        except TransientError as exc:
            error = without_address(str(exc), message.to)
            outcome = batch.recorder.failed(
                d, self.clock(), permanent=False, error=error, retry_after=exc.retry_after, message=copy
            )
            self._count(batch, outcome, logger, error, d)
        except OutcomeUnknown as exc:
            self._unknown(d, batch, started, without_address(str(exc), message.to), logger, copy)
        except Exception as exc:  # an adapter bug: it may have failed after the message was handed over
            error = without_address(f"{type(exc).__name__}: {exc}", message.to)
            self._unknown(d, batch, started, error, logger, copy)
        else:
            at = self.clock()
            batch.recorder.sent(
                d, result.provider_message_id, at, locale=message.metadata.get("locale"), message=copy
            )
            batch.report.sent += 1
            logger.info(
                "delivery sent",
                outcome="sent",
                attempt=d.attempts,
                lateness=(at - d.scheduled_at).total_seconds(),
            )
        return True

    def _found_by_lookup(
        self,
        adapter: Adapter,
        message: Any,
        d: DeliveryRow,
        batch: _Batch,
        logger: Any,
        copy: MessageCopy | None,
    ) -> bool:
        """Before sending again after an unknown outcome: ask the provider whether it has the message.
        True when that settled it (found: ``sent``; or the question is still open: wait again)."""
        lookup = getattr(adapter, "lookup", None)
        if lookup is None:
            return False
        # From when the unknown attempt started, less a minute: the provider's clock is not ours.
        started = batch.unknown_since[d.id] or (batch.now - timedelta(days=1))
        since = started - timedelta(minutes=1)
        try:
            found = lookup(message, since)
        except Exception as exc:  # the provider could not say: the question stays open
            outcome = batch.recorder.unknown(d, self.clock(), started, f"lookup: {exc}", again=False)
            self._count(batch, outcome, logger, f"lookup: {exc}", d)
            return True
        if found is None:
            return False
        batch.recorder.sent(
            d, found.provider_message_id, self.clock(), event="found_by_lookup",
            locale=message.metadata.get("locale"), message=copy,
        )  # fmt: skip
        batch.report.sent += 1
        logger.info("delivery found at the provider", outcome="sent", attempt=d.attempts)
        return True

    def _unknown(
        self,
        d: DeliveryRow,
        batch: _Batch,
        started: datetime,
        error: str,
        logger: Any,
        copy: MessageCopy | None,
    ) -> None:
        """Handed over, then no answer: the provider may have it. One more attempt at most."""
        with self.sessions() as session:
            again = last_unknown_outcome(session, d.id) is not None or d.id in batch.unknown_since
        outcome = batch.recorder.unknown(d, self.clock(), started, error, again=again, message=copy)
        batch.report.unknown += 1
        self._count(batch, outcome, logger, error, d)

    def _refused(
        self,
        d: DeliveryRow,
        recipient: RecipientRow,
        batch: _Batch,
        exc: PermanentError,
        error: str,
        logger: Any,
        copy: MessageCopy | None,
    ) -> None:
        if exc.opted_out:
            # The recipient told the provider to stop (an SMS STOP): every later delivery on the
            # channel is suppressed by the rule chain.
            batch.recorder.opted_out(d, self.clock())
            batch.recorder.final(
                d, DeliveryStatus.suppressed, "opted_out", self.clock(), error=error[:2000], message=copy
            )
            batch.report.suppressed += 1
            logger.info("recipient opted out at the provider", outcome="suppressed", error=error)
            return
        if exc.invalid_address:
            batch.recorder.address_invalid(d, error, self.clock())
        outcome = batch.recorder.failed(
            d, self.clock(), permanent=True, error=error, retry_after=None,
            refused=True, invalid_address=exc.invalid_address, message=copy,
        )  # fmt: skip
        self._count(batch, outcome, logger, error, d)

    def _config_error(self, d: DeliveryRow, batch: _Batch, exc: AdapterConfigError, logger: Any) -> None:
        """The provider proved the adapter's settings wrong: no delivery can succeed until an operator
        fixes them. Pause the channel (reason ``adapter_config``) and put this delivery back, its
        attempt refunded, where ``planner resume CHANNEL`` finds it."""
        error = redact(str(exc), self.secrets)[:PAUSE_DETAIL_MAX]
        batch.recorder.out.config_pauses.append((d.channel, error))
        batch.pauses = batch.pauses | {("channel", d.channel)}
        detail = {"pause": ADAPTER_CONFIG, "error": error}
        batch.recorder.release(d, batch.now + PAUSE_POLL, "paused", refund=True, detail=detail)
        batch.report.waiting += 1
        logger.error("adapter configuration refused; channel paused", outcome="paused", error=error)

    @staticmethod
    def _count(batch: _Batch, outcome: str, logger: Any, error: str, d: DeliveryRow) -> None:
        if outcome == "dead":
            batch.report.dead += 1
            logger.warning("delivery dead", outcome="dead", error=error, attempt=d.attempts)
        else:
            batch.report.retrying += 1
            logger.info("delivery will retry", outcome="retrying", error=error, attempt=d.attempts)
