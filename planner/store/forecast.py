"""What the dashboard's forecast and clock-change panels read (:mod:`planner.readmodels.dashboard`):
pending rows per hour, subscriptions grouped by what their sends depend on, recipients and send
times per zone. Each is one grouped query, whatever the number of recipients."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session

from planner.core.cadence import Cadence
from planner.core.quiet_hours import QuietHours
from planner.core.status import PENDING_STATUSES
from planner.store.dialect import dialect_of
from planner.store.tables import DELIVERIES, RECIPIENTS, SUBSCRIPTIONS


@dataclass(frozen=True)
class CadenceGroup:
    """Active subscriptions that send at the same instants: same cursor, zone, cadence, snooze,
    channel and quiet hours, and all of critical kinds or none."""

    next_at: datetime
    timezone: str
    cadence: Cadence
    snooze_until: date | None
    critical: bool
    channel: str
    quiet: QuietHours | None
    count: int


def pending_per_hour(session: Session, now: datetime, end: datetime) -> list[tuple[datetime, str, bool, int]]:
    """(UTC hour, channel, deferred by quiet hours, count) of the pending rows due in ``[now, end)``,
    counted in SQL: retries and ad-hoc sends spread over many instants."""
    c = DELIVERIES.c
    # A planned row deferred by quiet hours is due later than its cadence's occurrence.
    deferred = and_(c.occurrence_at.is_not(None), c.scheduled_at != c.occurrence_at)
    if dialect_of(session) == "postgresql":
        hour = func.date_trunc("hour", c.scheduled_at)
    else:
        hour = func.substr(c.scheduled_at, 1, 13)  # SQLite stores UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'
    rows = session.execute(
        select(hour, c.channel, deferred, func.count())
        .where(c.status.in_([s.value for s in PENDING_STATUSES]), c.scheduled_at >= now, c.scheduled_at < end)
        .group_by(hour, c.channel, deferred)
    )
    return [(_as_hour(at), str(channel), bool(d), int(n)) for at, channel, d, n in rows]


def _as_hour(value: datetime | str) -> datetime:
    if isinstance(value, str):
        return datetime.strptime(value, "%Y-%m-%d %H").replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _reachable() -> Any:
    """The recipient can receive on the subscription's channel (no opt-out, a valid address)."""
    r, s = RECIPIENTS.c, SUBSCRIPTIONS.c
    email = and_(r.email_opt_out.is_(false()), r.email_invalid.is_(None), r.email.is_not(None))
    sms = and_(r.sms_opt_out.is_(false()), r.sms_invalid.is_(None), r.phone.is_not(None))
    return or_(and_(s.channel == "email", email), and_(s.channel == "sms", sms))


def cadence_groups(session: Session, critical_kinds: Collection[str], end: datetime) -> list[CadenceGroup]:
    """Active subscriptions of reachable recipients due before ``end``, grouped by what their
    sends depend on (not by kind: only whether it is critical)."""
    r, s = RECIPIENTS.c, SUBSCRIPTIONS.c
    keys = [
        s.next_at, r.timezone, s.send_time, s.days, s.times, s.rrule, s.start_date, s.end_date,
        s.snooze_until, s.channel, r.email_quiet_start, r.email_quiet_end, r.sms_quiet_start, r.sms_quiet_end,
    ]  # fmt: skip
    # Grouped by a constant, SQLite would read a position; without critical kinds there is no key.
    critical = s.kind.in_(sorted(critical_kinds)) if critical_kinds else None
    rows = session.execute(
        select(*keys, (false() if critical is None else critical).label("critical"), func.count())
        .select_from(SUBSCRIPTIONS.join(RECIPIENTS, r.id == s.recipient_id))
        .where(s.active.is_(True), s.next_at.is_not(None), s.next_at < end, _reachable())
        .group_by(*keys, *([] if critical is None else [critical]))
    )
    return [_group(row) for row in rows]


def _group(row: Any) -> CadenceGroup:
    email = row.channel == "email"
    start = row.email_quiet_start if email else row.sms_quiet_start
    stop = row.email_quiet_end if email else row.sms_quiet_end
    quiet = QuietHours(start, stop) if start is not None and stop is not None else None
    cadence = Cadence.from_storage(
        row.send_time, row.days, row.times, row.rrule, row.start_date, row.end_date
    )
    return CadenceGroup(
        row.next_at,
        row.timezone,
        cadence,
        row.snooze_until,
        bool(row.critical),
        row.channel,
        quiet,
        int(row[-1]),
    )


def recipients_per_zone(session: Session) -> dict[str, int]:
    """Every recipient, subscribed or not, counted per time zone."""
    r = RECIPIENTS.c
    return {
        str(zone): int(n)
        for zone, n in session.execute(select(r.timezone, func.count()).group_by(r.timezone))
    }


def send_times_in_zones(session: Session, zones: Collection[str]) -> dict[str, list[tuple[time, int]]]:
    """Per zone among ``zones``, the active subscriptions' (first) send times and how many share each."""
    r, s = RECIPIENTS.c, SUBSCRIPTIONS.c
    times: dict[str, list[tuple[time, int]]] = defaultdict(list)
    rows = session.execute(
        select(r.timezone, s.send_time, func.count())
        .select_from(SUBSCRIPTIONS.join(RECIPIENTS, r.id == s.recipient_id))
        .where(s.active.is_(True), r.timezone.in_(sorted(zones)))
        .group_by(r.timezone, s.send_time)
    )
    for zone, wall, count in rows:
        times[zone].append((wall, int(count)))
    return times
