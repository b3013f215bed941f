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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from planner.core.cadence import Cadence, Occurrence, next_occurrence_after
from planner.core.checks import Audience, Verdict, decide
from planner.core.localtime import local_date_of
from planner.core.policy import PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.rules import engagement_backoff
from planner.core.status import DeliveryStatus

# Per-row records (a run builds one of each per subscription or occurrence) are slotted and not
# ``frozen``: see planner.core.checks. Nothing assigns to them after construction.


@dataclass(slots=True)
class RecipientState:
    id: int
    external_id: str
    timezone: str
    email: str | None
    phone: str | None
    quiet_hours: Mapping[str, QuietHours]
    opted_out: frozenset[str]
    invalid: Mapping[str, str]
    #: Per channel, the kinds opted out of.
    opted_out_kinds: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Per channel, the audience built from the fields above (a recipient's subscriptions share it).
    _audiences: dict[str, Audience] = field(default_factory=dict, init=False, repr=False, compare=False)

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone

    def audience(self, channel: str) -> Audience:
        found = self._audiences.get(channel)
        if found is None:
            found = self._audiences[channel] = Audience(
                timezone=self.timezone,
                address=self.address(channel),
                opted_out=channel in self.opted_out,
                invalid=self.invalid.get(channel),
                opted_out_kinds=self.opted_out_kinds.get(channel, frozenset()),
                quiet_hours=self.quiet_hours.get(channel),
            )
        return found


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


@dataclass
class ChunkPlan:
    deliveries: list[PlannedDelivery]
    cursors: dict[int, Cursor]


def dedup_key_for(subscription_id: int, local_date: date, wall_time: time | None = None) -> str:
    """One key per occurrence: ``sub:<id>:<local date>`` for a schedule with one wall time a day (the
    keys written before several times a day existed), ``sub:<id>:<local date>@<HH:MM>`` with several."""
    base = f"sub:{subscription_id}:{local_date.isoformat()}"
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


def _last_engaged(instants: Sequence[datetime], at: datetime) -> datetime | None:
    index = bisect.bisect_right(instants, at)
    return instants[index - 1] if index else None


def plan_chunk(inputs: ChunkInputs, policy: PlanningPolicy, now: datetime, window_end: datetime) -> ChunkPlan:
    """Decide every due occurrence of the chunk's subscriptions. Pure."""
    pending: list[tuple[datetime, int, Occurrence, SubscriptionState]] = []
    cursors: dict[int, Cursor] = {}
    for sub in inputs.subscriptions:
        recipient = inputs.recipients[sub.recipient_id]
        occurrences, cursors[sub.id] = due_occurrences(sub, recipient.timezone, window_end)
        pending.extend((o.instant, sub.id, o, sub) for o in occurrences)
    # Across subscriptions, time order decides which delivery a cap lets through.
    pending.sort(key=lambda item: (item[0], item[1]))

    last_sent = dict(inputs.last_sent)
    counted: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for key, instants in inputs.cap_counted.items():
        counted[key] = list(instants)
    deliveries = [
        _decide(occurrence, sub, inputs, policy, now, last_sent, counted) for _, _, occurrence, sub in pending
    ]
    return ChunkPlan(deliveries=deliveries, cursors=cursors)


def _decide(
    occurrence: Occurrence,
    sub: SubscriptionState,
    inputs: ChunkInputs,
    policy: PlanningPolicy,
    now: datetime,
    last_sent: dict[int, date],
    counted: dict[tuple[int, str], list[datetime]],
) -> PlannedDelivery:
    recipient = inputs.recipients[sub.recipient_id]
    detail = _occurrence_detail(occurrence)
    backoff = _backoff(occurrence, sub, inputs, policy, last_sent.get(sub.id))
    snoozed = _snoozed(occurrence, sub)
    key = (sub.recipient_id, sub.channel)
    decision = decide(
        policy,
        kind=sub.kind,
        channel=sub.channel,
        audience=recipient.audience(sub.channel),
        at=occurrence.instant,
        now=now,
        counted=counted[key],
        before=(*snoozed, backoff),
    )
    if any(v.rule == "engagement" for v in decision.verdicts):
        detail["engagement"] = backoff.detail
    detail.update(decision.detail())
    if decision.to_send:
        bisect.insort(counted[key], decision.scheduled_at)
        last_sent[sub.id] = occurrence.local_date
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


def _backoff(
    occurrence: Occurrence,
    sub: SubscriptionState,
    inputs: ChunkInputs,
    policy: PlanningPolicy,
    last_sent: date | None,
) -> Verdict:
    """Engagement backoff as a verdict of the chain (it applies to planned occurrences only)."""
    tz = inputs.recipients[sub.recipient_id].timezone
    engaged_at = _last_engaged(inputs.engagement.get(sub.recipient_id, ()), occurrence.instant)
    engaged_date = local_date_of(engaged_at or sub.created_at, tz)
    verdict = engagement_backoff(policy.tiers_for(sub.kind), occurrence.local_date, engaged_date, last_sent)
    detail = {
        "tier": verdict.tier.label,
        "inactive_days": verdict.inactive_days,
        "days_since_last_send": verdict.days_since_last_send,
    }
    if verdict.send:
        return Verdict("engagement", "pass", occurrence.instant, detail=detail)
    return Verdict(
        "engagement", "fail", occurrence.instant, DeliveryStatus.skipped, "engagement_backoff", detail=detail
    )


def _snoozed(occurrence: Occurrence, sub: SubscriptionState) -> tuple[Verdict, ...]:
    """A snoozed subscription's occurrences before ``snooze_until`` are recorded ``skipped``, not sent."""
    if sub.snooze_until is None or occurrence.local_date >= sub.snooze_until:
        return ()
    detail = {"snooze_until": sub.snooze_until.isoformat()}
    return (Verdict("snooze", "fail", occurrence.instant, DeliveryStatus.skipped, "snoozed", detail=detail),)
