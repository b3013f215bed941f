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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog

from planner.core.fallback import conditions_of_outcome
from planner.core.job_batches import JobBatch
from planner.core.message_copy import MessageCopy
from planner.core.policy import PlanningPolicy
from planner.core.retry import RetryPolicy, decide_retry
from planner.core.status import DeliveryStatus
from planner.core.webhook_events import (
    RECIPIENT_ADDRESS_INVALID,
    RECIPIENT_OPTED_OUT,
    DeliveryFacts,
    WebhookEvent,
    delivery_outcome_event,
    outcome_event_type,
    recipient_event,
)
from planner.dispatch.outbox import enqueue_committed
from planner.dispatch.reassign import enqueue_reassigned
from planner.store import outcomes as store
from planner.store.batch_connection import BatchConnection
from planner.store.claims import DeliveryRow
from planner.store.outcomes import Final, Outcomes, Release
from planner.store.reassign import Move
from planner.store.timeline import event_row

log = structlog.get_logger("planner.delivery")

UNKNOWN = "outcome_unknown"


@dataclass(frozen=True)
class BatchEvents:
    """What a batch needs to emit webhook events: the types some enabled endpoint wanted when it
    claimed (a type nobody wants costs nothing), and its recipients' external ids."""

    wanted: frozenset[str] = frozenset()
    recipients: Mapping[int, str | None] = field(default_factory=dict)

    def outcome(
        self, d: DeliveryRow, status: str, reason: str | None, at: datetime, **extra: Any
    ) -> WebhookEvent | None:
        if outcome_event_type(status, reason) not in self.wanted:
            return None
        facts = DeliveryFacts(
            d.id, self.recipients.get(d.recipient_id), d.kind, d.channel, d.dedup_key, d.scheduled_at
        )
        return delivery_outcome_event(facts, status, reason, at, attempts=d.attempts, **extra)

    def recipient(self, event_type: str, d: DeliveryRow, at: datetime, **extra: Any) -> WebhookEvent | None:
        if event_type not in self.wanted:
            return None
        return recipient_event(event_type, at, self.recipients.get(d.recipient_id), d.channel, **extra)


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
        events: BatchEvents | None = None,
        policy: PlanningPolicy | None = None,
    ) -> None:
        self.db = db
        self.events = events or BatchEvents()
        self.redis = connection
        self.token = token
        self.retry = retry
        self.rng = rng
        self.unknown_delay = unknown_delay
        self.batch_size = batch_size
        #: The rule chain's parameters, for the fallbacks a failure calls (None: none planned).
        self.policy = policy
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
        locale: str | None = None,
        message: MessageCopy | None = None,
    ) -> None:
        """Accepted by the provider; ``event`` records how it was learnt when not by this send,
        ``locale`` the language of the templates the message came from."""
        entry = (
            None
            if event is None
            else event_row(
                d.id, at, event, status="sent", detail={"provider_message_id": provider_message_id}
            )
        )
        webhook = self.events.outcome(d, "sent", None, at, provider_message_id=provider_message_id)
        self.out.finals.append(
            Final(
                d.id,
                DeliveryStatus.sent.value,
                None,
                None,
                provider_message_id,
                at,
                entry,
                webhook,
                locale,
                message,
            )
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
        webhook = self.events.outcome(d, status.value, reason, at, error=error)
        self.out.finals.append(
            Final(d.id, status.value, reason, error, None, None, entry, webhook, message=message)
        )

    def opted_out(self, d: DeliveryRow, at: datetime) -> None:
        """The provider says the recipient opted out of the delivery's channel (an SMS STOP)."""
        self.out.opt_outs.append((d.recipient_id, d.channel))
        event = self.events.recipient(RECIPIENT_OPTED_OUT, d, at, kind=None, source="provider")
        self.out.webhooks += [event] if event else []

    def address_invalid(self, d: DeliveryRow, error: str, at: datetime) -> None:
        """The provider refused the recipient's address on the delivery's channel for good."""
        self.out.invalid_addresses.append((d.recipient_id, d.channel, error[:500]))
        event = self.events.recipient(
            RECIPIENT_ADDRESS_INVALID, d, at, delivery_id=d.id, error=error[:500], source="send"
        )
        self.out.webhooks += [event] if event else []

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
        refused: bool = False,
        invalid_address: bool = False,
        message: MessageCopy | None = None,
    ) -> str:
        """A failure with nothing handed over; returns the outcome (``retrying`` or ``dead``).
        ``refused``: the provider refused the message; ``invalid_address``: it said the address is
        dead (the conditions a fallback may name, :mod:`planner.core.fallback`)."""
        decision = decide_retry(
            self.retry, d.attempts, permanent=permanent, retry_after=retry_after, rng=self.rng
        )
        if decision.delay is None:
            self.final(d, DeliveryStatus.dead, decision.reason, now, error=error[:2000], message=message)
            met = conditions_of_outcome(dead=True, refused=refused, invalid_address=invalid_address)
            self.out.failures.append((d.id, met))
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
            self.out.failures.append((d.id, frozenset({"dead"})))
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
        written = store.write(self.db, out, self.token, now, self.batch_size, self.policy)
        enqueue_reassigned(self.redis, written.moved, now)
        if written.fallbacks:
            self._enqueue_fallbacks(written.fallbacks, now)
        if written.stale:
            self.stale |= written.stale
            log.warning(
                "outcomes arrived after this worker's claim was lost; kept on the timeline only",
                deliveries=sorted(written.stale),
            )

    def _enqueue_fallbacks(self, jobs: list[JobBatch], now: datetime) -> None:
        """The fallbacks' jobs, after the commit that planned them. Redis failing here leaves them
        queued in the database, where the reconcile finds them."""
        if enqueue_committed(self.redis, jobs, now):
            log.info("fallbacks planned", deliveries=[j.delivery_ids[0] for j in jobs])
