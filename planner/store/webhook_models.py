"""The outgoing webhooks' tables: endpoints, the outbox of messages, and the attempts made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, Text, UniqueConstraint, text
from sqlmodel import Field

from planner.store.model_base import TableModel, utc_column
from planner.store.types import UTCDateTime

#: A webhook message still to be posted (waiting, or claimed by a worker) as SQL, for a partial index.
WEBHOOK_OPEN_PREDICATE = "status IN ('pending', 'sending')"


class WebhookEndpoint(TableModel, table=True):
    """A URL the service posts events to, signed with the endpoint's own secret (Standard Webhooks).

    The secret is kept as given to the owner (the signature needs it); a rotation keeps the previous
    one until ``previous_secret_until``, and both sign meanwhile. ``failing_since`` is the first
    failed attempt since the last success; an endpoint failing for PLANNER_WEBHOOKS_DISABLE_AFTER
    is disabled (``disabled_reason``) and its events wait until it is enabled again.
    """

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    # The event types it wants, a JSON list of strings (planner.core.webhook_events.EVENT_TYPES).
    event_types: list[str] = Field(sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    secret: str = Field(max_length=100)
    previous_secret: str | None = Field(default=None, max_length=100)
    previous_secret_until: datetime | None = utc_column()
    failing_since: datetime | None = utc_column()
    disabled_reason: str | None = Field(default=None, max_length=500)
    disabled_at: datetime | None = utc_column()
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class WebhookMessage(TableModel, table=True):
    """The webhook outbox: one row per (event, endpoint), written in the transaction of the change
    it reports, then claimed and posted by the workers (planner.delivery.webhook_sender).

    ``msg_id`` is the ``webhook-id`` header, the same on every attempt and for every endpoint the
    event went to. A claim sets ``claim_id`` and moves ``next_attempt_at`` to the end of its lease,
    so a row whose worker died is due again once the lease is over.
    """

    __tablename__ = "webhook_message"
    __table_args__ = (
        UniqueConstraint("msg_id", "endpoint_id", name="uq_webhook_message_endpoint"),
        # The claim's "due now": only open rows are in it.
        Index(
            "ix_webhook_message_due",
            "next_attempt_at",
            postgresql_where=text(WEBHOOK_OPEN_PREDICATE),
            sqlite_where=text(WEBHOOK_OPEN_PREDICATE),
        ),
        # An endpoint's events, latest first (the API, the CLI, the dashboard).
        Index("ix_webhook_message_endpoint", "endpoint_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    msg_id: str = Field(max_length=40)
    endpoint_id: int = Field(
        sa_column=Column(Integer, ForeignKey("webhook_endpoint.id", ondelete="CASCADE"), nullable=False)
    )
    event_type: str = Field(max_length=40)
    payload: str = Field(sa_type=Text)
    # pending, sending, delivered, failed.
    status: str = Field(max_length=12)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    claim_id: str | None = Field(default=None, max_length=32)
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=500)
    delivered_at: datetime | None = utc_column()
    # When the event happened (the payload's timestamp).
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class WebhookAttempt(TableModel, table=True):
    """Append-only: one row per request made for a webhook message, whatever became of it."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_endpoint", "endpoint_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("webhook_message.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    endpoint_id: int
    attempt: int
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    succeeded: bool
    status_code: int | None = None
    latency_ms: int
    # The start of the response body (bounded), or what went wrong before there was one.
    response_excerpt: str | None = Field(default=None, max_length=1000)
    error: str | None = Field(default=None, max_length=500)
