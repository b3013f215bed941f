"""Recording engagement (opens, clicks, replies) from imports, webhooks and operators.

(recipient, event, instant) is the natural key (a unique constraint): an event recorded twice, by
a repeated import or webhook, is stored once. Each new event is also counted, in the same
transaction, in its recipient's engagement statistic by local time of day
(:mod:`planner.core.engagement_slots`, the ``engagement_slots`` column), which learned send times
read: the recipients' rows are locked (PostgreSQL ``FOR NO KEY UPDATE``; SQLite's writers queue on its one
write lock), so two webhooks for one person never lose an event. A repeat adds nothing to it either.

The same transaction keeps each of the recipients' learned send times' window leader
(:class:`planner.core.learned_time.Leader`, the ``learned_leader`` table), which the planner reads
instead of the statistic: this is the one place the statistic changes, so a kept leader is always the
statistic's, for the quiet hours of ``policy`` it was worked out with (its key says which).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from planner.core.checks import clipping_window
from planner.core.engagement_slots import EngagementSlots
from planner.core.learned_time import LearnedTime, leader_of
from planner.core.localtime import to_local
from planner.core.policy import PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.store.dialect import Dialect, dialect_of, one_of
from planner.store.queries import insert_ignoring_duplicates
from planner.store.tables import ENGAGEMENT, LEARNED_LEADERS, RECIPIENTS, SUBSCRIPTIONS


def record_engagement(session: Session, row: dict[str, Any], policy: PlanningPolicy) -> int:
    """Store one event; its id, or the id of the same event recorded before."""
    event_id = session.scalar(insert_ignoring_duplicates(session, ENGAGEMENT, [row]))
    if event_id is not None:
        count_in_slots(session, [(row["recipient_id"], row["occurred_at"])], policy)
        return int(event_id)
    c = ENGAGEMENT.c
    found = session.scalar(
        select(c.id).where(
            c.recipient_id == row["recipient_id"],
            c.event == row["event"],
            c.occurred_at == row["occurred_at"],
        )
    )
    assert found is not None  # the insert conflicted with it
    return int(found)


def record_engagement_batch(session: Session, rows: Sequence[dict[str, Any]], policy: PlanningPolicy) -> int:
    """Store events in one statement; how many were new (the others were recorded before)."""
    if not rows:
        return 0
    c = ENGAGEMENT.c
    new = session.execute(
        insert_ignoring_duplicates(session, ENGAGEMENT, list(rows), c.recipient_id, c.occurred_at)
    ).all()
    count_in_slots(session, [(recipient_id, at) for _, recipient_id, at in new], policy)
    return len(new)


def count_in_slots(session: Session, events: Iterable[tuple[int, datetime]], policy: PlanningPolicy) -> None:
    """Add new events (recipient id, instant) to their recipients' statistic, each at its local
    wall time in the recipient's zone, and keep their learned send times' leaders. Two statements,
    and two more when some of the recipients have a learned send time, whatever their number."""
    by_recipient: dict[int, list[datetime]] = defaultdict(list)
    for recipient_id, at in events:
        by_recipient[recipient_id].append(at)
    if not by_recipient:
        return
    dialect = dialect_of(session)
    statistics: dict[int, EngagementSlots] = {}
    own_quiet: dict[int, dict[str, QuietHours | None]] = {}
    for recipient_id, zone, current, quiet in _locked(session, dialect, by_recipient):
        statistics[recipient_id] = EngagementSlots.from_json(current).with_events(
            (at, to_local(at, zone).time()) for at in by_recipient[recipient_id]
        )
        if quiet is not None:
            own_quiet[recipient_id] = quiet
    if not statistics:
        return
    r = RECIPIENTS.c
    session.connection().execute(
        update(RECIPIENTS).where(r.id == bindparam("rid")).values(engagement_slots=bindparam("slots")),
        [{"rid": rid, "slots": slots.to_json()} for rid, slots in statistics.items()],
    )
    if own_quiet:
        _keep_leaders(session, dialect, {rid: statistics[rid] for rid in own_quiet}, own_quiet, policy)


def keep_leaders(session: Session, recipient_ids: Iterable[int], policy: PlanningPolicy) -> int:
    """Work out the leaders of these recipients' learned send times from their statistic as stored,
    and keep them (how many): what recording engagement does, for data written another way."""
    dialect = dialect_of(session)
    statistics: dict[int, EngagementSlots] = {}
    own_quiet: dict[int, dict[str, QuietHours | None]] = {}
    for recipient_id, _, current, quiet in _locked(session, dialect, recipient_ids):
        if quiet is not None:
            statistics[recipient_id] = EngagementSlots.from_json(current)
            own_quiet[recipient_id] = quiet
    return _keep_leaders(session, dialect, statistics, own_quiet, policy) if statistics else 0


_QUIET_COLUMNS = tuple(
    RECIPIENTS.c[f"{channel}_quiet_{end}"] for channel in ("email", "sms") for end in ("start", "end")
)


#: Whether the recipient has a learned send time (found through the subscriptions' unique index,
#: which leads with the recipient).
_HAS_LEARNED = (
    select(SUBSCRIPTIONS.c.id)
    .where(SUBSCRIPTIONS.c.recipient_id == RECIPIENTS.c.id, SUBSCRIPTIONS.c.auto_until.is_not(None))
    .exists()
)


def _locked(
    session: Session, dialect: Dialect, recipient_ids: Iterable[int]
) -> Iterator[tuple[int, str, Any, dict[str, QuietHours | None] | None]]:
    """Each recipient's id, zone, stored statistic and, when it has a learned send time, its own
    quiet hours by channel; its row locked."""
    r = RECIPIENTS.c
    stmt = (
        select(r.id, r.timezone, r.engagement_slots, *_QUIET_COLUMNS, _HAS_LEARNED)
        .where(one_of(r.id, sorted(recipient_ids), dialect))
        .order_by(r.id)
    )
    if dialect == "postgresql":
        # FOR NO KEY UPDATE: the event's insert holds KEY SHARE on the row (its foreign key), which
        # this does not wait for, so two writers queue here instead of deadlocking.
        stmt = stmt.with_for_update(key_share=True)
    for recipient_id, zone, current, *quiet, learned in session.execute(stmt).all():
        own: dict[str, QuietHours | None] | None = None
        if learned:
            own = {
                "email": QuietHours.of_columns(quiet[0], quiet[1]),
                "sms": QuietHours.of_columns(quiet[2], quiet[3]),
            }
        yield recipient_id, zone, current, own


def _keep_leaders(
    session: Session,
    dialect: Dialect,
    statistics: dict[int, EngagementSlots],
    own_quiet: dict[int, dict[str, QuietHours | None]],
    policy: PlanningPolicy,
) -> int:
    """Work out and keep (insert or replace) the window leader of each learned send time of these
    recipients, from their ``statistics``; how many."""
    s = SUBSCRIPTIONS.c
    learned = session.execute(
        select(s.id, s.recipient_id, s.kind, s.channel, s.send_time, s.auto_until, s.auto_default).where(
            one_of(s.recipient_id, sorted(statistics), dialect), s.auto_until.is_not(None)
        )
    ).all()
    if not learned:
        return 0
    rows = []
    for sub_id, recipient_id, kind, channel, start, end, default in learned:
        quiet = clipping_window(policy, kind, channel, own_quiet[recipient_id].get(channel))
        leader = leader_of(LearnedTime(start, end, default), statistics[recipient_id], quiet)
        rows.append({"subscription_id": sub_id, **leader._asdict()})
    insert = _dialect_insert(dialect)(LEARNED_LEADERS).values(rows)
    replaced = {name: insert.excluded[name] for name in rows[0] if name != "subscription_id"}
    session.execute(insert.on_conflict_do_update(index_elements=["subscription_id"], set_=replaced))
    return len(rows)


def _dialect_insert(dialect: Dialect) -> Any:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return pg_insert if dialect == "postgresql" else sqlite_insert
