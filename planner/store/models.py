"""The data model: recipients, subscriptions, engagement, deliveries and their timelines, runs.

Every instant column is a :class:`~planner.store.types.UTCDateTime`; local dates and wall times are
plain ``date``/``time`` values that only mean something together with the recipient's zone.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from planner.core.quiet_hours import QuietHours
from planner.core.recipient import kinds_opted_out as kinds_opted_out
from planner.store import webhook_models as webhook_models  # its tables join the metadata
from planner.store.model_base import TableModel, utc_column
from planner.store.types import UTCDateTime

#: The pending statuses (planned, queued, retrying) as SQL, for partial indexes.
PENDING_PREDICATE = "status IN ('planned', 'queued', 'retrying')"
#: A subscription's learned send time is whole (window end and default) and alone (no list of times).
LEARNED_TIME_CHECK = (
    "(auto_until IS NULL AND auto_default IS NULL)"
    " OR (auto_until IS NOT NULL AND auto_default IS NOT NULL AND times IS NULL)"
)
#: The open statuses (pending, sending, and dead: few, listed by the dashboard), and as SQL.
OPEN_STATUSES = ("planned", "queued", "retrying", "sending", "dead")
OPEN_PREDICATE = "status IN ({})".format(", ".join(f"'{status}'" for status in OPEN_STATUSES))


class Recipient(TableModel, table=True):
    __tablename__ = "recipient"
    # An inbound SMS (STOP, START) finds its recipients by the sender's number (migration 0007).
    __table_args__ = (Index("ix_recipient_phone", "phone"),)

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=200, unique=True)
    timezone: str = Field(max_length=64)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=16)
    email_quiet_start: time | None = None
    email_quiet_end: time | None = None
    sms_quiet_start: time | None = None
    sms_quiet_end: time | None = None
    # What templates get besides the addresses (migration 0008): a BCP 47 tag and a small JSON object.
    locale: str | None = Field(default=None, max_length=35)
    attributes: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    email_opt_out: bool = False
    sms_opt_out: bool = False
    # Per-kind opt-outs as "kind/channel" strings (preferences API, one-click unsubscribe,
    # complaints). An import leaves them alone: a re-import must not undo a recipient's unsubscribe.
    opt_outs: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Set by an adapter's permanent "invalid address" failure; the planner suppresses the channel.
    email_invalid: str | None = Field(default=None, max_length=500)
    sms_invalid: str | None = Field(default=None, max_length=500)
    # Engagement by local half-hour slot, recency-weighted (planner.core.engagement_slots), kept up to
    # date by planner.store.engagement_writes as engagement is recorded; read by learned send times
    # (migration 0020). None: no engagement yet.
    engagement_slots: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

    def own_quiet_hours(self, channel: str) -> QuietHours | None:
        """The recipient's own quiet hours for ``channel``; None means the service default applies."""
        return QuietHours.of_columns(
            getattr(self, f"{channel}_quiet_start"), getattr(self, f"{channel}_quiet_end")
        )


