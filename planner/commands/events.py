"""Digest events from the outside (``POST /v1/events``, ``planner events record``) and their retention.

How events reach a digest, and why each goes into exactly one sent digest, is in
:mod:`planner.store.digests`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from planner.app import App
from planner.clock import ensure_utc
from planner.core import validation
from planner.core.template_data import check_template_data
from planner.errors import InvalidInput, NotFound
from planner.store.digests import StoredEvent, digest_channels, drop_expired, insert_event
from planner.store.recipients import recipient_id_of

log = structlog.get_logger("planner.digests")

#: An event's data, as JSON: enough for a comment's author, title and link, not a document store
#: (a quarter of an ad-hoc notification's; a digest lists many events).
MAX_DATA_BYTES = 16384
MAX_KEY = 255


def record_event(
    app: App,
    recipient: str,
    kind: str,
    data: Any,
    now: datetime,
    *,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> tuple[bool, dict[str, Any]]:
    """Store an event for the recipient's next digest of ``kind``; True when it is new.

    With ``idempotency_key`` a repeated call (a client retrying) returns the first event, as stored.
    An event no digest subscription of the recipient collects yet is kept all the same, for one made
    within PLANNER_DIGEST_RETENTION (a client need not order its calls), and the answer says so.
    """
    validation.external_id(recipient, "recipient_id")
    validation.kind(kind, "kind")
    app.templates.require(kind)
    if data is not None:
        check_template_data(data, max_bytes=MAX_DATA_BYTES)
    if idempotency_key is not None and not (
        isinstance(idempotency_key, str) and 0 < len(idempotency_key) <= MAX_KEY
    ):
        raise InvalidInput("idempotency_key", idempotency_key, f"a string of 1 to {MAX_KEY} characters")
    validation.text(idempotency_key, "idempotency_key")
    at = ensure_utc(occurred_at, "occurred_at") if occurred_at is not None else now
    with app.sessions() as session, session.begin():
        recipient_id = recipient_id_of(session, recipient)
        if recipient_id is None:
            raise NotFound("recipient", recipient)
        stored = insert_event(
            session,
            {
                "recipient_id": recipient_id,
                "kind": kind,
                "data": data,
                "occurred_at": at,
                "idempotency_key": idempotency_key,
                "received_at": now,
            },
        )
        channels = digest_channels(session, recipient_id, kind)
    outcome = "recorded" if stored.created else "repeated"
    log.info("digest event", recipient=recipient, kind=kind, outcome=outcome, collected=bool(channels))
    return stored.created, _answer(app, recipient, kind, idempotency_key, stored, channels)


def _answer(
    app: App, recipient: str, kind: str, key: str | None, stored: StoredEvent, channels: list[str]
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": stored.id,
        "recipient_id": recipient,
        "kind": kind,
        "occurred_at": stored.occurred_at.isoformat(),
        "idempotency_key": key,
        "created": stored.created,
        # The channels whose digest subscriptions list it (their next digest after it arrived).
        "collected_by": channels,
    }
    if not channels:
        kept_until = stored.received_at + app.settings.digest_retention
        answer["note"] = (
            f"no digest subscription of {recipient!r} collects {kind!r} yet: the event is kept until "
            f"{kept_until.isoformat()} (PLANNER_DIGEST_RETENTION) for one made by then, then dropped"
        )
    return answer


def drop_old_events(app: App, now: datetime) -> tuple[int, int]:
    """The maintenance pass's retention: events older than PLANNER_DIGEST_RETENTION that no pending
    digest holds are deleted; returns (never sent, sent), also kept for the metrics."""
    with app.sessions() as session, session.begin():
        unsent, sent = drop_expired(session, now - app.settings.digest_retention, now)
    if unsent or sent:
        log.warning(
            "digest events dropped past the retention",
            unsent=unsent,
            sent=sent,
            retention=str(app.settings.digest_retention),
        )
    return unsent, sent
