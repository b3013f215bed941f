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
from datetime import datetime
from typing import Any

from planner.clock import ensure_utc
from planner.core import checks, validation
from planner.core.policy import PlanningPolicy
from planner.core.recipient import RecipientState
from planner.core.template_data import check_template_data
from planner.errors import InvalidInput

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
        return cls(
            recipient=recipient,
            kind=kind,
            channel=chan.value,
            dedup_key=dedup_key or f"adhoc:{uuid.uuid4().hex}",
            queue=priority or default_queue,
            at=ensure_utc(at, "at") if at is not None else None,
            data=data,
        )

    def wanted_at(self, now: datetime) -> datetime:
        """When the sender wants it: ``at``, never before ``now``."""
        return max(self.at, now) if self.at is not None else now


def _check_dedup_key(dedup_key: object) -> None:
    if not isinstance(dedup_key, str) or not 1 <= len(dedup_key) <= 255 or not dedup_key.strip():
        raise InvalidInput("dedup_key", dedup_key, "1-255 characters")
    validation.text(dedup_key, "dedup_key")
    if dedup_key.startswith("sub:"):
        raise InvalidInput(
            "dedup_key", dedup_key, "a key not starting with 'sub:' (kept for planned deliveries)"
        )


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