class Subscription(TableModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (
        UniqueConstraint("recipient_id", "kind", "channel", name="uq_subscription_recipient_kind_channel"),
        Index("ix_subscription_due", "active", "next_at"),
        # A learned send time has its window's end and its default, and one send a day (migration 0020).
        CheckConstraint(LEARNED_TIME_CHECK, name="ck_subscription_learned_time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Found by recipient through the unique constraint, which leads with it: no index of its own,
    # which every (never HOT) cursor update would write (migration 0012b).
    recipient_id: int = Field(foreign_key="recipient.id")
    kind: str = Field(max_length=100)
    channel: str = Field(max_length=10)
    send_time: time
    days: str = Field(max_length=40, description="'daily' or comma-separated weekdays, e.g. 'mon,thu'")
    # Several wall times a day ('08:00,18:30', send_time is the first); None with one (migration 0006).
    times: str | None = Field(default=None, max_length=200)
    # A learned send time (planner.core.learned_time): the window is send_time to auto_until, and
    # auto_default the time used without enough history; both None for a fixed time (migration 0020).
    auto_until: time | None = None
    auto_default: time | None = None
    # An RRULE used instead of ``days``, anchored at ``start_date`` (planner.core.recurrence).
    rrule: str | None = Field(default=None, max_length=500)
    start_date: date | None = None
    end_date: date | None = None
    # Occurrences on local dates before this one are recorded skipped ("snoozed").
    snooze_until: date | None = None
    # A digest collects the recipient's events of this kind into the next occurrence (migration 0009).
    digest: bool = False
    # The channel fallback rule (planner.core.fallback) as JSON; None for none (migration 0019).
    fallback: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    active: bool = True
    # The planner's cursor: the next unplanned occurrence, a (local date, wall time); all None once
    # the schedule has ended. A None wall time with a date (rows before 0006) is the date's first.
    next_at: datetime | None = utc_column()
    next_local_date: date | None = None
    next_wall_time: time | None = None
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class EngagementEvent(TableModel, table=True):
    __tablename__ = "engagement_event"
    __table_args__ = (
        Index("ix_engagement_recipient_time", "recipient_id", "occurred_at"),
        # The natural key: a repeated import or webhook records an event once (migration 0002).
        UniqueConstraint("recipient_id", "event", "occurred_at", name="uq_engagement_recipient_event_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="recipient.id")
    kind: str | None = Field(default=None, max_length=100)
    event: str = Field(max_length=20)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Delivery(TableModel, table=True):
    """One occurrence's (or ad-hoc request's) delivery: what was decided, and what became of it.

    On PostgreSQL the table is partitioned by month of ``local_date`` (migration 0022,
    :mod:`planner.store.partitions`): its primary key is then (id, local_date) and its dedup key is
    unique with the local date, which a planned key carries already (``sub:<id>:<date>...``, held to
    it by a check) and an ad-hoc key is held once by :class:`AdhocKey`.
    """

    __tablename__ = "delivery"
    __table_args__ = (
        # Every index here is written by each planner insert and worker update: each names its query.
        # Open rows by status and due time: the worker's and the reconcile's pending rows, the lease
        # recovery's sending rows, the dashboard's forecast, open counts and dead list (migration 0011).
        # Settled rows are not in it (most rows): queries on them go by scheduled_at.
        Index(
            "ix_delivery_open_scheduled",
            "status",
            "scheduled_at",
            postgresql_where=text(OPEN_PREDICATE),
            sqlite_where=text(OPEN_PREDICATE),
        ),
        # The reconcile's "pending rows changed since the watermark": only pending rows are in it.
        Index(
            "ix_delivery_pending_updated",
            "updated_at",
            postgresql_where=text(PENDING_PREDICATE),
            sqlite_where=text(PENDING_PREDICATE),
        ),
        # A recipient's deliveries over a time range: the cap counts of the planner's chunk reads, notify
        # and explain (channel filtered on the range), and a recipient's lists latest first, read up to
        # the page whatever the history kept (migration 0023).
        Index("ix_delivery_recipient_scheduled", "recipient_id", "scheduled_at", "id"),
        # The last to-be-sent date per subscription (engagement backoff), and a subscription's pending
        # deliveries (a schedule change). PostgreSQL only: SQLite reads the same rows, in the same
        # order, from the dedup key's index (planner.store.subscription_keys; migration 0024).
        Index("ix_delivery_subscription_date", "subscription_id", "local_date").ddl_if(dialect="postgresql"),
        # The dashboard's latest-first lists (migration 0002).
        Index("ix_delivery_scheduled_id", "scheduled_at", "id"),
        # Provider callbacks find their delivery by the provider's message id (migration 0007).
        Index("ix_delivery_provider_message_id", "provider_message_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=255, unique=True)
    recipient_id: int = Field(foreign_key="recipient.id")
    subscription_id: int | None = Field(default=None, foreign_key="subscription.id")
    kind: str = Field(max_length=100)
    channel: str = Field(max_length=10)
    queue: str = Field(default="default", max_length=20)
    local_date: date | None = None
    # The cadence's instant before any deferral, and the instant the delivery is due.
    occurrence_at: datetime | None = utc_column()
    scheduled_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: str = Field(max_length=12)
    reason: str | None = Field(default=None, max_length=100)
    attempts: int = 0
    last_error: str | None = None
    provider_message_id: str | None = Field(default=None, max_length=255)
    # What the provider last reported after accepting the message (its status callbacks and
    # webhooks): delivered, undelivered, failed, bounced, deferred, complained.
    provider_status: str | None = Field(default=None, max_length=20)
    job_id: str | None = Field(default=None, max_length=120)
    lease_until: datetime | None = utc_column()
    # The token of the worker batch that claimed it (migration 0015): every write of that batch is
    # conditional on it, so a batch that lost its lease changes nothing.
    claim_id: str | None = Field(default=None, max_length=32)
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    run_id: str | None = Field(default=None, max_length=40)
    sent_at: datetime | None = utc_column()
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # The first timeline entry ("planned", at created_at) as the writer decided it: its status,
    # reason and detail (migration 0014). ``reason`` and ``status`` above move on; these never do.
    # A None planned_status marks a row written before 0014, whose entry is a stored row instead.
    planned_status: str | None = Field(default=None, max_length=12)
    planned_reason: str | None = Field(default=None, max_length=100)
    planned_detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # An ad-hoc delivery's own fallback rule (a planned one reads its subscription's), as JSON; and
    # the language of the templates its message was rendered from (migration 0019).
    fallback: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    template_locale: str | None = Field(default=None, max_length=35)


class DeliveryEvent(TableModel, table=True):
    """Append-only: rows are inserted, never updated.

    Two entries are implied by the delivery row instead of stored here (since migration 0014):
    the first ("planned") and the worker's plain "sent"; :func:`planner.store.queries.timeline`
    is the one reader that merges them back.
    """

    __tablename__ = "delivery_event"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    # The delivery's local date, copied by the insert (migration 0022): on PostgreSQL a timeline lives
    # in its delivery's month, and a month goes with its timelines. None on rows written before.
    local_date: date | None = None
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    event: str = Field(max_length=40)
    status: str | None = Field(default=None, max_length=12)
    reason: str | None = Field(default=None, max_length=100)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class DeliveryMessage(TableModel, table=True):
    """The copy of what a delivery's last attempt handed to its provider, so a person can see what
    was sent (:mod:`planner.core.message_copy`): written with the worker's final outcome (sent,
    dead, suppressed by the provider) in the same statement, bounded by
    PLANNER_STORED_MESSAGE_MAX_BYTES, dropped PLANNER_STORED_MESSAGE_RETENTION after ``kept_at``
    (migration 0021). A row of its own: the hot delivery rows stay small, and the retention deletes
    rows instead of rewriting deliveries."""

    __tablename__ = "delivery_message"

    # No foreign key, as for the timeline's other neighbours: on PostgreSQL a delivery is known by
    # (id, local_date) (monthly partitions). A copy goes with its own retention and with erasure.
    delivery_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    # Indexed for the retention (planner.store.message_copies.drop_old_copies).
    kept_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    subject: str | None = Field(default=None, sa_type=Text)
    body_text: str | None = Field(default=None, sa_type=Text)
    body_html: str | None = Field(default=None, sa_type=Text)
    headers: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # For a digest: {"event_ids": [...], "more": n}.
    digest: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # The UTF-8 size of the parts as rendered, and whether a part was cut to fit.
    size: int = 0
    cut: bool = False


class DigestEvent(TableModel, table=True):
    """Something that happened for a recipient, waiting for the next digest of its kind.

    ``delivery_id`` is the digest it went into, set when that delivery is claimed for sending
    (:mod:`planner.store.digests`); an event whose digest ended without a send counts as unbound.
    """

    __tablename__ = "digest_event"
    __table_args__ = (
        # A repeated post with the same key is the same event (migration 0009).
        UniqueConstraint("recipient_id", "kind", "idempotency_key", name="uq_digest_event_key"),
        Index("ix_digest_event_recipient_kind", "recipient_id", "kind", "delivery_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="recipient.id")
    kind: str = Field(max_length=100)
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    idempotency_key: str | None = Field(default=None, max_length=255)
    # No foreign key (migration 0022): on PostgreSQL a delivery is known by (id, local_date). The
    # retention unbinds or deletes a pruned delivery's events with it (planner.store.retention).
    delivery_id: int | None = Field(default=None, index=True)
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class DigestDrop(TableModel, table=True):
    """Append-only: one row per maintenance pass that dropped events past the retention."""

    __tablename__ = "digest_drop"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    #: Events that never went out in a sent digest, and events of sent digests.
    unsent: int = 0
    sent: int = 0


class PlannerRun(TableModel, table=True):
    __tablename__ = "planner_run"

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=40, unique=True)
    window_start: datetime | None = utc_column()
    window_end: datetime = Field(sa_type=UTCDateTime, nullable=False)
    started_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    finished_at: datetime | None = utc_column()
    status: str = Field(max_length=12)
    occurrences: int = 0
    counts: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None


class Pause(TableModel, table=True):
    """A paused channel or kind: its deliveries wait (they are not failed) until resumed."""

    __tablename__ = "pause"
    __table_args__ = (UniqueConstraint("scope", "value", name="uq_pause_scope_value"),)

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=10)
    value: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # None for an operator's pause; "adapter_config" when a worker paused the channel because the
    # provider refused the adapter's settings, with the (redacted) error in ``detail``.
    reason: str | None = Field(default=None, max_length=40)
    detail: str | None = Field(default=None, max_length=1000)


class ApiToken(TableModel, table=True):
    """A named API token with its scopes; only the SHA-256 of the token is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    token_hash: str = Field(max_length=64, unique=True)
    # Comma-separated, sorted: "admin,read,write".
    scopes: str = Field(max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DashboardSession(TableModel, table=True):
    """A dashboard sign-in: the cookie names it by a random id, of which only the SHA-256 is stored.

    It stands for the API token it was opened with (``token_hash``, the token's SHA-256 as in
    ``api_token``): every request checks that token as it is now, so a revoked token ends it.
    """

    __tablename__ = "dashboard_session"

    id: int | None = Field(default=None, primary_key=True)
    session_hash: str = Field(max_length=64, unique=True)
    token_hash: str = Field(max_length=64, index=True)
    # The token's name at sign-in, for the audit of who was signed in (requests use the token's own).
    principal: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    ended_at: datetime | None = utc_column()
    # logout, revoked, replaced (a new sign-in on the same browser).
    end_reason: str | None = Field(default=None, max_length=20)


class AuditEntry(TableModel, table=True):
    """Append-only: who (the token's name) changed what, when."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    actor: str = Field(max_length=100, index=True)
    action: str = Field(max_length=60)
    target: str | None = Field(default=None, max_length=300)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class IdempotencyKey(TableModel, table=True):
    """The first answer to a POST carrying an ``Idempotency-Key``, replayed for 24 hours."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("actor", "key", name="uq_idempotency_actor_key"),)

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=100)
    key: str = Field(max_length=255)
    # SHA-256 of method, path, query and body: the same key on another request is refused.
    request_hash: str = Field(max_length=64)
    status: int
    content_type: str | None = Field(default=None, max_length=100)
    body: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class ProviderEvent(TableModel, table=True):
    """A provider callback already applied: its id (and, for Mailgun, its signing token) is unique,
    so a repeated callback changes nothing and a captured signature cannot be reused."""

    __tablename__ = "provider_event"
    __table_args__ = (
        UniqueConstraint("provider", "event_id", name="uq_provider_event_id"),
        UniqueConstraint("provider", "token", name="uq_provider_event_token"),
    )

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=255)
    token: str | None = Field(default=None, max_length=255)
    # The delivery it was applied to, which the retention may have pruned since: no foreign key
    # (migration 0022), whose check would read this table for every pruned delivery.
    delivery_id: int | None = None
    # Indexed for the retention (planner.store.feedback.drop_old_provider_events).
    received_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class AdhocKey(TableModel, table=True):
    """An ad-hoc delivery's dedup key, held once whatever month its delivery is in (migration 0022).

    A planned delivery's key carries its local date, so a unique (key, local date) is as strong as a
    unique key; a caller's ad-hoc key carries none. The ad-hoc insert takes it here first, and the
    retention lets it go with its delivery: a key is refused again for PLANNER_DELIVERY_RETENTION.
    """

    __tablename__ = "adhoc_key"

    dedup_key: str = Field(max_length=255, primary_key=True)
    # The delivery's local date: a month dropped whole takes its keys along.
    local_date: date = Field(index=True)


class MaintenanceState(TableModel, table=True):
    """What the maintenance passes did so far, one row per name: the rows the retention removed per
    kind of record (the metrics' counters), and where a sweep or a copy resumes (``position``)."""

    __tablename__ = "maintenance_state"

    name: str = Field(max_length=60, primary_key=True)
    rows: int = Field(default=0, sa_type=BigInteger)
    last_at: datetime | None = utc_column()
    position: int | None = None



#: The characters of a dead delivery's error its dead-letter group is known by.
ERROR_KEY_LENGTH = 500


class DeadLetterDay(TableModel, table=True):
    """How many dead deliveries were scheduled on a UTC day, per reason and error (migration 0025).

    Kept by the database itself: triggers on ``delivery`` add one when a row becomes dead and take
    one away when it stops being dead or goes (:mod:`planner.store.dead_letter_days`), so the dead
    letters of a wide window are counted from its days, not from its deaths. No reason or no error
    is ''; an error is its first :data:`ERROR_KEY_LENGTH` characters (what the page groups by).
    """

    __tablename__ = "dead_letter_day"

    # In this order: a group's days are one range of the primary key.
    reason: str = Field(max_length=100, primary_key=True)
    error: str = Field(max_length=ERROR_KEY_LENGTH, primary_key=True)
    day: date = Field(primary_key=True)
    deaths: int


metadata = SQLModel.metadata
