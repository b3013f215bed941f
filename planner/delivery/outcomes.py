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

A final outcome after a provider call (sent, dead, suppressed by the provider) carries the copy of
the message (:mod:`planner.core.message_copy`), written with it; a retry keeps none: the last
attempt's copy is the one kept.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog

from planner.core.message_copy import MessageCopy
from planner.core.retry import RetryPolicy, decide_retry
from planner.core.status import DeliveryStatus
from planner.dispatch.reassign import enqueue_reassigned
from planner.store import outcomes as store
from planner.store.claims import DeliveryRow
from planner.store.outcomes import BatchConnection, Final, Outcomes, Release
from planner.store.reassign import Move
from planner.store.timeline import event_row

log = structlog.get_logger("planner.delivery")

UNKNOWN = "outcome_unknown"


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
        self,
        d: DeliveryRow,
        provider_message_id: str | None,
        at: datetime,
        event: str | None = None,
        message: MessageCopy | None = None,
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
            Final(d.id, DeliveryStatus.sent.value, None, None, provider_message_id, at, entry, message)
        )

    def final(
        self,
        d: DeliveryRow,
        status: DeliveryStatus,
        reason: str,
        at: datetime,
        error: str | None = None,
        message: MessageCopy | None = None,
    ) -> None:
        detail = {"error": error} if error else None
        entry = event_row(d.id, at, status.value, status=status.value, reason=reason, detail=detail)
        self.out.finals.append(Final(d.id, status.value, reason, error, None, None, entry, message))

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
        self,
        d: DeliveryRow,
        now: datetime,
        *,
        permanent: bool,
        error: str,
        retry_after: float | None,
        message: MessageCopy | None = None,
    ) -> str:
        """A provider failure with nothing handed over; returns the outcome (``retrying`` or ``dead``)."""
        decision = decide_retry(
            self.retry, d.attempts, permanent=permanent, retry_after=retry_after, rng=self.rng
        )
        if decision.delay is None:
            self.final(d, DeliveryStatus.dead, decision.reason, now, error=error[:2000], message=message)
            return "dead"
        detail = {"error": error[:500], "attempt": d.attempts}
        self.release(
            d, now + decision.delay, decision.reason, refund=False, status=DeliveryStatus.retrying,
            detail=detail, last_error=error[:2000],
        )  # fmt: skip
        return "retrying"

    def unknown(
        self,
        d: DeliveryRow,
        now: datetime,
        started: datetime,
        error: str,
        *,
        again: bool,
        message: MessageCopy | None = None,
    ) -> str:
        """Handed over, then no answer: one more attempt after a longer wait, never a second one
        (``again``: the delivery already had an unknown outcome). Returns the outcome."""
        if again or d.attempts >= self.retry.max_attempts:
            self.final(
                d,
                DeliveryStatus.dead,
                UNKNOWN,
                now,
                error=f"{error[:1900]} (outcome unknown twice: not sent again)",
                message=message,
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
        """Make the pending outcomes durable (:func:`planner.store.outcomes.write`), then enqueue the
        new jobs of released deliveries."""
        out, self.out = self.out, Outcomes()
        if not out:
            return
        written = store.write(self.db, out, self.token, now, self.batch_size)
        enqueue_reassigned(self.redis, written.moved, now)
        if written.stale:
            self.stale |= written.stale
            log.warning(
                "outcomes arrived after this worker's claim was lost; kept on the timeline only",
                deliveries=sorted(written.stale),
            )
