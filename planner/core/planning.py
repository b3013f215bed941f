"""The pure planning core: due occurrences in, one decision per occurrence out.

Given a chunk of subscriptions and everything the rules need (recipients, engagement, the last
to-be-sent delivery of each subscription, the deliveries already counted against caps), decide for
every occurrence up to the end of the window what happens to it. No clock, no database: the run
module fetches the inputs in a constant number of queries and writes the outputs in bulk.
"""

from __future__ import annotations

import bisect
import functools
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from operator import itemgetter
from typing import Any

from planner.core.cadence import Cadence, Occurrence, next_occurrence_after
from planner.core.checks import Decision, Facts, Occasion, decide, quiet_window
from planner.core.engagement_slots import NO_ENGAGEMENT, EngagementSlots, slot_start
from planner.core.learned_time import Choice, LearnedTime, choose
from planner.core.localtime import local_date_of, resolve_detailed
from planner.core.policy import PlanningPolicy
from planner.core.recipient import RecipientState
from planner.core.status import DeliveryStatus

# Per-row records (a run builds one of each per subscription or occurrence) are slotted and not
# ``frozen``: see planner.core.checks. Nothing assigns to them after construction.


@dataclass(slots=True)
class SubscriptionState:
    id: int
    recipient_id: int
    kind: str
    channel: str
    cadence: Cadence
    next_at: datetime
    next_local_date: date
    created_at: datetime
    #: The cursor's wall time on ``next_local_date``; None (rows from before several times a day)
    #: means the date's first.
    next_wall_time: time | None = None
    #: Occurrences on local dates before this one are recorded ``skipped`` (``snoozed``).
    snooze_until: date | None = None


@dataclass(slots=True)
class PlannedDelivery:
    """One occurrence's outcome, ready to be written as a ``Delivery`` row and its first event."""

    dedup_key: str
    subscription_id: int
    recipient_id: int
    kind: str
    channel: str
    queue: str
    local_date: date
    occurrence_at: datetime
    scheduled_at: datetime
    status: DeliveryStatus
    reason: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def to_send(self) -> bool:
        return self.status is DeliveryStatus.planned


@dataclass(slots=True)
class Cursor:
    """The next unplanned occurrence; all None once the schedule has ended (end date, COUNT, UNTIL)."""

    next_at: datetime | None
    next_local_date: date | None
    next_wall_time: time | None = None


@dataclass
class ChunkInputs:
    subscriptions: Sequence[SubscriptionState]
    recipients: Mapping[int, RecipientState]
    #: Per recipient, sorted engagement instants: the last one before the chunk's first occurrence
    #: and every one up to its last occurrence.
    engagement: Mapping[int, Sequence[datetime]]
    #: Per subscription, the local date of its last to-be-sent delivery.
    last_sent: Mapping[int, date]
    #: Per (recipient, channel), sorted instants of deliveries counted against the cap.
    cap_counted: Mapping[tuple[int, str], Sequence[datetime]]
    #: Per recipient with a learned send time in the chunk, its engagement by local time of day.
    engagement_slots: Mapping[int, EngagementSlots] = field(default_factory=dict)


@dataclass
class ChunkPlan:
    deliveries: list[PlannedDelivery]
    cursors: dict[int, Cursor]


@dataclass(slots=True)
class Decided:
    """One occurrence of a subscription, the delivery it becomes and the chain's decision on it."""

    occurrence: Occurrence
    subscription: SubscriptionState
    planned: PlannedDelivery
    decision: Decision
    #: With a learned send time, where the date's send went in the window and why.
    choice: Choice | None = None


#: Every planned key starts ``sub:<id>:`` (ad-hoc keys may not): a subscription's keys are one range
#: of the key's index, in date order (how SQLite finds a subscription's deliveries).
PLANNED_KEY_PREFIX = "sub:"


def dedup_key_for(subscription_id: int, local_date: date, wall_time: time | None = None) -> str:
    """One key per occurrence: ``sub:<id>:<local date>`` for a schedule with one wall time a day (the
    keys written before several times a day existed), ``sub:<id>:<local date>@<HH:MM>`` with several."""
    base = f"{PLANNED_KEY_PREFIX}{subscription_id}:{local_date.isoformat()}"
    return base if wall_time is None else f"{base}@{wall_time.strftime('%H:%M')}"


def occurrence_key(sub_id: int, cadence: Cadence, occurrence: Occurrence) -> str:
    return dedup_key_for(
        sub_id, occurrence.local_date, occurrence.wall_time if cadence.several_a_day else None
    )


