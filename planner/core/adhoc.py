"""Ad-hoc (transactional) notifications, pure: the validated request and its decision.

A request is validated once, by :meth:`AdhocRequest.parse`, at whichever door it came through
(the Python API, the CLI, HTTP). It is decided by the planner's own chain
(:func:`planner.core.checks.decide`) with no planned-occurrence rules (snooze and engagement backoff
apply to schedules only): opt-out, an invalid or missing address suppress it; quiet hours defer it;
lateness cannot apply (it is wanted now or later); a full cap suppresses it. Critical kinds bypass
quiet hours and caps, never an opt-out.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from planner.clock import ensure_utc
from planner.core import checks, validation
from planner.core.fallback import KEY_PREFIX, FallbackRule
from planner.core.job_batches import JobBatch, new_job_id
from planner.core.localtime import local_date_of
from planner.core.planning import PLANNED_KEY_PREFIX
from planner.core.policy import PlanningPolicy
from planner.core.recipient import RecipientState
from planner.core.status import DeliveryStatus
from planner.core.template_data import check_template_data
from planner.errors import InvalidInput, StateConflict

PRIORITIES = ("high", "default", "bulk")


@dataclass(frozen=True)
class AdhocRequest:
    """A validated request; every field has passed the boundary checks."""

    recipient: str
    kind: str
    channel: str
    dedup_key: str
    queue: str
    at: datetime | None
    data: dict[str, Any] | None
    fallback: FallbackRule | None = None

    @classmethod
    def parse(
        cls,
        recipient: str,
        kind: str,
        channel: str,
        *,
        dedup_key: str | None,
        data: Any,
        priority: str | None,
        at: datetime | None,
        default_queue: str,
        fallback: Any = None,
    ) -> AdhocRequest:
        """Validate a request as it came in; ``InvalidInput`` names the first bad field."""
        validation.external_id(recipient, "recipient_id")
        validation.kind(kind, "kind")
        chan = validation.channel(channel, "channel")
        if dedup_key is not None:
            _check_dedup_key(dedup_key)
        if priority is not None and priority not in PRIORITIES:
            raise InvalidInput("priority", priority, "one of 'high', 'default', 'bulk'")
        if data is not None:
            check_template_data(data)
        rule = None if fallback is None else FallbackRule.parse(fallback, "fallback", chan.value)
        return cls(
            recipient=recipient,
            kind=kind,
            channel=chan.value,
            dedup_key=dedup_key or f"adhoc:{uuid.uuid4().hex}",
            queue=priority or default_queue,
            at=ensure_utc(at, "at") if at is not None else None,
            data=data,
            fallback=rule,
        )

    def wanted_at(self, now: datetime) -> datetime:
        """When the sender wants it: ``at``, never before ``now``."""
        return max(self.at, now) if self.at is not None else now

    def cap_reach(self, policy: PlanningPolicy) -> timedelta:
        """How far around the wanted instant the cap's counted deliveries are read: the cap window,
        and a day more, since quiet hours move a send by at most a day."""
        return policy.cap_for(self.kind, self.channel).window + timedelta(days=1)

    def check_repeat(self, existing: dict[str, Any]) -> None:
        """A dedup key already used: a repeat of this request, or ``StateConflict``."""
        same = (existing["recipient_id"], existing["kind"], existing["channel"])
        if same != (self.recipient, self.kind, self.channel):
            expected = "a key not already used for another recipient, kind or channel"
            raise StateConflict("dedup_key", self.dedup_key, expected)


def _check_dedup_key(dedup_key: object) -> None:
    if not isinstance(dedup_key, str) or not 1 <= len(dedup_key) <= 255 or not dedup_key.strip():
        raise InvalidInput("dedup_key", dedup_key, "1-255 characters")
    validation.text(dedup_key, "dedup_key")
    for prefix, whose in ((PLANNED_KEY_PREFIX, "planned deliveries"), (KEY_PREFIX, "fallbacks")):
        if dedup_key.startswith(prefix):
            expected = f"a key not starting with {prefix!r} (kept for {whose})"
            raise InvalidInput("dedup_key", dedup_key, expected)


def decide_adhoc(
    request: AdhocRequest,
    recipient: RecipientState,
    policy: PlanningPolicy,
    now: datetime,
    counted: Sequence[datetime],
) -> checks.Decision:
    """The planner's chain for one ad-hoc send. ``counted``: sorted cap-counted instants."""
    facts = checks.Facts(
        kind=request.kind,
        channel=request.channel,
        audience=recipient.audience(request.channel),
        at=request.wanted_at(now),
        now=now,
        counted=counted,
    )
    return checks.decide(policy, facts)


