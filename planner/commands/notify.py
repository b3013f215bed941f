"""Ad-hoc (transactional) notifications, through the same rules as planned deliveries.

A request becomes one ``Delivery`` row keyed by its dedup key (a repeat is a no-op that returns the
first one), decided by the planner's chain (:mod:`planner.core.adhoc`). The row is inserted already
``queued`` with its RQ job id, as the planner's are, and the job is enqueued after the commit: a
crash or a Redis outage in between leaves a queued row whose job the reconcile
(:mod:`planner.dispatch.reconcile`) enqueues again under the same id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.core.adhoc import AdhocRequest, plan_adhoc
from planner.dispatch.outbox import enqueue_committed
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
        facts = adhoc.load_facts(session, request, now, request.cap_reach(app.policy))
        if isinstance(facts, adhoc.AdhocFacts):
            plan = plan_adhoc(request, facts.recipient, facts.counted, app.policy, now, actor)
            delivery, created = adhoc.save(session, plan.row)
        else:
            delivery, created = facts, False
    if not created:
        request.check_repeat(delivery)
        message = f"dedup key {request.dedup_key!r} already used by delivery {delivery['id']}: not sent again"
        return NotifyResult(created=False, outcome="duplicate", message=message, delivery=delivery)
    job = plan.job(delivery["id"])
    outcome = plan.outcome(None if job is None else enqueue_committed(app.redis, [job], now), now)
    log.info(
        "ad-hoc notification",
        delivery_id=delivery["id"],
        job_id=delivery["job_id"],
        recipient=request.recipient,
        kind=request.kind,
        channel=request.channel,
        outcome=outcome,
        reason=plan.decision.reason,
    )
    return NotifyResult(created=True, outcome=outcome, message=plan.message(outcome), delivery=delivery)