def due_occurrences(sub: SubscriptionState, tz: str, window_end: datetime) -> tuple[list[Occurrence], Cursor]:
    """Occurrences from the cursor up to and including ``window_end``, and the cursor after them.

    The cursor is a (local date, wall time): the walk resumes strictly after the last planned one.
    """
    found: list[Occurrence] = []
    # Resume at the cursor itself: "strictly after the minute before it" (a cursor without a
    # wall time stands for the start of its date).
    start_time = sub.next_wall_time or time(0)
    occurrence = next_occurrence_after(sub.cadence, tz, *_just_before(sub.next_local_date, start_time))
    while occurrence is not None and occurrence.instant <= window_end:
        found.append(occurrence)
        occurrence = next_occurrence_after(sub.cadence, tz, occurrence.local_date, occurrence.wall_time)
    if occurrence is None:
        return found, Cursor(None, None, None)
    return found, Cursor(occurrence.instant, occurrence.local_date, occurrence.wall_time)


def _just_before(local_date: date, wall_time: time) -> tuple[date, time]:
    """The (date, wall time) position just before ``wall_time`` on ``local_date``, so a walk "after" it
    includes that wall time (wall times are whole minutes)."""
    if wall_time == time(0):
        return local_date - timedelta(days=1), time(23, 59, 59)
    minutes = wall_time.hour * 60 + wall_time.minute - 1
    return local_date, time(minutes // 60, minutes % 60, 59)


def _occurrence_detail(occurrence: Occurrence) -> dict[str, Any]:
    """The timeline detail every decision on this occurrence starts from (a copy: callers add to it)."""
    return dict(_base_detail(occurrence))


@functools.lru_cache(maxsize=1 << 16)
def _base_detail(occurrence: Occurrence) -> dict[str, Any]:
    # Occurrences are shared by the subscriptions of one schedule and zone (core.cadence caches the
    # walks), so their formatted instants are too. Never handed out: see _occurrence_detail.
    detail: dict[str, Any] = {
        "occurrence_at": occurrence.instant.isoformat(),
        "wall_time": occurrence.wall_time.strftime("%H:%M"),
    }
    if occurrence.adjustment != "exact":
        detail["dst"] = occurrence.adjustment
        if occurrence.shift:
            detail["dst_shift_minutes"] = int(occurrence.shift.total_seconds() // 60)
    return detail


def last_engaged(instants: Sequence[datetime], at: datetime) -> datetime | None:
    """The last of the sorted ``instants`` at or before ``at``."""
    index = bisect.bisect_right(instants, at)
    return instants[index - 1] if index else None


def plan_chunk(inputs: ChunkInputs, policy: PlanningPolicy, now: datetime, window_end: datetime) -> ChunkPlan:
    """Decide every due occurrence of the chunk's subscriptions. Pure."""
    cursors: dict[int, Cursor] = {}
    deliveries = [decided.planned for decided in decide_all(inputs, policy, now, window_end, cursors)]
    return ChunkPlan(deliveries=deliveries, cursors=cursors)


def decide_all(
    inputs: ChunkInputs,
    policy: PlanningPolicy,
    now: datetime,
    window_end: datetime,
    cursors: dict[int, Cursor] | None = None,
) -> Iterator[Decided]:
    """Every due occurrence of the chunk, decided in time order, with the chain's decision.

    The planner run writes the deliveries; ``simulate`` reads the decisions. ``cursors`` receives
    each subscription's cursor after its occurrences.
    """
    pending: list[tuple[datetime, int, Occurrence, SubscriptionState, Choice | None]] = []
    for sub in inputs.subscriptions:
        recipient = inputs.recipients[sub.recipient_id]
        occurrences, cursor = due_occurrences(sub, recipient.timezone, window_end)
        if cursors is not None:
            cursors[sub.id] = cursor
        if sub.cadence.learned is None:
            pending.extend((o.instant, sub.id, o, sub, None) for o in occurrences)
            continue
        for fired in occurrences:
            timed, choice = timed_occurrence(fired, sub, inputs, policy, now)
            pending.append((timed.instant, sub.id, timed, sub, choice))
    # Across subscriptions, time order decides which delivery a cap lets through.
    pending.sort(key=itemgetter(0, 1))
    last_sent = dict(inputs.last_sent)
    counted: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for key, instants in inputs.cap_counted.items():
        counted[key] = list(instants)
    for _, _, occurrence, sub, choice in pending:
        facts = occurrence_facts(occurrence, sub, inputs, now, last_sent.get(sub.id), counted)
        decision = decide(policy, facts)
        if decision.to_send:
            bisect.insort(counted[(sub.recipient_id, sub.channel)], decision.scheduled_at)
            last_sent[sub.id] = occurrence.local_date
        planned = planned_delivery(occurrence, sub, policy, decision, choice)
        yield Decided(occurrence, sub, planned, decision, choice)


def timed_occurrence(
    fired: Occurrence, sub: SubscriptionState, inputs: ChunkInputs, policy: PlanningPolicy, now: datetime
) -> tuple[Occurrence, Choice | None]:
    """The occurrence at the time its send goes: a learned send time's choice for the date
    (:func:`planner.core.learned_time.choose`, resolved by the DST policy), else ``fired`` itself.

    ``fired`` is the cadence's occurrence at the window's start, the instant the statistic is read
    at; slots already past at ``now`` (a date planned late) are left out.
    """
    learned = sub.cadence.learned
    if learned is None:
        return fired, None
    recipient = inputs.recipients[sub.recipient_id]
    zone = recipient.timezone
    quiet = None
    if not policy.is_critical(sub.kind):
        quiet = quiet_window(policy, sub.channel, recipient.audience(sub.channel))
    slots = inputs.engagement_slots.get(sub.recipient_id, NO_ENGAGEMENT)
    if now <= fired.instant:  # planned before the window opens: the usual case
        choice = choose(learned, slots, fired.instant, quiet)
    else:
        past = _past_slots(learned, fired, zone, now)
        default_passed = bool(past) and moved_to(fired, learned.default, zone).instant < now
        choice = choose(learned, slots, fired.instant, quiet, past, default_passed)
    return moved_to(fired, choice.wall_time, zone), choice


def moved_to(fired: Occurrence, wall_time: time, zone: str) -> Occurrence:
    """``fired``'s date at another wall time, resolved by the DST policy."""
    return _moved(fired.local_date, wall_time, zone) or fired


@functools.lru_cache(maxsize=1 << 16)
def _moved(local_date: date, wall_time: time, zone: str) -> Occurrence | None:
    # Recipients of a zone share a date's few chosen half hours: each occurrence is built once
    # (immutable, as the cadence's own). None only for a date that does not exist (it fired: never).
    resolution = resolve_detailed(local_date, wall_time, zone)
    if resolution is None:
        return None
    return Occurrence(local_date, resolution.instant, resolution.adjustment, resolution.shift, wall_time)


def _past_slots(learned: LearnedTime, fired: Occurrence, zone: str, now: datetime) -> frozenset[int]:
    """The window's slots on ``fired``'s date that start before ``now``."""
    past = set()
    for slot in learned.slots:
        resolution = resolve_detailed(fired.local_date, slot_start(slot), zone)
        if resolution is None or resolution.instant < now:
            past.add(slot)
    return frozenset(past)


def occurrence_facts(
    occurrence: Occurrence,
    sub: SubscriptionState,
    inputs: ChunkInputs,
    now: datetime,
    last_sent: date | None,
    counted: Mapping[tuple[int, str], Sequence[datetime]],
) -> Facts:
    """What the rule chain reads of one occurrence: the planner's, ``explain``'s and ``simulate``'s."""
    recipient = inputs.recipients[sub.recipient_id]
    engaged_at = last_engaged(inputs.engagement.get(sub.recipient_id, ()), occurrence.instant)
    occasion = Occasion(
        local_date=occurrence.local_date,
        snooze_until=sub.snooze_until,
        engaged_on=local_date_of(engaged_at or sub.created_at, recipient.timezone),
        last_sent=last_sent,
    )
    return Facts(
        kind=sub.kind,
        channel=sub.channel,
        audience=recipient.audience(sub.channel),
        at=occurrence.instant,
        now=now,
        counted=counted.get((sub.recipient_id, sub.channel), ()),
        occasion=occasion,
    )


def planned_delivery(
    occurrence: Occurrence,
    sub: SubscriptionState,
    policy: PlanningPolicy,
    decision: Decision,
    choice: Choice | None = None,
) -> PlannedDelivery:
    """The delivery row an occurrence's decision becomes, with its first timeline entry's detail."""
    detail = _occurrence_detail(occurrence)
    detail.update(decision.detail())
    if choice is not None:
        detail["learned_time"] = choice.record
    return PlannedDelivery(
        dedup_key=occurrence_key(sub.id, sub.cadence, occurrence),
        subscription_id=sub.id,
        recipient_id=sub.recipient_id,
        kind=sub.kind,
        channel=sub.channel,
        queue=policy.queue_for(sub.kind),
        local_date=occurrence.local_date,
        occurrence_at=occurrence.instant,
        scheduled_at=decision.scheduled_at,
        status=decision.status,
        reason=decision.reason,
        detail=detail,
    )
