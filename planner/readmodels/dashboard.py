"""Read-side numbers for the operator dashboard (``/ui``) that no other command computes.

- :func:`sends_next_hours`: what goes out in the next hours, per hour and channel, with the
  quiet-hours deferrals, from the deliveries already planned and the cadences still to come;
- :func:`dst_transitions`: the clock changes of the coming days in the recipients' zones and how
  many subscriptions each shifts;
- :func:`dead_letter_groups`: dead deliveries grouped by reason and error;
- :func:`deliveries_page`: one page of ``planner deliveries list``.

Every function costs a constant number of queries, whatever the number of recipients: rows are
grouped in SQL by what the rules depend on (zone, wall time, days, quiet hours), and the rules run
once per group, never once per recipient.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from planner.app import App
from planner.core.cadence import occurrences_between
from planner.core.checks import quiet_hours_verdict
from planner.core.localtime import get_zone, resolve_detailed
from planner.core.paging import cursor_after
from planner.core.quiet_hours import effective_quiet_hours
from planner.core.status import DeliveryStatus
from planner.core.wording import window_length
from planner.errors import InvalidInput
from planner.readmodels.status import (
    DEAD_RECENT,
    at_a_glance,
    recent_counts,
)
from planner.store import dead_letters
from planner.store.db import Session
from planner.store.deliveries import page_of_deliveries
from planner.store.forecast import (
    CadenceGroup,
    cadence_groups,
    pending_per_hour,
    recipients_per_zone,
    send_times_in_zones,
)
from planner.store.queries import DeliveryFilter

CHANNELS = ("email", "sms")


# ----------------------------------------------------------------------------- next hours of sends


@dataclass
class HourBucket:
    start: datetime
    sends: Counter[str] = field(default_factory=Counter)  # per channel, deferrals included
    deferred: Counter[str] = field(default_factory=Counter)  # per channel: moved here by quiet hours


@dataclass(frozen=True)
class SendForecast:
    buckets: list[HourBucket]
    planned: int  # from delivery rows already planned
    forecast: int  # from subscription cadences not planned yet

    @property
    def total(self) -> int:
        return self.planned + self.forecast


def sends_next_hours(app: App, now: datetime, hours: int = 24) -> SendForecast:
    """Sends due from ``now``'s hour to ``now + hours``: planned rows, then the cadences' next occurrences.

    The cadence part applies the DST policy and quiet hours (critical kinds bypass them) but not
    engagement backoff or caps, which depend on the day's history: it is an upper bound.
    """
    first = now.replace(minute=0, second=0, microsecond=0)
    end = now + timedelta(hours=hours)
    buckets = [HourBucket(first + timedelta(hours=i)) for i in range(hours + 1)]

    def add(at: datetime, channel: str, count: int, deferred: bool) -> None:
        index = int((at - first).total_seconds() // 3600)
        if 0 <= index < len(buckets):
            buckets[index].sends[channel] += count
            if deferred:
                buckets[index].deferred[channel] += count

    with app.sessions() as session:
        planned = pending_per_hour(session, now, end)
        groups = cadence_groups(session, app.policy.critical_kinds, end)
    for hour, channel, deferred, count in planned:
        add(max(hour, first), channel, count, deferred)
    forecast = 0
    for group in groups:
        for at, deferred in _group_sends(app, group, now, end):
            add(at, group.channel, group.count, deferred)
            forecast += group.count
    if not buckets[-1].sends:
        buckets.pop()
    return SendForecast(buckets, sum(row[3] for row in planned), forecast)


def _group_sends(app: App, group: CadenceGroup, now: datetime, end: datetime) -> list[tuple[datetime, bool]]:
    """The group's occurrences from its cursor (or ``now``, if the cursor is overdue: overdue
    occurrences are not forecast) to ``end``, each after quiet hours; snoozed ones send nothing."""
    window = effective_quiet_hours(group.channel, group.quiet, app.policy.quiet_defaults)
    start = max(group.next_at, now) - _TICK  # occurrences_between excludes its start
    sends = []
    for occurrence in occurrences_between(group.cadence, group.timezone, start, end):
        if occurrence.instant >= end:
            break
        if group.snooze_until is not None and occurrence.local_date < group.snooze_until:
            continue
        if window.is_empty:  # nothing to defer (and no zone lookup needed)
            sends.append((occurrence.instant, False))
        else:
            verdict = quiet_hours_verdict(window, group.critical, group.timezone, occurrence.instant)
            sends.append((verdict.at, verdict.outcome == "deferred"))
    return sends


_TICK = timedelta(microseconds=1)


# ----------------------------------------------------------------------------- DST transitions


@dataclass(frozen=True)
class Transition:
    timezone: str
    at: datetime  # UTC instant of the change
    offset_before: timedelta
    offset_after: timedelta
    recipients: int  # in the zone
    subscriptions: int  # every active subscription in the zone: its UTC send time moves
    wall_shifted: int  # of which the wall time falls in the gap (moved later) or the overlap (first one)

    @property
    def kind(self) -> str:
        return "gap" if self.offset_after > self.offset_before else "overlap"

    @property
    def delta(self) -> timedelta:
        return self.offset_after - self.offset_before


def dst_transitions(app: App, now: datetime, days: int = 14) -> list[Transition]:
    """Clock changes in ``[now, now + days)`` in zones with active subscriptions, soonest first."""
    end = now + timedelta(days=days)
    with app.sessions() as session:
        recipients = recipients_per_zone(session)
        changes = {zone: moments for zone in recipients if (moments := _changes(zone, now, end))}
        # Subscriptions are counted in the changing zones only (a few, most days none).
        times = send_times_in_zones(session, changes) if changes else {}
    found = []
    for zone_name, zone_changes in changes.items():
        walls = times.get(zone_name, [])
        if not walls:  # recipients there, but nobody subscribed
            continue
        for at, before, after in zone_changes:
            local_day = (at + after).date()
            shifted = sum(n for wall, n in walls if _moved(zone_name, local_day, wall))
            found.append(
                Transition(
                    zone_name, at, before, after, recipients[zone_name], sum(n for _, n in walls), shifted
                )
            )
    return sorted(found, key=lambda t: (t.at, -t.subscriptions, t.timezone))


_STEP = timedelta(hours=6)  # no zone changes its clocks twice within six hours


def _changes(zone_name: str, start: datetime, end: datetime) -> list[tuple[datetime, timedelta, timedelta]]:
    """(instant, offset before, offset after) of each UTC-offset change in ``[start, end)``."""
    zone = get_zone(zone_name)

    def offset(at: datetime) -> timedelta:
        value = at.astimezone(zone).utcoffset()
        assert value is not None
        return value

    changes = []
    at = start
    while at < end:
        step_end = min(at + _STEP, end)
        if offset(at) != offset(step_end):
            low, high = at, step_end
            while high - low > timedelta(minutes=1):  # transitions fall on whole minutes
                middle = low + (high - low) / 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            high = high.replace(second=0, microsecond=0)
            changes.append((high, offset(low), offset(high)))
        at = step_end
    return changes


def _moved(zone: str, local_day: date, wall: time) -> bool:
    """Whether ``wall`` on the changeover's local date is adjusted (in the gap, or repeated)."""
    days = (local_day - timedelta(days=1), local_day, local_day + timedelta(days=1))
    return any(
        (res := resolve_detailed(day, wall, zone)) is not None and res.adjustment != "exact" for day in days
    )


