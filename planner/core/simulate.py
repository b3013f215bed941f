"""What a recipient would receive over the next days, and why: the planner itself, run ahead.

``planner simulate`` shows this so that a DST gap, an overlap, a quiet-hours deferral, a snooze or
engagement backoff can be checked before it happens. The sends are the planner's own decisions
(:func:`planner.core.planning.decide_all`) on today's facts, as if every day were planned on time and
the recipient did not engage again; every adjustment made to a send carries a note saying what and
why, and occurrences that would not be sent are noted on the subscription's next send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from planner.core.cadence import occurrences_on
from planner.core.checks import Decision, Verdict, quiet_window
from planner.core.learned_time import Choice
from planner.core.localtime import UTC, get_zone, hhmm, resolve_detailed, to_local
from planner.core.planning import ChunkInputs, Decided, decide_all
from planner.core.policy import PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.core.recipient import RecipientState
from planner.errors import InvalidInput

DIGEST_NOTE = "digest: lists the events since the last digest; skipped (empty_digest) when there are none"


@dataclass(frozen=True)
class SimulatedSend:
    """One send: the cadence fired at ``planned_local`` (for ``local_date``) and goes out at ``send_at``."""

    kind: str
    channel: str
    local_date: date
    planned_local: datetime
    send_at: datetime
    send_local: datetime
    notes: tuple[str, ...]
    #: With a learned send time, the date's choice (also the first note).
    choice: Choice | None = None

    @property
    def deferred(self) -> bool:
        return self.send_at != self.planned_local


def start_of(day: date, zone: str) -> datetime:
    """The first instant of the local date ``day`` in ``zone``, in UTC."""
    return datetime.combine(day, time(0), get_zone(zone)).astimezone(UTC)


def simulate(
    inputs: ChunkInputs,
    policy: PlanningPolicy,
    from_date: date,
    days: int,
    *,
    digests: Collection[int] = frozenset(),
) -> list[SimulatedSend]:
    """Every send of ``inputs``' subscriptions (their cursors at the start of ``from_date``)
    on the local dates ``from_date`` .. ``from_date + days - 1``; ``digests``: ids of digest subscriptions."""
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise InvalidInput("days", days, "a whole number of days, 0 or more")
    zones = {r.timezone for r in inputs.recipients.values()} or {"UTC"}
    end_date = from_date + timedelta(days=days)
    now = min(start_of(from_date, z) for z in zones)  # nothing simulated is late
    window_end = max(start_of(end_date, z) for z in zones)
    notes = _Notes(inputs, from_date, end_date)
    sends: list[SimulatedSend] = []
    for decided in decide_all(inputs, policy, now, window_end):
        if decided.occurrence.local_date >= end_date:
            continue
        sub_id = decided.subscription.id
        earlier = notes.before(sub_id, decided.occurrence.local_date)
        if not decided.decision.to_send:
            notes.hold(sub_id, _not_sent(decided))
            continue
        recipient = inputs.recipients[decided.subscription.recipient_id]
        sends.append(_send(decided, recipient, earlier, policy, digest=sub_id in digests))
    return sorted(sends, key=lambda send: (send.send_at, send.kind, send.channel))


class _Notes:
    """Per subscription, what happened since its last send, said on its next one."""

    def __init__(self, inputs: ChunkInputs, from_date: date, end_date: date) -> None:
        self.held: dict[int, list[str]] = defaultdict(list)
        #: Per subscription, local dates its cadence names that do not exist in the zone.
        self.missing: dict[int, list[date]] = defaultdict(list)
        for sub in inputs.subscriptions:
            zone = inputs.recipients[sub.recipient_id].timezone
            day = from_date
            while day < end_date:
                if sub.cadence.matches(day) and not occurrences_on(sub.cadence, zone, day):
                    self.missing[sub.id].append(day)
                day += timedelta(days=1)
        self.zones = {sub.id: inputs.recipients[sub.recipient_id].timezone for sub in inputs.subscriptions}

    def before(self, sub_id: int, day: date) -> tuple[str, ...]:
        """The notes held for ``sub_id``'s send on ``day``, which takes them."""
        while self.missing[sub_id] and self.missing[sub_id][0] < day:
            missing = self.missing[sub_id].pop(0)
            self.held[sub_id].append(
                f"{missing.isoformat()} does not exist in {self.zones[sub_id]}: no send that day"
            )
        return tuple(self.held.pop(sub_id, ()))

    def hold(self, sub_id: int, note: str) -> None:
        self.held[sub_id].append(note)


