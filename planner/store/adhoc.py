"""Ad-hoc deliveries in the database: what their decision reads, and the insert keyed by dedup key.

Called by :mod:`planner.commands.notify` inside one transaction: :func:`load_facts` finds a delivery
already holding the key, or takes the cap lock (as a planner chunk does for the same recipient and
channel) and reads the recipient and the deliveries counted against the cap; :func:`save` writes
the row, already ``queued`` with its job id when it is to be sent (the outbox's one hand-off
protocol, as the planner's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from planner.core.adhoc import AdhocRequest
from planner.core.recipient import RecipientState
from planner.core.webhook_events import (
    DELIVERY_SENT,
    DeliveryFacts,
    delivery_outcome_event,
    outcome_event_type,
    public_recipient_id,
)
from planner.store.caps import counted_instants, lock_caps
from planner.store.dialect import dialect_of
from planner.store.queries import find_delivery_by_key, insert_ignoring_duplicates
from planner.store.recipient_facts import recipient_state_by_external_id
from planner.store.tables import ADHOC_KEYS, DELIVERIES
from planner.store.webhook_endpoints import wanted_types
from planner.store.webhooks import emit


@dataclass(frozen=True)
class AdhocFacts:
    recipient: RecipientState
    #: Sorted instants of the recipient's deliveries on the channel counted against the cap.
    counted: list[datetime]


def load_facts(
    session: Session, request: AdhocRequest, now: datetime, reach: timedelta
) -> AdhocFacts | dict[str, Any]:
    """The delivery already holding the request's dedup key; else, with the recipient's cap on the
    channel locked until the commit, what the decision reads: the recipient, and the counted
    deliveries due within ``reach`` of the wanted instant."""
    existing = find_delivery_by_key(session, request.dedup_key)
    if existing is not None:
        return existing
    dialect = dialect_of(session)
    recipient = recipient_state_by_external_id(session, request.recipient)
    lock_caps(session, dialect, [(recipient.id, request.channel)])
    around = request.wanted_at(now)
    counted = counted_instants(
        session, dialect, [recipient.id], around - reach, around + reach, channel=request.channel
    )
    return AdhocFacts(recipient, counted.get((recipient.id, request.channel), []))


def save(session: Session, row: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Insert the delivery; ``(delivery, True)``, or ``(the delivery holding the key, False)`` when
    another request took the key between the look-up and this insert."""
    delivery = insert_delivery(session, row)
    if delivery is not None:
        return delivery, True
    raced = find_delivery_by_key(session, row["dedup_key"])
    assert raced is not None
    return raced, False


def insert_delivery(session: Session, row: dict[str, Any]) -> dict[str, Any] | None:
    """Take the row's dedup key, then insert the delivery; None when another request took the key
    first. Returns the delivery as the read side shows it.

    The key is taken in ``adhoc_key``, whatever the delivery's month: on PostgreSQL the delivery
    table's own unique index holds a key with its local date, and an ad-hoc key carries none.
    """
    key = {"dedup_key": row["dedup_key"], "local_date": row["local_date"]}
    taken = insert_ignoring_duplicates(session, ADHOC_KEYS, [key], returning=ADHOC_KEYS.c.dedup_key)
    if session.scalar(taken) is None:
        return None
    inserted = session.scalar(insert_ignoring_duplicates(session, DELIVERIES, [row]))
    if inserted is None:  # a key taken before adhoc_key existed (the delivery table's unique key)
        return None
    delivery = find_delivery_by_key(session, row["dedup_key"])
    assert delivery is not None
    _emit_settled(session, delivery, row["created_at"])
    return delivery


def _emit_settled(session: Session, delivery: dict[str, Any], now: datetime) -> None:
    """The webhook event of a notification written skipped or suppressed, when an endpoint wants it."""
    event_type = outcome_event_type(delivery["status"], delivery["reason"])
    if event_type is None or event_type == DELIVERY_SENT or event_type not in wanted_types(session):
        return
    facts = DeliveryFacts(
        delivery["id"], public_recipient_id(delivery["recipient_id"]), delivery["kind"],
        delivery["channel"], delivery["dedup_key"], datetime.fromisoformat(delivery["scheduled_at"]),
    )  # fmt: skip
    event = delivery_outcome_event(facts, delivery["status"], delivery["reason"], now, attempts=0)
    emit(session, [event] if event else [], now)