@dataclass(frozen=True)
class AdhocPlan:
    """What an ad-hoc request becomes: the chain's decision and the delivery row that records it."""

    decision: checks.Decision
    row: dict[str, Any]

    def job(self, delivery_id: int) -> JobBatch | None:
        """The RQ job that carries the saved delivery, when it is to be sent."""
        if self.row["job_id"] is None:
            return None
        row = self.row
        return JobBatch(row["job_id"], row["queue"], row["channel"], row["scheduled_at"], (delivery_id,))

    def outcome(self, enqueued: bool | None, now: datetime) -> str:
        """What became of the request: its final status when not to be sent (``enqueued`` None);
        ``saved`` when its job could not be enqueued; else ``queued`` or ``scheduled``."""
        if enqueued is None:
            return self.decision.status.value
        if not enqueued:
            return "saved"
        return "queued" if self.decision.scheduled_at <= now else "scheduled"

    def message(self, outcome: str) -> str:
        """The outcome in a sentence, for the person who asked."""
        if outcome == "saved":
            return (
                "saved but not queued: Redis is unavailable; the reconcile (the worker's maintenance or "
                "the next planner run) will enqueue it, do not send it again"
            )
        if outcome == "queued":
            return "queued for sending now"
        if outcome == "scheduled":
            why = " (deferred by quiet hours)" if self.decision.reason == "quiet_hours_deferred" else ""
            return f"scheduled for {self.decision.scheduled_at.isoformat()}{why}"
        return f"{outcome}: {self.decision.reason}"


def plan_adhoc(
    request: AdhocRequest,
    recipient: RecipientState,
    counted: Sequence[datetime],
    policy: PlanningPolicy,
    now: datetime,
    actor: str | None,
) -> AdhocPlan:
    """Decide the request and write its row: ``queued`` with a new job id when it is to be sent
    (the planner's hand-off), else its final status."""
    decision = decide_adhoc(request, recipient, policy, now, counted)
    job_id = new_job_id() if decision.to_send else None
    detail = first_entry_detail(request, decision, policy, now, actor)
    local_date = local_date_of(request.wanted_at(now), recipient.timezone)
    return AdhocPlan(decision, _row(request, recipient.id, local_date, decision, job_id, detail, now))


def _row(
    request: AdhocRequest,
    recipient_id: int,
    local_date: date,
    decision: checks.Decision,
    job_id: str | None,
    detail: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The delivery row. Its first timeline entry ("planned", at created_at) is implied by the row
    (``planned_*``). Its local date is the recipient's date at the wanted instant, as a planned
    occurrence's is."""
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


def first_entry_detail(
    request: AdhocRequest, decision: checks.Decision, policy: PlanningPolicy, now: datetime, actor: str | None
) -> dict[str, Any]:
    """The detail of the delivery's first timeline entry: where it came from and what the chain said."""
    detail: dict[str, Any] = {
        "source": "adhoc",
        "requested_at": request.wanted_at(now).isoformat(),
        "queue": request.queue,
    }
    if policy.is_critical(request.kind):
        detail["critical"] = True
    detail.update(decision.detail())
    if actor:
        detail["actor"] = actor
    return detail
