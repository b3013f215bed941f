"""Ad-hoc (transactional) notifications, through the same rules as planned deliveries.

A request becomes one ``Delivery`` row keyed by its dedup key (a repeat is a no-op that returns the
first one), decided like a planned occurrence: opt-out, invalid channel and a missing address
suppress it; quiet hours defer it to the window's end; a full frequency cap suppresses it. Kinds
marked critical (password resets) bypass quiet hours and caps, not an opt-out. The row commits with
its RQ job id and is enqueued after the commit, like the planner's (see :mod:`planner.outbox`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from planner.app import App
from planner.clock import ensure_utc
from planner.core import checks, validation
from planner.core.policy import PlanningPolicy
from planner.core.status import CAP_COUNTED_STATUSES, DeliveryStatus
from planner.dispatch.outbox import JobBatch, enqueue_batches, mark_queued, new_job_id
from planner.errors import InvalidInput, StateConflict
from planner.store.dialect import dialect_of
from planner.store.models import Recipient
from planner.store.queries import find_delivery_by_key, recipient_by_external_id
from planner.store.tables import DELIVERIES

log = structlog.get_logger("planner.notify")

PRIORITIES = ("high", "default", "bulk")
MAX_DATA_BYTES = 64 * 1024
#: Template data nests at most this deep; the API's response serializer gives up far below
#: Python's recursion limit, and no template needs more.
MAX_DATA_DEPTH = 32


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


@dataclass(frozen=True)
class Decision:
    status: DeliveryStatus
    reason: str | None
    scheduled_at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


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


def validate_request(
    recipient: str,
    kind: str,
    channel: str,
    *,
    dedup_key: str | None,
    data: Any,
    priority: str | None,
    at: datetime | None,
    default_queue: str,
) -> AdhocRequest:
    validation.external_id(recipient, "recipient_id")
    validation.kind(kind, "kind")
    chan = validation.channel(channel, "channel")
    if dedup_key is not None:
        if not isinstance(dedup_key, str) or not 1 <= len(dedup_key) <= 255 or not dedup_key.strip():
            raise InvalidInput("dedup_key", dedup_key, "1-255 characters")
        if dedup_key.startswith("sub:"):
            raise InvalidInput(
                "dedup_key", dedup_key, "a key not starting with 'sub:' (kept for planned deliveries)"
            )
    if priority is not None and priority not in PRIORITIES:
        raise InvalidInput("priority", priority, "one of 'high', 'default', 'bulk'")
    if data is not None:
        _check_data(data)
    return AdhocRequest(
        recipient=recipient,
        kind=kind,
        channel=chan.value,
        dedup_key=dedup_key or f"adhoc:{uuid.uuid4().hex}",
        queue=priority or default_queue,
        at=ensure_utc(at, "at") if at is not None else None,
        data=data,
    )


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects, without recursion (so no RecursionError)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DATA_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _check_data(data: Any) -> None:
    """Template data must survive the database's JSON column and the API's response as it is."""
    if not isinstance(data, dict):
        raise InvalidInput("data", data, "a JSON object")
    if _depth(data) > MAX_DATA_DEPTH:
        raise InvalidInput(
            "data", "(nested too deeply)", f"a JSON object nested at most {MAX_DATA_DEPTH} deep"
        )
    try:
        size = len(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput("data", data, "a JSON object of plain values (no NaN, no huge numbers)") from None
    if size > MAX_DATA_BYTES:
        raise InvalidInput("data", f"{size} bytes", f"at most {MAX_DATA_BYTES} bytes of JSON")


def decide(
    request: AdhocRequest,
    recipient: Recipient,
    policy: PlanningPolicy,
    now: datetime,
    counted: list[datetime],
) -> Decision:
    """The planner's rule chain for one ad-hoc send (pure). ``counted``: sorted cap-counted instants."""
    wanted = max(request.at, now) if request.at is not None else now
    decision = checks.decide(
        policy,
        kind=request.kind,
        channel=request.channel,
        audience=recipient.audience(request.channel),
        at=wanted,
        now=now,
        counted=counted,
    )
    detail: dict[str, Any] = {"source": "adhoc", "requested_at": wanted.isoformat(), "queue": request.queue}
    if policy.is_critical(request.kind):
        detail["critical"] = True
    detail.update(decision.detail())
    return Decision(decision.status, decision.reason, decision.scheduled_at, detail)


def _lock_cap_key(session: Session, recipient_id: int, channel: str) -> None:
    # The same key as PlannerRunner._lock_cap_keys, so a planner chunk and an ad-hoc send on one
    # recipient and channel cannot both take the last slot of a cap.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"cap:{recipient_id}:{channel}"},
    )


