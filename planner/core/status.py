"""The vocabulary of outcomes: channels, delivery statuses and engagement events.

Values only: the database stores them as strings, every layer compares against these.
"""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    email = "email"
    sms = "sms"


class DeliveryStatus(StrEnum):
    planned = "planned"
    queued = "queued"
    sending = "sending"
    sent = "sent"
    retrying = "retrying"
    dead = "dead"
    suppressed = "suppressed"
    skipped = "skipped"
    missed = "missed"
    cancelled = "cancelled"


#: Statuses from which a delivery may still be sent.
PENDING_STATUSES = frozenset({DeliveryStatus.planned, DeliveryStatus.queued, DeliveryStatus.retrying})
#: Statuses that count against a frequency cap: to be sent, being sent or sent.
CAP_COUNTED_STATUSES = frozenset(
    {
        DeliveryStatus.planned,
        DeliveryStatus.queued,
        DeliveryStatus.sending,
        DeliveryStatus.sent,
        DeliveryStatus.retrying,
    }
)
#: Statuses a delivery never leaves on its own.
FINAL_STATUSES = frozenset(
    {
        DeliveryStatus.sent,
        DeliveryStatus.dead,
        DeliveryStatus.suppressed,
        DeliveryStatus.skipped,
        DeliveryStatus.missed,
        DeliveryStatus.cancelled,
    }
)


class EngagementKind(StrEnum):
    opened = "opened"
    clicked = "clicked"
    replied = "replied"


#: Statuses that count as "sent" for engagement backoff: a dead delivery was still meant to be sent.
BACKOFF_COUNTED_STATUSES = CAP_COUNTED_STATUSES | {DeliveryStatus.dead}
