"""What the testing kit reports of deliveries: a delivery as a record, and a date's next send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from planner.core.learned_time import recorded_basis
from planner.store.queries import fallback_for


@dataclass(frozen=True)
class DeliveryRecord:
    """A delivery row as a test reads it: what was decided for one occurrence, and why."""

    id: int
    recipient: str
    kind: str
    channel: str
    local_date: date | None
    occurrence_at: datetime | None
    scheduled_at: datetime
    status: str
    reason: str | None
    attempts: int
    sent_at: datetime | None
    #: The language of the templates the message was rendered from (a BCP 47 tag), once sent.
    template_locale: str | None = None
    #: For a fallback: the delivery it stands in for, and the condition that called it.
    fallback_for: int | None = None
    fallback_because: str | None = None
    #: With a learned send time, the choice recorded when the date was planned (chosen, basis, why).
    learned: dict[str, Any] | None = None

    def __str__(self) -> str:
        day = self.local_date.isoformat() if self.local_date else "-"
        why = f" ({self.reason})" if self.reason else ""
        link = f" [fallback for #{self.fallback_for}: {self.fallback_because}]" if self.fallback_for else ""
        return (
            f"#{self.id} {self.recipient} {self.kind}/{self.channel} {day} "
            f"due {self.scheduled_at.strftime('%Y-%m-%dT%H:%MZ')}: {self.status}{why}{link}"
        )


def record_of(d: Any, external_id: str) -> DeliveryRecord:
    """A delivery row (with its recipient's external id) as the kit reports it."""
    fallback = fallback_for(d.planned_detail) or {}
    return DeliveryRecord(
        id=d.id or 0,
        recipient=external_id,
        kind=d.kind,
        channel=d.channel,
        local_date=d.local_date,
        occurrence_at=d.occurrence_at,
        scheduled_at=d.scheduled_at,
        status=d.status,
        reason=d.reason,
        attempts=d.attempts,
        sent_at=d.sent_at,
        template_locale=d.template_locale,
        fallback_for=fallback.get("delivery_id"),
        fallback_because=fallback.get("because"),
        learned=_learned(d.planned_detail),
    )


def _learned(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """The recorded choice, with its ``why`` in words (a delivery records the usual reason, too
    little history, as its figures only)."""
    recorded = (detail or {}).get("learned_time")
    return None if recorded is None else {**recorded, "why": recorded_basis(recorded)}


#: Statuses of a delivery that is, or was, sent.
SENDING_STATUSES = frozenset({"planned", "queued", "retrying", "sending", "sent"})


@dataclass(frozen=True)
class NextSend:
    """A send of one date: when it goes in the recipient's local time (None: decided not to go),
    why at that time, and whether the planner has decided the date already."""

    local_date: date
    send_local: datetime | None
    why: str
    decided: bool

    def __str__(self) -> str:
        when = "no send" if self.send_local is None else f"{self.send_local:%H:%M %z}"
        state = "decided" if self.decided else "not planned yet"
        return f"{self.local_date.isoformat()} {when} ({state}): {self.why}"