# ----------------------------------------------------------------------------- dead letters


@dataclass
class DeadGroup:
    """Dead deliveries of one reason and error: how many, the UTC days they were scheduled on, and
    the latest."""

    reason: str | None
    error: str | None
    count: int
    days: int
    first_day: date
    last_day: date
    deliveries: list[dict[str, Any]] = field(default_factory=list)


#: The dead-letter page's windows, by the name its query string uses; the page opens on the first,
#: the window the overview's count of dead letters reads.
DEAD_WINDOWS: dict[str, timedelta | None] = {
    "7d": DEAD_RECENT, "24h": timedelta(days=1), "30d": timedelta(days=30), "all": None,
}  # fmt: skip


#: Each window's name as the page's links say it ('last 7 days', 'all kept').
DEAD_WINDOW_NAMES = {
    name: "all kept" if span is None else f"last {window_length(span)}" for name, span in DEAD_WINDOWS.items()
}


def dead_window(name: str | None, now: datetime) -> tuple[str, datetime | None]:
    """A dead-letter window as the query string named it (default: the first) and the scheduled
    time it starts at (None: every dead delivery kept)."""
    name = name or next(iter(DEAD_WINDOWS))
    if name not in DEAD_WINDOWS:
        raise InvalidInput("within", name, f"one of {', '.join(DEAD_WINDOWS)}")
    span = DEAD_WINDOWS[name]
    return name, None if span is None else now - span


