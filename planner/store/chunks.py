"""A planner chunk's reads and writes: claim due subscriptions, load what the rules need, write the plan.

Each chunk costs a constant number of statements whatever its size: the claim, recipients,
engagement, last sends and cap counts in bulk, one insert of deliveries that ignores dedup
conflicts, one insert of their first timeline entries, one update of the cursors.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from planner.core.cadence import Cadence
from planner.core.planning import ChunkInputs, ChunkPlan, SubscriptionState
from planner.core.recipient import RecipientState
from planner.store.caps import counted_instants, lock_caps
from planner.store.dialect import Dialect, dialect_of, one_of
from planner.store.engagement import engagement_instants, last_sent_dates
from planner.store.plan_writes import Inserted, write_plan
from planner.store.recipient_facts import recipient_states
from planner.store.tables import SUBSCRIPTIONS


def cadence_of(row: Any) -> Cadence:
    """A subscription row's (or model's) schedule."""
    return _stored_cadence(
        row.send_time,
        row.days,
        row.times,
        row.rrule,
        row.start_date,
        row.end_date,
        row.auto_until,
        row.auto_default,
    )


@functools.lru_cache(maxsize=4096)
def _stored_cadence(
    send_time: time,
    days: str,
    times: str | None,
    rrule: str | None,
    start: date | None,
    end: date | None,
    auto_until: time | None = None,
    auto_default: time | None = None,
) -> Cadence:
    # A million subscriptions share a few hundred schedules: parse each once, and hand out one
    # (immutable) instance, which also makes the walks cached by cadence (core.cadence) cheap to look up.
    return Cadence.from_storage(send_time, days, times, rrule, start, end, auto_until, auto_default)


def subscription_state(
    row: Any, cursor: tuple[datetime, date, time | None] | None = None
) -> SubscriptionState:
    """A subscription row (or model) as the planner sees it, its cursor moved to ``cursor`` (an
    instant, its local date and wall time) when given: ``explain`` and ``simulate`` replay from there."""
    next_at, next_date, wall = cursor or (row.next_at, row.next_local_date, row.next_wall_time)
    return SubscriptionState(
        row.id,
        row.recipient_id,
        row.kind,
        row.channel,
        cadence_of(row),
        next_at,
        next_date,
        row.created_at,
        wall,
        row.snooze_until,
    )


#: How far back a chunk first looks for its subscriptions' last sends (a daily, weekly or monthly
#: cadence sent within it; on PostgreSQL two or three months of partitions instead of every month
#: kept); the subscriptions with none there are looked up over everything kept.
RECENT_SENDS = timedelta(days=40)


def _older(subs: Sequence[SubscriptionState], recent_from: date) -> set[int]:
    """The subscriptions created early enough to have a delivery dated before ``recent_from`` (a
    local date is at most a day from the UTC one)."""
    return {s.id for s in subs if s.created_at.date() <= recent_from + timedelta(days=1)}


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
    "auto_until",
    "auto_default",
)


class ChunkStore:
    """The SQL of planner chunks on one database (SQLite or PostgreSQL)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @classmethod
    def of(cls, session: Session) -> ChunkStore:
        """The chunk store of the database ``session`` talks to."""
        return cls(dialect_of(session))

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
                _stored_cadence(send_time, days, times, rrule, start, end, auto_until, auto_default),
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
                auto_until,
                auto_default,
            ) in session.execute(stmt).all()
        ]

    def recipients(self, session: Session, recipient_ids: Sequence[int]) -> dict[int, RecipientState]:
        return recipient_states(session, recipient_ids, self.dialect)[0]

    def load_inputs(
        self,
        session: Session,
        subs: Sequence[SubscriptionState],
        window_end: datetime,
        cap_reach: timedelta,
        *,
        lock: bool = True,
        replay_from: date | None = None,
    ) -> ChunkInputs:
        """Everything the pure planner needs for these subscriptions, in a constant number of queries.

        With ``lock`` (a writer) the chunk first takes the cap locks of its (recipient, channel)
        pairs, so caps are exact across planner processes and ad-hoc notifications. A reader that
        replays the subscriptions' occurrences from a local date on (``explain``, ``simulate``) gives
        it as ``replay_from``: their own deliveries from that date on are left out, as the planner
        had not written them when it decided.
        """
        recipient_ids = sorted({s.recipient_id for s in subs})
        sub_ids = [s.id for s in subs]
        earliest = min(s.next_at for s in subs)
        recent_from = earliest.date() - RECENT_SENDS
        if lock:
            lock_caps(session, self.dialect, {(s.recipient_id, s.channel) for s in subs})
        # Quiet hours can push a send up to a day past the window, so count that far ahead too; a
        # learned send time goes up to a day past its window's start before that.
        learned = sorted({s.recipient_id for s in subs if s.cadence.learned is not None})
        counted_until = window_end + timedelta(days=2 if learned else 1) + cap_reach
        # The learned times' statistic comes with the recipients, in the same statement.
        recipients, slots = recipient_states(session, recipient_ids, self.dialect, with_slots=learned)
        return ChunkInputs(
            subscriptions=subs,
            recipients=recipients,
            engagement=engagement_instants(session, self.dialect, recipient_ids, earliest, window_end),
            last_sent=last_sent_dates(
                session, self.dialect, sub_ids, replay_from, recent_from, _older(subs, recent_from)
            ),
            cap_counted=counted_instants(
                session,
                self.dialect,
                recipient_ids,
                earliest - cap_reach,
                counted_until,
                replayed=None if replay_from is None else (sub_ids, replay_from),
            ),
            engagement_slots=slots,
        )

    def write_plan(
        self,
        session: Session,
        plan: ChunkPlan,
        jobs: Mapping[object, str],
        now: datetime,
        recipients: Mapping[int, RecipientState] | None = None,
    ) -> Inserted:
        """Insert the chunk's deliveries, their first timeline entries and the advanced cursors
        (:mod:`planner.store.plan_writes`), and, given the chunk's ``recipients``, the webhook events
        of those written skipped or suppressed; returns what was inserted, with ids and job ids."""
        return write_plan(session, self.dialect, plan, jobs, now, recipients)
