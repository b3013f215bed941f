"""Ad-hoc (transactional) notifications, through the same rules as planned deliveries.

A request becomes one ``Delivery`` row keyed by its dedup key (a repeat is a no-op that returns the
first one), decided by the planner's chain (:mod:`planner.core.adhoc`). The row is inserted already
``queued`` with its RQ job id, as the planner's are, and the job is enqueued after the commit: a
crash or a Redis outage in between leaves a queued row whose job the reconcile
(:mod:`planner.dispatch.reconcile`) enqueues again under the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import redis
import structlog

from planner.app import App
from planner.core.adhoc import AdhocRequest, decide_adhoc, first_entry_detail
from planner.core.checks import Decision
from planner.core.job_batches import JobBatch, new_job_id
from planner.core.localtime import local_date_of
from planner.core.status import DeliveryStatus
from planner.dispatch.outbox import enqueue_batches
from planner.errors import StateConflict
from planner.store import adhoc

log = structlog.get_logger("planner.notify")


@dataclass(frozen=True)
class NotifyResult:
    created: bool
    outcome: str
    message: str
    delivery: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "outcome": self.outcome,
            "message": self.message,
            "delivery": self.delivery,
        }


def notify(
    app: App,
    recipient: str,
    kind: str,
    channel: str,
    *,
    now: datetime,
    dedup_key: str | None = None,
    data: dict[str, Any] | None = None,
    priority: str | None = None,
    at: datetime | None = None,
    actor: str | None = None,
    fallback: dict[str, Any] | None = None,
) -> NotifyResult:
    """Create (or find, by dedup key) one ad-hoc delivery and hand it to RQ. ``fallback``: the
    channel to try if this one fails (:mod:`planner.core.fallback`)."""
    request = AdhocRequest.parse(
        recipient,
        kind,
        channel,
        dedup_key=dedup_key,
        data=data,
        priority=priority,
        at=at,
        default_queue=app.settings.queue_for_kind(kind),
        fallback=fallback,
    )
    # Refused now: saved, it would only die at send time with template_missing.
    app.templates.require(request.kind, request.channel)
    if request.fallback is not None:
        app.templates.require(request.kind, request.fallback.channel, "fallback.channel")
    # Nothing is written while Redis is known to be down; if it goes down between the commit and the
    # enqueue, the row is saved and the reply says so (the reconcile enqueues it later).
    app.require_redis()
    with app.sessions() as session, session.begin():
        saved = _save(app, session, request, now, actor)
    if isinstance(saved, NotifyResult):
        return saved
    decision, delivery = saved
    outcome = _hand_off(app, request, decision, delivery, now)
    log.info(
        "ad-hoc notification",
        delivery_id=delivery["id"],
        job_id=delivery["job_id"],
        recipient=request.recipient,
        kind=request.kind,
        channel=request.channel,
        outcome=outcome,
        reason=decision.reason,
    )
    return NotifyResult(created=True, outcome=outcome, message=_message(decision, outcome), delivery=delivery)


def _save(
    app: App, session: Any, request: AdhocRequest, now: datetime, actor: str | None
) -> tuple[Decision, dict[str, Any]] | NotifyResult:
    """Decide and insert the row, in the caller's transaction; a repeated dedup key answers with
    the first delivery instead."""
    existing = adhoc.existing_delivery(session, request.dedup_key)
    if existing is not None:
        return _duplicate(request, existing)
    wanted = request.wanted_at(now)
    # Quiet hours move a send by at most a day; look that far past the cap window as well.
    reach = app.policy.cap_for(request.kind, request.channel).window + timedelta(days=1)
    facts = adhoc.load_facts(session, request.recipient, request.channel, wanted, reach)
    decision = decide_adhoc(request, facts.recipient, app.policy, now, facts.counted)
    job_id = new_job_id() if decision.to_send else None
    detail = first_entry_detail(request, decision, app.policy, now, actor)
    local_date = local_date_of(request.wanted_at(now), facts.recipient.timezone)
    delivery = adhoc.insert_delivery(
        session, _row(request, facts.recipient.id, local_date, decision, job_id, detail, now)
    )
    if delivery is None:
        # Another request with the same key committed between our look-up and our insert.
        raced = adhoc.existing_delivery(session, request.dedup_key)
        assert raced is not None
        return _duplicate(request, raced)
    return decision, delivery


def _row(
    request: AdhocRequest,
    recipient_id: int,
    local_date: date,
    decision: Decision,
    job_id: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The delivery row: ``queued`` with its job id when it is to be sent, else its final status.
    Its first timeline entry ("planned", at created_at) is implied by the row (``planned_*``). Its
    local date is the recipient's date at the wanted instant, as a planned occurrence's is."""
    status = DeliveryStatus.queued if job_id is not None else decision.status
    return {
        "dedup_key": request.dedup_key,
        "recipient_id": recipient_id,
        "subscription_id": None,
        "kind": request.kind,
        "channel": request.channel,
        "queue": request.queue,
        "local_date": local_date,
        "occurrence_at": request.wanted_at(now),
        "scheduled_at": decision.scheduled_at,
        "status": status.value,
        "reason": decision.reason,
        "attempts": 0,
        "job_id": job_id,
        "data": request.data,
        "fallback": None if request.fallback is None else request.fallback.as_json(),
        "created_at": now,
        "updated_at": now,
        "planned_status": decision.status.value,
        "planned_reason": decision.reason,
        "planned_detail": detail,
    }


def _duplicate(request: AdhocRequest, existing: dict[str, Any]) -> NotifyResult:
    same = (existing["recipient_id"], existing["kind"], existing["channel"]) == (
        request.recipient,
        request.kind,
        request.channel,
    )
    if not same:
        raise StateConflict(
            "dedup_key", request.dedup_key, "a key not already used for another recipient, kind or channel"
        )
    return NotifyResult(
        created=False,
        outcome="duplicate",
        message=f"dedup key {request.dedup_key!r} already used by delivery {existing['id']}: not sent again",
        delivery=existing,
    )


def _hand_off(
    app: App, request: AdhocRequest, decision: Decision, delivery: dict[str, Any], now: datetime
) -> str:
    """Enqueue the committed row's job. Redis failing here leaves the row saved (``saved``): the
    reconcile enqueues it under the same job id."""
    if delivery["job_id"] is None:
        return decision.status.value
    batch = JobBatch(
        delivery["job_id"], request.queue, request.channel, decision.scheduled_at, (delivery["id"],)
    )
    try:
        enqueue_batches(app.redis, [batch], now)
    except redis.RedisError as exc:
        log.warning("ad-hoc notification saved, not enqueued", delivery_id=delivery["id"], error=str(exc))
        return "saved"
    return "queued" if decision.scheduled_at <= now else "scheduled"


def _message(decision: Decision, outcome: str) -> str:
    if outcome == "saved":
        return (
            "saved but not queued: Redis is unavailable; the reconcile (the worker's maintenance or "
            "the next planner run) will enqueue it, do not send it again"
        )
    if outcome == "queued":
        return "queued for sending now"
    if outcome == "scheduled":
        why = " (deferred by quiet hours)" if decision.reason == "quiet_hours_deferred" else ""
        return f"scheduled for {decision.scheduled_at.isoformat()}{why}"
    return f"{outcome}: {decision.reason}"