def dead_letter_groups(
    session: Session, since: datetime | None, groups: int = 50, per_group: int = 20
) -> list[DeadGroup]:
    """The ``groups`` largest (reason, error) groups of the dead deliveries scheduled since
    ``since`` (None: every dead delivery kept), each with its latest ``per_group`` rows.

    The counts come per day from the table the database keeps, and the chosen groups' rows from
    their own days (:mod:`planner.store.dead_letters`): a page costs the window's days and the
    failures of the days it shows, not every death the window holds.
    """
    found = dead_letters.groups_in(session, since)
    chosen = sorted(found.items(), key=lambda item: (-item[1].deaths, item[0]))[:groups]
    latest = dead_letters.latest_of_groups(session, [key for key, _ in chosen], since, per_group)
    return [
        DeadGroup(key.reason or None, key.error or None, figures.deaths, figures.days, figures.first_day,
                  figures.last_day, latest.get(key, []))
        for key, figures in chosen
    ]  # fmt: skip


# ----------------------------------------------------------------------------- the overview's counts

def delivery_counts(session: Session, now: datetime) -> dict[str, int]:
    """Deliveries per status (:func:`~planner.readmodels.status.recent_counts`), every status shown."""
    return _every_status(recent_counts(session, now))


def _every_status(counts: dict[str, int]) -> dict[str, int]:
    return {s.value: counts.get(s.value, 0) for s in DeliveryStatus}


def overview_status(app: App, now: datetime) -> dict[str, Any]:
    """``planner status``'s figures (:func:`~planner.readmodels.status.at_a_glance`), every status
    counted shown (none left out)."""
    found = at_a_glance(app, now)
    found["deliveries"] = _every_status(found["deliveries"])
    return found


# ----------------------------------------------------------------------------- deliveries, paged

@dataclass(frozen=True)
class DeliveryPage:
    rows: list[dict[str, Any]]
    per_page: int
    #: The cursor after this page's last row when there are more (None: the last page).
    next_after: str | None


def deliveries_page(session: Session, flt: DeliveryFilter, per_page: int = 50) -> DeliveryPage:
    """The page of the deliveries matching ``flt`` that starts after its cursor (keyset paging).

    With ``since`` the order is ``planner deliveries list``'s (scheduled time ascending from it);
    without, the latest first, which is what an operator opens the page for.
    """
    flt = replace(flt, newest_first=flt.since is None)
    # One row more than the page: whether there is a next page, without counting.
    rows = page_of_deliveries(session, flt, per_page + 1)
    if len(rows) <= per_page:
        return DeliveryPage(rows, per_page, None)
    return DeliveryPage(rows[:per_page], per_page, cursor_after(rows[per_page - 1]))
