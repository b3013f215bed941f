"""What a recipient would receive over the next days, and why, without touching the database.

``planner simulate`` shows this so that a DST gap, an overlap or a quiet-hours deferral can be
checked before it happens: every adjustment made to a send carries a note saying what and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from planner.core.cadence import Cadence, Occurrence, occurrences_on
from planner.core.checks import Audience, check_channel, quiet_hours_verdict, quiet_window
from planner.core.localtime import UTC, TzLike, get_zone, hhmm, resolve_detailed, to_local
from planner.core.policy import PlanningPolicy
from planner.core.quiet_hours import QuietHours
from planner.errors import InvalidInput

_ANY_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SubscriptionSpec:
    kind: str
    channel: str
    cadence: Cadence
    #: The window that applies (the recipient's own, else the channel default).
    quiet_hours: QuietHours
    #: Critical kinds bypass quiet hours, as everywhere else in the rule chain.
    critical: bool = False
    #: Occurrences on dates before this one are snoozed (recorded skipped, not sent).
    snooze_until: date | None = None
    #: The channel rule's reason when it stops every send (``opted_out``, ``no_address``...).
    blocked: str | None = None

    @classmethod
    def of(
        cls,
        policy: PlanningPolicy,
        kind: str,
        channel: str,
        cadence: Cadence,
        audience: Audience,
        snooze_until: date | None = None,
    ) -> SubscriptionSpec:
        """The spec the rule chain implies for this recipient: their window, the kind's bypass."""
        window = quiet_window(policy, channel, audience)
        verdict = check_channel(audience, channel, _ANY_INSTANT, kind)  # the channel rule ignores the time
        blocked = verdict.reason if verdict.failed else None
        critical = policy.is_critical(kind)
        return cls(kind, channel, cadence, window, critical, snooze_until, blocked)


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

    @property
    def deferred(self) -> bool:
        return self.send_at != self.planned_local


def simulate(
    tz: TzLike, subscriptions: Sequence[SubscriptionSpec], from_date: date, days: int
) -> list[SimulatedSend]:
    """Every send of ``subscriptions`` for the local dates ``from_date`` .. ``from_date + days - 1``."""
    if not isinstance(days, int) or isinstance(days, bool) or days < 0:
        raise InvalidInput("days", days, "a whole number of days, 0 or more")
    zone = get_zone(tz)
    sends: list[SimulatedSend] = []
    for spec in subscriptions:
        if spec.blocked is not None:
            continue  # nothing would be received: opted out, or no usable address
        pending: list[str] = []
        for offset in range(days):
            local_date = from_date + timedelta(days=offset)
            occurrences = occurrences_on(spec.cadence, zone, local_date)
            if occurrences and spec.snooze_until is not None and local_date < spec.snooze_until:
                until = spec.snooze_until.isoformat()
                pending.append(f"{local_date.isoformat()} snoozed until {until}: recorded skipped, not sent")
                continue
            for occurrence in occurrences:
                sends.append(_send(spec, zone, occurrence, tuple(pending)))
                pending = []
            if not occurrences and spec.cadence.matches(local_date):
                pending.append(f"{local_date.isoformat()} does not exist in {zone.key}: no send that day")
    return sorted(sends, key=lambda send: (send.send_at, send.kind, send.channel))


def _send(
    spec: SubscriptionSpec, tz: ZoneInfo, occurrence: Occurrence, notes: tuple[str, ...]
) -> SimulatedSend:
    planned = to_local(occurrence.instant, tz)
    wall = hhmm(occurrence.wall_time)
    if occurrence.adjustment == "gap":
        moved = f"{_shift(occurrence.shift)} to {hhmm(planned)} {planned.tzname()}"
        notes += (f"DST gap: {wall} does not exist, shifted {moved}",)
    elif occurrence.adjustment == "overlap":
        notes += (f"DST overlap: {wall} happens twice, first occurrence ({planned.tzname()}) used",)
    quiet = quiet_hours_verdict(spec.quiet_hours, spec.critical, tz.key or str(tz), occurrence.instant)
    send_local = to_local(quiet.at, tz)
    if quiet.outcome == "deferred":
        notes += (_deferral_note(spec.quiet_hours, tz, planned, send_local),)
    elif quiet.outcome == "bypassed" and spec.quiet_hours.contains(planned.time()):
        notes += (f"{spec.kind} is a critical kind: sent inside quiet hours {spec.quiet_hours.text()}",)
    return SimulatedSend(
        kind=spec.kind,
        channel=spec.channel,
        local_date=occurrence.local_date,
        planned_local=planned,
        send_at=quiet.at,
        send_local=send_local,
        notes=notes,
    )


def _deferral_note(qh: QuietHours, tz: ZoneInfo, planned: datetime, send_local: datetime) -> str:
    note = f"quiet hours {qh.text()}: deferred from {hhmm(planned)} to {hhmm(send_local)}"
    days_later = (send_local.date() - planned.date()).days
    if days_later == 1:
        note += " the next day"
    elif days_later:
        note += f" on {send_local.date().isoformat()}"
    end = resolve_detailed(send_local.date(), qh.end, tz)
    if end is not None and end.adjustment == "gap" and end.instant == send_local:
        note += f" ({hhmm(qh.end)} does not exist that day, shifted {_shift(end.shift)})"
    return note


def _shift(shift: timedelta) -> str:
    hours, minutes = divmod(int(shift.total_seconds()) // 60, 60)
    return f"+{hours}:{minutes:02d}"