def _counted(
    session: Session, recipient_id: int, channel: str, around: datetime, reach: timedelta
) -> list[datetime]:
    c = DELIVERIES.c
    rows = session.scalars(
        select(c.scheduled_at).where(
            c.recipient_id == recipient_id,
            c.channel == channel,
            c.status.in_([s.value for s in CAP_COUNTED_STATUSES]),
            c.scheduled_at > around - reach,
            c.scheduled_at < around + reach,
        )
    )
    return sorted(rows)


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
) -> NotifyResult:
    """Create (or find, by dedup key) one ad-hoc delivery and hand it to RQ."""
    request = validate_request(
        recipient,
        kind,
        channel,
        dedup_key=dedup_key,
        data=data,
        priority=priority,
        at=at,
        default_queue=app.settings.queue_for_kind(kind),
    )
    if not app.templates.has_template(request.kind, request.channel):
        # Refused now: saved, it would only die at send time with template_missing.
        raise InvalidInput(
            "kind",
            kind,
            f"a kind with a template for {request.channel} (`planner templates check` lists them)",
        )
    # Nothing is written while Redis is known to be down; if it goes down between here and the
    # enqueue, the row is saved and the reply says so (the reconcile enqueues it later).
    app.require_redis()
    with app.sessions() as session, session.begin():
        saved = _save(app, session, request, now, actor)
    if isinstance(saved, NotifyResult):
        return saved
    decision, delivery_id, job_id = saved
    outcome = _hand_off(app, request, decision, delivery_id, job_id, now)
    with app.sessions() as session:
        delivery = find_delivery_by_key(session, request.dedup_key)
    assert delivery is not None
    log.info(
        "ad-hoc notification",
        delivery_id=delivery_id,
        job_id=job_id,
        recipient=request.recipient,
        kind=request.kind,
        channel=request.channel,
        outcome=outcome,
        reason=decision.reason,
    )
    return NotifyResult(created=True, outcome=outcome, message=_message(decision, outcome), delivery=delivery)


def _save(
    app: App, session: Session, request: AdhocRequest, now: datetime, actor: str | None
) -> tuple[Decision, int, str | None] | NotifyResult:
    """Decide through the rule chain and insert the row with its first timeline entry, in the
    caller's transaction; a repeated dedup key answers with the first delivery instead."""
    postgres = dialect_of(app.sessions) == "postgresql"
    person = recipient_by_external_id(session, request.recipient)
    assert person.id is not None
    existing = find_delivery_by_key(session, request.dedup_key)
    if existing is not None:
        return _duplicate(request, existing)
    if postgres:
        _lock_cap_key(session, person.id, request.channel)
    cap = app.policy.cap_for(request.kind, request.channel)
    wanted = max(request.at, now) if request.at is not None else now
    # Quiet hours move a send by at most a day; look that far past the cap window as well.
    counted = _counted(session, person.id, request.channel, wanted, cap.window + timedelta(days=1))
    decision = decide(request, person, app.policy, now, counted)
    job_id = new_job_id() if decision.status is DeliveryStatus.planned else None
    detail = {**(decision.detail or {}), "actor": actor} if actor else decision.detail
    row = _delivery_row(request, person.id, wanted, decision, job_id, now) | {
        # The first timeline entry ("planned", at created_at), implied by the row (queries.timeline).
        "planned_status": decision.status.value,
        "planned_reason": decision.reason,
        "planned_detail": dict(detail) if detail else None,
    }
    dialect_insert = pg_insert if postgres else sqlite_insert
    delivery_id = session.scalar(
        dialect_insert(DELIVERIES)
        .values(row)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(DELIVERIES.c.id)
    )
    if delivery_id is None:
        # Another request with the same key committed between our look-up and our insert.
        raced = find_delivery_by_key(session, request.dedup_key)
        assert raced is not None
        return _duplicate(request, raced)
    return decision, delivery_id, job_id


def _delivery_row(
    request: AdhocRequest,
    recipient_id: int,
    wanted: datetime,
    decision: Decision,
    job_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "dedup_key": request.dedup_key,
        "recipient_id": recipient_id,
        "subscription_id": None,
        "kind": request.kind,
        "channel": request.channel,
        "queue": request.queue,
        "local_date": None,
        "occurrence_at": wanted,
        "scheduled_at": decision.scheduled_at,
        "status": decision.status.value,
        "reason": decision.reason,
        "attempts": 0,
        "job_id": job_id,
        "data": request.data,
        "created_at": now,
        "updated_at": now,
    }


def _hand_off(
    app: App, request: AdhocRequest, decision: Decision, delivery_id: int, job_id: str | None, now: datetime
) -> str:
    """The outbox's hand-off after the commit, as the planner's: enqueue, then mark queued. Redis
    failing here leaves the row saved (``saved``): the reconcile enqueues it."""
    outcome = _outcome(decision, now)
    if job_id is None:
        return outcome
    batch = JobBatch(job_id, request.queue, request.channel, decision.scheduled_at, (delivery_id,))
    try:
        enqueue_batches(app.redis, [batch], now)
    except redis.RedisError as exc:
        log.warning("ad-hoc notification saved, not enqueued", delivery_id=delivery_id, error=str(exc))
        return "saved"
    with app.sessions() as session, session.begin():
        mark_queued(session, [batch], now)
    return outcome


def _outcome(decision: Decision, now: datetime) -> str:
    if decision.status is not DeliveryStatus.planned:
        return decision.status.value
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
