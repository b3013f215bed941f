"""A planner chunk's reads and writes: claim due subscriptions, load what the rules need, write the plan.

Each chunk costs a constant number of statements whatever its size: the claim, recipients,
engagement, last sends and cap counts in bulk, one insert of deliveries that ignores dedup
conflicts, one insert of their first timeline entries, one update of the cursors.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from planner.core.cadence import Cadence
from planner.core.planning import (
    ChunkInputs,
    ChunkPlan,
    RecipientState,
    SubscriptionState,
)
from planner.core.quiet_hours import QuietHours
from planner.core.status import BACKOFF_COUNTED_STATUSES, CAP_COUNTED_STATUSES
from planner.store.dialect import Dialect, one_of
from planner.store.models import kinds_opted_out
from planner.store.plan_writes import Inserted, write_plan
from planner.store.tables import DELIVERIES, ENGAGEMENT, RECIPIENTS, SUBSCRIPTIONS
from planner.store.types import UTCDateTime

#: Statuses that count as "to be sent" for engagement backoff.
TO_BE_SENT = sorted(s.value for s in BACKOFF_COUNTED_STATUSES)
_CAP_COUNTED = sorted(s.value for s in CAP_COUNTED_STATUSES)


@functools.lru_cache(maxsize=4096)
def _quiet(start: Any, end: Any) -> QuietHours | None:
    # Recipients share a handful of windows: one (immutable) QuietHours each.
    return QuietHours(start, end) if start is not None and end is not None else None


#: What a recipient without kind opt-outs (nearly all) shares; never mutated.
_NO_KIND_OPT_OUTS: Mapping[str, frozenset[str]] = {"email": frozenset(), "sms": frozenset()}


#: What the rules read of each recipient, in the order :func:`recipient_state` unpacks it.
RECIPIENT_COLUMNS = (
    "id",
    "external_id",
    "timezone",
    "email",
    "phone",
    "email_quiet_start",
    "email_quiet_end",
    "sms_quiet_start",
    "sms_quiet_end",
    "email_invalid",
    "sms_invalid",
    "email_opt_out",
    "sms_opt_out",
    "opt_outs",
)
_NO_OPT_OUTS: frozenset[str] = frozenset()
_NOTHING: Mapping[str, Any] = MappingProxyType({})


def recipient_state(row: Sequence[Any]) -> RecipientState:
    """A recipient row (the columns of ``RECIPIENT_COLUMNS``, in order) as the rules see it."""
    (
        recipient_id,
        external_id,
        timezone,
        email,
        phone,
        email_quiet_start,
        email_quiet_end,
        sms_quiet_start,
        sms_quiet_end,
        email_invalid,
        sms_invalid,
        email_opt_out,
        sms_opt_out,
        opt_outs,
    ) = row
    email_qh = _quiet(email_quiet_start, email_quiet_end)
    sms_qh = _quiet(sms_quiet_start, sms_quiet_end)
    quiet: Mapping[str, QuietHours] = _NOTHING
    if email_qh or sms_qh:
        quiet = {c: qh for c, qh in (("email", email_qh), ("sms", sms_qh)) if qh}
    invalid: Mapping[str, str] = _NOTHING
    if email_invalid or sms_invalid:
        invalid = {c: why for c, why in (("email", email_invalid), ("sms", sms_invalid)) if why}
    opted_out = _NO_OPT_OUTS
    if email_opt_out or sms_opt_out:
        opted_out = frozenset(c for c, flag in (("email", email_opt_out), ("sms", sms_opt_out)) if flag)
    return RecipientState(
        recipient_id,
        external_id,
        timezone,
        email,
        phone,
        quiet,
        opted_out,
        invalid,
        {c: kinds_opted_out(opt_outs, c) for c in ("email", "sms")} if opt_outs else _NO_KIND_OPT_OUTS,
    )


def cadence_of(row: Any) -> Cadence:
    """A subscription row's (or model's) schedule."""
    return _stored_cadence(row.send_time, row.days, row.times, row.rrule, row.start_date, row.end_date)


@functools.lru_cache(maxsize=4096)
def _stored_cadence(
    send_time: time, days: str, times: str | None, rrule: str | None, start: date | None, end: date | None
) -> Cadence:
    # A million subscriptions share a few hundred schedules: parse each once, and hand out one
    # (immutable) instance, which also makes the walks cached by cadence (core.cadence) cheap to look up.
    return Cadence.from_storage(send_time, days, times, rrule, start, end)


#: What a claim reads of each subscription, in the order :meth:`ChunkStore.claim_due` unpacks it.
_CLAIMED_COLUMNS = (
    "id",
    "recipient_id",
    "kind",
    "channel",
    "send_time",
    "days",
    "times",
    "rrule",
    "start_date",
    "end_date",
    "next_at",
    "next_local_date",
    "created_at",
    "next_wall_time",
    "snooze_until",
)


class ChunkStore:
    """The SQL of planner chunks on one database (SQLite or PostgreSQL)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def claim_due(
        self, session: Session, window_end: datetime, limit: int, recipient_ids: Sequence[int] | None = None
    ) -> list[SubscriptionState]:
        """Up to ``limit`` active subscriptions due by ``window_end``, locked for this transaction
        (on PostgreSQL other planners skip them, so several processes share one run); only those of
        ``recipient_ids`` when given (a change planned at once, :meth:`PlannerRunner.plan_recipients`)."""
        table = SUBSCRIPTIONS
        stmt = (
            select(*(table.c[name] for name in _CLAIMED_COLUMNS))
            .where(table.c.active.is_(True), table.c.next_at <= window_end)
            .order_by(table.c.next_at, table.c.id)
            .limit(limit)
        )
        if recipient_ids is not None:
            stmt = stmt.where(one_of(table.c.recipient_id, recipient_ids, self.dialect))
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        # Rows as plain tuples, unpacked by position (fetched at once, no attribute lookups by name):
        # a chunk is a thousand of them.
        return [
            SubscriptionState(
                sub_id,
                recipient_id,
                kind,
                channel,
                _stored_cadence(send_time, days, times, rrule, start, end),
                next_at,
                next_local_date,
                created_at,
                next_wall_time,
                snooze_until,
            )
            for (
                sub_id,
                recipient_id,
                kind,
                channel,
                send_time,
                days,
                times,
                rrule,
                start,
                end,
                next_at,
                next_local_date,
                created_at,
                next_wall_time,
                snooze_until,
            ) in session.execute(stmt).all()
        ]

    def recipients(self, session: Session, recipient_ids: Sequence[int]) -> dict[int, RecipientState]:
        table = RECIPIENTS
        stmt = select(*(table.c[name] for name in RECIPIENT_COLUMNS)).where(
            one_of(table.c.id, recipient_ids, self.dialect)
        )
        return {row[0]: recipient_state(row) for row in session.execute(stmt).all()}

    def load_inputs(
        self, session: Session, subs: Sequence[SubscriptionState], window_end: datetime, cap_reach: timedelta
    ) -> ChunkInputs:
        """Everything the pure planner needs for these subscriptions, in a constant number of queries.

        On PostgreSQL the chunk first takes the advisory locks of its (recipient, channel) pairs, so
        caps are exact across planner processes and ad-hoc notifications.
        """
        recipient_ids = sorted({s.recipient_id for s in subs})
        earliest = min(s.next_at for s in subs)
        if self.dialect == "postgresql":
            self._lock_cap_keys(session, {(s.recipient_id, s.channel) for s in subs})
        return ChunkInputs(
            subscriptions=subs,
            recipients=self.recipients(session, recipient_ids),
            engagement=self._engagement(session, recipient_ids, earliest, window_end),
            last_sent=self._last_sent(session, [s.id for s in subs]),
            cap_counted=self._cap_counted(session, recipient_ids, earliest, window_end, cap_reach),
        )

    def _lock_cap_keys(self, session: Session, keys: set[tuple[int, str]]) -> None:
        """Serialise planners (and ad-hoc notifications) on the same recipient and channel.

        Caps are counted in the database; without this, two processes planning different
        subscriptions of one recipient could both see room for the last slot.
        """
        ordered = sorted(f"cap:{r}:{c}" for r, c in keys)
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered"
            ),
            {"keys": ordered},
        )

    def _engagement(
        self, session: Session, recipient_ids: list[int], earliest: datetime, latest: datetime
    ) -> dict[int, list[datetime]]:
        table = ENGAGEMENT
        found: dict[int, list[datetime]] = defaultdict(list)
        before = session.execute(
            select(table.c.recipient_id, func.max(table.c.occurred_at))
            .where(one_of(table.c.recipient_id, recipient_ids, self.dialect), table.c.occurred_at <= earliest)
            .group_by(table.c.recipient_id)
        ).all()
        for recipient_id, occurred_at in before:
            found[recipient_id].append(occurred_at)
        during = session.execute(
            select(table.c.recipient_id, table.c.occurred_at).where(
                one_of(table.c.recipient_id, recipient_ids, self.dialect),
                table.c.occurred_at > earliest,
                table.c.occurred_at <= latest,
            )
        ).all()
        for recipient_id, occurred_at in during:
            found[recipient_id].append(occurred_at)
        for instants in found.values():
            instants.sort()
        return found

    def _last_sent(self, session: Session, subscription_ids: list[int]) -> dict[int, date]:
        table = DELIVERIES
        rows = session.execute(
            select(table.c.subscription_id, func.max(table.c.local_date))
            .where(
                one_of(table.c.subscription_id, subscription_ids, self.dialect),
                table.c.status.in_(TO_BE_SENT),
            )
            .group_by(table.c.subscription_id)
        ).all()
        return {sub_id: last for sub_id, last in rows if last is not None}

    def _cap_counted(
        self,
        session: Session,
        recipient_ids: list[int],
        earliest: datetime,
        window_end: datetime,
        reach: timedelta,
    ) -> dict[tuple[int, str], list[datetime]]:
        table = DELIVERIES
        scheduled: Any = table.c.scheduled_at
        if self.dialect == "sqlite":
            # SQLite would range-scan the scheduled_at index over every delivery of these days and
            # filter by recipient; a unary "+" keeps it on the (recipient, channel, scheduled_at) index,
            # whose cost does not grow with the table. Same rows.
            scheduled = literal_column("+delivery.scheduled_at", UTCDateTime())
        # Quiet hours can push a send up to a day past the window, so look that far ahead too.
        rows = session.execute(
            select(table.c.recipient_id, table.c.channel, table.c.scheduled_at).where(
                one_of(table.c.recipient_id, recipient_ids, self.dialect),
                table.c.status.in_(_CAP_COUNTED),
                scheduled > earliest - reach,
                scheduled < window_end + timedelta(days=1) + reach,
            )
        ).all()
        counted: dict[tuple[int, str], list[datetime]] = defaultdict(list)
        for recipient_id, channel, scheduled_at in rows:
            counted[(recipient_id, channel)].append(scheduled_at)
        for instants in counted.values():
            instants.sort()
        return counted

    def write_plan(
        self, session: Session, plan: ChunkPlan, jobs: Mapping[object, str], now: datetime
    ) -> Inserted:
        """Insert the chunk's deliveries, their first timeline entries and the advanced cursors
        (:mod:`planner.store.plan_writes`); returns what was inserted, with ids and job ids."""
        return write_plan(session, self.dialect, plan, jobs, now)
