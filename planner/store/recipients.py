"""Recipients in the database: found by their client id, written in batches, erased.

Rows are written as column dicts (the importer builds them); reads give :class:`Recipient` objects
or plain values. Opt-outs have a module of their own (:mod:`planner.store.preferences`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from planner.core.recipient_search import RecipientSearch
from planner.core.status import PENDING_STATUSES, DeliveryStatus
from planner.store import dead_letter_days
from planner.store.message_copies import erase_copies
from planner.store.models import Recipient
from planner.store.tables import DELIVERIES, DIGEST_EVENTS, RECIPIENTS, SUBSCRIPTIONS
from planner.store.timeline import event_row, record_events

_PENDING = [s.value for s in PENDING_STATUSES]
#: The personal columns an erasure empties.
_PERSONAL_DATA_ERASED: dict[str, Any] = dict.fromkeys(
    (
        "email",
        "phone",
        "email_quiet_start",
        "email_quiet_end",
        "sms_quiet_start",
        "sms_quiet_end",
        "email_invalid",
        "sms_invalid",
        "locale",
        "attributes",
        # When the person reads, learned from their engagement: theirs too.
        "engagement_slots",
    )
)


def recipient_id_of(session: Session, external_id: str) -> int | None:
    """The row id of the recipient with this client id, or None."""
    return session.scalar(select(RECIPIENTS.c.id).where(RECIPIENTS.c.external_id == external_id))


def recipient_by_id(session: Session, recipient_id: int) -> Recipient | None:
    return session.get(Recipient, recipient_id)


def recipient_exists(session: Session, recipient_id: int) -> bool:
    return session.scalar(select(RECIPIENTS.c.id).where(RECIPIENTS.c.id == recipient_id)) is not None


def zone_of(session: Session, external_id: str) -> str | None:
    """The time zone of the recipient with this client id, or None."""
    return session.scalar(select(RECIPIENTS.c.timezone).where(RECIPIENTS.c.external_id == external_id))


def recipients_by_external_id(session: Session, external_ids: Collection[str]) -> dict[str, Recipient]:
    """The recipients among these client ids, by client id."""
    found = session.scalars(select(Recipient).where(RECIPIENTS.c.external_id.in_(list(external_ids))))
    return {r.external_id: r for r in found}


def ids_by_external_id(session: Session, external_ids: Collection[str]) -> dict[str, int]:
    """The row ids of the recipients among these client ids, by client id."""
    c = RECIPIENTS.c
    rows = session.execute(select(c.external_id, c.id).where(c.external_id.in_(list(external_ids))))
    return {str(external_id): int(row_id) for external_id, row_id in rows}


def names_and_zones(session: Session) -> dict[int, tuple[str, str]]:
    """Every recipient's (client id, time zone), by row id."""
    c = RECIPIENTS.c
    rows = session.execute(select(c.id, c.external_id, c.timezone))
    return {int(row_id): (str(external_id), str(zone)) for row_id, external_id, zone in rows}


def insert_recipients(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New recipients, in one statement."""
    if rows:
        session.execute(insert(RECIPIENTS), list(rows))


def update_recipients(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Existing recipients, each row holding its ``id`` and the columns to set, in one statement."""
    if rows:
        session.execute(update(Recipient), list(rows))


def erase_recipient(session: Session, recipient_id: int, reason: str, now: datetime) -> list[int]:
    """Erasure: cancel the recipient's pending deliveries with ``reason`` (each with a timeline
    entry), drop what may hold names and addresses (template data, provider error text, digest
    events, kept copies of sent messages, the recipient's own columns), stop its subscriptions.
    Returns the cancelled ids.

    The delivery history stays, for counts, no longer linked to a person: the recipient's client
    id becomes ``#erased-<row id>`` ('#' is outside the id alphabet, so no client id collides).
    """
    d = DELIVERIES.c
    pending = list(
        session.scalars(
            select(d.id).where(d.recipient_id == recipient_id, d.status.in_(_PENDING)).with_for_update()
        )
    )
    if pending:
        session.execute(
            update(DELIVERIES)
            .where(d.id.in_(pending), d.status.in_(_PENDING))
            .values(status=DeliveryStatus.cancelled.value, reason=reason, updated_at=now)
        )
        cancelled = DeliveryStatus.cancelled.value
        record_events(
            session, (event_row(i, now, "cancelled", status=cancelled, reason=reason) for i in pending)
        )
    dead_letter_days.lock_recipient_counts(session, recipient_id)
    session.execute(
        update(DELIVERIES).where(d.recipient_id == recipient_id).values(data=None, last_error=None)
    )
    session.execute(delete(DIGEST_EVENTS).where(DIGEST_EVENTS.c.recipient_id == recipient_id))
    erase_copies(session, recipient_id)
    session.execute(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.recipient_id == recipient_id)
        .values(active=False, next_at=None, next_local_date=None, updated_at=now)
    )
    session.execute(
        update(RECIPIENTS)
        .where(RECIPIENTS.c.id == recipient_id)
        .values(external_id=f"#erased-{recipient_id}", **_PERSONAL_DATA_ERASED, updated_at=now)
    )
    return pending


def find_recipients(
    session: Session, search: RecipientSearch, after: str | None, limit: int
) -> list[Recipient]:
    """Up to ``limit`` recipients matching ``search``, in id order, after the id ``after`` (keyset
    paging: a page costs the same however deep). Erased recipients are not listed."""
    c = RECIPIENTS.c
    stmt = select(Recipient).where(~c.external_id.startswith("#"))
    if search.id_prefix:
        # Not LIKE: SQLite's ignores case, and ids are compared exactly on both databases.
        prefix = search.id_prefix
        stmt = stmt.where(func.substr(c.external_id, 1, len(prefix)) == prefix)
    if search.email:
        stmt = stmt.where(func.lower(c.email) == search.email)
    if search.phone:
        stmt = stmt.where(c.phone == search.phone)  # stored in E.164 form; ix_recipient_phone
    if search.zone:
        stmt = stmt.where(c.timezone == search.zone)
    if search.opted_out:
        stmt = stmt.where(or_(*(_opted_out(ch) for ch in _channels(search.opted_out))))
    if search.invalid:
        stmt = stmt.where(or_(*(c[f"{ch}_invalid"].is_not(None) for ch in _channels(search.invalid))))
    if after is not None:
        stmt = stmt.where(c.external_id > after)
    return list(session.scalars(stmt.order_by(c.external_id).limit(limit)))


def _channels(value: str) -> tuple[str, ...]:
    return ("email", "sms") if value == "any" else (value,)


def _opted_out(channel: str) -> Any:
    """Opted out of the channel, or of a kind on it (a "kind/channel" item of the JSON list)."""
    c = RECIPIENTS.c
    return or_(c[f"{channel}_opt_out"].is_(True), cast(c.opt_outs, String).like(f'%/{channel}"%'))


def active_subscription_counts(session: Session, recipient_ids: Collection[int]) -> dict[int, int]:
    """Active subscriptions per recipient, for these recipients."""
    c = SUBSCRIPTIONS.c
    rows = session.execute(
        select(c.recipient_id, func.count())
        .where(c.recipient_id.in_(list(recipient_ids)), c.active.is_(True))
        .group_by(c.recipient_id)
    )
    return {int(recipient_id): int(n) for recipient_id, n in rows}
