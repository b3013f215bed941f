"""What became of each claimed delivery, decided by the batch and written under its claim.

Outcomes that involve no provider call (held back, rate-limited, skipped) wait in :class:`Outcomes`
and are written in the transaction of the next provider call's outcome; a provider call's outcome
is written before the next provider call starts (:meth:`Recorder.write`), so a worker that dies
costs at most the one message in flight. Every write is conditional on the batch's claim token
(:mod:`planner.store.outcomes`, :func:`planner.dispatch.reassign.reassign`).

How a provider's answer is classified:

* accepted -> ``sent``;
* ``PermanentError`` -> ``dead`` (``permanent_failure``), the address marked invalid or the opt-out
  recorded when the provider says so;
* ``TransientError`` (nothing was handed over) -> ``retrying`` with backoff, ``dead`` once the
  attempts are spent;
* ``OutcomeUnknown`` (handed over, then no answer) -> ``retrying`` once, after at least
  ``unknown_delay``, looked up at the provider first where the adapter can; a second unknown
  outcome is ``dead`` (``outcome_unknown``): a delivery costs at most one extra copy;
* an unexpected error from the adapter is treated as an unknown outcome: it may have happened after
  the message was handed over.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from planner.core.retry import RetryPolicy, decide_retry
from planner.core.status import DeliveryStatus
from planner.dispatch.reassign import Move, Reassigned, enqueue_reassigned, reassign
from planner.store import outcomes as store
from planner.store.claims import DeliveryRow
from planner.store.outcomes import BatchConnection, Final
from planner.store.pauses import pause_for_adapter_config
from planner.store.timeline import event_row

log = structlog.get_logger("planner.delivery")

UNKNOWN = "outcome_unknown"


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

    def __bool__(self) -> bool:
        return bool(self.finals or not self.only_finals())

    def only_finals(self) -> bool:
        return not (self.releases or self.invalid_addresses or self.opt_outs or self.config_pauses)


class Recorder:
    """Decides and writes the outcomes of one batch, under its claim ``token``."""

    def __init__(
        self,
        db: BatchConnection,
        connection: redis.Redis,
        token: str,
        retry: RetryPolicy,
        rng: random.Random,
        *,
        unknown_delay: timedelta,
        batch_size: int,
    ) -> None:
        self.db = db
        self.redis = connection
        self.token = token
        self.retry = retry
        self.rng = rng
        self.unknown_delay = unknown_delay
        self.batch_size = batch_size
        self.out = Outcomes()
        #: Deliveries whose claim was lost before their outcome was written (kept as stale outcomes).
        self.stale: set[int] = set()

    # -- decided outcomes ------------------------------------------------------------------------

    def sent(
        self, d: DeliveryRow, provider_message_id: str | None, at: datetime, event: str | None = None
    ) -> None:
        """Accepted by the provider; ``event`` records how it was learnt when not by this send."""
        entry = (
            None
            if event is None
            else event_row(
                d.id, at, event, status="sent", detail={"provider_message_id": provider_message_id}
            )
        )
        self.out.finals.append(
            Final(d.id, DeliveryStatus.sent.value, None, None, provider_message_id, at, entry)
        )

    def final(
        self, d: DeliveryRow, status: DeliveryStatus, reason: str, at: datetime, error: str | None = None
    ) -> None:
        detail = {"error": error} if error else None
        entry = event_row(d.id, at, status.value, status=status.value, reason=reason, detail=detail)
        self.out.finals.append(Final(d.id, status.value, reason, error, None, None, entry))

    def release(
        self,
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
        answer = None
        if last_error is not None:  # a provider's failure, not a wait of the worker's own
            answer = Final(d.id, status.value, reason, last_error, None, None, None)
        self.out.releases.append(Release(move, status, reason, event, refund, answer))

    def failed(
        self, d: DeliveryRow, now: datetime, *, permanent: bool, error: str, retry_after: float | None
    ) -> str:
        """A provider failure with nothing handed over; returns the outcome (``retrying`` or ``dead``)."""
        decision = decide_retry(
            self.retry, d.attempts, permanent=permanent, retry_after=retry_after, rng=self.rng
        )
        if decision.delay is None:
            self.final(d, DeliveryStatus.dead, decision.reason, now, error=error[:2000])
            return "dead"
        detail = {"error": error[:500], "attempt": d.attempts}
        self.release(
            d, now + decision.delay, decision.reason, refund=False, status=DeliveryStatus.retrying,
            detail=detail, last_error=error[:2000],
        )  # fmt: skip
        return "retrying"

    def unknown(self, d: DeliveryRow, now: datetime, started: datetime, error: str, *, again: bool) -> str:
        """Handed over, then no answer: one more attempt after a longer wait, never a second one
        (``again``: the delivery already had an unknown outcome). Returns the outcome."""
        if again or d.attempts >= self.retry.max_attempts:
            self.final(
                d,
                DeliveryStatus.dead,
                UNKNOWN,
                now,
                error=f"{error[:1900]} (outcome unknown twice: not sent again)",
            )
            return "dead"
        wait = max(self.unknown_delay, self.retry.backoff(d.attempts, self.rng))
        detail = {"error": error[:500], "attempt": d.attempts, "attempt_started_at": started.isoformat()}
        self.release(
            d,
            now + wait,
            UNKNOWN,
            refund=False,
            status=DeliveryStatus.retrying,
            detail=detail,
            last_error=error[:2000],
        )
        return "retrying"

    # -- writes ----------------------------------------------------------------------------------

    def write(self, now: datetime) -> None:
        """Make the pending outcomes durable, then enqueue the new jobs of released deliveries.

        A connection the server dropped (a restart) is replaced and the write made once more: the
        statements only change deliveries still ``sending`` under this claim, so a write that did
        commit before the connection died changes nothing the second time.
        """
        out, self.out = self.out, Outcomes()
        if not out:
            return
        stale_before = set(self.stale)
        try:
            moved = self._write_once(out, now)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("database connection lost while recording outcomes; writing them on a new one")
            self.db.drop()
            moved = self._write_once(out, now)
        enqueue_reassigned(self.redis, moved, now)
        if self.stale - stale_before:
            log.warning(
                "outcomes arrived after this worker's claim was lost; kept on the timeline only",
                deliveries=sorted(self.stale - stale_before),
            )

    def _write_once(self, out: Outcomes, now: datetime) -> Reassigned:
        if len(out.finals) == 1 and out.only_finals():
            # The common case (one message sent): straight to the driver, one transaction.
            final = out.finals[0]
            if not store.write_one(self.db, final, self.token, now):
                self.stale.add(final.delivery_id)
            return Reassigned()
        if self.db.postgres and out.only_finals():
            self.stale |= store.write_many(self.db.single_statements(), out.finals, self.token, now)
            return Reassigned()
        connection = self.db.transactional()
        with connection.begin(), Session(bind=connection) as session:
            self.stale |= store.write_many(connection, out.finals, self.token, now)
            moved = self._write_releases(session, out.releases, now)
            for recipient_id, channel, reason in out.invalid_addresses:
                store.mark_invalid(session, recipient_id, channel, reason, now)
            for recipient_id, channel in out.opt_outs:
                store.mark_opted_out(session, recipient_id, channel, now)
            for channel, error in out.config_pauses:
                pause_for_adapter_config(session, channel, error, now)
        return moved

    def _write_releases(self, session: Session, releases: list[Release], now: datetime) -> Reassigned:
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
                claim=self.token,
            )
        lost = [r.answer for r in releases if r.answer is not None and r.move.delivery_id not in moved.ids]
        if lost:
            store.record_stale(session, lost, self.token, now)
            self.stale |= {f.delivery_id for f in lost}
        return moved
