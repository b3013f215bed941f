"""Sending deliveries: claim in the database, re-check, rate-limit, render, send, record.

A delivery is claimed by one conditional UPDATE (``queued``/``retrying``/``planned`` -> ``sending``,
counting the attempt, with a lease); only the claimer calls the provider, so duplicate jobs and
racing workers are harmless. Everything that is not a send goes back with a reason: paused and
quiet-hours deliveries wait (their attempt is refunded), rate-limited ones come back when the window
frees, failures retry with backoff or end ``dead``. A worker that dies mid-send leaves its lease to
expire; :func:`recover_expired_leases` hands those deliveries to another worker, which sends with
the same Message-ID.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from adapters import Adapter, Message, PermanentError, TransientError
from planner.core.checks import recheck_at_send
from planner.core.localtime import to_local
from planner.core.policy import PlanningPolicy
from planner.core.retry import RetryPolicy, decide_retry
from planner.core.status import DeliveryStatus
from planner.delivery.templating import Renderer, TemplateFailure
from planner.dispatch.outbox import JobBatch, assign_batches, batches_from_rows, enqueue_batches
from planner.dispatch.ratelimit import ProviderLimiter
from planner.store.models import Delivery, Recipient
from planner.store.pauses import active_pauses, is_paused
from planner.store.timeline import event_row, record_events
from planner.store.types import UTCDateTime

log = structlog.get_logger("planner.delivery")

CLAIMABLE = (DeliveryStatus.planned.value, DeliveryStatus.queued.value, DeliveryStatus.retrying.value)
#: A job may run a little before its instant (clock skew between hosts); not more.
EARLY_TOLERANCE = timedelta(seconds=5)
PAUSE_POLL = timedelta(seconds=60)


def message_id_for(delivery_id: int, dedup_key: str, domain: str = "planner.local") -> str:
    """The same Message-ID on every attempt of a delivery, so duplicates are recognisable."""
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:16]
    return f"<delivery-{delivery_id}.{digest}@{domain}>"


@dataclass
class _Outcomes:
    """What one batch decided, written back in a constant number of statements."""

    finals: list[dict[str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    invalid_addresses: list[tuple[int, str, str]] = field(default_factory=list)


_PG_FINALS = text(
    "UPDATE delivery AS d SET status = v.status, reason = v.reason, last_error = v.last_error, "
    "provider_message_id = v.pmid, sent_at = v.sent_at, lease_until = NULL, updated_at = :now "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]), CAST(:reasons AS varchar[]), "
    "CAST(:errors AS varchar[]), CAST(:pmids AS varchar[]), CAST(:sent AS timestamptz[])) "
    "AS v(id, status, reason, last_error, pmid, sent_at) "
    "WHERE d.id = v.id AND d.status = 'sending'"
).bindparams(bindparam("now", type_=UTCDateTime))


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
    waiting: int = 0


class Deliverer:
    """Sends batches of deliveries. Every dependency is passed in; the clock is called once per batch."""

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

    def _reschedule_early(self, session: Session, unclaimed: set[int], now: datetime) -> list[JobBatch]:
        """Pending deliveries this job reached before their instant get a new job at that instant.

        A job can run early (clock skew between hosts, a redriven duplicate); dropping it would leave the
        delivery waiting on a job that is already spent.
        """
        if not unclaimed:
            return []
        table = Delivery.__table__  # type: ignore[attr-defined]
        rows = session.execute(
            select(table.c.id, table.c.queue, table.c.channel, table.c.scheduled_at).where(
                table.c.id.in_(sorted(unclaimed)),
                table.c.status.in_(CLAIMABLE),
                table.c.scheduled_at > now + EARLY_TOLERANCE,
            )
        ).all()
        if not rows:
            return []
        jobs = assign_batches(((r.scheduled_at, r.channel, r.queue, r.id) for r in rows), self.batch_size)
        session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(job_id=bindparam("job_id")),
            [{"b_id": r.id, "job_id": jobs[r.id]} for r in rows],
        )
        return batches_from_rows((r.id, jobs[r.id], r.queue, r.channel, r.scheduled_at) for r in rows)

    def _enqueue_early(self, batches: list[JobBatch], now: datetime) -> None:
        if batches:
            enqueue_batches(self.redis, batches, now)
            log.info(
                "job ran early; deliveries rescheduled", deliveries=sum(len(b.delivery_ids) for b in batches)
            )

    # -- the batch -------------------------------------------------------------------------------

    def deliver_batch(self, ids: Sequence[int]) -> BatchReport:
        now = self.clock()
        report = BatchReport()
        with self.sessions() as session, session.begin():
            claimed = self.claim(session, ids, now)
            early = self._reschedule_early(session, set(ids) - set(claimed), now)
            if not claimed:
                self._enqueue_early(early, now)
                return report
            deliveries = list(
                session.scalars(
                    select(Delivery).where(col(Delivery.id).in_(claimed)).order_by(col(Delivery.id))
                )
            )
            recipients = {
                r.id: r
                for r in session.scalars(
                    select(Recipient).where(Recipient.id.in_({d.recipient_id for d in deliveries}))  # type: ignore[union-attr]
                )
            }
            pauses = active_pauses(session)
            session.expunge_all()
        self._enqueue_early(early, now)
        report.claimed = len(claimed)
        outcomes = _Outcomes()
        slots = _Slots(self.limiter, Counter(d.channel for d in deliveries))
        for delivery in deliveries:
            self._one(delivery, recipients[delivery.recipient_id], pauses, now, outcomes, report, slots)
            slots.remaining[delivery.channel] -= 1
        self._write(outcomes, now)
        return report

    def _one(
        self,
        d: Delivery,
        recipient: Recipient,
        pauses: frozenset[tuple[str, str]],
        now: datetime,
        out: _Outcomes,
        report: BatchReport,
        slots: _Slots,
    ) -> None:
        assert d.id is not None
        logger = log.bind(delivery_id=d.id, recipient=recipient.external_id, kind=d.kind, channel=d.channel)
        if self._held_back(d, recipient, pauses, now, out, report):
            return
        channel = d.channel
        if not slots.take(channel):
            assert self.limiter is not None
            self._release(out, d, self.limiter.retry_at(channel, now), "rate_limited", now, refund=True)
            report.waiting += 1
            return
        self._send(d, recipient, now, out, report, logger)

    def _send(
        self,
        d: Delivery,
        recipient: Recipient,
        now: datetime,
        out: _Outcomes,
        report: BatchReport,
        logger: Any,
    ) -> None:
        """Render and hand one message to the provider; record what became of it."""
        assert d.id is not None
        channel = d.channel
        address = recipient.email if channel == "email" else recipient.phone
        try:
            if not address:
                raise PermanentError(f"recipient has no {channel} address")
            rendered = self.renderer.render(d.kind, channel, _context(d, recipient))
            message = Message(
                delivery_id=d.id,
                dedup_key=d.dedup_key,
                recipient_id=recipient.external_id,
                kind=d.kind,
                channel=channel,  # type: ignore[arg-type]
                to=address,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                scheduled_at=d.scheduled_at,
                message_id=message_id_for(d.id, d.dedup_key),
            )
            adapter = self.adapters[channel]
            result = adapter.send(message)
        except TemplateFailure as exc:
            self._failed(out, d, now, report, logger, permanent=True, error=str(exc), retry_after=None)
            return
        except PermanentError as exc:
            if exc.invalid_address:
                out.invalid_addresses.append((recipient.id or 0, channel, str(exc)[:500]))
            self._failed(out, d, now, report, logger, permanent=True, error=str(exc), retry_after=None)
            return
        except TransientError as exc:
            self._failed(
                out, d, now, report, logger, permanent=False, error=str(exc), retry_after=exc.retry_after
            )
            return
        except Exception as exc:  # an adapter bug or an unexpected library error: assume it may pass
            self._failed(
                out,
                d,
                now,
                report,
                logger,
                permanent=False,
                error=f"{type(exc).__name__}: {exc}",
                retry_after=None,
            )
            return
        out.finals.append(
            {
                "b_id": d.id,
                "status": DeliveryStatus.sent.value,
                "reason": None,
                "last_error": None,
                "provider_message_id": result.provider_message_id,
                "sent_at": now,
            }
        )
        out.events.append(
            event_row(
                d.id,
                now,
                "sent",
                status=DeliveryStatus.sent.value,
                detail={"provider_message_id": result.provider_message_id, "attempt": d.attempts},
            )
        )
        report.sent += 1
        logger.info(
            "delivery sent",
            outcome="sent",
            attempt=d.attempts,
            lateness=(now - d.scheduled_at).total_seconds(),
        )

    def _held_back(
        self,
        d: Delivery,
        recipient: Recipient,
        pauses: frozenset[tuple[str, str]],
        now: datetime,
        out: _Outcomes,
        report: BatchReport,
    ) -> bool:
        """The re-check at send time (the facts may have changed since planning): True when the
        delivery does not go out now, with its outcome recorded."""
        stop = recheck_at_send(
            self.policy,
            kind=d.kind,
            channel=d.channel,
            audience=recipient.audience(d.channel),
            scheduled_at=d.scheduled_at,
            now=now,
        )
        if stop is not None and stop.failed:
            assert stop.status is not None and stop.reason is not None
            error = stop.detail.get("invalid")
            if "late_by_seconds" in stop.detail:
                # Workers were down longer than the kind tolerates: a stale brief is worse than none.
                error = f"{stop.detail['late_by_seconds']} s late"
            self._final(out, d, stop.status, stop.reason, now, error=error)
            report.suppressed += 1
            return True
        if is_paused(pauses, d.channel, d.kind):
            self._release(out, d, now + PAUSE_POLL, "paused", now, refund=True)
            report.waiting += 1
            return True
        if stop is not None:
            window = stop.detail["window"]
            detail = {"zone": recipient.timezone, "window": window, "until": stop.at.isoformat()}
            self._release(out, d, stop.at, "quiet_hours_deferred", now, refund=True, detail=detail)
            report.waiting += 1
            return True
        return False

    # -- outcomes --------------------------------------------------------------------------------

    def _final(
        self,
        out: _Outcomes,
        d: Delivery,
        status: DeliveryStatus,
        reason: str,
        now: datetime,
        *,
        error: str | None = None,
    ) -> None:
        assert d.id is not None
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
        d: Delivery,
        at: datetime,
        reason: str,
        now: datetime,
        *,
        refund: bool,
        status: DeliveryStatus = DeliveryStatus.queued,
        detail: dict[str, Any] | None = None,
    ) -> None:
        assert d.id is not None
        out.releases.append(
            {
                "b_id": d.id,
                "status": status.value,
                "reason": reason,
                "scheduled_at": at,
                "refund": 1 if refund else 0,
                "queue": d.queue,
                "channel": d.channel,
                "last_error": d.last_error,
            }
        )
        out.events.append(
            event_row(
                d.id,
                now,
                reason if reason != "transient_failure" else "retry_scheduled",
                status=status.value,
                reason=reason,
                detail={"next_attempt_at": at.isoformat(), **(detail or {})},
            )
        )

    def _failed(
        self,
        out: _Outcomes,
        d: Delivery,
        now: datetime,
        report: BatchReport,
        logger: Any,
        *,
        permanent: bool,
        error: str,
        retry_after: float | None,
    ) -> None:
        decision = decide_retry(
            self.retry, d.attempts, permanent=permanent, retry_after=retry_after, rng=self.rng
        )
        assert d.id is not None
        if decision.delay is None:
            self._final(out, d, DeliveryStatus.dead, decision.reason, now, error=error[:2000])
            report.dead += 1
            logger.warning(
                "delivery dead", outcome="dead", reason=decision.reason, error=error, attempt=d.attempts
            )
            return
        d.last_error = error[:2000]
        self._release(
            out,
            d,
            now + decision.delay,
            decision.reason,
            now,
            refund=False,
            status=DeliveryStatus.retrying,
            detail={"error": error[:500], "attempt": d.attempts},
        )
        report.retrying += 1
        logger.info(
            "delivery will retry",
            outcome="retrying",
            error=error,
            attempt=d.attempts,
            delay=decision.delay.total_seconds(),
        )

    def _write(self, out: _Outcomes, now: datetime) -> None:
        table = Delivery.__table__  # type: ignore[attr-defined]
        jobs = assign_batches(
            ((r["scheduled_at"], r["channel"], r["queue"], r["b_id"]) for r in out.releases), self.batch_size
        )
        for row in out.releases:
            row["job_id"] = jobs[row["b_id"]]
        with self.sessions() as session, session.begin():
            if out.finals and session.get_bind().dialect.name == "postgresql":
                # One short statement over arrays instead of an executemany of a hundred updates.
                session.execute(
                    _PG_FINALS,
                    {
                        "ids": [r["b_id"] for r in out.finals],
                        "statuses": [r["status"] for r in out.finals],
                        "reasons": [r["reason"] for r in out.finals],
                        "errors": [r["last_error"] for r in out.finals],
                        "pmids": [r["provider_message_id"] for r in out.finals],
                        "sent": [r["sent_at"] for r in out.finals],
                        "now": now,
                    },
                )
            elif out.finals:
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.sending.value)
                    .values(
                        status=bindparam("status"),
                        reason=bindparam("reason"),
                        last_error=bindparam("last_error"),
                        provider_message_id=bindparam("provider_message_id"),
                        sent_at=bindparam("sent_at"),
                        lease_until=None,
                        updated_at=now,
                    ),
                    out.finals,
                )
            if out.releases:
                session.execute(
                    update(table)
                    .where(table.c.id == bindparam("b_id"), table.c.status == DeliveryStatus.sending.value)
                    .values(
                        status=bindparam("status"),
                        reason=bindparam("reason"),
                        scheduled_at=bindparam("scheduled_at"),
                        attempts=table.c.attempts - bindparam("refund"),
                        job_id=bindparam("job_id"),
                        last_error=bindparam("last_error"),
                        lease_until=None,
                        updated_at=now,
                    ),
                    [{k: v for k, v in r.items() if k not in ("queue", "channel")} for r in out.releases],
                )
            for recipient_id, channel, reason in out.invalid_addresses:
                session.execute(
                    update(Recipient)
                    .where(col(Recipient.id) == recipient_id)
                    .values({f"{channel}_invalid": reason, "updated_at": now})
                )
            record_events(session, out.events)
        enqueue_batches(
            self.redis,
            batches_from_rows(
                (r["b_id"], r["job_id"], r["queue"], r["channel"], r["scheduled_at"]) for r in out.releases
            ),
            now,
        )


def _context(d: Delivery, recipient: Recipient) -> dict[str, Any]:
    local = to_local(d.scheduled_at, recipient.timezone)
    return {
        "recipient": {
            "external_id": recipient.external_id,
            "timezone": recipient.timezone,
            "email": recipient.email,
            "phone": recipient.phone,
        },
        "delivery": {"id": d.id, "kind": d.kind, "channel": d.channel, "dedup_key": d.dedup_key},
        "local_date": (d.local_date or local.date()).isoformat(),
        "scheduled_local": local.strftime("%Y-%m-%d %H:%M %Z"),
        "data": d.data or {},
    }