def _not_sent(decided: Decided) -> str:
    """Why an occurrence is not sent, in the words of the rule that stopped it."""
    day = decided.occurrence.local_date.isoformat()
    stopped = decided.decision.verdicts[-1]
    if stopped.reason == "snoozed":
        return f"{day} snoozed until {stopped.detail['snooze_until']}: recorded skipped, not sent"
    if stopped.reason == "engagement_backoff":
        tier = stopped.detail["tier"]
        return f"{day} skipped by engagement backoff (tier {tier}): not sent unless they engage"
    if stopped.reason == "frequency_cap":
        return f"{day} suppressed: the cap {stopped.detail['cap']} is full"
    return f"{day} {decided.decision.status.value} ({stopped.reason})"


def _send(
    decided: Decided,
    recipient: RecipientState,
    notes: tuple[str, ...],
    policy: PlanningPolicy,
    *,
    digest: bool,
) -> SimulatedSend:
    zone, sub = recipient.timezone, decided.subscription
    window = quiet_window(policy, sub.channel, recipient.audience(sub.channel))
    occurrence, decision = decided.occurrence, decided.decision
    planned = to_local(occurrence.instant, zone)
    wall = hhmm(occurrence.wall_time)
    if decided.choice is not None:
        notes = (decided.choice.note(), *notes)
    if occurrence.adjustment == "gap":
        moved = f"{_shift(occurrence.shift)} to {hhmm(planned)} {planned.tzname()}"
        notes += (f"DST gap: {wall} does not exist, shifted {moved}",)
    elif occurrence.adjustment == "overlap":
        notes += (f"DST overlap: {wall} happens twice, first occurrence ({planned.tzname()}) used",)
    send_local = to_local(decision.scheduled_at, zone)
    quiet = _quiet_verdict(decision)
    if quiet.outcome == "deferred":
        notes += (_deferral_note(window, zone, planned, send_local),)
    elif quiet.outcome == "bypassed" and window.contains(planned.time()):
        notes += (f"{decided.subscription.kind} is a critical kind: sent inside quiet hours {window.text()}",)
    if digest:
        notes += (DIGEST_NOTE,)
    return SimulatedSend(
        kind=decided.subscription.kind,
        channel=decided.subscription.channel,
        local_date=occurrence.local_date,
        planned_local=planned,
        send_at=decision.scheduled_at,
        send_local=send_local,
        notes=notes,
        choice=decided.choice,
    )


def _quiet_verdict(decision: Decision) -> Verdict:
    return next(v for v in decision.verdicts if v.rule == "quiet_hours")


def _deferral_note(qh: QuietHours, zone: str, planned: datetime, send_local: datetime) -> str:
    note = f"quiet hours {qh.text()}: deferred from {hhmm(planned)} to {hhmm(send_local)}"
    days_later = (send_local.date() - planned.date()).days
    if days_later == 1:
        note += " the next day"
    elif days_later:
        note += f" on {send_local.date().isoformat()}"
    end = resolve_detailed(send_local.date(), qh.end, zone)
    if end is not None and end.adjustment == "gap" and end.instant == send_local:
        note += f" ({hhmm(qh.end)} does not exist that day, shifted {_shift(end.shift)})"
    return note


def _shift(shift: timedelta) -> str:
    hours, minutes = divmod(int(shift.total_seconds()) // 60, 60)
    return f"+{hours}:{minutes:02d}"
